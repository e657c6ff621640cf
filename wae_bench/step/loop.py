"""The loop over training steps: the learning-rate schedule (halved every
``lr_halve_every`` epochs), logging, the non-finite guard and the divergence
check every ``log_every`` steps, checkpoints by step count and by time, and a clean stop
between two steps on SIGINT/SIGTERM.  :class:`Stepper` runs one step per
call (several runs interleave: ``bench --concurrent``); :func:`fit` loops
one run to its end."""
from __future__ import annotations

import signal
import time
from typing import Callable

from torch import Tensor

from wae_bench import interrupt
from wae_bench.step.trainer import Diverged, Trainer


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops between steps and saves.  A
    second signal stops at once (``KeyboardInterrupt``), unless a checkpoint
    is being written: then it is said and waits for it, once
    (:func:`wae_bench.interrupt.repeat_waits`)."""

    def __init__(self):
        self.raised: str | None = None
        self.waited = False   # a repeated signal waited for a checkpoint being written (the next stops at once)

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def is_set(self) -> bool:
        return self.raised is not None

    def _handle(self, signum, frame):
        interrupt.note(signal.Signals(signum).name)
        if self.raised:  # second Ctrl-C: stop now, unless it waits (once) for the checkpoint being written
            if not self.waited and interrupt.repeat_waits(signal.Signals(signum).name):
                self.waited = True
                return
            raise KeyboardInterrupt
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Stepper:
    """Steps ``start..total-1`` of one run, one per :meth:`advance`, so that a
    caller can interleave several runs (``bench --concurrent``) or loop over
    one (:func:`fit`).

    Checkpoints: every ``ckpt_every`` steps (0: off), at the first log step
    ``ckpt_minutes`` or more after the last checkpoint (0: off; on a GPU a
    step takes milliseconds, so a step count alone would write hundreds of
    MB every few seconds), and at the end.
    The meter (and with it the non-finite guard) is read every ``log_every``
    steps and at every scheduled checkpoint, and the guard alone before a
    checkpoint taken on a stop, so no checkpoint holds a state after a
    non-finite step and a stop adds no metrics line: the averaging window
    goes on in the checkpoint, and a resumed run's ``metrics.jsonl`` is the
    uninterrupted run's.  The divergence check
    (:class:`~wae_bench.step.trainer.RecGrowth`, ``diverge_factor``; 0: off)
    runs at the same points, on the means read there (before a stop's
    checkpoint, on the window so far), so it adds no device sync and no
    checkpoint holds a diverged state either.  A stop (``stop()`` true after a step: a signal
    arrived) ends the run after that step, with a checkpoint; under DDP ``agree`` (one all-reduce: "did any rank stop
    / find a checkpoint due?") is consulted at log steps only, so every rank
    stops, and checkpoints by time, at the same step; the divergence check
    is agreed alike (where it is on), so every rank stops at the same step."""

    def __init__(self, trainer: Trainer, batch: Callable[[int], Tensor], *, start: int, total: int,
                 steps_per_epoch: int, lr_halve_every: int, log_every: int, ckpt_every: int,
                 on_log: Callable[[int, dict], None], on_ckpt: Callable[[int], None],
                 agree: Callable[..., tuple[bool, ...]] | None = None, ckpt_minutes: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, stop: Callable[[], bool] = lambda: False,
                 diverge_factor: float = 0.0):
        self.trainer, self.batch, self.total = trainer, batch, total
        self.spe, self.lr_halve_every, self.log_every, self.ckpt_every = (steps_per_epoch, lr_halve_every,
                                                                          log_every, ckpt_every)
        self.on_log, self.on_ckpt, self.agree, self.ckpt_minutes, self.clock = (on_log, on_ckpt, agree,
                                                                                ckpt_minutes, clock)
        self.stop = stop               # asked after each step: has a signal arrived?
        self.diverge_factor = diverge_factor
        self.next = start              # the step the next advance() runs
        self.epoch: int | None = None
        self.stopped = False           # ended by a stop (a signal) rather than by its last step
        self.last_ckpt = clock()
        trainer.ae.train(), trainer.reg.train()

    @property
    def over(self) -> bool:
        """No step left to run: the last one ran, or a stop ended the run."""
        return self.stopped or self.next >= self.total

    def advance(self) -> bool:
        """Run the next step; log and checkpoint when due; after a stop,
        checkpoint and end (under DDP at the next log step, when every rank
        agrees).  Returns :attr:`over`."""
        tr, s = self.trainer, self.next
        if s // self.spe != self.epoch:
            self.epoch = s // self.spe
            halvings = self.epoch // self.lr_halve_every if self.lr_halve_every else 0
            tr.set_lr(tr.base_lr * 0.5 ** halvings)
        tr.step(self.batch(s))
        done = self.next = s + 1
        at_log = done % self.log_every == 0
        due = self.ckpt_minutes > 0 and at_log and self.clock() - self.last_ckpt >= 60 * self.ckpt_minutes
        stop = self.stop()
        if self.agree is not None:
            stop, due = self.agree(stop, due) if at_log else (False, False)
        scheduled = due or done == self.total or (self.ckpt_every > 0 and done % self.ckpt_every == 0)
        ckpt = scheduled or stop
        if at_log or scheduled:
            means, bad = tr.meter.read()
            tr.check_finite(bad)
            self._check_growth(done, means.get("rec"), tr.meter.window)
            self.on_log(done, {"epoch": self.epoch, "lr": float(tr.opt.param_groups[0]["lr"]), **means})
        elif ckpt:   # stopped between log steps: the guard only; the averaging window is saved, not logged
            tr.check_finite(tr.meter.bad())
            self._check_growth(done, tr.meter.peek("rec"), 0)
        if ckpt:
            self.on_ckpt(done)
            self.last_ckpt = self.clock()
        self.stopped = stop
        return self.over

    def _check_growth(self, step: int, rec: float | None, window: int) -> None:
        """Raise :class:`~wae_bench.step.trainer.Diverged` if ``rec``, the mean
        reconstruction loss of the ``window`` steps to ``step`` (0: a window
        cut short by a stop), grew past the factor; under DDP where any
        rank's did."""
        growth = self.trainer.growth
        growth.window(rec, step, window, self.trainer.meter.start.get("rec"))
        grown = growth.grown(rec, self.diverge_factor)
        if self.agree is not None and self.diverge_factor > 0:
            (grown,) = self.agree(grown)
        if grown:
            raise Diverged(growth.message(rec, step))


def fit(trainer: Trainer, batch: Callable[[int], Tensor], *, start: int, total: int, **settings) -> str | None:
    """Run steps ``start..total-1`` (:class:`Stepper` with ``settings``);
    returns the signal name if SIGINT/SIGTERM stopped it early."""
    with StopFlag() as stop:
        stepper = Stepper(trainer, batch, start=start, total=total, stop=stop.is_set, **settings)
        while not stepper.over:
            stepper.advance()
    return (stop.raised or "SIGTERM") if stepper.stopped else None   # (SIGTERM: another rank's signal)
