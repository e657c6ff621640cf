"""Reading a benchmark's results as a researcher deciding which regularizer
is better: what each number and mark means must be said wherever the table
is shown (terminal, table.md, table.tex), stand-in scores never read as FID,
and a folder that is not a results folder is named for what it is."""
from __future__ import annotations

import io

from rich.console import Console

from wae_bench.atomic import write_json
from wae_bench.bench import export, table, table_render
from tests.helpers import run_cli
from tests.reliability_helpers import assert_one_line_error
from tests.test_bench_table import SCORES, fill_tuned, h2h

ONE_SEED = {"moca-tiny-digits-s0": (5.0, 9.0), "ae-tiny-digits-s0": (1.0, 6.2)}


def _printed(rep) -> str:
    buf = io.StringIO()
    table_render.print_rich(rep, Console(file=buf, width=300, color_system=None))
    return buf.getvalue()


def test_a_best_decided_on_one_seed_says_the_spread_is_unknown(tmp_path):
    """``wae-bench compare moca ae`` (one seed) marked ae's entry best and
    none ≈: read as "moca is clearly worse", though with one seed no spread
    is known to tell; the legend (table.md, report, table.tex) and the
    terminal say so, naming the rows, and a table of several seeds does not."""
    rep = table.collect(h2h(tmp_path, ONE_SEED))
    assert rep.marks and "near" not in rep.marks.values()
    note = "One seed only (moca · tiny · digits, ae · tiny · digits): the seed spread is unknown"
    assert note in table_render.markdown(rep)
    assert note in _printed(rep)
    assert note in export.latex(rep).replace(r"$\cdot$", "·")
    (tmp_path / "more").mkdir()
    rep = table.collect(h2h(tmp_path / "more", SCORES))
    assert not rep.unknown_spread and "One seed" not in table_render.markdown(rep) + _printed(rep)


def test_the_terminal_title_says_which_way_is_better_and_what_best_and_near_mean(tmp_path):
    rep = table.collect(h2h(tmp_path, SCORES))
    title = table_render.title(rep)
    assert "(NOT FID) (lower is better)" in title
    assert "best = the best † per dataset and architecture, ≈ = within the seed spread of it" in title
    assert title in _printed(rep)


def test_the_tuning_section_marks_stand_in_scores_not_fid(tmp_path):
    """Every line of the tuning section read "validation fid" with stand-in
    features, where the table and plots say NOT FID."""
    folder, _ = fill_tuned(tmp_path)
    rep = table.collect(folder)
    groups = [x for x in rep.tuning if ", validation " in x]
    assert groups and all(", validation fid on standin features (NOT FID): " in x for x in groups), groups
    assert "scored by fid on standin features (NOT FID) of 128 images" in rep.tuning[0]


def test_table_tex_keeps_two_hyphens_and_its_caption_names_no_flag(tmp_path):
    """pdflatex sets ``--`` as an en dash (``--set`` printed as "–set"), and
    the caption, which names no command, named ``--exclude-failed-tuning``."""
    assert export.tex("--set a=1") == "-{}-set a=1" and export.tex("a---b") == "a-{}-{}-b"
    assert export.tex("x - y") == "x - y" and export.tex("—") == "--"
    folder, _ = fill_tuned(tmp_path)
    tex = export.latex(table.collect(folder))
    assert "exclude-failed-tuning" not in tex and "failed ones excluded from the choice" in tex


def test_table_and_report_name_the_results_folder_for_a_cell_or_a_run_folder(tmp_path, capsys):
    folder = h2h(tmp_path, SCORES)
    cell = folder.cell_dir("moca-tiny-digits-s0")
    for command in ("table", "report"):
        code, _, err = run_cli([command, str(cell)], capsys)
        line = assert_one_line_error(code, err, "is inside the benchmark results folder",
                                     f"wae-bench {command} {folder.path}")
        assert code == 2, line
        code, _, err = run_cli([command, str(folder.cells_path)], capsys)
        assert_one_line_error(code, err, f"pass that folder: wae-bench {command} {folder.path}")
    run = tmp_path / "a-run"
    write_json(run / "config.json", {"config": {}})
    code, _, err = run_cli(["table", str(run)], capsys)
    assert_one_line_error(code, err, "is a run folder of `wae-bench run`", "`wae-bench table` takes the --out of a "
                          "`wae-bench bench` run")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["report", str(empty)], capsys)
    assert_one_line_error(code, err, "is not a benchmark results folder (no spec.json)")
