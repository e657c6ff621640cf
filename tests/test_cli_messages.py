"""What the commands say in the cases a newcomer found silent or wrong
(docs/cli.md, docs/resume.md): where a resume starts from, plugin errors in
`wae-bench list` printed literally, why a default --out is refused, wide
output without a terminal, the run header's precision, the exit statuses
and wording of a deliberate stop, and progress lines before slow phases."""
from __future__ import annotations

import shutil

import pytest

from tests.helpers import run_cli
from wae_bench.cli import cli

TINY = ["--no-eval", "--set", "max_steps=4", "--set", "latent_dim=8", "--set", "expost=[]"]


def test_a_resume_says_which_checkpoint_it_starts_from(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run_cli(["run", "--out", str(out), "--quiet", "--set", "ckpt_every=2", *TINY], capsys)
    assert code == 0, err
    assert "resuming" not in stdout and "no checkpoint" not in stdout          # a new run says nothing of it
    assert " · cpu (eager) · fp32 · " in stdout
    code, stdout, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert f"resuming from step 4 (checkpoint {out / 'checkpoints' / 'step-00000004.pt'})" in stdout
    shutil.rmtree(out / "checkpoints")                                          # as if killed before the first
    code, stdout, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert f"no checkpoint in {out}: starting from step 0" in stdout


def test_list_prints_a_plugin_load_error_as_written(tmp_path, monkeypatch):
    """Neither rich markup (`[bold]`, a stray `[/]`) nor emoji codes (`:X:`)
    in a plugin's error text are interpreted."""
    from tests.test_registry import cli, fake_install

    monkeypatch.setenv("COLUMNS", "400")          # (the error text on one table row)
    site = tmp_path / "site"
    site.mkdir()
    fake_install(site, "wae_marked", "wae_marked", "raise ImportError('needs [bold]libfoo[/] :X: here')\n",
                 "marked = wae_marked:Marked")
    fake_install(site, "wae_gone", "wae_gone_stub", "", "gone = wae_nothere:X")
    r = cli(["list"], site, tmp_path)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "needs [bold]libfoo[/] :X: here" in text
    assert "wae_nothere:X" in text and "\u274c" not in r.stdout


def test_a_default_out_holding_a_run_of_other_settings_names_them(tmp_path, monkeypatch, capsys):
    """The hint is --resume only where the settings match (a resume with
    other settings is refused); otherwise the settings that differ, and
    another --out."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["run", "--quiet", *TINY], capsys)
    assert code == 0, err
    code, _, err = run_cli(["run", "--quiet", *TINY], capsys)
    assert code == 2 and "holds a run; pass --resume to continue it" in err
    code, _, err = run_cli(["run", "--quiet", "--lambda", "10", "--lr", "0.01", *TINY], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert ("'runs/moca-tiny-digits-s0' holds a run with other settings: that run has lr=0.001, reg.lambda=100.0, "
            "this one lr=0.01, reg.lambda=10.0; choose another --out (not --resume") in err


def test_output_to_a_file_is_not_wrapped_at_80_columns(tmp_path):
    """Piped or in a log, rich would wrap at 80 columns and break cell ids
    mid-name; the consoles are then at least 160 wide and a cell id is one
    word."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "benchmarks" / "smoke-tune.toml"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    r = subprocess.run([sys.executable, "-m", "wae_bench", "bench", str(spec), "--dry-run", "--out",
                        str(tmp_path / "b")], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("tune-moca-tiny-digits-lambda1e_39-s0" in ln for ln in lines), r.stdout
    assert any(ln.startswith("evaluation: {") and ln.rstrip().endswith("}") for ln in lines)   # one line
    assert max(map(len, lines)) > 80


def test_a_log_console_neither_wraps_a_message_nor_cuts_a_wider_table():
    """A file's console (160 wide): a 300-character message stays one line,
    and a table wider than 160 is printed whole (every row ends in its
    border), at its own width, not wrapped or cut at the console's edge."""
    import io

    from rich.table import Table

    from wae_bench.progress import LOG_WIDTH, make_console

    out = io.StringIO()
    c = make_console(file=out)
    assert c.width == LOG_WIDTH
    message = "wrote " + ", ".join(f"runs/bench/grid/plots/plot-{i:02d}.png" for i in range(10))
    c.print(message)
    t = Table()
    for i in range(9):
        t.add_column(f"column {i}")
    t.add_row(*[f"cell-{i}-" + "x" * 16 for i in range(9)])
    c.print(t)
    lines = out.getvalue().splitlines()
    assert lines[0] == message and len(message) > LOG_WIDTH
    rows = lines[1:]
    assert max(map(len, rows)) > LOG_WIDTH and len(set(map(len, rows))) == 1, rows
    assert all(r[-1] in "┓┃┩│┘" for r in rows), rows
    assert all(f"cell-{i}-" + "x" * 16 in rows[3] for i in range(9)), rows[3]   # no cell cut short
    assert c.width == LOG_WIDTH                                                  # restored after the table


def test_the_header_shows_the_precision_and_bf16_on_a_cpu_warns_once(tmp_path, capsys, monkeypatch):
    """(fp32 in the header: the resume test above.)"""
    from wae_bench.run import train

    monkeypatch.setattr(train, "_SAID", set())
    code, stdout, err = run_cli(["run", "--out", str(tmp_path / "b"), "--quiet", "--precision", "bf16", "--device",
                                 "cpu", *TINY, "--set", "image_size=8", "--batch-size", "16", "--set", "max_steps=1"],
                                capsys)
    assert code == 0, err
    assert " · cpu (eager) · bf16 autocast · " in stdout
    assert err.count("bf16 on a CPU trains much slower than fp32") == 1, err
    train._warn_bf16_on_cpu()                       # (the next cell of a bench, in the same process)
    assert capsys.readouterr().err == ""


def test_a_provisional_default_is_flagged_in_list_and_a_run_unless_given(tmp_path, capsys, monkeypatch):
    """MoCA's paper λ on CIFAR-10 / CelebA is not settled in our units: `list`
    marks it, a run that uses it says so once, a λ the user gives is not flagged."""
    from wae_bench.config import TrainConfig
    from wae_bench.registry import REGULARIZERS
    from wae_bench.run import train
    from wae_bench.run.build import resolve

    def plan(**kw):
        return resolve(TrainConfig(regularizer="moca", **kw))
    assert set(plan(dataset="cifar10").provisional) == {"lambda_"}
    assert "FID 154.6" in plan(dataset="cifar10").provisional["lambda_"]
    assert set(plan(dataset="celeba", arch="a2").provisional) == {"lambda_"}
    assert plan(dataset="digits").provisional == {}
    assert plan(dataset="cifar10", reg={"lambda": 30.0}).provisional == {}
    assert resolve(TrainConfig(regularizer="wae-mmd", dataset="cifar10")).provisional == {}
    code, out, _ = run_cli(["list", "--dataset", "cifar10"], capsys)
    assert code == 0 and "lambda=1000.0*†" in out and "† moca's lambda on cifar10 with a1 is provisional" in out
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "†" not in out
    # a run: the note once (the digits default stands in for a provisional one)
    moca = REGULARIZERS.get("moca")
    monkeypatch.setattr(moca, "provisional", classmethod(lambda cls, setup: {"lambda_": "WHY"}))
    monkeypatch.setattr(train, "_SAID", set())
    args = ["--quiet", "--device", "cpu", *TINY, "--set", "image_size=8", "--batch-size", "16", "--set", "max_steps=1"]
    code, _, err = run_cli(["run", "--out", str(tmp_path / "a"), *args], capsys)
    assert code == 0 and err.count("note: moca's lambda = 100 on tiny/digits is provisional: WHY") == 1, err
    monkeypatch.setattr(train, "_SAID", set())
    code, _, err = run_cli(["run", "--out", str(tmp_path / "b"), "--lambda", "30", *args], capsys)
    assert code == 0 and "provisional" not in err, err


def _signal_at_step(monkeypatch, sig, at: int) -> None:
    """A real ``sig`` to this process during training step ``at`` (1-based)."""
    import os

    from wae_bench.step.trainer import Trainer

    real, seen = Trainer.step, []

    def step(self, x):
        seen.append(1)
        if len(seen) == at:
            os.kill(os.getpid(), sig)
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", step)


def test_a_run_stopped_by_sigint_says_so_without_error_and_exits_130(tmp_path, capsys, monkeypatch):
    import signal

    _signal_at_step(monkeypatch, signal.SIGINT, 2)
    out = tmp_path / "r"
    code, _, err = run_cli(["run", "--out", str(out), "--quiet", *TINY], capsys)
    lines = err.strip().splitlines()
    assert code == 130 and len(lines) == 1, err
    assert lines[0].startswith("stopped by SIGINT at step 2; checkpoint saved in ")
    assert lines[0].endswith(f"continue with: wae-bench run --resume --out {out}")


# A child that raises KeyboardInterrupt the first time numpy is imported, as a
# Ctrl-C arriving during the command's imports does, then runs the command.
_CTRL_C_IN_NUMPY_IMPORT = """
import sys

class CtrlC:
    fired = False

    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not CtrlC.fired:
            CtrlC.fired = True
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
from wae_bench.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("command", ["run", "eval"])
def test_a_ctrl_c_while_torch_is_imported_stops_the_command(command, tmp_path):
    """torch's C module imports numpy and swallows what that import raises:
    a Ctrl-C then was lost (the run trained all its steps and exited 0) or
    left numpy half-imported (an internal RecursionError later).  numpy is
    imported before torch, so the Ctrl-C stops the command (130) and a new
    run leaves no folder."""
    import subprocess
    import sys

    out = tmp_path / "r"
    args = (["run", "--out", str(out), "--quiet", *TINY] if command == "run"
            else ["eval", str(tmp_path), "--features", "standin"])
    r = subprocess.run([sys.executable, "-c", _CTRL_C_IN_NUMPY_IMPORT, *args], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr == "aborted\n" and not out.exists(), r.stderr     # (one line: no blank line before it)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_a_ctrl_c_inside_any_command_prints_one_line_aborted_and_exits_130(command, capsys, monkeypatch):
    """A plain ``KeyboardInterrupt`` (Python's SIGINT handler: nothing to
    save) leaving a command is the one line ``aborted``, exit 130; it went
    through click, whose ``Abort`` printed a blank line before it.  (The
    command's callback here is a Ctrl-C, its options gone: any command.)"""
    def ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.commands[command], "params", [])
    monkeypatch.setattr(cli.commands[command], "callback", ctrl_c)
    code, out, err = run_cli([command], capsys)
    assert (code, out, err) == (130, "", "aborted\n")


# The console script's command (sys.argv), then a real Ctrl-C to the process
# right after the command returned and once more while the interpreter exits.
_CTRL_C_AFTER_SUCCESS = """
import atexit, os, signal
from wae_bench.cli import main

atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))
main()
os.kill(os.getpid(), signal.SIGINT)
"""


def test_a_ctrl_c_after_the_command_succeeded_changes_nothing(tmp_path):
    """The run is scored and its results.json written: a Ctrl-C on the way
    out is ignored (:func:`~wae_bench.interrupt.ignore_further_signals`), so
    the exit status is 0, with no traceback.  It exited 130 (the signal's)."""
    from tests.reliability_helpers import start

    out = tmp_path / "r"
    scored = [a for a in TINY if a != "--no-eval"] + ["--features", "standin", "--fid-samples", "16"]
    p = start(["run", "--out", out, "--quiet", *scored], code=_CTRL_C_AFTER_SUCCESS)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, (p.returncode, err)
    assert (out / "results.json").is_file()


@pytest.mark.parametrize("args", [["run", "--reg"], ["run", "--quiet=1"], ["bench", "--out"], ["eval", "--features"],
                                  ["table", "--metric"], ["compare", "--seeds"], ["report", "--out"], ["--plugin"]],
                         ids=" ".join)
def test_an_option_given_wrong_names_the_help_of_its_command(args, capsys):
    """An option without its value (or a flag given one), which click's
    parser reports with no command, names the command's help:
    ``see 'wae-bench run --help'``, not ``see 'wae-bench --help'`` (still
    right for an option of wae-bench itself, ``--plugin``)."""
    from tests.reliability_helpers import assert_one_line_error

    command = " ".join(["wae-bench", *args[:-1]])
    code, _, err = run_cli(args, capsys)
    line = assert_one_line_error(code, err, f"Option '{args[-1].split('=')[0]}' ")
    assert code == 2 and line.endswith(f"; see '{command} --help'"), line


def test_a_bench_stopped_by_sigterm_exits_143(tmp_path, capsys, monkeypatch):
    """143 (128 + SIGTERM) is what a scheduler reports for its SIGTERM; a
    bench used to exit 130 whatever the signal."""
    import signal

    from tests.bench_helpers import tiny_spec

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec("stop", ["moca"], [0], 6, [], ckpt_every=2))
    _signal_at_step(monkeypatch, signal.SIGTERM, 3)
    code, _, err = run_cli(["bench", str(spec), "--out", str(tmp_path / "res"), "--quiet"], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 143, err
    assert lines[-1].startswith("cell moca-tiny-digits-s0 stopped by SIGTERM at step 3; checkpoint saved"), err
    assert "rerun the same bench command to continue" in lines[-1] and "error:" not in err
    assert "wae-bench run --resume" not in lines[-1], err     # (the bench's own command is the one to rerun)


def test_slow_phases_are_announced_and_eval_counts_without_a_terminal(tmp_path, capsys, monkeypatch):
    """A line before the ex-post fit and the pictures; the evaluation, not
    on a terminal (here: captured), prints its counts every LINE_EVERY_S
    seconds (0 here: every batch)."""
    from wae_bench import progress

    out = tmp_path / "r"
    code, _, err = run_cli(["run", "--out", str(out), *TINY, "--set", "expost=[\"n\"]"], capsys)
    assert code == 0, err
    assert "fitting ex-post N on 1,500 latents ..." in err and "writing pictures (" in err
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    code, _, err = run_cli(["eval", str(out), "--features", "standin", "--fid-samples", "32", "--batch-size", "8",
                            "--what", "samples"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    assert "eval: features samples" in lines
    assert [ln for ln in lines if ln.startswith("eval: features samples ")] == [
        f"eval: features samples {n}/32" for n in (8, 16, 24)], err            # (not 32/32: the task is done)
    code, _, err = run_cli(["run", "--out", str(tmp_path / "q"), "--quiet", *TINY, "--set", "expost=[\"n\"]"], capsys)
    assert code == 0 and "fitting" not in err and "writing pictures" not in err, err


def test_a_large_read_of_images_says_so_first(tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    from wae_bench.data import files

    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setattr(files, "DECODE_NOTICE", 3)
    capsys.readouterr()
    assert files.read_images(tmp_path / "imgs").shape == (3, 3, 4, 4)
    assert capsys.readouterr().err == "decoding 3 images from imgs ...\n"
    monkeypatch.setattr(files, "DECODE_NOTICE", 4)
    files._CACHE.clear()
    files.read_images(tmp_path / "imgs")
    assert capsys.readouterr().err == ""
