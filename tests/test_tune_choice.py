"""One tuned value per tuning group, and a final cell labelled with the
value it trained at (wae_bench.bench.tune: chosen, trained_values, changes).

The choice is the one the group's tuning cells make now; a final cell's
label comes from its own config.json; a final cell trained at another value
than the current choice -- the tuning scores it rests on changed, the
plugin's grid moved -- is stale (docs/stale-cells.md), so a table row never
averages cells trained at two values.  Training and scoring are faked
(tests/test_bench_tune.py's ``fake``: best λ = 10)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.test_bench_tune import SPEC, TUNE_IDS, fake, sched  # noqa: F401 - (fake: a fixture)
from wae_bench.atomic import write_json
from wae_bench.bench import grid, table, tune
from wae_bench.bench.folder import ResultsDir
from wae_bench.registry import REGULARIZERS

pytestmark = pytest.mark.usefixtures("single_thread")


def _score(folder: Path, cell_id: str, fid: float) -> None:
    """A tuning cell's validation score replaced (as a retrained tuning cell that scored otherwise)."""
    p = folder / "cells" / cell_id / "results.json"
    res = json.loads(p.read_text())
    res["scores"]["samples"]["fid"] = fid
    write_json(p, res)


def _trained(folder: Path, cell_id: str):
    return json.loads((folder / "cells" / cell_id / "config.json").read_text())["config"]["reg"]["lambda"]


def _row(folder: Path):
    """The table and its moca row; ``rep.entries[row]``: the row's prior-samples entry."""
    rep = table.collect(ResultsDir(folder))
    row = next(r for r in rep.rows if r[0] == "moca")
    rep.entries = {**rep.entries, row: rep.entries[(row, ("digits", "samples"))]}
    return rep, row


def test_a_moved_choice_makes_the_final_cells_stale_and_a_row_never_pools_two_values(tmp_path, capsys, fake):
    """s0 trained at λ = 10; then λ = 1's tuning score becomes the best (a
    retrained tuning cell): s0 is stale (`reg.lambda 10 -> 1`), its label
    stays λ = 10, its score leaves the mean; a seed added later is refused
    until s0 is retrained, and both then train at λ = 1."""
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0 and _trained(res, "moca-tiny-digits-s0") == 10, err
    _score(res, "tune-moca-tiny-digits-lambda1-s0", 4.0)
    code, out, _ = run_cli(["bench", str(tmp_path / "sched.toml"), "--out", str(res), "--dry-run", "--json",
                            "--set", "bench.seeds=[0,1]"], capsys)
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["moca-tiny-digits-s0"]["state"] == "stale" and rows["moca-tiny-digits-s0"]["stale"] == \
        "reg.lambda 10.0 -> 1.0"
    assert rows["moca-tiny-digits-s0"]["tuning"] == "tuned λ = 10"           # what it trained at
    assert rows["moca-tiny-digits-s1"]["tuning"] == "tuned λ = 1"            # what it would train at
    rep, moca = _row(res)
    assert rep.tuned[moca] == "λ = 10 (stale: tuning now chooses λ = 1)"
    assert rep.entries[moca].values == [] and rep.entries[moca].stale == 1
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0,1]")          # add a seed: refused, not pooled
    assert code == 2 and "moca-tiny-digits-s0 (reg.lambda 10.0 -> 1.0)" in err and "remove those cells' folders" in err
    assert "moca-tiny-digits-s1" not in fake
    import shutil
    shutil.rmtree(res / "cells" / "moca-tiny-digits-s0")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0,1]")
    assert code == 0, err
    assert (_trained(res, "moca-tiny-digits-s0"), _trained(res, "moca-tiny-digits-s1")) == (1, 1)
    rep, moca = _row(res)
    assert rep.tuned[moca] == "λ = 1, tuned over λ ∈ {1, 10, 1000} at 30 epochs capped at 2 steps"
    assert len(rep.entries[moca].values) == 2 and rep.entries[moca].stale == 0


def test_a_run_whose_tuning_cells_move_the_choice_warns_in_one_line(tmp_path, capsys, fake):
    """A tuning cell retrained in the same run as the grid (its folder removed)
    now scores best: the done final cell is not retrained over, the run
    warns that it is stale."""
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    import shutil
    shutil.rmtree(res / "cells" / "tune-moca-tiny-digits-lambda1000-s0")
    real = fake  # (the fake scores λ by |log10 λ - 1| + 5; make λ = 1000 the best on its retraining)
    import wae_bench.evaluate

    def best_1000(run_dir, **kw):
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        out = {"scores": {w: {"fid": 1.0} for w in kw["what"]}, "protocol": {"reference": {"split": kw["split"]}},
               "run": {}}
        assert cfg["reg"]["lambda"] == 1000
        write_json(Path(run_dir) / "results.json", out)
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(wae_bench.evaluate, "evaluate_run", best_1000)
    try:
        code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    finally:
        mp.undo()
    assert code == 0 and real[-1] == "tune-moca-tiny-digits-lambda1000-s0", err
    assert ("warning: 1 final cell(s) were trained at other values than their tuning chooses now: "
            "moca-tiny-digits-s0 (reg.lambda 10.0 -> 1000.0)") in err, err


def test_a_moved_plugin_grid_makes_the_final_cell_stale_at_once(tmp_path, capsys, fake, monkeypatch):
    """The plugin's own grid moves ({1, 10, 1000} -> {3, 30, 300}: its default
    changed): the final cell trained at λ = 10 is stale before any new tuning
    cell runs, not "done (tuned λ = 10)" with 10 outside the grid."""
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.split("[reg.moca.tune]")[0])
    moca = REGULARIZERS.get("moca")
    monkeypatch.setattr(moca, "tuning_grid", classmethod(lambda cls, setup: {"reg.lambda": [1, 10, 1000]}))
    res = tmp_path / "res"
    code, _, err = run_cli(["bench", str(p), "--out", str(res), "--quiet", "--set", "bench.seeds=[0]"], capsys)
    assert code == 0 and _trained(res, "moca-tiny-digits-s0") == 10, err
    monkeypatch.setattr(moca, "tuning_grid", classmethod(lambda cls, setup: {"reg.lambda": [3, 30, 300]}))
    code, out, _ = run_cli(["bench", str(p), "--out", str(res), "--dry-run", "--json", "--set", "bench.seeds=[0]"],
                           capsys)
    final = next(r for r in json.loads(out) if r["id"] == "moca-tiny-digits-s0")
    assert final["state"] == "stale" and final["stale"] == "reg.lambda 10 -> not in the tuning grid {3, 30, 300}"
    rep, row = _row(res)
    assert rep.tuned[row] == "λ = 10 (stale: not in the tuning grid now)" and rep.entries[row].stale == 1
    code, _, err = run_cli(["bench", str(p), "--out", str(res), "--quiet", "--set", "bench.seeds=[0]"], capsys)
    assert code == 2 and "not in the tuning grid" in err and "remove those cells' folders" in err


def test_a_final_cell_is_labelled_with_the_value_it_trained_at_not_its_record(tmp_path, capsys, fake):
    """The tuning record deleted (the remedy its unreadable-record error
    gives) or saying another value: the label is the config's λ = 10, and
    the cell is not stale while the tuning still chooses 10."""
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    rec = res / "tuning" / "moca-tiny-digits-s0.json"
    data = json.loads(rec.read_text())
    write_json(rec, {**data, "values": {"reg.lambda": 1000}})
    rep, moca = _row(res)
    assert rep.tuned[moca].startswith("λ = 10, tuned over λ ∈ {1, 10, 1000}") and rep.entries[moca].stale == 0
    rec.unlink()
    _score(res, "tune-moca-tiny-digits-lambda1-s0", 4.0)                      # and the choice moves to 1
    code, out, _ = run_cli(["bench", str(tmp_path / "sched.toml"), "--out", str(res), "--dry-run", "--json",
                            "--set", "bench.seeds=[0]"], capsys)
    final = next(r for r in json.loads(out) if r["id"] == "moca-tiny-digits-s0")
    assert final["tuning"] == "tuned λ = 10" and final["stale"] == "reg.lambda 10.0 -> 1.0"
    rep, moca = _row(res)
    assert rep.tuned[moca] == "λ = 10 (stale: tuning now chooses λ = 1)"


def test_the_choice_is_read_from_the_tuning_cells_not_the_record(tmp_path, capsys, fake):
    s_path = tmp_path / "sched.toml"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    folder = ResultsDir(tmp_path / "res")
    s = folder.spec()
    cells = grid.expand(s)
    final = next(c for c in cells if c.id == "moca-tiny-digits-s0")
    assert tune.chosen(folder, s, final, cells) == {"reg.lambda": 10} and s_path.is_file()
    _score(tmp_path / "res", "tune-moca-tiny-digits-lambda1000-s0", 1.0)
    assert tune.chosen(folder, s, final, cells) == {"reg.lambda": 1000}
    assert tune.recorded(folder, final)["values"] == {"reg.lambda": 10}     # (what it trained with)
    assert tune.changes(folder, final, s, cells) == ["reg.lambda 10.0 -> 1000.0"]


# -- what the Tuning section says about the choice's evidence ------------------------------------------
def _line(res: Path) -> str:
    (line,) = [ln for ln in (res / "table.md").read_text().splitlines() if "moca · tiny · digits, validation" in ln]
    return line


def test_an_exact_tie_is_said_and_gets_no_widen_advice(tmp_path, capsys, fake):
    """τ has no effect in the fake: the three values score alike; the first listed is used, and said."""
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.replace('"reg.lambda" = [1, 10, 1000]', '"reg.tau" = [0.05, 0.1, 0.2]'))
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--set", "bench.seeds=[0]"],
                           capsys)
    assert code == 0, err
    assert _line(tmp_path / "res").endswith(
        "τ = 0.05: 5.00 (chosen); τ = 0.1: 5.00; τ = 0.2: 5.00 — (tie: τ = 0.05, 0.1, 0.2 score alike; the first "
        "listed is used)")


def test_scores_print_with_the_decimals_that_tell_them_apart(tmp_path, capsys, fake, monkeypatch):
    import wae_bench.evaluate

    scores = {1: 12.8046, 10: 12.7977, 1000: 12.7973}

    def close(run_dir, **kw):
        lam = json.loads((Path(run_dir) / "config.json").read_text())["config"]["reg"].get("lambda") or 10
        out = {"scores": {w: {"fid": scores.get(lam, 20.0)} for w in kw["what"]},
               "protocol": {"reference": {"split": kw["split"]}}, "run": {}}
        write_json(Path(run_dir) / "results.json", out)
        return out

    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", close)
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    assert "λ = 1: 12.805; λ = 10: 12.798; λ = 1000: 12.797 (chosen)" in _line(tmp_path / "res")


def test_the_edge_is_judged_on_the_values_that_scored(tmp_path, capsys, fake, monkeypatch):
    """λ = 1000 diverged: λ = 10 is the highest value that scored, so the
    best may lie between 10 and 1000; and only 2 of 3 values scored."""
    monkeypatch.setenv("DIVERGE_LAMBDAS", "1000")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    line = _line(tmp_path / "res")
    assert "λ = 10: 5.00 (chosen)" in line and line.endswith(
        "— (only 2 of 3 values scored) (at the edge of the grid: λ = 10, its highest value that scored; widen "
        "[reg.moca.tune])"), line


def test_only_final_cells_selected_says_which_tuning_cells_to_select(tmp_path, capsys, fake):
    code, err = sched(tmp_path, capsys, "--only", "moca-*", "--no-table")
    assert code == 0 and fake == [], err
    assert "final cells wait for tuning cells --only does not select: add --only 'tune-moca-*'" in err, err
    assert "rerun the same command" not in err


def test_a_tuning_grid_widens_in_its_folder_and_the_choice_is_redone(tmp_path, capsys, fake):
    """λ ∈ {100, 1000} chose 100, at the edge; widened to {10, 100, 1000} in the
    same folder: only tuning cell λ = 10 trains (not ae's cells, not the
    others), the choice moves to 10, the final cell trained at 100 is said
    stale and retrains once removed; a narrower grid stays refused."""
    p, res = tmp_path / "sched.toml", tmp_path / "res"
    narrow = SPEC.replace('"reg.lambda" = [1, 10, 1000]', '"reg.lambda" = [100, 1000]')
    p.write_text(narrow)
    args = ["bench", str(p), "--out", str(res), "--quiet", "--set", "bench.seeds=[0]"]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and _trained(res, "moca-tiny-digits-s0") == 100, err
    assert "widen [reg.moca.tune]" in _line(res)
    p.write_text(narrow.replace("[100, 1000]", "[10, 100, 1000]"))
    del fake[:]
    code, _, err = run_cli(args, capsys)
    err = " ".join(err.split())
    assert code == 0 and fake == ["tune-moca-tiny-digits-lambda10-s0"], err
    assert "moca-tiny-digits-s0 (reg.lambda 100.0 -> 10.0)" in err and "stale" in err
    assert json.loads((res / "spec.json").read_text())["spec"]["reg"]["moca"]["tune"] == {"reg.lambda": [10, 100, 1000]}
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "remove those cells' folders" in err
    import shutil
    shutil.rmtree(res / "cells" / "moca-tiny-digits-s0")
    code, _, err = run_cli(args, capsys)
    assert code == 0 and _trained(res, "moca-tiny-digits-s0") == 10, err
    p.write_text(narrow.replace("[100, 1000]", "[10, 100]"))                 # a value dropped: refused
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "differs in reg.moca.tune.reg.lambda" in err, err
    assert ("a tuning grid may only grow in place (every value the folder tuned still listed, in the same order: "
            "reg.moca.tune.reg.lambda drops or reorders one)") in " ".join(err.split()), err
    p.write_text(narrow.replace("[100, 1000]", "[1000, 100, 10]"))           # reordered (ties: first listed)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "differs in reg.moca.tune.reg.lambda" in err, err


def test_a_final_cell_begun_at_a_value_the_choice_moves_from_during_the_run_is_not_resumed_at_the_new_one(
        tmp_path, capsys, fake):
    """A final cell trained (not yet scored) at λ = 100; the grid widened in
    place: its new tuning cell trains first in the same run and moves the
    choice to 10.  The final cell is then not resumed at λ = 10 (a run of two
    values, refused by the resume check as '--force'): it is said stale in the
    one line of a stale cell, and its tuning record stays the λ it trained at."""
    p, res = tmp_path / "sched.toml", tmp_path / "res"
    narrow = SPEC.replace('"reg.lambda" = [1, 10, 1000]', '"reg.lambda" = [100, 1000]')
    p.write_text(narrow)
    args = ["bench", str(p), "--out", str(res), "--quiet", "--no-table", "--set", "bench.seeds=[0]"]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and _trained(res, "moca-tiny-digits-s0") == 100, err
    (res / "cells" / "moca-tiny-digits-s0" / "results.json").unlink()     # trained, not yet scored
    p.write_text(narrow.replace("[100, 1000]", "[10, 100, 1000]"))
    code, _, err = run_cli(args, capsys)
    failure = json.loads((res / "cells" / "moca-tiny-digits-s0" / "failed.json").read_text())["error"]
    assert code == 2 and "--force" not in failure, failure
    assert ("were trained with settings other than the spec resolves to now: moca-tiny-digits-s0 (reg.lambda "
            "100.0 -> 10.0); remove those cells' folders") in " ".join(failure.split()), failure
    assert _trained(res, "moca-tiny-digits-s0") == 100
    rec = json.loads((res / "tuning" / "moca-tiny-digits-s0.json").read_text())
    assert rec["values"] == {"reg.lambda": 100}


def test_parallel_workers_do_not_start_a_final_cell_whose_tuning_cell_failed(tmp_path):
    """run_parallel: a failed tuning cell (not retried here: not among the
    cells to run) leaves moca's final cells waiting, not started (a started
    one would find nothing to do and read as "busy")."""
    import sys

    from wae_bench.bench import runner
    from wae_bench.bench import spec as specs

    p = tmp_path / "sched.toml"
    p.write_text(SPEC)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "res")
    folder.claim(s)
    cells = grid.expand(s)
    for c in cells:
        if c.role == "tune":
            if "lambda10-" in c.id:
                folder.mark_failed(c, "out of memory (fake)")
            else:
                write_json(folder.cell_dir(c.id) / "results.json", {"scores": {"samples": {"fid": 5.0}}})
    started = tmp_path / "started.txt"
    worker = ("import json, sys, pathlib\n"
              "res, cid, log = sys.argv[1:]\n"
              "open(log, 'a').write(cid + '\\n')\n"
              "d = pathlib.Path(res) / 'cells' / cid; d.mkdir(parents=True, exist_ok=True)\n"
              "(d / 'results.json').write_text(json.dumps({'scores': {'samples': {'fid': 1.0}, 'gmm': {'fid': 1.0}}}))\n")
    out = runner.run_parallel(folder, s, [c for c in cells if c.role != "tune"], ["cpu"],
                              lambda cell, dev: [sys.executable, "-c", worker, str(folder.path), cell.id, str(started)])
    assert {o.cell.id: o.state for o in out if o.cell.regularizer == "moca"} == {
        "moca-tiny-digits-s0": "waiting", "moca-tiny-digits-s1": "waiting"}
    assert started.read_text().split() == ["ae-tiny-digits-s0", "ae-tiny-digits-s1"]


# -- each group's choice read once per command ---------------------------------------------------------
def _tuning_reads(res: Path, capsys, monkeypatch) -> dict[str, int]:
    """``wae-bench table RES``: how often each tuning cell's results.json is read."""
    reads: dict[str, int] = {}
    real = ResultsDir.results

    def counted(self, cell_id):
        reads[cell_id] = reads.get(cell_id, 0) + 1
        return real(self, cell_id)

    with monkeypatch.context() as m:
        m.setattr(ResultsDir, "results", counted)
        code, _, err = run_cli(["table", str(res)], capsys)
    assert code == 0, err
    return {cid: n for cid, n in reads.items() if cid.startswith("tune-")}


def test_the_table_reads_each_tuning_cell_as_often_whatever_the_number_of_final_cells(tmp_path, capsys, fake,
                                                                                     monkeypatch):
    """The table asks the choice of every final cell (its state, its tuned
    settings, its row's label): one Choice per group for the whole command
    (tune.Tuning), so a tuning cell is read as often with 2 final cells in its
    group as with 8, not once more per final cell (a 166-cell folder's table
    took seconds longer so)."""
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0,1]", "--no-table")
    assert code == 0, err
    few = _tuning_reads(res, capsys, monkeypatch)
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0,1,2,3,4,5,6,7]", "--no-table")
    assert code == 0 and len(fake) == 3 + 2 * 8, err          # (3 tuning cells; moca and ae, 8 seeds)
    many = _tuning_reads(res, capsys, monkeypatch)
    assert sorted(few) == sorted(many) == sorted(TUNE_IDS) and many == few, (few, many)
