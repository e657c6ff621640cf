"""Stopping on SIGINT (Ctrl-C) or SIGTERM, with the command that continues.

Training stops *between* steps: :class:`wae_bench.step.loop.StopFlag` sets a
flag and the loop saves a checkpoint.  The work after training (the ex-post
fit, the pictures, the scoring) has no steps to stop between, so there a
signal stops it at once (:func:`stop_at_once`).  Either way the command ends
with :class:`Stopped`: one line that says what is kept and the command that
finishes the work, and exit status 128 + the signal number, as the shell
reports a killed job.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

from wae_bench.errors import WaeError


class Stopped(WaeError):
    """Stopped by ``signame``; the message says what is kept and how to go on."""

    def __init__(self, signame: str, message: str):
        super().__init__(f"stopped by {signame} {message}")
        self.signame = signame
        self.exit_code = 128 + int(signal.Signals[signame])


class _Signal(KeyboardInterrupt):
    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


@contextlib.contextmanager
def stop_at_once(then: str) -> Iterator[None]:
    """For the block, SIGINT and SIGTERM stop it at once with
    ``Stopped(signame, then)`` (``then``: "while scoring; ...")."""
    def handle(signum, frame):
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
        raise Stopped(s.signame, then) from None
    except KeyboardInterrupt:
        raise Stopped("SIGINT", then) from None
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
