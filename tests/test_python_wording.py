"""The Python API's refusals name its arguments (:func:`wae_bench.worded.python`):
``train_run``, ``evaluate_run`` and ``load_model`` called from Python say
``out``, ``resume=True``, ``force=True``, ``trust=True``, the overrides' keys
and ``train_run({}, out, resume=True)`` where `wae-bench run` and `wae-bench
eval` say ``--out``, ``--resume``, ``--force``, ``--trust-checkpoint``,
``--lr`` and ``wae-bench run --resume --out``; the command line, which calls
the same functions (:func:`wae_bench.worded.cli`), keeps its flags.  Each
test calls the Python API in-process on the embedded digits (a few steps,
8 px) and the same command through :func:`tests.helpers.run_cli`."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from wae_bench.errors import WaeError
from wae_bench.interrupt import Stopped
from wae_bench.run import checkpoint
from wae_bench.run.train import Training, train_run

pytestmark = pytest.mark.usefixtures("single_thread_module")

TINY = {"dataset": "digits", "arch": "tiny", "image_size": 8, "latent_dim": 4, "max_steps": 2, "expost": [],
        "device": "cpu"}
CLI = ["--dataset", "digits", "--arch", "tiny", "--set", "image_size=8", "--set", "latent_dim=4", "--set",
       "max_steps=2", "--set", "expost=[]", "--set", "device=cpu", "--quiet", "--no-eval"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run (2 steps), trained from Python."""
    return train_run(TINY, tmp_path_factory.mktemp("runs") / "run", quiet=True)


def _refusal(call, *args, error=WaeError, **kw) -> str:
    with pytest.raises(error) as e:
        call(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def _cli_error(args, capsys) -> str:
    code, _, err = run_cli([str(a) for a in args], capsys)
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1, (code, err)
    return err


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    return to


# -- the folder ---------------------------------------------------------------------------------------------
def test_a_folder_holding_a_run_names_resume_and_out(trained, capsys):
    msg = _refusal(train_run, TINY, trained, quiet=True)
    assert msg.endswith("holds a run; pass resume=True to continue it, or choose another out"), msg
    msg = _refusal(train_run, {**TINY, "lr": 0.5}, trained, quiet=True)
    assert "; choose another out (not resume=True: it continues a run only with its own settings)" in msg, msg
    err = _cli_error(["run", *CLI, "--out", trained], capsys)
    assert err.endswith("holds a run; pass --resume to continue it, or choose another --out\n"), err
    err = _cli_error(["run", *CLI, "--lr", "0.5", "--out", trained], capsys)
    assert "; choose another --out (not --resume: it continues" in err, err


def test_a_folder_that_is_no_run_or_lies_inside_one_names_out(trained, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert _refusal(train_run, TINY, foreign).endswith("is not a run folder; choose another out (or an empty folder)")
    assert _cli_error(["run", *CLI, "--out", foreign], capsys).endswith(
        "is not a run folder; choose another --out (or an empty folder)\n")
    inner = trained / "sub"
    msg = _refusal(train_run, TINY, inner)
    assert msg.startswith(f"out {str(inner)!r} lies inside the run folder") and "; choose an out outside it" in msg
    err = _cli_error(["run", *CLI, "--out", inner], capsys)
    assert err.startswith(f"error: --out {str(inner)!r} lies inside") and "; choose an --out outside it" in err
    long = tmp_path / "new" / ("a" * 300)
    assert _refusal(train_run, TINY, long).endswith("(File name too long); choose another out")
    assert _cli_error(["run", *CLI, "--out", long], capsys).endswith("(File name too long); choose another --out\n")
    assert _refusal(train_run, {}, long, resume=True).endswith(
        "(File name too long); copy the run to a writable place and resume it there (train_run({}, 'COPY', "
        "resume=True))")
    assert _cli_error(["run", "--resume", "--out", long], capsys).endswith(
        "(File name too long); copy the run to a writable place and resume it there (wae-bench run --resume --out "
        "COPY)\n")


def test_resume_and_force_without_their_partners_name_the_arguments(tmp_path, capsys):
    assert _refusal(train_run, {}, resume=True) == "resume=True needs out (the run directory to continue)"
    assert _cli_error(["run", "--resume"], capsys) == \
        "error: --resume needs --out RUN_DIR (the run directory to continue)\n"
    assert _refusal(train_run, TINY, tmp_path / "new", force=True) == (
        "force=True goes with resume=True: it continues a run with a changed config; add resume=True, or drop "
        "force=True (a new run needs an empty or new out folder)")
    assert _cli_error(["run", *CLI, "--force", "--out", tmp_path / "new"], capsys) == (
        "error: --force goes with --resume: it continues a run with a changed config; add --resume, or drop --force "
        "(a new run needs an empty or new --out)\n")
    (tmp_path / "empty").mkdir()
    assert _refusal(train_run, {}, tmp_path / "empty", resume=True).endswith(
        "(no config.json); drop resume=True to start a new run there")
    assert _cli_error(["run", "--resume", "--out", tmp_path / "empty"], capsys).endswith(
        "(no config.json); drop --resume to start a new run there\n")


# -- a resume -----------------------------------------------------------------------------------------------
def test_a_resume_with_a_changed_config_names_the_overrides_and_force(trained, capsys):
    msg = _refusal(train_run, {"lr": 0.5}, trained, resume=True)
    assert msg == ("resume=True with a different config (lr changed) would not reproduce the run; drop those keys "
                   "from the overrides (train_run({}, out, resume=True) continues with the run's own), or pass "
                   "force=True to resume anyway"), msg
    assert _cli_error(["run", "--resume", "--lr", "0.5", "--out", trained], capsys) == (
        "error: --resume with a different config (lr changed) would not reproduce the run; drop those options, or "
        "pass --force to resume anyway\n")
    msg = _refusal(train_run, {"regularizer": "rae-l2"}, trained, resume=True)
    assert msg.startswith(f"resume=True of {str(trained)!r}, a run of regularizer") and msg.endswith(
        "with \"regularizer\": 'rae-l2': a resume continues the run's own regularizer (force=True cannot change "
        "it); drop \"regularizer\" from the overrides, or start a new out for rae-l2"), msg
    err = _cli_error(["run", "--resume", "--reg", "rae-l2", "--out", trained], capsys)
    assert err.startswith(f"error: --resume of {str(trained)!r}") and err.endswith(
        "with --reg rae-l2: a resume continues the run's own regularizer (--force cannot change it); drop --reg, or "
        "start a new --out for rae-l2\n"), err


def test_a_checkpoint_that_does_not_fit_the_run_says_start_a_new_out(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path / "run")
    rec = json.loads((run / "config.json").read_text())
    rec["config"]["latent_dim"] = 8                   # config.json no longer the checkpoint's
    (run / "config.json").write_text(json.dumps(rec))
    msg = _refusal(train_run, {}, run, resume=True)
    assert "is of latent_dim 4, not 8; resume with the run's own settings or start a new out" in msg, msg
    err = _cli_error(["run", "--resume", "--quiet", "--no-eval", "--out", run], capsys)
    assert err.endswith("is of latent_dim 4, not 8; resume with the run's own settings or start a new --out\n"), err


class _Thing:
    """Any object the weights-only unpickler refuses to import."""


def test_an_untrusted_checkpoint_names_trust(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path / "run")
    newest = checkpoint.checkpoints(run)[-1]
    torch.save({**checkpoint.load(newest), "payload": _Thing()}, newest)
    from wae_bench.evaluate import evaluate_run
    from wae_bench.run.reload import load_model

    for call in (lambda: load_model(run, device="cpu"), lambda: train_run({}, run, resume=True),
                 lambda: evaluate_run(run, features="standin", quiet=True)):
        msg = _refusal(call, error=checkpoint.UnsafeFile)
        assert msg.endswith("refused: pass trust=True only if you trust its source"), msg
    err = _cli_error(["eval", run, "--features", "standin", "--quiet"], capsys)
    assert err.endswith("refused: pass --trust-checkpoint only if you trust its source\n"), err


def test_a_run_without_a_checkpoint_says_train_it_with_train_run(trained, tmp_path, capsys):
    from wae_bench.evaluate import evaluate_run
    from wae_bench.run.reload import load_model

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(trained / "config.json", run / "config.json")
    for call in (lambda: load_model(run, device="cpu"), lambda: evaluate_run(run, features="standin", quiet=True)):
        assert _refusal(call).endswith(f"train it first with train_run(overrides, {str(run)!r}) (or "
                                       f"train_run({{}}, {str(run)!r}, resume=True))")
    assert _cli_error(["eval", run, "--features", "standin", "--quiet"], capsys).endswith(
        f"train it first with `wae-bench run --out {run}` (or --resume)\n")


def test_a_missing_ex_post_density_names_what(trained, capsys):
    from wae_bench.evaluate import evaluate_run

    msg = _refusal(evaluate_run, trained, features="standin", quiet=True, what=["samples", "gmm"])
    assert "density to sample from; drop gmm from what (the run was trained with expost=[])" in msg, msg
    err = _cli_error(["eval", trained, "--features", "standin", "--quiet", "--what", "samples,gmm"], capsys)
    assert "density to sample from; drop gmm from --what (the run" in err, err


def test_a_busy_folder_says_choose_another_out_or_evaluate_run(trained, capsys):
    from wae_bench import lock
    from wae_bench.evaluate import evaluate_run

    fd = os.open(trained / lock.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)   # (another open file: another holder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _refusal(train_run, {}, trained, resume=True).endswith(
            "wait for it to finish (or stop it), or choose another out")
        assert _refusal(evaluate_run, trained, features="standin", quiet=True).endswith(
            f"wait for it to finish, then score it with evaluate_run({str(trained)!r})")
        assert _cli_error(["run", "--resume", "--quiet", "--no-eval", "--out", trained], capsys).endswith(
            "wait for it to finish (or stop it), or choose another --out\n")
        assert _cli_error(["eval", trained, "--features", "standin", "--quiet"], capsys).endswith(
            f"wait for it to finish, then score it with `wae-bench eval {trained}`\n")
    finally:
        os.close(fd)


# -- settings -----------------------------------------------------------------------------------------------
def test_a_batch_larger_than_the_data_names_the_batch_size_key(tmp_path, capsys):
    msg = _refusal(train_run, {**TINY, "batch_size": 4096}, tmp_path / "a")
    assert msg.endswith('fewer than one batch of 4,096; lower batch_size ({"batch_size": N})'), msg
    assert _cli_error(["run", *CLI, "--batch-size", "4096", "--out", tmp_path / "b"], capsys).endswith(
        "fewer than one batch of 4,096; lower --batch-size\n")


def test_a_setting_the_regularizer_refuses_names_the_overrides(tmp_path, capsys):
    msg = _refusal(train_run, {**TINY, "regularizer": "ae", "reg": {"lambda": 1.0}}, tmp_path / "a")
    assert 'got lambda=1.0; drop lambda from the overrides ({"reg": {"lambda": ...}}), or use' in msg, msg
    err = _cli_error(["run", *CLI, "--reg", "ae", "--lambda", "1", "--out", tmp_path / "b"], capsys)
    assert "got lambda=1.0; drop --lambda, or use" in err, err


def test_a_model_too_large_for_the_memory_names_the_keys(tmp_path, capsys, monkeypatch):
    from wae_bench.run import memory

    monkeypatch.setattr(memory, "available", lambda device: 1)
    msg = _refusal(train_run, TINY, tmp_path / "a")
    assert msg.endswith("choose a smaller arch, latent_dim or image_size (the overrides' keys)"), msg
    assert _cli_error(["run", *CLI, "--out", tmp_path / "b"], capsys).endswith(
        "choose a smaller --arch, latent_dim or image_size\n")


def test_out_of_memory_building_the_model_names_the_keys(tmp_path, capsys, monkeypatch):
    import wae_bench.run.train

    def build_run(*a, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(wae_bench.run.train, "build_run", build_run)
    msg = _refusal(train_run, TINY, tmp_path / "a")
    assert msg.endswith("lower the settings that size it (arch, latent_dim, the regularizer's under \"reg\"; "
                        "`wae-bench list`)"), msg
    assert _cli_error(["run", *CLI, "--out", tmp_path / "b"], capsys).endswith(
        "lower the settings that size it (--arch, latent_dim, the regularizer's; `wae-bench list`)\n")


def _no_memory_at(trainer, at: int) -> None:
    """The CPU allocator's error, raised by the training step ``at``."""
    if int(trainer.t) + 1 == at:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory (simulated)")


@pytest.mark.parametrize("at, resumable", [(3, True), (1, False)])
def test_out_of_memory_in_training_names_the_keys_and_train_run(at, resumable, tmp_path, capsys, monkeypatch):
    from wae_bench.step.trainer import Trainer

    monkeypatch.setattr(Trainer, "step", lambda self, x, real=Trainer.step: _no_memory_at(self, at) or real(self, x))
    out = tmp_path / "py"
    msg = _refusal(train_run, {**TINY, "max_steps": 4, "ckpt_every": 2}, out, quiet=True)
    then = (f"then continue with: train_run({{}}, {str(out)!r}, resume=True)" if resumable
            else "then call train_run again (no checkpoint had been written)")
    assert msg.endswith(f"; lower batch_size, or choose a smaller arch or latent_dim (the overrides' keys), {then}")
    out = tmp_path / "cli"
    err = _cli_error(["run", *CLI, "--set", "max_steps=4", "--set", "ckpt_every=2", "--out", out], capsys)
    then = f"then continue with: wae-bench run --resume --out {out}" if resumable else \
        "then rerun the same command (no checkpoint had been written)"
    assert err.endswith(f"; lower --batch-size, or choose a smaller --arch or latent_dim, {then}\n"), err


# -- training -----------------------------------------------------------------------------------------------
def test_a_diverged_run_names_the_lr_and_lambda_keys(tmp_path, capsys):
    msg = _refusal(train_run, {**TINY, "lr": 1e30, "max_steps": 4}, tmp_path / "a", quiet=True)
    assert "; lower lr or the regularizer's lambda ({\"lr\": ...}, {\"reg\": {\"lambda\": ...}}) (" in msg, msg
    err = _cli_error(["run", *CLI, "--lr", "1e30", "--set", "max_steps=4", "--out", tmp_path / "b"], capsys)
    assert "; lower --lr or --lambda (" in err, err


def test_a_stopped_run_says_continue_with_train_run(tmp_path, capsys, monkeypatch):
    real = Training._log

    def log(self, step, m):
        real(self, step, m)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Training, "_log", log)
    out = tmp_path / "py"
    msg = _refusal(train_run, {**TINY, "max_steps": 6, "log_every": 1}, out, quiet=True, error=Stopped)
    assert msg.startswith("stopped by SIGINT at step ") and msg.endswith(
        f"; continue with: train_run({{}}, {str(out)!r}, resume=True)"), msg
    out = tmp_path / "cli"
    code, _, err = run_cli(["run", *CLI, "--set", "max_steps=6", "--set", "log_every=1", "--out", str(out)], capsys)
    assert code == 130 and err.endswith(f"; continue with: wae-bench run --resume --out {out}\n"), (code, err)


def test_training_images_too_large_for_the_gpu_name_the_data_on_device_key():
    """(A GPU's check, on a CPU: the estimate's fix for the training images held on the device.)"""
    from wae_bench import worded
    from wae_bench.config import TrainConfig, from_dict
    from wae_bench.run import memory
    from wae_bench.run.build import resolve

    plan = resolve(from_dict(TrainConfig, TINY))
    what = "the training images held on the device"
    with worded.python():
        assert memory.estimate(plan, 1, 2, data_bytes=10)[what] == (10, 'pass {"data_on_device": False}')
    with worded.cli(), worded.python():      # (the command line's call of the Python API)
        assert memory.estimate(plan, 1, 2, data_bytes=10)[what] == (10, "pass --set data_on_device=false")


def test_a_queue_smaller_than_the_batch_names_the_batch_size_key(tmp_path, capsys):
    moca = {**TINY, "regularizer": "moca", "batch_size": 8, "reg": {"K": 4}}
    msg = _refusal(train_run, moca, tmp_path / "a")
    assert msg.endswith('K (4) must be >= the global batch size (8); raise reg.K or lower batch_size '
                        '({"batch_size": N})'), msg
    err = _cli_error(["run", *CLI, "--reg", "moca", "--batch-size", "8", "--set", "reg.K=4", "--out", tmp_path / "b"],
                     capsys)
    assert err.endswith("raise reg.K or lower --batch-size\n"), err


def test_a_resume_on_changed_data_names_out_and_force(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path / "run")
    rec = json.loads((run / "config.json").read_text())
    rec["data_fingerprint"]["holdout_of"] = 1400                 # the digits' train split has 1,500 images
    (run / "config.json").write_text(json.dumps(rec))
    msg = _refusal(train_run, {}, run, resume=True, quiet=True)
    assert "changed since this run started" in msg and msg.endswith(
        "or start a new out (force=True resumes anyway)"), msg
    err = _cli_error(["run", "--resume", "--out", run, "--no-eval", "--quiet"], capsys)
    assert err.endswith("or start a new --out (--force resumes anyway)\n"), err
