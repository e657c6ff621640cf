"""wae-bench driven as a Python library (a notebook, a sweep script):
:func:`~wae_bench.run.train.train_run` and :func:`~wae_bench.evaluate.evaluate_run`
called in a loop.

* ``evaluate_run`` returns the evaluation it just computed, not the merged
  ``results.json`` (whose top an earlier Inception evaluation keeps); the
  file still loses no score, and a stand-in evaluation kept below an
  Inception one says so in the result, ``quiet`` or not.
* A stopped ``train_run`` raises a ``KeyboardInterrupt``: a sweep's
  ``except Exception: continue`` does not go on to its next setting; the
  command line still prints its one stop line and exits 128 + the signal.
* ``train_run`` and ``evaluate_run`` leave the caller's global random
  generators and ``torch.backends.cudnn.benchmark`` as they found them
  (after a failure too), and do not change what the run trains.
* ``train_run`` takes a :class:`~wae_bench.config.TrainConfig` as well as a
  dict of config keys; anything else is one line.
"""
from __future__ import annotations

import copy
import os
import random
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reliability_helpers import cli, diff_states, final_state
from wae_bench import results
from wae_bench.config import TrainConfig
from wae_bench.errors import WaeError
from wae_bench.evaluate import KEPT_BELOW, evaluate_run, load_results
from wae_bench.interrupt import Stopped
from wae_bench.run import checkpoint
from wae_bench.run.train import Training, train_run

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"dataset": "digits", "arch": "tiny", "image_size": 8, "latent_dim": 16, "max_steps": 4, "device": "cpu",
        "expost": []}
STANDIN = {"features": "standin", "fid_samples": 16, "what": ["samples"], "quiet": True}
INCEPTION = "inception-v3-compat (TF-Inception 2015-12-05, pool3 2048-d)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, single_thread_module) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits"
    train_run(TINY, out, quiet=True)
    return out


@pytest.fixture
def run(trained, tmp_path, monkeypatch) -> Path:
    """A copy of the tiny trained run, with a cache of its own."""
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


# -- evaluate_run returns this evaluation -------------------------------------------------------------------
def _fake_inception_top(run: Path, like: dict) -> None:
    """An Inception evaluation at the top of ``run``'s results.json (faked: the network is too slow here)."""
    fake = copy.deepcopy({k: like[k] for k in ("scores", "protocol", "diagnostics", "run")})
    fake["protocol"].update(features=INCEPTION, time="2026-01-01T00:00:00+0000")
    fake["protocol"].pop("warning", None)
    fake["scores"] = {"samples": {"fid": 172.56}}
    results.write(run, fake)


def test_a_standin_evaluation_below_an_inception_one_returns_its_own_scores(run, capsys):
    _fake_inception_top(run, evaluate_run(run, **STANDIN))
    capsys.readouterr()
    res = evaluate_run(run, **{**STANDIN, "split": "train"})            # another protocol, quiet
    assert capsys.readouterr().err == ""
    top = load_results(run)
    assert top["protocol"]["features"] == INCEPTION and top["scores"]["samples"]["fid"] == 172.56  # the file's top
    last = top["history"][-1]
    assert last["kept_below"] and last["protocol"]["reference"]["split"] == "train"
    assert res["scores"] == last["scores"] and res["scores"]["samples"]["fid"] != 172.56
    assert res["protocol"] == last["protocol"] and "not FID" in res["protocol"]["features"]
    assert res["kept_below"] == KEPT_BELOW and "history" not in res
    assert set(res) == {"scores", "protocol", "diagnostics", "run", "kept_below"}


def test_a_merged_evaluation_returns_its_own_columns_and_the_file_keeps_both(run):
    first = evaluate_run(run, **STANDIN)
    assert set(first) == {"scores", "protocol", "diagnostics", "run"}
    assert load_results(run) == {"format": results.FORMAT, **first}
    rec = evaluate_run(run, **{**STANDIN, "what": ["rec"]})
    assert set(rec["scores"]) == {"rec"} and set(rec["protocol"]["generated"]) == {"rec"}
    assert "kept_below" not in rec
    merged = load_results(run)
    assert merged["scores"] == {**first["scores"], **rec["scores"]}
    assert set(merged["protocol"]["generated"]) == {"samples", "rec"}


# -- a stop ends a sweep ------------------------------------------------------------------------------------
def _signal_at_step(monkeypatch, sig: int, at: int) -> None:
    """A real ``sig`` to this process once training logged step ``at`` (log_every = 1)."""
    real = Training._log

    def log(self, step, m):
        real(self, step, m)
        if step == at:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(Training, "_log", log)


def test_ctrl_c_in_train_run_ends_a_sweep_that_skips_failed_runs(tmp_path, monkeypatch):
    _signal_at_step(monkeypatch, signal.SIGINT, 2)
    started = []
    with pytest.raises(KeyboardInterrupt) as e:
        for lam in (1.0, 2.0):
            started.append(lam)
            try:
                train_run({**TINY, "max_steps": 6, "log_every": 1, "reg": {"lambda": lam}}, tmp_path / f"l{lam}",
                          quiet=True)
            except Exception:   # noqa: BLE001 - the sweep skips a failed run, not a Ctrl-C
                continue
    assert started == [1.0]
    stop = e.value
    assert isinstance(stop, Stopped) and not isinstance(stop, Exception) and stop.exit_code == 130
    assert str(stop).startswith("stopped by SIGINT at step ") and "train_run({}, " in str(stop)   # (Python's words)
    step = int(str(stop).split("at step ")[1].split(";")[0])
    assert checkpoint.load(checkpoint.checkpoints(tmp_path / "l1.0")[-1])["t"] == step < 6


def test_the_command_line_still_says_a_stop_in_one_line_with_its_status(tmp_path, monkeypatch, capsys):
    """A stop leaving a command (through click, which turns a KeyboardInterrupt
    into its Abort): the one stop line, no ``error:``, 128 + the signal."""
    import wae_bench.run.train

    def stopped(*a, **kw):
        raise Stopped("SIGTERM", "at step 3; checkpoint saved in 'r'", "continue with: wae-bench run --resume --out r")

    monkeypatch.setattr(wae_bench.run.train, "train_run", stopped)
    code, _, err = cli(["run", "--no-eval", "--quiet", "--out", tmp_path / "r"], capsys)
    assert (code, err) == (143, "stopped by SIGTERM at step 3; checkpoint saved in 'r'; continue with: wae-bench "
                                "run --resume --out r\n")


# -- the caller's global state --------------------------------------------------------------------------------
def _seed_caller() -> None:
    torch.manual_seed(1234)
    np.random.seed(99)
    random.seed(7)


def _draws() -> tuple:
    return torch.rand(3), np.random.rand(3), random.random()


def _assert_draws(expected: tuple) -> None:
    t, n, r = _draws()
    assert torch.equal(t, expected[0]) and np.array_equal(n, expected[1]) and r == expected[2]


def test_train_and_evaluate_leave_the_callers_generators_and_cudnn_benchmark_as_they_were(tmp_path, monkeypatch):
    import wae_bench.step.trainer as trainer_mod

    real_init = trainer_mod.Trainer.__init__

    def on_cuda(self, *a, **kw):              # what a CUDA trainer does (this test runs on the CPU)
        real_init(self, *a, **kw)
        torch.backends.cudnn.benchmark = True

    monkeypatch.setattr(trainer_mod.Trainer, "__init__", on_cuda)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    _seed_caller()
    expected = _draws()
    _seed_caller()
    train_run(TINY, tmp_path / "run", quiet=True)
    _assert_draws(expected)
    assert torch.backends.cudnn.benchmark is False

    _seed_caller()
    evaluate_run(tmp_path / "run", **STANDIN)
    _assert_draws(expected)


def test_a_failed_or_stopped_train_run_leaves_the_callers_generators_too(tmp_path, monkeypatch):
    def refuse(plan):                          # after the build (which seeds the global generators)
        raise WaeError("no")

    _seed_caller()
    expected = _draws()
    _seed_caller()
    with pytest.raises(WaeError, match="no"):
        train_run(TINY, tmp_path / "failed", quiet=True, before=refuse)
    _assert_draws(expected)

    _signal_at_step(monkeypatch, signal.SIGTERM, 2)
    _seed_caller()
    with pytest.raises(Stopped):
        train_run({**TINY, "max_steps": 6, "log_every": 1}, tmp_path / "stopped", quiet=True)
    _assert_draws(expected)


def test_the_callers_generators_do_not_change_what_a_run_trains(tmp_path):
    _seed_caller()
    a = train_run(TINY, tmp_path / "a", quiet=True)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    torch.rand(100)                            # another state altogether
    b = train_run(TINY, tmp_path / "b", quiet=True)
    assert diff_states(final_state(a), final_state(b)) == []


# -- a TrainConfig -------------------------------------------------------------------------------------------
def test_train_run_takes_a_trainconfig_and_trains_what_its_dict_trains(tmp_path):
    given = train_run(TINY, tmp_path / "dict", quiet=True)
    run = train_run(TrainConfig(**TINY), tmp_path / "cfg", quiet=True)
    assert diff_states(final_state(given), final_state(run)) == []


def test_train_run_given_neither_a_dict_nor_a_trainconfig_is_one_line(tmp_path):
    with pytest.raises(WaeError) as e:
        train_run("max_steps=4", tmp_path / "x", quiet=True)
    assert "\n" not in str(e.value) and "dict of config keys" in str(e.value) and "TrainConfig" in str(e.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.gpu(reason="the CUDA generators and cuDNN's benchmark flag of a real CUDA run")
def test_a_cuda_train_run_leaves_the_cuda_generators_and_cudnn_benchmark_as_they_were(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    torch.cuda.init()
    torch.cuda.manual_seed_all(42)
    expected = torch.rand(3, device="cuda")
    torch.cuda.manual_seed_all(42)
    train_run({**TINY, "device": "cuda"}, tmp_path / "run", quiet=True)
    assert torch.equal(torch.rand(3, device="cuda"), expected)
    assert torch.backends.cudnn.benchmark is False
