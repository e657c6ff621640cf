"""Found walking through docs/resume.md as a researcher would: a run stopped
at once by a repeated signal (a second Ctrl-C or SIGTERM during the step
that a first one asked to be the last, or a third during the stop's
checkpoint write) said only ``aborted``: no ``stopped by`` line for a batch
script to find, not what was kept, and no command to continue, although
its last checkpoint was whole on disk."""
from __future__ import annotations

import os
import signal

import pytest

from wae_bench.run import checkpoint
from wae_bench.step.trainer import Trainer
from tests.helpers import run_cli

TINY = ["--no-eval", "--quiet", "--set", "max_steps=6", "--set", "latent_dim=8", "--set", "expost=[]",
        "--set", "image_size=8", "--batch-size", "16", "--set", "ckpt_every=2"]


def _signal_twice_in_step(monkeypatch, at: int, sig: int) -> None:
    """``sig`` twice during training step ``at`` (1-based): the first asks the
    run to stop after the step, the second stops it at once."""
    real, state = Trainer.step, {"n": 0}

    def step(self, x):
        state["n"] += 1
        if state["n"] == at:
            os.kill(os.getpid(), sig)
            os.kill(os.getpid(), sig)
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", step)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_repeated_signal_says_the_checkpoint_kept_and_the_command_that_continues(tmp_path, capsys, monkeypatch,
                                                                                   sig):
    out = tmp_path / "r"
    _signal_twice_in_step(monkeypatch, 3, sig)
    code, _, err = run_cli(["run", "--out", str(out), *TINY], capsys)
    name = signal.Signals(sig).name
    assert code == 128 + int(sig), err
    assert err.strip().splitlines()[-1] == (f"stopped by {name} at once (a repeated signal); its checkpoint of step 2 "
                                            f"is kept; continue with: wae-bench run --resume --out {out}"), err
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step-00000002.pt"]
    monkeypatch.undo()
    code, stdout, err = run_cli(["run", "--resume", "--no-eval", "--quiet", "--out", str(out)], capsys)   # pasted
    assert code == 0 and f"resuming from step 2 (checkpoint {out}/checkpoints/step-00000002.pt)" in stdout, err


def test_a_repeated_signal_before_the_first_checkpoint_says_that_nothing_is_kept(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    _signal_twice_in_step(monkeypatch, 1, signal.SIGINT)
    code, _, err = run_cli(["run", "--out", str(out), *TINY], capsys)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == ("stopped by SIGINT at once (a repeated signal); the run had no checkpoint "
                                            "yet, so nothing is kept; rerun the same command to start it again"), err
    assert not out.exists()     # (a new run without a checkpoint takes back what it wrote)


class _CtrlCMidWrite:
    """A file whose third write is cut short by a Ctrl-C (a signal handler
    raising ``KeyboardInterrupt`` inside ``torch.save``)."""

    def __init__(self, f):
        self.f, self.writes = f, 0

    def write(self, b):
        self.writes += 1
        if self.writes == 3:
            raise KeyboardInterrupt
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_a_ctrl_c_inside_torch_save_stays_a_ctrl_c_and_keeps_the_file_before_it(tmp_path):
    """torch's zip writer, closed on the way out of the interrupted write,
    raised ``RuntimeError: [enforce fail at inline_container.cc:672] ...
    unexpected pos`` over the ``KeyboardInterrupt``: a third Ctrl-C, meant to
    abandon the checkpoint being written, ended ``wae-bench run`` as an
    internal error (exit 1, "report it")."""
    import torch

    from wae_bench import atomic

    path = tmp_path / "step-00000002.pt"
    checkpoint.save(path, {"t": 1})
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(path, lambda f: torch.save({"t": torch.zeros(1000)}, _CtrlCMidWrite(f)))
    assert checkpoint.load(path)["t"] == 1 and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_the_continue_command_of_a_folder_with_a_space_works_when_pasted(tmp_path, capsys, monkeypatch):
    """``--out 'my run'`` said ``continue with: wae-bench run --resume --out
    my run``, which the shell splits: ``Got unexpected extra argument (run)``."""
    import shlex

    out = tmp_path / "my run"
    real, state = Trainer.step, {"n": 0}

    def step(self, x):
        state["n"] += 1
        if state["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", step)
    code, _, err = run_cli(["run", "--out", str(out), *TINY], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 143 and last.endswith(f"continue with: wae-bench run --resume --out {shlex.quote(str(out))}"), err
    monkeypatch.undo()
    pasted = shlex.split(last.split("continue with: ")[1])[1:] + ["--no-eval", "--quiet"]
    code, stdout, err = run_cli(pasted, capsys)
    assert code == 0 and "resuming from step 3" in stdout, err


def test_a_stopped_eval_says_the_same_eval_command_quoted(tmp_path, capsys, monkeypatch):
    """`wae-bench eval` stopped while scoring said ``score the run with:
    wae-bench eval my run``: the folder unquoted and the options given left
    out; it names the same command, pasteable (as `wae-bench run`'s own
    scoring stop does)."""
    import shlex

    import wae_bench.metrics.generate

    out = tmp_path / "my run"
    code, _, err = run_cli(["run", *TINY, "--out", str(out)], capsys)
    assert code == 0, err

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(wae_bench.metrics.generate, "images", interrupted)
    code, _, err = run_cli(["eval", str(out), "--features", "standin", "--fid-samples", "8", "--what", "samples",
                            "--quiet"], capsys)
    assert code == 130, err
    said = err.strip().split("score the run with: ", 1)[1]
    assert said == f"wae-bench eval {shlex.quote(str(out))} --fid-samples 8 --what samples --features standin", err
    assert shlex.split(said)[2] == str(out)


def test_a_sigterm_while_a_sequential_bench_scores_a_cell_says_the_stop(tmp_path):
    """A SIGTERM while a sequential bench scored a cell met the default
    handler (the training's own was gone): the process died without the
    ``stopped by`` line the docs promise in every mode.  (In a process of
    its own: without the fix, the signal kills it.)"""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    smoke = Path(__file__).resolve().parents[1] / "benchmarks" / "smoke.toml"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from wae_bench.bench import runner
        real = runner.evaluate_cell
        def evaluate_cell(*a, **kw):
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*a, **kw)
        runner.evaluate_cell = evaluate_cell
        from wae_bench.cli import main
        main(["bench", {str(smoke)!r}, "--out", {str(tmp_path / "res")!r}, "--quiet",
              "--only", "ae-tiny-digits-s0", "--set", "train.max_steps=2", "--no-table"])
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 128 + signal.SIGTERM, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines()[-1].endswith(
        "cell ae-tiny-digits-s0 stopped by SIGTERM while scoring (its training is kept; the rerun scores it); "
        "rerun the same bench command to continue"), r.stderr
    assert (tmp_path / "res" / "cells" / "ae-tiny-digits-s0" / "config.json").is_file()
