"""Folder locks: one process at a time trains or scores a run folder (a bench
cell's folder too) or runs a whole benchmark grid into a results folder.

A lock is the file ``FOLDER/.lock`` held with ``fcntl.flock`` on an open
descriptor.  The kernel drops the lock when its process exits, however it
dies (``kill -9`` included), so the lock file a killed process leaves behind
is simply taken over by the next one: there is no stale lock to delete by
hand.  The holder writes its process id, host, command and start time into
the file; a second process gets one line naming them (:class:`Busy`).

An exclusive holder removes the file when it lets go (a process that raced
for the removed file sees that the path no longer names the file it locked,
and tries again), so a folder a failed run made can be removed again.  Shared
holders (bench shards and ``--only`` runs, which may work side by side in one
results folder) leave it.  Locks are re-entrant within a process: the bench
runner holds a cell's lock while ``train_run`` and ``evaluate_run`` take it
again.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from wae_bench.errors import WaeError

LOCK_NAME = ".lock"


class Busy(WaeError):
    """The folder is locked by another process; ``holder`` describes it."""

    def __init__(self, message: str, holder: dict | None):
        super().__init__(message)
        self.holder = holder or {}


_HELD: set[str] = set()   # lock files this process holds


def holder_text(holder: dict) -> str:
    """``wae-bench run (pid 123 on host-a, since 2026-12-01T10:00:00)``."""
    if not holder.get("pid"):
        return "other wae-bench bench processes (a --shard or --only run)"
    return (f"{holder.get('command', 'a wae-bench process')} (pid {holder['pid']} on {holder.get('host', '?')}, "
            f"since {holder.get('since', '?')})")


def read_holder(path: Path) -> dict:
    """What the lock file at ``path`` says about its holder (``{}`` if nothing)."""
    try:
        data = json.loads(path.read_text() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _open_locked(path: Path, shared: bool, wait: bool) -> int | bool:
    """A descriptor of ``path`` holding the lock, or False if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)   # the holder removed the file as we locked it: lock the new one


@contextlib.contextmanager
def hold(folder: str | Path, command: str, *, what: str = "folder", shared: bool = False, wait: bool = False,
         name: str = LOCK_NAME, fix: str = "wait for it to finish, or choose another --out") -> Iterator[Path]:
    """Hold the lock of ``folder`` (made if missing) for the block; yields the
    lock file's path.  ``command`` is what the holder is doing, for the
    message another process gets: ``error: <what> '<folder>' is in use by
    <command> (pid N on HOST, since T); <fix>``.  ``wait``: block until free
    (for short critical sections) instead of refusing."""
    folder = Path(folder)
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = str(folder.resolve() / name)
        fd = None if key in _HELD else _open_locked(path, shared, wait)   # (None: held here already)
    except OSError as e:
        raise WaeError(f"cannot lock {what} {str(folder)!r} ({e.strerror or e}); check that it is a writable "
                       f"folder") from None
    if fd is None:
        yield path                              # (the outer hold releases it)
        return
    if fd is False:
        holder = read_holder(path)
        raise Busy(f"{what} {str(folder)!r} is in use by {holder_text(holder)}; {fix}", holder)
    if not shared:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S"), "argv": sys.argv[1:]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _HELD.add(key)
    try:
        yield path
    finally:
        _HELD.discard(key)
        if not shared:
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(fd)   # (releases the lock)


def held_elsewhere(folder: str | Path, name: str = LOCK_NAME) -> dict | None:
    """The holder of ``folder``'s exclusive lock when another process holds it
    (None: free, held here, or its holder gone), read from the lock file
    without taking the lock (a probing ``flock`` would make a process taking
    it at that instant see it busy). For messages only: :func:`hold` decides.
    A holder on another host is taken to be alive (its file outlived it only
    if it was killed)."""
    path = Path(folder) / name
    if str(Path(folder).resolve() / name) in _HELD:
        return None
    holder = read_holder(path)
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() and holder.get("host") == socket.gethostname():
        return None
    if holder.get("host") != socket.gethostname():
        return holder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:   # (alive, another user's)
        pass
    return holder


def is_lock_file(p: Path) -> bool:
    """A lock file of :func:`hold` (not part of what a folder holds)."""
    return p.name.startswith(LOCK_NAME)
