"""``bench --concurrent N`` on the CPU (wae_bench/bench/concurrent.py): cells
whose steps interleave in one process end bit-identical to the same cells
run one after another; a grid stopped by SIGINT checkpoints every running
cell and resumes without redoing finished cells; a failing cell does not stop
the others; a grid that will not fit in memory is refused in one line.

Tiny nets on the embedded digits, a fake evaluation (the real one is covered
by test_bench_smoke.py), one intra-op thread (bit-identity is asserted at a
fixed thread count)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

import wae_bench.evaluate
from tests.bench_helpers import tiny_spec
from tests.reliability_helpers import assert_one_line_error, cli, diff_states, fake_evaluate_run, final_state
from wae_bench.bench import concurrent, grid
from wae_bench.run import checkpoint
from wae_bench.step.trainer import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")

TIMING = ("img_per_s", "time")


@pytest.fixture
def steps(monkeypatch):
    """Every Trainer.step call, in order, as the trainer's id; the evaluation
    is a fake that writes a results.json from the run's config (and fails
    for a cell whose id contains FAIL_EVAL)."""
    calls: list[int] = []
    real = Trainer.step

    def step(self, x):
        calls.append(id(self))
        return real(self, x)

    evaluate_run = fake_evaluate_run(lambda cfg: float(cfg["reg"]["lambda"]),
                                     lambda name: bool(os.environ.get("FAIL_EVAL")) and os.environ["FAIL_EVAL"] in name)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", evaluate_run)
    return calls


def spec_file(tmp_path: Path, regs: list[str], steps: int = 10, grid: str = "") -> Path:
    p = tmp_path / "conc.toml"
    p.write_text(tiny_spec("conc", regs, [0], steps, ["n"], ckpt_every=4, grid=grid))
    return p


def bench(spec: Path, out: Path, capsys, *args) -> tuple[int, str, str]:
    return cli(["bench", spec, "--out", out, "--quiet", "--no-table", *args], capsys)


def metrics(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(ln).items() if k not in TIMING}
            for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def cells(out: Path) -> list[Path]:
    return sorted((out / "cells").iterdir())


def test_concurrent_cells_end_bit_identical_to_the_same_cells_one_after_another(tmp_path, steps, capsys):
    """Three plugins that draw differently (SWAE: prior and directions;
    WAE-GAN: prior samples in two steps; MoCA: none, a queue) train at once:
    their steps interleave, and every checkpoint and metric line equals the
    serial run's."""
    spec = spec_file(tmp_path, ["swae", "wae-gan", "moca"])
    code, _, err = bench(spec, tmp_path / "serial", capsys)
    assert code == 0, err
    serial_order = list(steps)
    steps.clear()
    code, _, err = bench(spec, tmp_path / "conc", capsys, "--concurrent", "3")
    assert code == 0, err
    assert "concurrent: each cell takes ~" in err and "3 at once need" in err
    assert len(set(steps[:3])) == 3 and len(set(serial_order[:3])) == 1    # interleaved vs one after another
    assert len(steps) == len(serial_order) == 3 * 10
    for a, b in zip(cells(tmp_path / "serial"), cells(tmp_path / "conc"), strict=True):
        assert a.name == b.name
        for ca, cb in zip(checkpoint.checkpoints(a), checkpoint.checkpoints(b), strict=True):
            assert ca.name == cb.name
            assert diff_states(checkpoint.load(ca), checkpoint.load(cb)) == [], ca
        assert metrics(a) == metrics(b)
        assert (b / "results.json").is_file()


def test_a_concurrent_grid_leaves_the_callers_global_generators_and_cudnn_flag_as_they_were(tmp_path, steps):
    """As train_run does: a Python caller's torch/NumPy/random state and cudnn.benchmark are its own."""
    import random

    import numpy as np

    from wae_bench.bench import spec as specs
    from wae_bench.bench.concurrent import run_concurrent
    from wae_bench.bench.folder import ResultsDir

    torch.manual_seed(1234), np.random.seed(5), random.seed(6)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    torch.backends.cudnn.benchmark = False
    spec = specs.load(spec_file(tmp_path, ["swae", "moca"], steps=3))
    folder = ResultsDir(tmp_path / "res")
    folder.claim(spec)
    outcomes = run_concurrent(folder, spec, grid.expand(spec), 2, quiet=True)
    assert [o.state for o in outcomes] == ["done", "done"]
    assert torch.equal(torch.get_rng_state(), before[0]) and (np.random.get_state()[1] == before[1]).all()
    assert random.getstate() == before[2] and torch.backends.cudnn.benchmark is False


def test_a_stopped_concurrent_grid_checkpoints_every_running_cell_and_resumes(tmp_path, steps, capsys,
                                                                            monkeypatch):
    """Two slots, three cells of 4, 12 and 16 steps: the 4-step cell ends and
    is scored, the 16-step one takes its slot; SIGINT then stops both
    running cells with a checkpoint each; the rerun skips the done cell,
    resumes the others, and they end as the uninterrupted serial run's."""
    spec = spec_file(tmp_path, ["moca"], steps=16, grid='[grid]\nmax_steps = [4, 12, 16]')
    code, _, err = bench(spec, tmp_path / "ref", capsys)
    assert code == 0, err
    steps.clear()
    counted = Trainer.step

    def interrupt(self, x):
        out = counted(self, x)
        if len(steps) == 4 + 4 + 1 + 2 * 2 + 1:     # A and B 4 each (A done), C's first, 2 rounds, B's 7th
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "step", interrupt)
    out = tmp_path / "res"
    code, _, err = bench(spec, out, capsys, "--concurrent", "2")
    assert code == 130 and "stopped by SIGINT with 2 cell(s) running, each checkpointed" in err
    short, mid, long_ = (out / "cells" / f"moca-tiny-digits-max_steps{n}-s0" for n in (4, 12, 16))
    assert (short / "results.json").is_file() and final_state(short)["t"] == 4
    # the signal came during the 12-step cell's 7th step: it checkpointed after it, the other after its next
    for cell, t in ((mid, 7), (long_, 4)):
        path, state = checkpoint.latest(cell)
        assert int(state["t"]) == t and not state.get("finished"), (cell.name, int(state["t"]))
        assert not (cell / "results.json").exists() and not (cell / "failed.json").exists()

    monkeypatch.setattr(Trainer, "step", counted)
    n_steps = len(steps)
    code, _, err = bench(spec, out, capsys, "--concurrent", "2")
    assert code == 0, err
    assert "skipping 1 cell(s) already done" in err
    flat = " ".join(err.split())                                # (--quiet: the start lines say where each resumes)
    assert f"{mid.name} started (slot 0) (resumed from step 7)" in flat, flat
    assert f"{long_.name} started (slot 1) (resumed from step 4)" in flat, flat
    assert len(steps) - n_steps == (12 - 7) + (16 - 4)         # resumed where each stopped; the done cell untouched
    for cell in (short, mid, long_):
        ref = tmp_path / "ref" / "cells" / cell.name
        assert diff_states(final_state(ref), final_state(cell)) == [], cell.name
        assert metrics(ref) == metrics(cell)       # (a stop adds no line; the averaging window is checkpointed)


def test_a_second_signal_stops_the_grid_at_once_with_a_stopped_by_line(tmp_path, steps, capsys, monkeypatch):
    """Two SIGTERMs in a row (the second before the round that checkpoints):
    the grid stops at once, in one line worded as every bench mode's stop,
    ``stopped by SIGTERM with N cell(s) running ...`` (it said ``interrupted
    with ...``, which a batch script looking for ``stopped by`` missed), exit 143."""
    spec = spec_file(tmp_path, ["moca", "ae"])
    real = concurrent._room

    def room(memory, active):
        if len(active) == 1:                     # one cell started, the other not yet
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(memory, active)

    monkeypatch.setattr(concurrent, "_room", room)
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "2")
    assert code == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert err.splitlines()[-1] == ("stopped by SIGTERM with 1 cell(s) running (moca-tiny-digits-s0); rerun the "
                                    "same command to continue (they resume from their last checkpoints)"), err


def test_one_failing_cell_does_not_stop_the_others(tmp_path, steps, capsys, monkeypatch):
    """λ = 1e39 diverges in its first steps, another cell's evaluation raises;
    both are recorded in failed.json, the other two cells are done."""
    monkeypatch.setenv("FAIL_EVAL", "lambda10-")
    spec = spec_file(tmp_path, ["moca"], grid='[grid]\n"reg.lambda" = [1, 1e39, 10, 100]')
    out = tmp_path / "res"
    code, _, err = bench(spec, out, capsys, "--concurrent", "3")
    assert code == 2 and "2 cell(s) failed" in err
    by = {p.name: p for p in cells(out)}
    (huge,) = [p for n, p in by.items() if "e_39" in n]
    bad = json.loads((huge / "failed.json").read_text())
    assert "non-finite" in bad["error"] and bad.get("diverged")
    assert json.loads((by["moca-tiny-digits-lambda10-s0"] / "failed.json").read_text())["error"] == \
        "RuntimeError: fake evaluation exploded"
    for ok in ("moca-tiny-digits-lambda1-s0", "moca-tiny-digits-lambda100-s0"):
        assert (by[ok] / "results.json").is_file() and final_state(by[ok])["t"] == 10


def test_a_grid_that_will_not_fit_is_refused_in_one_line(tmp_path, steps, capsys, monkeypatch):
    spec = spec_file(tmp_path, ["moca", "ae", "swae"])
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "2", "--devices", "cpu,cpu")
    assert_one_line_error(code, err, "--concurrent and --devices exclude each other")
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "0")
    assert_one_line_error(code, err, "--concurrent 0")
    per_cell = {}
    real = concurrent.Memory.measure

    def measure(self, t, mark):
        per_cell["bytes"] = real(self, t, mark)
        return per_cell["bytes"]

    monkeypatch.setattr(concurrent.Memory, "measure", measure)
    monkeypatch.setattr(concurrent.Memory, "free", lambda self: int(1.5 * per_cell["bytes"]))
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "3")
    line = assert_one_line_error(code, err, "--concurrent 3 will not fit", "GiB", "use --concurrent 2 or fewer")
    assert "measured on moca-tiny-digits-s0" in line and per_cell["bytes"] > 0
    # the started cell resumes on a rerun that fits
    monkeypatch.setattr(concurrent.Memory, "free", lambda self: 1 << 40)
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "3")
    assert code == 0, err
    assert all((c / "results.json").is_file() for c in cells(tmp_path / "res"))


def test_a_final_cell_waiting_for_its_tuning_cells_is_not_rechecked_every_round(tmp_path, steps, capsys,
                                                                                 monkeypatch):
    """Whether a queued cell may start changes only when a cell ends: the
    scheduler asks again then, not on every round of steps (each ask reads
    and resolves every tuning cell's run: milliseconds against a GPU step's
    2.5)."""
    from wae_bench.bench import tune

    real, asked = tune.Tuning.ready, []
    monkeypatch.setattr(tune.Tuning, "ready", lambda *a, **k: asked.append(1) or real(*a, **k))
    tuned = '[tune]\nholdout = 100\nmax_steps = 24\n\n[reg.moca.tune]\n"reg.lambda" = [1, 10]\n'
    spec = tmp_path / "t.toml"
    spec.write_text(tiny_spec("tuned", ["moca"], [0], 4, ["n"], ckpt_every=50, grid=tuned))
    code, _, err = bench(spec, tmp_path / "res", capsys, "--concurrent", "3")
    assert code == 0, err
    assert len(steps) == 2 * 24 + 4                        # both tuning cells, then the final one
    assert 0 < len(asked) <= 8, len(asked)                  # (was one ask per round: ~24)
