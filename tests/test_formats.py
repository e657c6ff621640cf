"""File format versions (wae_bench.formats): a checkpoint, results.json or
spec.json written by a newer wae-bench (``wae-bench-checkpoint/2``,
``wae-bench-results/2``) is refused in one line that names its format and
says to upgrade -- never skipped as corrupt (a resume would fall back to
older state and prune it) and never merged into; a results file without a
format (every one written before it was recorded) still reads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.bench_helpers import tiny_spec
from tests.reliability_helpers import TINY, assert_one_line_error, cli, one_thread
from wae_bench import __version__, formats, results
from wae_bench.atomic import write_json
from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.run import checkpoint

NEWER_CKPT = "wae-bench-checkpoint/2"
NEWER_RESULTS = "wae-bench-results/2"


def rewrite_format(path: Path, fmt: str, version: str = "9.0.0") -> None:
    """Rewrite a checkpoint's format and recorded version, as a future wae-bench would write it."""
    state = torch.load(path, weights_only=True)
    torch.save({**state, "format": fmt, "versions": {**state["versions"], "wae_bench": version}}, path)


def test_a_newer_checkpoint_stops_resume_and_eval_and_nothing_is_pruned(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", "--reg", "ae", *TINY, "--out", out, "--set", "max_steps=4",
                            "--set", "ckpt_every=2"], capsys)
    assert code == 0, err
    newest = out / "checkpoints" / "step-00000004.pt"
    rewrite_format(newest, NEWER_CKPT)
    kept = [*checkpoint.checkpoints(out), out / "config.json", out / "metrics.jsonl"]
    before = {p.name: p.read_bytes() for p in kept}
    assert list(before)[:2] == ["step-00000002.pt", "step-00000004.pt"]
    want = (f"checkpoint {str(newest)!r} has format 2 (written by wae-bench 9.0.0); "
            f"this wae-bench {__version__} reads format 1: upgrade wae-bench")
    code, _, err = cli(["run", "--reg", "ae", *TINY, "--out", out, "--resume", "--force", "--set", "max_steps=6"], capsys)
    assert assert_one_line_error(code, err, "upgrade wae-bench") == f"error: {want}"
    code, _, err = cli(["eval", out, "--features", "standin", "--fid-samples", "16", "--device", "cpu"], capsys)
    assert assert_one_line_error(code, err, "upgrade wae-bench") == f"error: {want}"
    # nothing trained, pruned, rewritten or scored
    assert checkpoint.checkpoints(out) == kept[:2]
    assert {p.name: p.read_bytes() for p in kept} == before
    assert not (out / results.NAME).exists()


def test_latest_never_skips_another_format_version(tmp_path):
    d = tmp_path / "checkpoints"
    for s in (1, 2):
        checkpoint.save(d / f"step-{s:08d}.pt", {"t": s, "versions": {"wae_bench": "0.0.1"}})
    rewrite_format(d / "step-00000002.pt", "wae-bench-checkpoint/0", "0.0.1")
    skipped = []
    with pytest.raises(formats.OtherVersion, match=r"has format 0 \(written by an older wae-bench 0.0.1\); "
                                                   r"this wae-bench .* reads format 1: read it with the wae-bench "
                                                   r"that wrote it \(0.0.1\)"):
        checkpoint.latest(tmp_path, on_skip=lambda p, why: skipped.append(p))
    assert skipped == []
    # a foreign format is still what it was: not a wae-bench checkpoint, skipped for the one before
    torch.save({"format": "something-else/2", "t": 2}, d / "step-00000002.pt")
    path, state = checkpoint.latest(tmp_path, on_skip=lambda p, why: skipped.append(p))
    assert state["t"] == 1 and skipped == [d / "step-00000002.pt"]


def test_results_json_names_its_format_and_one_without_still_reads(tmp_path):
    old = {"scores": {"samples": {"fid": 50.0}}, "protocol": {"features": "standin", "seed": 0}}
    write_json(tmp_path / results.NAME, old)                       # as every committed results.json: no format
    assert results.read(tmp_path) == old
    new = {"scores": {"rec": {"fid": 20.0}}, "protocol": {"features": "standin", "seed": 0}}
    merged = results.write(tmp_path, new)
    assert merged["format"] == results.FORMAT == "wae-bench-results/1"
    assert merged["scores"] == {"samples": {"fid": 50.0}, "rec": {"fid": 20.0}}
    assert results.read(tmp_path) == merged


def test_a_newer_results_json_is_refused_by_eval_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", "--reg", "ae", *TINY, "--out", out, "--set", "max_steps=2"], capsys)
    assert code == 0, err
    newer = {"format": NEWER_RESULTS, "scores": {"samples": {"fid": 50.0}},
             "protocol": {"versions": {"wae_bench": "9.0.0"}}}
    write_json(out / results.NAME, newer)
    code, _, err = cli(["eval", out, "--features", "standin", "--fid-samples", "16", "--device", "cpu"], capsys)
    assert_one_line_error(code, err, f"results file {str(out / results.NAME)!r} has format 2",
                          "(written by wae-bench 9.0.0)", "upgrade wae-bench")
    assert json.loads((out / results.NAME).read_text()) == newer          # not merged into


def test_a_newer_results_json_or_spec_json_is_refused_by_table_in_one_line(tmp_path, capsys):
    p = tmp_path / "t.toml"
    p.write_text(tiny_spec("t", ["moca"], [0, 1], 4, [], 2))
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    assert json.loads(folder.spec_path.read_text())["versions"] == {"wae_bench": __version__}
    a, b = (c.id for c in grid.expand(s))
    write_json(folder.cell_dir(a) / results.NAME, {"scores": {"samples": {"fid": 50.0}},
                                                    "protocol": {"features": "standin"}})   # no format: read
    write_json(folder.cell_dir(b) / results.NAME, {"format": NEWER_RESULTS, "scores": {"samples": {"fid": 5.0}}})
    code, _, err = cli(["table", folder.path, "--no-plots"], capsys)
    assert_one_line_error(code, err, f"{str(folder.cell_dir(b) / results.NAME)!r} has format 2",
                          "(written by a newer wae-bench)", "upgrade wae-bench")
    (folder.cell_dir(b) / results.NAME).unlink()
    code, _, err = cli(["table", folder.path, "--no-plots"], capsys)
    assert code == 0, err
    rec = json.loads(folder.spec_path.read_text())
    write_json(folder.spec_path, {**rec, "format": NEWER_RESULTS, "versions": {"wae_bench": "9.0.0"}})
    code, _, err = cli(["table", folder.path, "--no-plots"], capsys)
    assert_one_line_error(code, err, f"results folder record {str(folder.spec_path)!r} has format 2",
                          "(written by wae-bench 9.0.0)", "upgrade wae-bench")


def test_a_run_record_names_its_format_and_a_newer_one_is_refused_in_one_line(tmp_path, capsys):
    """config.json names wae-bench-run/1; one written by a newer wae-bench stops
    a resume in one line (upgrade), not 'unreadable, restore it from a copy';
    the folder still counts as holding a run (a new run there is refused);
    a record without a format (every committed cell's) still reads."""
    from wae_bench.run.directory import FORMAT, RunDir

    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", "--reg", "ae", *TINY, "--out", out, "--set", "max_steps=2", "--no-eval"], capsys)
    assert code == 0, err
    rec = json.loads((out / "config.json").read_text())
    assert rec["format"] == FORMAT == "wae-bench-run/1"
    write_json(out / "config.json", {k: v for k, v in rec.items() if k != "format"})
    assert RunDir(out).saved_config() == rec["config"]                      # no format: format 1
    newer = {**rec, "format": "wae-bench-run/2", "versions": {**rec["versions"], "wae_bench": "9.0.0"}}
    write_json(out / "config.json", newer)
    code, _, err = cli(["run", "--resume", "--out", out, "--no-eval", "--set", "max_steps=4"], capsys)
    assert assert_one_line_error(code, err, "upgrade wae-bench") == (
        f"error: run record {str(out / 'config.json')!r} has format 2 (written by wae-bench 9.0.0); "
        f"this wae-bench {__version__} reads format 1: upgrade wae-bench")
    assert RunDir(out).holds_run()
    assert json.loads((out / "config.json").read_text()) == newer             # untouched
