"""The loop over training steps: the learning-rate schedule (halved every
``lr_halve_every`` epochs), logging and the non-finite guard every
``log_every`` steps, checkpoints by step count and by time, and a clean stop
between two steps on SIGINT/SIGTERM."""
from __future__ import annotations

import signal
import time
from typing import Callable

from torch import Tensor

from wae_bench.step.trainer import Trainer


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops between steps and saves."""

    def __init__(self):
        self.raised: str | None = None

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.raised:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(trainer: Trainer, batch: Callable[[int], Tensor], *, start: int, total: int, steps_per_epoch: int,
        lr_halve_every: int, log_every: int, ckpt_every: int,
        on_log: Callable[[int, dict], None], on_ckpt: Callable[[int], None],
        agree: Callable[..., tuple[bool, ...]] | None = None, ckpt_minutes: float = 0.0,
        clock: Callable[[], float] = time.monotonic) -> str | None:
    """Run steps ``start..total-1``; returns the signal name if stopped early.

    Checkpoints: every ``ckpt_every`` steps (0: off), at the first log step
    ``ckpt_minutes`` or more after the last checkpoint (0: off; on a GPU a
    step takes milliseconds, so a step count alone would write hundreds of
    MB every few seconds), and at the end.
    The meter (and with it the non-finite guard) is read every ``log_every``
    steps and at every scheduled checkpoint, and the guard alone before a
    checkpoint taken on a stop, so no checkpoint holds a state after a
    non-finite step and a stop adds no metrics line: the averaging window
    goes on in the checkpoint, and a resumed run's ``metrics.jsonl`` is the
    uninterrupted run's.  A SIGINT/SIGTERM stops after the current step with a
    checkpoint; under DDP ``agree`` (one all-reduce: "did any rank stop /
    find a checkpoint due?") is consulted at log steps only, so every rank
    stops, and checkpoints by time, at the same step."""
    trainer.ae.train(), trainer.reg.train()
    last_ckpt = clock()
    with StopFlag() as stop:
        epoch = None
        for s in range(start, total):
            if s // steps_per_epoch != epoch:
                epoch = s // steps_per_epoch
                halvings = epoch // lr_halve_every if lr_halve_every else 0
                trainer.set_lr(trainer.base_lr * 0.5 ** halvings)
            trainer.step(batch(s))
            done = s + 1
            at_log = done % log_every == 0
            due = ckpt_minutes > 0 and at_log and clock() - last_ckpt >= 60 * ckpt_minutes
            stopping = stop.raised is not None
            if agree is not None:
                stopping, due = agree(stopping, due) if at_log else (False, False)
            scheduled = due or done == total or (ckpt_every > 0 and done % ckpt_every == 0)
            ckpt = scheduled or stopping
            if at_log or scheduled:
                means, bad = trainer.meter.read()
                trainer.check_finite(bad)
                on_log(done, {"epoch": epoch, "lr": float(trainer.opt.param_groups[0]["lr"]), **means})
            elif ckpt:   # stopped between log steps: the guard only; the averaging window is saved, not logged
                trainer.check_finite(trainer.meter.bad())
            if ckpt:
                on_ckpt(done)
                last_ckpt = clock()
            if stopping:
                return stop.raised or "SIGTERM"   # (another rank's signal)
    return None
