"""Folder locks (docs/resume.md#one-process-per-folder), with real processes:
a second `run` or `eval` of a folder another process is training is refused
in one line naming that process (pid, host), and changes nothing; when the
holder is killed (``kill -9``: no chance to clean up) its lock is taken over.
Shared holders (bench shards) coexist; an exclusive holder excludes them."""
from __future__ import annotations

import hashlib
import socket
import time

import pytest

from tests.reliability_helpers import TINY, assert_one_line_error, cli, logged_step, one_thread, start
from wae_bench import lock

# `wae-bench ARGS` whose steps take 100 ms each: a run that is still training when the test looks.
SLOW = """
import sys, time
from wae_bench.step.trainer import Trainer
real = Trainer.step
def step(self, x):
    time.sleep(0.1)
    return real(self, x)
Trainer.step = step
from wae_bench.cli import main
main(sys.argv[1:])
"""

# Hold the lock of FOLDER (argv[1]; argv[2] == "shared": a shared one) until killed.
HOLD = """
import sys, time
from wae_bench import lock
with lock.hold(sys.argv[1], "a test holder", shared=sys.argv[2:] == ["shared"]):
    print("held", flush=True)
    time.sleep(300)
"""

ARGS = ["run", *TINY, "--set", "max_steps=150", "--set", "ckpt_every=5", "--set", "log_every=5", "--set", "expost=[]"]


def holder(folder, shared: bool = False):
    p = start([folder, *(["shared"] if shared else [])], code=HOLD)
    assert p.stdout.readline().strip() == "held", p.stderr.read()
    return p


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_busy_run_folder_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    first = start([*ARGS, "--out", out], code=SLOW)
    try:
        end = time.monotonic() + 90
        while logged_step(out) < 5 and first.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()[1]
        config = _sha(out / "config.json")
        who = (f"pid {first.pid} on {socket.gethostname()}",)
        for args in ([*ARGS, "--out", out], ["run", "--resume", "--out", out, "--no-eval"],
                     ["eval", out, "--features", "standin"]):
            code, _, err = cli(args, capsys)
            assert_one_line_error(code, err, f"run directory '{out}' is in use by wae-bench run", *who,
                                  "wait for it to finish")
        assert first.poll() is None and _sha(out / "config.json") == config   # the holder goes on, untouched
    finally:
        first.kill()
        first.wait()
    assert lock.read_holder(out / lock.LOCK_NAME)["pid"] == first.pid   # killed: its lock file stays ...
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--no-eval", "--quiet"], capsys)
    assert code == 0, err                                                 # ... and is taken over
    assert not (out / lock.LOCK_NAME).exists()                            # released: the file is gone


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path):
    folder = tmp_path / "res"
    other = holder(folder, shared=True)
    try:
        with lock.hold(folder, "me", shared=True):                         # a second shard: fine
            pass
        with pytest.raises(lock.Busy, match="is in use by other wae-bench bench processes"):
            with lock.hold(folder, "me"):
                pass
    finally:
        other.kill()
        other.wait()
    with lock.hold(folder, "me") as path:                                 # the killed holder's lock: taken over
        assert lock.read_holder(path)["command"] == "me"
        with lock.hold(folder, "me again"):                               # re-entrant in one process
            pass
        assert path.is_file()
    assert not path.exists()


def test_held_elsewhere_reads_the_holder_without_taking_the_lock(tmp_path):
    """For a message only (the bench's start line): a live other holder is
    named; a free folder, our own hold and a killed holder's leftover file are not."""
    folder = tmp_path / "cell"
    assert lock.held_elsewhere(folder) is None                      # no folder, no lock file
    with lock.hold(folder, "this test"):
        assert lock.held_elsewhere(folder) is None                  # held here
    other = holder(folder)
    try:
        assert lock.held_elsewhere(folder)["pid"] == other.pid
    finally:
        other.kill()
        other.wait()
    assert (folder / lock.LOCK_NAME).is_file()                      # (kill -9 left it)
    assert lock.held_elsewhere(folder) is None
