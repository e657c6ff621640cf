"""wae-bench as a Python library (docs/python-api.md): the page's python
blocks run in order, as a notebook runs its cells, on a tiny MoCA run on the
embedded digits with the stand-in features (no Inception weights), and so
does the in-process plugin cell of docs/plugins.md, twice; the training
log's reader (:func:`wae_bench.run.directory.read_metrics`); and the FID of
one's own tensors (:func:`wae_bench.metrics.fid_of`) against the path
`wae-bench eval` takes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wae_bench.errors import WaeError
from wae_bench.run.directory import read_metrics

pytestmark = pytest.mark.usefixtures("single_thread")


# -- the training log ---------------------------------------------------------------------
def _log(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_read_metrics_gives_one_dict_a_line_and_skips_a_torn_last_line(tmp_path):
    recs = [{"step": 5, "loss": 1.5, "moca/neg": 0.25}, {"step": 10, "loss": 1.25, "moca/neg": 0.5}]
    _log(tmp_path / "metrics.jsonl", recs)
    assert read_metrics(tmp_path) == recs
    _log(tmp_path / "metrics.jsonl", recs, tail='{"step": 15, "lo')     # killed mid-append
    assert read_metrics(str(tmp_path)) == recs
    _log(tmp_path / "metrics.jsonl", recs, tail="\n\n")                 # blank lines are no records
    assert read_metrics(tmp_path) == recs


def test_read_metrics_refuses_a_missing_file_and_a_damaged_middle_line_in_one_line(tmp_path):
    with pytest.raises(WaeError) as e:
        read_metrics(tmp_path / "nowhere")
    assert "metrics.jsonl' not found" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "metrics.jsonl").write_text('{"step": 5}\n{"step": 1\n{"step": 15}\n')
    with pytest.raises(WaeError) as e:
        read_metrics(tmp_path)
    assert str(e.value).startswith("line 2 of ") and "delete that line" in str(e.value)
    assert "\n" not in str(e.value)
