"""Stopping on SIGINT (Ctrl-C) or SIGTERM, with the command that continues.

Training stops *between* steps: :class:`wae_bench.step.loop.StopFlag` sets a
flag and the loop saves a checkpoint.  The work after training (the ex-post
fit, the pictures, the scoring) has no steps to stop between, so there a
signal stops it at once (:func:`stop_at_once`).  Either way the command ends
with :class:`Stopped`: one line that says what is kept and the command that
finishes the work, and exit status 128 + the signal number, as the shell
reports a killed job.  The message of such a stop has no ``error:``
prefix: it is a deliberate stop, not a failure (:func:`is_stop`).
"""
from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator

from wae_bench.errors import WaeError


class Stopped(WaeError):
    """Stopped by ``signame``; the message says what is kept (``message``,
    also :attr:`kept`) and how to go on (``go_on``, the command that finishes
    the work; a bench, which goes on by its own command, shows only :attr:`kept`)."""

    def __init__(self, signame: str, message: str, go_on: str = ""):
        self.kept = f"stopped by {signame} {message}"
        super().__init__(self.kept + (f"; {go_on}" if go_on else ""))
        self.signame = signame
        self.exit_code = 128 + int(signal.Signals[signame])


_RECEIVED: list[str] = []   # each SIGINT/SIGTERM this process was stopped by, in order


def note(signame: str) -> None:
    """Record that ``signame`` stopped (or began to stop) the work."""
    _RECEIVED.append(signame)


def is_stop(e: WaeError) -> bool:
    """Whether ``e`` reports a stop by a signal (exit status 128 + N)."""
    return e.exit_code >= 128


@contextlib.contextmanager
def exit_status_of_stops() -> Iterator[None]:
    """A stop raised in the block (:func:`is_stop`; a bench reports its
    stopped grid as one) exits 128 + the number of the last signal received
    in the block: a grid stopped by SIGTERM exits 143, as the shell and a
    scheduler report a job the signal ended, not a fixed 130."""
    start = len(_RECEIVED)
    try:
        yield
    except WaeError as e:
        if is_stop(e) and len(_RECEIVED) > start:
            e.exit_code = 128 + int(signal.Signals[_RECEIVED[-1]])
        raise


@contextlib.contextmanager
def said_by_rank0() -> Iterator[None]:
    """Under torchrun every process stops on the forwarded signal; only rank 0
    ($RANK, none: a single process) says so: a stop raised in the block on
    another rank exits with its status (128 + N) and no line."""
    try:
        yield
    except Stopped as e:
        if int(os.environ.get("RANK", "0")) == 0:
            raise
        raise SystemExit(e.exit_code) from None


class _Signal(KeyboardInterrupt):
    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


@contextlib.contextmanager
def stop_at_once(then: str, go_on: str = "") -> Iterator[None]:
    """For the block, SIGINT and SIGTERM stop it at once with
    ``Stopped(signame, then, go_on)`` (``then``: "while scoring; ...")."""
    def handle(signum, frame):
        note(signal.Signals(signum).name)
        raise _Signal(signal.Signals(signum).name)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handle)
        except ValueError:   # not the main thread: leave the signals alone
            pass
    try:
        yield
    except _Signal as s:
        raise Stopped(s.signame, then, go_on) from None
    except KeyboardInterrupt:
        raise Stopped("SIGINT", then, go_on) from None
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
