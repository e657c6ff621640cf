"""Which code a table's regularizers are (docs/plugins.md, "Which code a run
used"; docs/benchmarks.md, "The table and plots"): a regularizer that is not
built in is named with its provider, version and paper, as its cells'
config.json recorded them, under table.md, in table.csv, the report,
table.tex's caption and cells.json; a row whose cells were trained by
different plugin code (another version, or the same version edited: another
source sha256) is marked and named.  Results written by hand, no training (fast)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.helpers import pull_plugin
from tests.test_bench_table import H2H, _protocol
from wae_bench.atomic import write_json
from wae_bench.bench import export, grid, report, table, table_notes, table_render
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.registry import REGULARIZERS

SPEC = H2H.replace('regularizers = ["moca", "ae"]', 'regularizers = ["moca", "mypull"]')   # (stand-in features)
SHA = {"moca": "1" * 64, "mypull": "a" * 64}
PAPER = "third-party test plugin"     # (the pull plugin's `paper`)


@pytest.fixture
def mypull(monkeypatch):
    """The test pull plugin registered in-process as ``mypull`` for this test only."""
    REGULARIZERS.load_entry_points()
    monkeypatch.setitem(REGULARIZERS._items, "mypull", pull_plugin().Pull)


def head_to_head(tmp_path: Path, code: dict | None = None) -> ResultsDir:
    """Every cell trained and scored; each cell's config.json records its
    regularizer's provider (mypull-pkg 0.2, moca the built-in) and source
    sha256, ``code``: {cell id: (provider, sha256)} instead."""
    (tmp_path / "h2h.toml").write_text(SPEC)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(tmp_path / "h2h.toml"))
    for i, c in enumerate(grid.expand(folder.spec())):
        provider, sha = (code or {}).get(c.id, ("wae-bench 0.1.0" if c.regularizer == "moca" else "mypull-pkg 0.2",
                                                SHA[c.regularizer]))
        write_json(folder.cell_dir(c.id) / "config.json",
                   {"config": table_notes.resolved(c), "source": "abc1234",
                    "versions": {"wae_bench": "0.1.0", "torch": "2.14.1", "regularizer": f"{c.regularizer}: {provider}"},
                    "plugin_sha256": {"regularizer": sha}})
        write_json(folder.cell_dir(c.id) / "results.json",
                   {"scores": {"samples": {"fid": 10.0 + i}, "gmm": {"fid": 5.0 + i}}, "protocol": _protocol(128)})
    return folder


def _md_row(md: str, reg: str) -> str:
    return next(r for r in md.splitlines() if r.startswith(f"| {reg}"))


def test_a_regularizer_not_built_in_is_named_with_its_provider_version_and_paper_everywhere(tmp_path, mypull):
    folder = head_to_head(tmp_path)
    rep = table.collect(folder)
    line = f"mypull: mypull-pkg 0.2, source sha256 {'a' * 12}, as its cells' config.json recorded it; paper: {PAPER}"
    md = table_render.markdown(rep)
    block = md.split("**Regularizer code**")[1]
    assert f"- {line}" in block and "- moca: built in (wae-bench's own)" in block
    assert "mypull-pkg" not in md.split("**Regularizer code**")[0]          # (not in the table or notes above it)
    rows = {r["regularizer"]: r for r in csv.DictReader(io.StringIO(table_render.csv_text(rep)))}
    assert rows["mypull"]["code"] == f"mypull-pkg 0.2, source sha256 {'a' * 12}"
    assert rows["moca"]["code"] == f"wae-bench 0.1.0, source sha256 {'1' * 12}"
    caption = export.caption(rep)
    assert f"Regularizer code: {line}. moca: built in (wae-bench's own)." in caption
    assert export.tex(line) in export.latex(rep)
    cells = {r["cell"]: r for r in export.cell_rows(folder)}
    assert cells["mypull-tiny-digits-s1"]["regularizer_code"] == {"provider": "mypull-pkg 0.2", "built_in": False,
                                                                  "source_sha256": "a" * 64, "paper": PAPER}
    assert cells["moca-tiny-digits-s0"]["regularizer_code"] == {"provider": "wae-bench 0.1.0", "built_in": True,
                                                                "source_sha256": "1" * 64, "paper": None}
    page = report.page(folder, rep)
    assert "<h3 id=\"code\">Regularizer code</h3>" in page and report._e(line) in page
    assert table_notes.MIXED_CODE not in md + caption + page       # one code per row: no mark


def test_a_table_of_built_ins_only_names_no_code(tmp_path, mypull):
    folder = head_to_head(tmp_path)
    rep = table.collect(folder)
    rep_code = table_notes.regularizer_code(folder, [c for c in grid.expand(folder.spec()) if c.regularizer == "moca"])
    assert rep_code == [] and rep.code                                  # (the head-to-head's has lines)
    rep.code = []                                                       # (as a table of moca alone)
    assert "code" not in next(csv.reader(io.StringIO(table_render.csv_text(rep))))


def test_one_cells_code_is_said_as_its_cells_record(tmp_path, mypull):
    folder = head_to_head(tmp_path)
    one = [c for c in grid.expand(folder.spec()) if c.regularizer == "mypull"][:1]
    assert table_notes.regularizer_code(folder, one) == [
        f"mypull: mypull-pkg 0.2, source sha256 {'a' * 12}, as its cell's config.json recorded it; paper: {PAPER}"]


def test_an_in_process_plugins_file_is_not_named_in_the_latex_caption():
    code = table_notes.PluginCode("module wae_bench_plugin_pull from /home/me/pull.py", "b" * 64)
    assert code.text() == f"module wae_bench_plugin_pull from /home/me/pull.py, source sha256 {'b' * 12}"
    assert code.text(paper=True) == f"module wae_bench_plugin_pull, source sha256 {'b' * 12}"


def test_a_row_pooling_cells_of_different_plugin_code_is_marked_and_names_them(tmp_path, mypull):
    """Seed 2 trained after the plugin was edited (same version, another
    source sha256); then seed 1 at another version too."""
    edited = {"mypull-tiny-digits-s2": ("mypull-pkg 0.2", "b" * 64)}
    folder = head_to_head(tmp_path, edited)
    rep = table.collect(folder)
    md = table_render.markdown(rep)
    assert _md_row(md, "mypull").startswith(f"| mypull{table_notes.MIXED_CODE} | tiny |")
    assert _md_row(md, "moca").startswith("| moca | tiny |")
    (note,) = [x for x in md.split("**Regularizer code**")[1].splitlines() if x.startswith(f"- {table_notes.MIXED_CODE}")]
    assert note == (f"- § mypull · tiny: its mean pools cells trained by different regularizer code (source sha256 "
                    f"differs; compare with care): mypull-pkg 0.2, source sha256 {'a' * 12}: mypull-tiny-digits-s0, "
                    f"mypull-tiny-digits-s1; mypull-pkg 0.2, source sha256 {'b' * 12}: mypull-tiny-digits-s2")
    assert rep.code[0] == (f"mypull: mypull-pkg 0.2, source sha256 {'a' * 12} (2 cells) / mypull-pkg 0.2, source "
                           f"sha256 {'b' * 12} (1 cell), as its cells' config.json recorded it; paper: {PAPER}")
    assert "§ after a regularizer: its row's mean pools cells trained by different regularizer code" in md
    rows = {r["regularizer"]: r for r in csv.DictReader(io.StringIO(table_render.csv_text(rep)))}
    assert set(rows) == {"moca", "mypull"}                              # the mark is not in the csv's names
    assert rows["mypull"]["code"] == f"mypull-pkg 0.2, source sha256 {'a' * 12} / mypull-pkg 0.2, source sha256 " \
                                     f"{'b' * 12}"
    tex = export.latex(rep)
    assert r"mypull\textsuperscript{\S} & tiny" in tex and export.tex(note[2:]) in tex
    assert 'regularizers = ["moca", "mypull"]' in SPEC and f"mypull{table_notes.MIXED_CODE}</a>" in report.page(folder, rep)
    edited["mypull-tiny-digits-s1"] = ("mypull-pkg 0.3", "c" * 64)
    (tmp_path / "v").mkdir()
    rep = table.collect(head_to_head(tmp_path / "v", edited))
    (note,) = rep.mixed_code.values()
    assert "(provider/version and source sha256 differ; compare with care)" in note
    assert f"mypull-pkg 0.3, source sha256 {'c' * 12}: mypull-tiny-digits-s1" in note


def test_stand_in_scores_are_said_not_to_rank_sample_quality(tmp_path, mypull):
    """A smoke test: not FID, and no ranking of the rows either (the table, the report, table.tex)."""
    folder = head_to_head(tmp_path)
    rep = table.collect(folder)
    (line,) = [x for x in rep.protocol if x.startswith("NOT FID")]
    assert "a smoke test: these numbers do not rank sample quality" in line
    assert report._e(line) in report.page(folder, rep) and export.tex(line) in export.latex(rep)
