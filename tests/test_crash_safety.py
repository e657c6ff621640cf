"""Crash-safe files and numerical guards.

* A SIGKILL in the middle of a file write leaves the previous version intact
  and loadable (unit level: a forked child kills itself inside
  ``atomic_write``; CLI level: a run killed while writing a checkpoint, then
  resumed, ends bit-identical to an uninterrupted run).
* SIGTERM (preemption) stops between steps, saves, exits 143 with one line;
  the resumed run is bit-identical too.
* A full disk (ENOSPC) is a one-line error; the previous file stays.
* The last ``keep_checkpoints`` are kept; a truncated newest checkpoint is
  skipped in favour of the one before.
* A non-finite loss term is caught from a device-side flag read every
  ``log_every`` steps (no host sync inside a step), the error names the step
  and term, and no checkpoint after it is written.
"""
from __future__ import annotations

import errno
import io
import json
import os
import signal
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.helpers import batch, make_trainer
from tests.reliability_helpers import (TINY, assert_one_line_error, cli, diff_states, final_state, kill_when,
                                       logged_step, one_thread, start)
from wae_bench import atomic
from wae_bench.cli import main
from wae_bench.errors import WaeError
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut, Regularizer, RegularizerConfig
from wae_bench.run import checkpoint

T, CKPT, LOG = 120, 40, 10
ARGS = ["run", "--reg", "moca", *TINY, "--set", f"max_steps={T}", "--set", f"ckpt_every={CKPT}",
        "--set", f"log_every={LOG}", "--set", 'expost=["n"]']


# Run the CLI, but SIGKILL the process half-way through writing checkpoint 80.
DIE_WRITING_80 = """
import io, os, signal, sys
from wae_bench import atomic
real = atomic.atomic_write
def atomic_write(path, write, mode="wb"):
    if path.name != "step-00000080.pt":
        return real(path, write, mode)
    buf = io.BytesIO()
    write(buf)
    def torn(f):
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, torn, mode)
atomic.atomic_write = atomic_write
from wae_bench.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Two victims as child processes -- one SIGKILLs itself half-way through
    writing checkpoint 80, one gets SIGTERM between two checkpoints -- while
    the uninterrupted reference runs here (the two cores run them side by side)."""
    root = tmp_path_factory.mktemp("crash")
    out = {"write": root / "write", "term": root / "term", "ref": root / "ref"}
    write = start([*ARGS, "--out", out["write"]], code=DIE_WRITING_80)
    term = start([*ARGS, "--out", out["term"]])
    killer = kill_when(term, lambda: logged_step(out["term"]) > CKPT, signal.SIGTERM)
    with one_thread():
        try:
            main([*ARGS, "--out", str(out["ref"])])
        except SystemExit as e:
            assert e.code in (0, None), f"reference run failed with status {e.code}"
    for name, proc in (("write", write), ("term", term)):
        _, err = proc.communicate(timeout=180)
        out[f"{name}_status"], out[f"{name}_err"] = proc.returncode, err
    killer.join()
    out["reference"] = final_state(out["ref"])
    return out


def _resume(out: Path, capsys) -> None:
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err


# -- kill in the middle of a write ----------------------------------------------------------------

def _fork_and_die_inside_write(path: Path, partial: bytes) -> int:
    """A forked child starts replacing ``path`` and SIGKILLs itself after
    writing (and fsyncing) ``partial``; returns its wait status."""
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            def torn(f):
                f.write(partial)
                f.flush()
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            atomic.atomic_write(path, torn)
        finally:
            os._exit(3)
    return os.waitpid(pid, 0)[1]


def test_sigkill_inside_atomic_write_keeps_the_previous_version(tmp_path):
    p = tmp_path / "step-00000010.pt"
    checkpoint.save(p, {"v": torch.arange(10)})
    new = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "v": torch.arange(20)}, new)
    status = _fork_and_die_inside_write(p, new.getvalue()[: len(new.getvalue()) // 2])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert torch.equal(checkpoint.load(p)["v"], torch.arange(10))      # the old version, whole
    torn = list(tmp_path.glob(".*.tmp"))
    assert len(torn) == 1 and torn[0].stat().st_size > 0               # the write really was under way
    assert atomic.clean_temp(tmp_path) == torn and not list(tmp_path.glob(".*.tmp"))
    # JSON / text files go through the same path
    j = tmp_path / "results.json"
    atomic.write_json(j, {"fid": 1.0})
    status = _fork_and_die_inside_write(j, b'{"fid": 2.')
    assert os.WIFSIGNALED(status) and json.loads(j.read_text()) == {"fid": 1.0}


def test_cli_killed_while_writing_a_checkpoint_resumes_bit_identical(runs, capsys):
    out = runs["write"]
    assert runs["write_status"] == -signal.SIGKILL, runs["write_err"]
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step-00000040.pt"]
    assert len(list((out / "checkpoints").glob(".step-00000080.pt.*.tmp"))) == 1      # the torn write
    assert checkpoint.load(out / "checkpoints" / "step-00000040.pt")["t"] == 40
    _resume(out, capsys)
    assert diff_states(runs["reference"], final_state(out)) == []
    assert not list((out / "checkpoints").glob(".*.tmp"))


def test_sigterm_stops_after_a_checkpoint_and_resumes_bit_identical(runs, capsys):
    out, status = runs["term"], runs["term_status"]
    line = assert_one_line_error(status, runs["term_err"], "stopped by SIGTERM", "--resume", prefix="stopped by")
    assert status == 128 + signal.SIGTERM
    step = int(line.split("at step ")[1].split(";")[0])
    assert CKPT < step < T and step % CKPT                                 # off the checkpoint grid
    latest = checkpoint.checkpoints(out)[-1]
    assert latest.name == f"step-{step:08d}.pt" and checkpoint.load(latest)["t"] == step
    _resume(out, capsys)
    assert diff_states(runs["reference"], final_state(out)) == []
    # metrics.jsonl reads as if the run had never stopped: no line at the stop step, the averaging
    # window goes on in the checkpoint; only the wall-clock fields differ
    assert metric_lines(out) == metric_lines(runs["ref"])
    assert [r["step"] for r in metric_lines(out)] == list(range(LOG, T + 1, LOG))


def metric_lines(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the fields a clock sets (``time``, ``img_per_s``)."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "img_per_s")} for r in lines]


def test_keep_checkpoints_keeps_the_last_k(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", *TINY, "--set", "max_steps=12", "--set", "ckpt_every=2", "--set",
                            "keep_checkpoints=3", "--set", "expost=[]", "--out", out], capsys)
    assert code == 0, err
    assert [p.name for p in checkpoint.checkpoints(out)] == [f"step-{s:08d}.pt" for s in (8, 10, 12)]


# -- full disk ----------------------------------------------------------------------------------------

class _FullDisk(io.FileIO):
    """A temp file on a disk that fills up after ``room`` bytes."""

    room = 100

    def write(self, b):
        if self.tell() + len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


_OPEN_TEMP = atomic._open_temp


def _full_disk(path: Path):
    f, tmp = _OPEN_TEMP(path)
    f.close()
    return _FullDisk(tmp, "wb"), tmp


@pytest.mark.parametrize("kind", ["checkpoint", "json"])
def test_disk_full_is_one_line_and_keeps_the_previous_file(kind, tmp_path, monkeypatch):
    p = tmp_path / ("step-00000001.pt" if kind == "checkpoint" else "results.json")
    old = {"v": torch.arange(5)} if kind == "checkpoint" else {"fid": 1.0}
    (checkpoint.save if kind == "checkpoint" else atomic.write_json)(p, old)
    before = p.read_bytes()
    monkeypatch.setattr(atomic, "_open_temp", _full_disk)
    with pytest.raises(WaeError) as e:
        if kind == "checkpoint":
            checkpoint.save(p, {"v": torch.arange(10_000)})
        else:
            atomic.write_json(p, {"fid": 2.0, "pad": "x" * 1000})
    assert "No space left on device" in str(e.value) and "previous version" in str(e.value)
    assert "\n" not in str(e.value)
    assert p.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_written_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    p = atomic.write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~atomic._UMASK


def test_latest_skips_a_truncated_newest_checkpoint(tmp_path):
    d = tmp_path / "checkpoints"
    for s in (1, 2, 3):
        checkpoint.save(d / f"step-{s:08d}.pt", {"t": s})
    raw = (d / "step-00000003.pt").read_bytes()
    (d / "step-00000003.pt").write_bytes(raw[: len(raw) // 3])
    skipped = []
    path, state = checkpoint.latest(tmp_path, on_skip=lambda p, why: skipped.append((p.name, why)))
    assert state["t"] == 2 and skipped and skipped[0][0] == "step-00000003.pt" and "truncated" in skipped[0][1]
    checkpoint.prune(tmp_path, 1)
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step-00000003.pt"]
    with pytest.raises(WaeError, match="no loadable checkpoint"):
        checkpoint.latest(tmp_path)


# -- non-finite guard ----------------------------------------------------------------------------------

@dataclass
class NanAtConfig(RegularizerConfig):
    at: int = 23          # 0-based step from which the penalty is NaN


class NanAt(Regularizer):
    """Test plugin: a finite penalty that turns NaN at step ``at`` (capture-safe)."""

    name = "nanat"
    Config = NanAtConfig

    def penalty(self, x, z, ae, ctx):
        bad = torch.where(ctx.t >= self.cfg.at, torch.full((), float("nan")), torch.zeros(()))
        term = z.pow(2).mean() + bad.to(z)
        return RegOut(self.cfg.lambda_ * term, {"probe": term})


@pytest.fixture
def nanat(monkeypatch):
    REGULARIZERS.load_entry_points()
    monkeypatch.setitem(REGULARIZERS._items, "nanat", NanAt)


def test_nan_penalty_stops_naming_step_and_term_and_writes_no_later_checkpoint(nanat, tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", "--reg", "nanat", *TINY, "--set", "max_steps=60", "--set", "ckpt_every=10",
                            "--set", "log_every=5", "--set", "keep_checkpoints=10", "--out", out], capsys)
    line = assert_one_line_error(code, err, "non-finite 'nanat/probe' at step 24", "--lr",
                                 "step-00000020.pt")
    assert code == 2 and "(also " in line
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step-00000010.pt", "step-00000020.pt"]
    state = checkpoint.load(out / "checkpoints" / "step-00000020.pt")
    assert all(v.isfinite().all() for v in state["ae"].values() if v.is_floating_point())
    assert logged_step(out) == 20


def test_a_run_that_diverges_before_its_first_checkpoint_leaves_nothing_the_same_command_refuses(tmp_path, capsys):
    args = [*TINY, "--lr", "1e30", "--set", "max_steps=30", "--set", "log_every=1", "--set", "expost=[]"]
    made, given = tmp_path / "made" / "run", tmp_path / "given"
    given.mkdir()
    for out in (made, made, given, given):            # the same command twice, into a new and an empty folder
        with one_thread():
            code, _, err = cli(["run", *args, "--out", out], capsys)
        assert_one_line_error(code, err, "non-finite", "lower --lr", "no checkpoint was written")
    assert not (tmp_path / "made").exists()           # the folders it made: removed
    assert given.is_dir() and list(given.iterdir()) == []   # the user's own folder: kept, empty


def test_ctrl_c_after_training_prints_the_command_that_finishes_the_run(tmp_path, capsys, monkeypatch):
    """Ctrl-C (or SIGTERM) during the ex-post fit or the pictures stops at once
    with the resume command (exit 130 / 143); during the scoring, with the eval
    command that scores the kept run."""
    import wae_bench.expost
    import wae_bench.metrics.generate

    real_fit, real_images = wae_bench.expost.fit, wae_bench.metrics.generate.images
    out = tmp_path / "run"
    args = ["run", *TINY, "--set", "max_steps=4", "--set", 'expost=["n"]', "--out", out]

    def killed(sig):
        def fn(*a, **kw):
            os.kill(os.getpid(), sig)                  # a real signal, in the middle of the work
            return real_fit(*a, **kw)
        return fn

    for sig in (signal.SIGINT, signal.SIGTERM):
        monkeypatch.setattr(wae_bench.expost, "fit", killed(sig))
        with one_thread():
            code, _, err = cli(args if sig == signal.SIGINT else ["run", "--resume", "--out", out, "--quiet",
                                                                  "--no-eval"], capsys)
        assert_one_line_error(code, err, f"stopped by {signal.Signals(sig).name} after training (step 4)",
                              f"finish it with: wae-bench run --resume --out {out}", prefix="stopped by")
        assert code == 128 + sig and not checkpoint.load(checkpoint.checkpoints(out)[-1]).get("finished")
    monkeypatch.setattr(wae_bench.expost, "fit", real_fit)

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(wae_bench.metrics.generate, "images", interrupted)
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--eval", "--features", "standin",
                            "--fid-samples", "8"], capsys)
    assert_one_line_error(code, err, "stopped by SIGINT while scoring (the trained run is kept)",
                          f"score it with: wae-bench eval {out} --fid-samples 8 --features standin",
                          prefix="stopped by")
    assert code == 130 and final_state(out)["finished"] and not (out / "results.json").exists()
    monkeypatch.setattr(wae_bench.metrics.generate, "images", real_images)
    with one_thread():
        code, _, err = cli(["eval", out, "--features", "standin", "--fid-samples", "8", "--quiet"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("at, resumable", [(3, True), (1, False)])
def test_out_of_memory_in_training_says_resume_only_when_there_is_a_checkpoint(at, resumable, tmp_path, capsys,
                                                                                monkeypatch):
    from wae_bench.step.trainer import Trainer

    real = Trainer.step

    def step(self, x):
        if int(self.t) + 1 == at:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", step)
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", *TINY, "--set", "max_steps=6", "--set", "ckpt_every=2", "--set", "expost=[]",
                            "--out", out], capsys)
    line = assert_one_line_error(code, err, "out of memory", "lower --batch-size")
    assert ("--resume" in line) == resumable and (f"continue with: wae-bench run --resume --out {out}" in line
                                                  or not resumable)
    assert out.exists() == resumable                  # no checkpoint: nothing kept, the same command runs again
    if not resumable:
        assert "rerun the same command" in line


def test_huge_learning_rate_is_caught_before_any_bad_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", *TINY, "--lr", "1e30", "--set", "max_steps=30", "--set", "ckpt_every=1",
                            "--set", "log_every=5", "--set", "keep_checkpoints=100", "--out", out], capsys)
    line = assert_one_line_error(code, err, "non-finite", "lower --lr")
    step = int(line.split("step ")[1].split()[0].rstrip(";"))
    saved = [int(p.stem.split("-")[1]) for p in checkpoint.checkpoints(out)]
    assert saved and max(saved) < step
    for s in saved:
        st = checkpoint.load(out / "checkpoints" / f"step-{s:08d}.pt")
        assert all(v.isfinite().all() for v in st["ae"].values() if v.is_floating_point())


class _HostSyncs(TorchDispatchMode):
    """Records ops that read a tensor on the host (``.item()``, ``bool(t)``,
    data-dependent shapes) issued from wae-bench or plugin code (torch's own
    CPU optimisers read their CPU step counters; those are not device syncs)."""

    SYNC = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.unique")

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith(self.SYNC):
            stack = traceback.extract_stack()
            if not any(f"{os.sep}torch{os.sep}optim{os.sep}" in fr.filename for fr in stack):
                ours = [fr for fr in stack if any(s in fr.filename for s in ("wae_bench", "regularizers", "tests"))]
                self.found.append((str(func), f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("reg", ["moca", "nanat"])
def test_training_steps_never_read_the_device(reg, nanat, monkeypatch):
    tr = make_trainer(reg, {"at": 2} if reg == "nanat" else None)
    x = batch(B=8, size=8)
    with monkeypatch.context() as m, _HostSyncs() as mode:
        m.setattr(torch.Tensor, "tolist", lambda self: pytest.fail("tolist() inside a step"))
        for _ in range(4):
            tr.step(x)
    assert mode.found == []
    means, bad = tr.meter.read()                 # the one read, outside the step
    if reg == "nanat":
        assert bad["nanat/probe"] == 2 and bad["loss"] == 2 and bad.get("rec", 99) > 2
    else:
        assert bad == {} and set(means) >= {"loss", "rec", "reg", "moca/moco"}


def test_meter_is_read_every_log_every_steps(monkeypatch, nanat):
    from wae_bench.step.meter import Meter
    from wae_bench.step.loop import fit

    reads = []
    real = Meter.read
    monkeypatch.setattr(Meter, "read", lambda self: reads.append(1) or real(self))
    tr = make_trainer("nanat", {"at": 10 ** 6}, T=20)
    x = batch(B=8, size=8)
    fit(tr, lambda s: x, start=0, total=20, steps_per_epoch=5, lr_halve_every=0, log_every=5, ckpt_every=10,
        on_log=lambda s, m: None, on_ckpt=lambda s: None)
    assert len(reads) == 4


@pytest.mark.parametrize("ckpt_every, ckpt_minutes, expected", [
    (0, 1.0, [12, 20]),           # by time: the first log step >= 60 s after the last checkpoint, then the end
    (10, 0.0, [10, 20]),          # by step count only
    (10, 0.5, [6, 10, 16, 20]),   # both: the clock restarts at every checkpoint (16, not 12)
    (0, 0.0, [20]),               # neither: the final checkpoint alone
])
def test_checkpoints_by_step_count_and_by_time(ckpt_every, ckpt_minutes, expected):
    """A fake clock that advances 10 s per read (one read at the start, at
    every log step and after every checkpoint): a checkpoint lands at the
    first log step ``ckpt_minutes`` or more after the previous one, so a GPU
    run does not write its state every few seconds."""
    from wae_bench.step.loop import fit

    ticks = iter(range(0, 10 ** 6, 10))
    tr = make_trainer("ae", T=20)
    x = batch(B=8, size=8)
    saved = []
    fit(tr, lambda s: x, start=0, total=20, steps_per_epoch=5, lr_halve_every=0, log_every=2,
        ckpt_every=ckpt_every, ckpt_minutes=ckpt_minutes, clock=lambda: next(ticks),
        on_log=lambda s, m: None, on_ckpt=saved.append)
    assert saved == expected


def test_the_first_bad_step_and_most_specific_term_are_named():
    tr = make_trainer("moca")
    nan, one = torch.tensor(float("nan")), torch.tensor(1.0)
    tr.meter.add({"loss": one, "rec": one, "reg": one}, torch.tensor(3))
    tr.meter.add({"loss": nan, "rec": nan, "reg": one}, torch.tensor(4))
    tr.meter.add({"loss": nan, "rec": nan, "reg": nan}, torch.tensor(5))
    means, bad = tr.meter.read()
    assert bad == {"loss": 4, "rec": 4, "reg": 5}
    with pytest.raises(WaeError, match=r"^non-finite 'rec' at step 5 \(also loss\); lower --lr"):
        tr.check_finite(bad)
    from wae_bench import worded

    with worded.bench("tune.holdout"), pytest.raises(WaeError) as e:   # (a bench cell: the spec's keys, no flags)
        tr.check_finite(bad)
    assert "lower train.lr or the regularizer's lambda" in str(e.value) and "--lr" not in str(e.value)


def test_check_finite_names_a_bad_parameter():
    tr = make_trainer("moca")
    with torch.no_grad():
        tr.ae.decoder[0].weight[0, 0] = float("nan")
    with pytest.raises(WaeError, match=r"non-finite autoencoder parameter 'decoder.0.weight'"):
        tr.check_finite({})


def test_resume_drops_metric_lines_after_the_checkpoint_and_a_torn_line(tmp_path):
    from wae_bench.run.directory import RunDir

    run = RunDir(tmp_path)
    lines = [json.dumps({"step": s, "loss": 1.0}) for s in (10, 20, 30, 40)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 50, "lo')   # killed mid-append
    run.truncate_metrics(30)
    assert (tmp_path / "metrics.jsonl").read_text() == "\n".join(lines[:3]) + "\n"
