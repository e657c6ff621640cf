"""Stopping on SIGINT (Ctrl-C) or SIGTERM, with the command that continues.

Training stops *between* steps: :class:`wae_bench.step.loop.StopFlag` sets a
flag and the loop saves a checkpoint.  The work after training (the ex-post
fit, the pictures, the scoring) has no steps to stop between, so there a
signal stops it at once (:func:`stop_at_once`).  Either way the command ends
with :class:`Stopped`: one line that says what is kept and the command that
finishes the work, and exit status 128 + the signal number, as the shell
reports a killed job.  The message of such a stop has no ``error:``
prefix: it is a deliberate stop, not a failure (:func:`is_stop`).

:class:`Stopped` is a ``KeyboardInterrupt``, not an ``Exception``: a Python
caller's ``except Exception`` (a sweep that goes on to its next setting
after a failed run) does not swallow a Ctrl-C, which ends its loop as any
Ctrl-C does; :func:`~wae_bench.evaluate.evaluate_run` stopped by a signal
raises a ``KeyboardInterrupt`` too.  The command line turns it back into its
one line (:func:`as_error`).

A second signal during a stop stops at once, except while the stop's
checkpoint is being written (:func:`finishing`): it waits for it, once, and
says so (:func:`repeat_waits`).  Once the stop is said, or the command has
succeeded, the process ignores further signals on its way out
(:func:`ignore_further_signals`).
"""
from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator

from wae_bench.errors import WaeError
from wae_bench.launch import is_rank0


class Stopped(KeyboardInterrupt):
    """Stopped by ``signame``; the message says what is kept (``message``,
    also :attr:`kept`) and how to go on (``go_on``, the command that finishes
    the work; a bench, which goes on by its own command, shows only :attr:`kept`).
    A ``KeyboardInterrupt`` (see the module's docstring), with the
    ``exit_code`` of a :class:`~wae_bench.errors.WaeError`: 128 + the signal."""

    def __init__(self, signame: str, message: str, go_on: str = ""):
        self.kept = f"stopped by {signame} {message}"
        super().__init__(self.kept + (f"; {go_on}" if go_on else ""))
        self.signame = signame
        self.exit_code = 128 + int(signal.Signals[signame])


_RECEIVED: list[str] = []   # each SIGINT/SIGTERM this process was stopped by, in order


def at_once(kept: str, go_on: str) -> Stopped:
    """A stop by a repeated signal (the last one received), which did not
    wait for the step a first one asked to be the last, or abandoned the
    checkpoint being written: ``stopped by SIG... at once (a repeated
    signal); KEPT; GO_ON``, so that it too says what is kept on disk
    (``kept``) and how to go on (``go_on``)."""
    return Stopped(_RECEIVED[-1] if _RECEIVED else "SIGINT", f"at once (a repeated signal); {kept}", go_on)


def note(signame: str) -> None:
    """Record that ``signame`` stopped (or began to stop) the work."""
    _RECEIVED.append(signame)


def received() -> list[str]:
    """The signals :func:`note` recorded so far, in order (a copy): what
    arrived during a piece of work is the tail after its length before."""
    return list(_RECEIVED)


_FINISHING: list[str] = []   # the writes under way that a repeated signal waits for (innermost last)


@contextlib.contextmanager
def finishing(what: str) -> Iterator[None]:
    """The block writes what a stop keeps (``what``: "writing the checkpoint
    of step 3 in 'runs/moca'").  During a stop (a first signal received), a
    repeated signal does not cut it short (:func:`repeat_waits`); the one
    after it stops at once, and the write, atomic, leaves the file before it
    as it was."""
    _FINISHING.append(what)
    try:
        yield
    finally:
        _FINISHING.pop()


def repeat_waits(signame: str) -> bool:
    """Whether a repeated ``signame`` during a stop waits for a write under
    way (:func:`finishing`); if so, says it on stderr (rank 0 alone), ``already
    stopping: WHAT; press Ctrl-C again to abandon it``.  A stop waits once
    (:class:`~wae_bench.step.loop.StopFlag`): the signal after it stops at once."""
    if not _FINISHING:
        return False
    if is_rank0():
        again = "press Ctrl-C" if signame == "SIGINT" else f"send {signame}"
        # (os.write, not print: a signal handler may run inside a write to sys.stderr)
        os.write(2, f"already stopping: {_FINISHING[-1]}; {again} again to abandon it\n".encode())
    return True


def ignore_further_signals() -> None:
    """The process ends, after a stop or after its command succeeded: SIGINT
    and SIGTERM are ignored from now on, so that another Ctrl-C while the stop
    line prints and the interpreter shuts down (torch's exit handlers run
    then) neither prints a traceback (``Exception ignored in atexit callback
    ... KeyboardInterrupt``) nor ends the process by the signal (130) instead
    of its exit status (0 for work done)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):   # (not the main thread)
            signal.signal(sig, signal.SIG_IGN)


def is_stop(e: WaeError | Stopped) -> bool:
    """Whether ``e`` reports a stop by a signal (exit status 128 + N)."""
    return e.exit_code >= 128


#: What a plain Ctrl-C says (Python's own SIGINT handler: no training to stop, nothing to save).
ABORTED = "aborted"


def as_error(e: KeyboardInterrupt) -> WaeError:
    """``e`` as the command line reports it: a :class:`WaeError` of the same
    line and exit status (click would turn a ``KeyboardInterrupt`` leaving a
    command into its ``Abort``, after a blank line); a plain
    ``KeyboardInterrupt`` (not a :class:`Stopped`) is :data:`ABORTED`, exit
    130, a stop as well (:func:`is_stop`)."""
    err = WaeError(str(e) if isinstance(e, Stopped) else ABORTED)
    err.exit_code = e.exit_code if isinstance(e, Stopped) else 128 + int(signal.SIGINT)
    return err


@contextlib.contextmanager
def exit_status_of_stops() -> Iterator[None]:
    """A stop raised in the block (:func:`is_stop`; a bench reports its
    stopped grid as one) exits 128 + the number of the last signal received
    in the block: a grid stopped by SIGTERM exits 143, as the shell and a
    scheduler report a job the signal ended, not a fixed 130."""
    start = len(_RECEIVED)
    try:
        yield
    except (WaeError, Stopped) as e:
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
        if is_rank0():
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
    except Stopped:       # (a stop the block said itself: its own words)
        raise
    except _Signal as s:
        raise Stopped(s.signame, then, go_on) from None
    except KeyboardInterrupt:
        raise Stopped("SIGINT", then, go_on) from None
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
