"""The grid runner's bookkeeping with real (tiny) training and a fake
evaluation: a rerun skips done cells, a failing cell is recorded and the grid
goes on, an interrupted grid resumes from the cell's checkpoint, shards run
into one folder.  The real evaluation is exercised in test_bench_smoke.py."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import wae_bench.evaluate
import wae_bench.run.train
from wae_bench.run import checkpoint
from wae_bench.bench import grid, runner
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.cli import main
from wae_bench.step.trainer import Trainer
from tests.bench_helpers import run_cli, tiny_spec
from tests.reliability_helpers import fake_evaluate_run

pytestmark = pytest.mark.usefixtures("single_thread")

SPEC = tiny_spec("runner", ["moca"], [0, 1], 6, [], ckpt_every=2, grid='[grid]\n"reg.lambda" = [1, 10]')


class Calls:
    def __init__(self):
        self.train, self.eval, self.steps = [], [], 0


@pytest.fixture
def calls(monkeypatch):
    """Count train_run / evaluate_run calls and Trainer steps; the evaluation is
    a fake that writes a results.json from the run's saved config."""
    c = Calls()
    real_train, real_step = wae_bench.run.train.train_run, Trainer.step

    def train_run(overrides, out, **kw):
        c.train.append(Path(out).name)
        return real_train(overrides, out, **kw)

    evaluate_run = fake_evaluate_run(lambda cfg: cfg["reg"]["lambda"] + cfg["seed"],
                                     lambda name: "lambda10-s1" in name and bool(os.environ.get("FAIL_EVAL")),
                                     c.eval)

    def step(self, x):
        c.steps += 1
        return real_step(self, x)

    monkeypatch.setattr(wae_bench.run.train, "train_run", train_run)
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", evaluate_run)
    monkeypatch.setattr(Trainer, "step", step)
    return c


def bench(tmp_path: Path, *args) -> tuple[int, str]:
    spec = tmp_path / "runner.toml"
    spec.write_text(SPEC)
    try:
        main(["bench", str(spec), "--out", str(tmp_path / "res"), "--quiet", *args])
        return 0, ""
    except SystemExit as e:
        return e.code, ""


IDS = ["moca-tiny-digits-lambda1-s0", "moca-tiny-digits-lambda1-s1", "moca-tiny-digits-lambda10-s0",
       "moca-tiny-digits-lambda10-s1"]


def test_grid_runs_every_cell_then_a_rerun_skips_everything(tmp_path, calls, capsys):
    assert bench(tmp_path)[0] == 0
    assert calls.train == IDS and calls.eval == IDS and calls.steps == 4 * 6
    res = tmp_path / "res"
    for cid in IDS:
        r = json.loads((res / "cells" / cid / "results.json").read_text())
        lam, seed = (1 if "lambda1-" in cid else 10), int(cid[-1])
        assert r["scores"]["samples"]["fid"] == lam + seed
        assert checkpoint.latest(res / "cells" / cid)[1]["finished"] is True
    md = (res / "table.md").read_text()
    assert "| moca | tiny | 1 | 1.50 ± 0.71 (2/2) |" in md and "| moca | tiny | 10 | 10.50 ± 0.71 (2/2) |" in md
    spec = json.loads((res / "spec.json").read_text())
    assert spec["name"] == "runner" and spec["hash"] == specs.spec_hash(spec["spec"]) and "[bench]" in spec["toml"]
    calls.train.clear(), calls.eval.clear()
    assert bench(tmp_path)[0] == 0
    assert calls.train == [] and calls.eval == []             # nothing ran again


def test_seeds_added_to_a_finished_grid_train_only_their_cells(tmp_path, calls, capsys):
    assert bench(tmp_path, "--set", "bench.seeds=[0]")[0] == 0
    assert calls.train == [i for i in IDS if i.endswith("s0")]
    calls.train.clear(), calls.eval.clear()
    capsys.readouterr()
    assert bench(tmp_path)[0] == 0                                      # the spec's seeds 0, 1
    assert calls.train == calls.eval == [i for i in IDS if i.endswith("s1")]
    err = capsys.readouterr().err
    assert "adding seed 1 to" in err and "cells already done are kept" in err
    md = (tmp_path / "res" / "table.md").read_text()
    assert "| moca | tiny | 1 | 1.50 ± 0.71 (2/2) |" in md
    calls.train.clear()
    assert bench(tmp_path, "--set", "bench.seeds=[0]")[0] == 0          # fewer seeds: seed 1 stays in the table
    assert calls.train == [] and "(2/2)" in (tmp_path / "res" / "table.md").read_text()


def test_the_adding_line_names_a_folder_rich_would_read_as_markup_whole(tmp_path, calls, capsys):
    """``runs/[grid]``: the line said "adding seed 1 to .../ (...)"."""
    out = tmp_path / "[grid]"
    assert bench(tmp_path, "--set", "bench.seeds=[0]", "--out", str(out))[0] == 0
    capsys.readouterr()
    assert bench(tmp_path, "--out", str(out))[0] == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"adding seed 1 to {out} (the cells already done" in err and f"4/4 cell(s) done in {out}" in err


def test_a_regularizer_added_to_a_finished_grid_trains_only_its_cells(tmp_path, calls, capsys):
    assert bench(tmp_path)[0] == 0
    calls.train.clear(), calls.eval.clear()
    capsys.readouterr()
    assert bench(tmp_path, "--set", 'bench.regularizers=["moca", "swae"]')[0] == 0
    assert calls.train and all(i.startswith("swae-") for i in calls.train)
    err = capsys.readouterr().err
    assert "adding regularizer swae to" in err and "covers regularizers moca, swae" in err
    md = (tmp_path / "res" / "table.md").read_text()
    # (the stand-in scores of the two are equal: a tie, each marked best)
    for reg in ("moca", "swae"):
        assert f"| {reg} | tiny | 1 | **1.50 ± 0.71 (2/2) best** |" in md
    rec = json.loads((tmp_path / "res" / "spec.json").read_text())
    assert rec["overrides"] == ['bench.regularizers=["moca", "swae"]']
    assert rec["hash"] == specs.spec_hash(rec["spec"])


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, calls, monkeypatch, capsys):
    monkeypatch.setenv("FAIL_EVAL", "1")
    code, _ = bench(tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "1 cell(s) failed (moca-tiny-digits-lambda10-s1)" in err
    res = tmp_path / "res" / "cells"
    fail = json.loads((res / IDS[3] / "failed.json").read_text())
    assert fail["error"] == "RuntimeError: fake evaluation exploded" and "Traceback" in fail["traceback"]
    assert all((res / cid / "results.json").is_file() for cid in IDS[:3])
    assert "| moca | tiny | 10 | 10.00 (1/2, s1 failed) |" in (tmp_path / "res" / "table.md").read_text()
    # --skip-failed leaves it; a plain rerun retries only it (training is finished: evaluation only)
    calls.train.clear(), calls.eval.clear()
    assert bench(tmp_path, "--skip-failed")[0] == 0 and calls.eval == []
    monkeypatch.delenv("FAIL_EVAL")
    steps = calls.steps
    assert bench(tmp_path)[0] == 0
    assert calls.eval == [IDS[3]] and calls.steps == steps     # resumed a finished run: no step retrained
    assert not (res / IDS[3] / "failed.json").exists()


def test_an_interrupted_grid_resumes_from_the_cell_checkpoint(tmp_path, calls, monkeypatch, capsys):
    real = Trainer.step

    def interrupt_in_second_cell(self, x):
        out = real(self, x)
        if len(calls.train) == 2 and calls.steps == 6 + 3:        # third step of the second cell
            os.kill(os.getpid(), signal.SIGINT)                   # Ctrl-C: the trainer saves and stops
        return out

    monkeypatch.setattr(Trainer, "step", interrupt_in_second_cell)
    code, _ = bench(tmp_path)
    err = capsys.readouterr().err
    assert code == 130 and "rerun the same bench command to continue" in err
    cell = tmp_path / "res" / "cells" / IDS[1]
    path, state = checkpoint.latest(cell)
    assert int(state["t"]) == 3 and not state.get("finished")
    assert not (cell / "failed.json").exists() and not (cell / "results.json").exists()
    assert not (tmp_path / "res" / "cells" / IDS[2]).exists()   # the grid stopped there

    monkeypatch.setattr(Trainer, "step", real)
    calls.train.clear(), calls.eval.clear()
    n_before = calls.steps
    steps = {"n": 0}

    def count(self, x):
        steps["n"] += 1
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", count)
    assert bench(tmp_path)[0] == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"[1/3] {IDS[1]} (resumed from step 3) ..." in err    # on its start line, --quiet as it is
    assert f"[2/3] {IDS[2]} ..." in err and "resumed from step" not in err.split(IDS[2])[1]
    assert calls.train == IDS[1:]                               # the done cell is skipped
    assert steps["n"] == (6 - 3) + 6 + 6                        # cell 2 resumed at step 3
    assert n_before == 6 + 3
    assert checkpoint.latest(cell)[1]["finished"] is True
    lines = [json.loads(x)["step"] for x in (cell / "metrics.jsonl").read_text().splitlines()]
    assert lines == [2, 4, 6]                                   # as if never stopped: no line at the stop step


def test_shards_fill_one_folder_and_together_cover_the_grid(tmp_path, calls, capsys):
    one_seed = ("--set", "bench.seeds=[0]")                     # 2 cells, 3 shards: one share is empty
    assert bench(tmp_path, *one_seed, "--shard", "1/3", "--no-table")[0] == 0
    assert calls.train == [IDS[2]]
    assert bench(tmp_path, *one_seed, "--shard", "2/3", "--no-table")[0] == 0
    assert calls.train == [IDS[2]]
    assert bench(tmp_path, *one_seed, "--shard", "0/3")[0] == 0
    assert calls.train == [IDS[2], IDS[0]]
    rows = [r for r in (tmp_path / "res" / "table.md").read_text().splitlines() if r.startswith("| moca")]
    assert rows == ["| moca | tiny | 1 | 1.00 (1/1) |", "| moca | tiny | 10 | 10.00 (1/1) |"]


def test_run_serial_api_reports_outcomes(tmp_path, calls):
    p = tmp_path / "runner.toml"
    p.write_text(SPEC)
    s = specs.load(p, ["bench.seeds=[0]", 'grid.reg.lambda=[3]'])
    folder = ResultsDir(tmp_path / "api")
    folder.claim(s)
    out = runner.run_serial(folder, s, grid.expand(s), quiet=True)
    assert [(o.cell.id, o.state, o.ran) for o in out] == [("moca-tiny-digits-lambda3-s0", "done", True)]
    out = runner.run_serial(folder, s, grid.expand(s), quiet=True)
    assert [(o.state, o.ran) for o in out] == [("done", False)]


def test_a_cell_another_process_holds_is_left_to_it_and_a_busy_results_folder_is_refused(tmp_path, calls, capsys):
    """Locks with real processes (docs/benchmarks.md#one-bench-per-folder): a
    cell whose folder another process holds is skipped, not failed, and run
    by the next bench once the holder is gone (killed: its lock taken over);
    a whole-grid bench refuses a folder another one holds, and so does a shard."""
    from tests.test_locks import holder

    assert bench(tmp_path, "--only", IDS[0])[0] == 0
    assert bench(tmp_path, "--only", IDS[1])[0] == 0
    (tmp_path / "res" / "cells" / IDS[1] / "results.json").unlink()    # trained, not scored: it would resume
    calls.train.clear()
    capsys.readouterr()
    other = holder(tmp_path / "res" / "cells" / IDS[1])
    try:
        assert bench(tmp_path)[0] == 0
        err = " ".join(capsys.readouterr().err.split())
        assert f"busy {IDS[1]}: cell {IDS[1]} " in err and f"pid {other.pid}" in err
        assert f"{IDS[1]} ..." in err and f"{IDS[1]} (resumed" not in err     # the other process has it
        assert "1 cell(s) in use by other processes" in err
        assert calls.train == [IDS[2], IDS[3]]                              # (IDS[0] done before)
        assert not (tmp_path / "res" / "cells" / IDS[1] / "failed.json").exists()
    finally:
        other.kill()
        other.wait()
    calls.train.clear()
    assert bench(tmp_path)[0] == 0 and calls.train == [IDS[1]]
    capsys.readouterr()
    other = holder(tmp_path / "res")                       # as a `wae-bench bench` of the whole grid does
    try:
        for args in ((), ("--shard", "0/2")):
            code, _ = bench(tmp_path, *args)
            lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
            assert code == 2 and len(lines) == 1, lines
            assert "results folder" in lines[0] and f"is in use by a test holder (pid {other.pid}" in lines[0]
    finally:
        other.kill()
        other.wait()


# A sequential bench, Ctrl-C'd at its third step (with ckpt_every = 2, a
# checkpoint of step 2 exists), then signalled again REPEATS times while the
# stop's checkpoint of step 3 is being written: a real signal to this process
# in the middle of the atomic write (after torch.save, before the rename).
STOPPED_TWICE = '''
import atexit, os, signal, sys, torch
from wae_bench.cli import main
from wae_bench.step.trainer import Trainer

repeats, state = int(sys.argv.pop(1)), {"steps": 0}
real_step, real_save = Trainer.step, torch.save

def step(self, x):
    state["steps"] += 1
    if state["steps"] == 3:
        os.kill(os.getpid(), signal.SIGINT)             # Ctrl-C: stop after this step, with a checkpoint
    return real_step(self, x)

def save(obj, f, *a, **kw):
    real_save(obj, f, *a, **kw)
    if state["steps"] == 3 and isinstance(obj, dict) and "format" in obj:
        for _ in range(repeats):                        # Ctrl-C again, in the middle of the write: the
            os.kill(os.getpid(), signal.SIGINT)         # temporary file written, not yet renamed

Trainer.step, torch.save = step, save
atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))   # and once more while the process exits
main()
'''


def _stopped_twice(tmp_path: Path, repeats: int) -> tuple[int, list[str], Path]:
    from tests.reliability_helpers import start

    spec = tmp_path / "stop.toml"
    spec.write_text(tiny_spec("stop", ["moca"], [0], 6, [], ckpt_every=2))
    p = start([repeats, "bench", spec, "--out", tmp_path / "res", "--quiet"], code=STOPPED_TWICE)
    _, err = p.communicate(timeout=120)
    assert "Traceback" not in err and "error:" not in err, err
    return p.returncode, [ln for ln in err.splitlines() if ln.strip()], tmp_path / "res" / "cells" / "moca-tiny-digits-s0"


def test_a_second_ctrl_c_waits_for_the_checkpoint_being_written_and_says_so(tmp_path):
    """The second Ctrl-C, during the stop's checkpoint, is said in one line and
    waits for it: the bench ends with its ``stopped by SIGINT at step 3`` line,
    exit 130, the checkpoint of step 3 whole; a Ctrl-C while the process exits
    changes nothing (it printed a traceback from an atexit callback).  It
    used to cut the write short, say ``interrupted in cell ...; this one
    resumes from its checkpoint`` and delete the cell, which had none."""
    code, lines, cell = _stopped_twice(tmp_path, 1)
    assert code == 130, lines
    assert lines[-2] == (f"already stopping: writing the checkpoint of step 3 in {str(cell)!r}; press Ctrl-C "
                         f"again to abandon it"), lines
    assert lines[-1].startswith(f"cell {cell.name} stopped by SIGINT at step 3; checkpoint saved in "), lines
    assert int(checkpoint.load(checkpoint.checkpoints(cell)[-1])["t"]) == 3


def test_a_third_ctrl_c_abandons_the_write_and_keeps_the_checkpoint_before_it(tmp_path):
    """The signal after the one said stops at once, in a ``stopped by`` line
    that says what is kept (the checkpoint of step 2, whole; the torn write's
    temporary file removed), exit 130; a rerun resumes from step 2."""
    code, lines, cell = _stopped_twice(tmp_path, 2)
    assert code == 130, lines
    assert lines[-2].startswith("already stopping: writing the checkpoint of step 3"), lines
    assert lines[-1] == (f"cell {cell.name} stopped by SIGINT at once (a repeated signal); its checkpoint of step 2 "
                         f"is kept; rerun the same bench command to continue"), lines
    assert [p.name for p in (cell / "checkpoints").iterdir()] == ["step-00000002.pt"]
    assert int(checkpoint.load(checkpoint.checkpoints(cell)[-1])["t"]) == 2


def test_a_ctrl_c_before_training_stops_the_cell_in_a_stopped_by_line(tmp_path, capsys, monkeypatch):
    """A Ctrl-C while the cell loads its data (before any stop flag) stops at
    once; the line says the cell had no checkpoint and starts again (it said
    ``interrupted in cell ...; this one resumes from its checkpoint``)."""
    import wae_bench.run.build

    real = wae_bench.run.build.load_data

    def load_data(plan):
        os.kill(os.getpid(), signal.SIGINT)
        return real(plan)

    monkeypatch.setattr(wae_bench.run.train, "load_data", load_data)
    spec = tmp_path / "stop.toml"
    spec.write_text(tiny_spec("stop", ["moca"], [0], 6, [], ckpt_every=2))
    with pytest.raises(SystemExit) as e:
        main(["bench", str(spec), "--out", str(tmp_path / "res"), "--quiet"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 130 and last == ("cell moca-tiny-digits-s0 stopped by SIGINT at once; it had no checkpoint "
                                            "yet and starts again; rerun the same bench command to continue"), last


def test_a_stopped_bench_is_a_keyboard_interrupt_that_except_exception_does_not_swallow(tmp_path, capsys, monkeypatch):
    """A bench stopped by a signal (its cell's training said ``Stopped``)
    raises :class:`~wae_bench.bench.runner.BenchInterrupted`, a
    ``KeyboardInterrupt`` as :class:`~wae_bench.interrupt.Stopped` is: a
    Python sweep's ``except Exception`` around a bench does not go on to its
    next setting after a Ctrl-C.  The command line's words and status stay."""
    from wae_bench.interrupt import Stopped

    def stopped(overrides, out, **kw):
        raise Stopped("SIGTERM", f"at step 3; checkpoint saved in {str(out)!r}", "resume it")

    monkeypatch.setattr(wae_bench.run.train, "train_run", stopped)
    p = tmp_path / "runner.toml"
    p.write_text(SPEC)
    s = specs.load(p, ["bench.seeds=[0]", 'grid.reg.lambda=[3]'])
    folder = ResultsDir(tmp_path / "api")
    folder.claim(s)
    swallowed = False
    with pytest.raises(KeyboardInterrupt) as e:
        try:
            runner.run_serial(folder, s, grid.expand(s), quiet=True)
        except Exception:   # noqa: BLE001 - the caller's net under test
            swallowed = True
    assert not swallowed and isinstance(e.value, runner.BenchInterrupted) and e.value.exit_code == 143
    cell = folder.cell_dir("moca-tiny-digits-lambda3-s0")
    assert str(e.value) == (f"cell {cell.name} stopped by SIGTERM at step 3; checkpoint saved in {str(cell)!r}; "
                            f"rerun the same bench command to continue")
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "cli"), "--quiet", "--set", "bench.seeds=[0]"],
                           capsys)
    assert code == 143 and err.strip().splitlines()[-1].startswith(
        "cell moca-tiny-digits-lambda1-s0 stopped by SIGTERM at step 3; checkpoint saved in "), err
    assert "error:" not in err and "Traceback" not in err


def test_a_bench_starts_with_its_results_folder_absolute(tmp_path, calls, capsys, monkeypatch):
    """The first line of a bench names its results folder absolute (new, or
    the cells it holds) and the logs' folder absolute (plugintuner F4)."""
    (tmp_path / "runner.toml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    args = ["bench", "runner.toml", "--out", "res", "--set", "bench.seeds=[0]", "--set", "grid.reg.lambda=[3]"]
    code, _, err = run_cli(args, capsys)
    lines = err.splitlines()
    assert code == 0 and lines[0] == f"results folder: {tmp_path.resolve() / 'res'} (new)", err
    assert lines[1].startswith(f"full output of each cell: {tmp_path.resolve() / 'res' / 'logs'}/<cell-id>.log"), err
    code, _, err = run_cli(args, capsys)
    assert code == 0 and err.splitlines()[0] == f"results folder: {tmp_path.resolve() / 'res'} (holds 1 cell)", err
