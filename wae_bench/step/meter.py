"""Device-side running sums of the step's loss terms, read on the host only
every ``log_every`` steps (no sync inside :meth:`Trainer.step`).  The sums
since the last read (the averaging window) are state, saved in every
checkpoint, so a resumed run logs what an uninterrupted one would; so is
each term's value at the run's first step (the untrained net's), which the
divergence check compares with (:class:`~wae_bench.step.trainer.RecGrowth`)."""
from __future__ import annotations

import torch
from torch import Tensor


class Meter:
    """Device-side running sums of named scalars plus a non-finite guard:
    ``first_bad[i]`` is the first step at which term ``i`` was not finite, and
    ``at_start[i]`` its value at step 1 (``t == 0``; NaN: not seen, as in a
    checkpoint from before it was recorded).  Its tensors are created once and then only changed in place (reset,
    load), so a captured CUDA graph keeps writing into the tensors read here."""

    def __init__(self, device: torch.device):
        self.device, self.names = device, None
        self.sums = self.count = self.first_bad = self.at_start = None
        self.window = 0   # the steps the last read's means were over
        self.start: dict[str, float] = {}   # the last read's at_start (the terms seen at step 1)

    def add(self, terms: dict[str, Tensor], t: Tensor) -> None:
        vals = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if self.names != list(terms):   # (host-side names: the first step, or the first after a load)
            self._adopt(list(terms))
        finite = torch.isfinite(vals)
        self.sums.add_(torch.where(finite, vals, torch.zeros_like(vals)))
        self.count.add_(1)
        self.first_bad.copy_(torch.where(~finite & (self.first_bad < 0), t, self.first_bad))
        self.at_start.copy_(torch.where(t == 0, vals, self.at_start))

    def _adopt(self, names: list[str]) -> None:
        """Sums for the terms ``names``: new ones, or, where a loaded
        checkpoint's window holds other terms (written before the plugin
        logged some of them), the loaded sums, first non-finite steps and
        step-1 values of the terms both have and none for the others."""
        old = {} if self.names is None else dict(zip(self.names, zip(self.sums, self.first_bad, self.at_start)))
        count = self.count
        self._create(names)
        if old:
            with torch.no_grad():
                self.count.copy_(count)
                for i, n in enumerate(names):
                    if n in old:
                        self.sums[i], self.first_bad[i], self.at_start[i] = old[n]

    def _create(self, names: list[str]) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=self.device)
        self.count = torch.zeros((), device=self.device)
        self.first_bad = torch.full((len(names),), -1, dtype=torch.long, device=self.device)
        self.at_start = torch.full((len(names),), float("nan"), device=self.device)

    def unflag(self) -> None:
        """No non-finite step and no step-1 value seen (a warm-up's are no step of the run)."""
        self.first_bad.fill_(-1)
        self.at_start.fill_(float("nan"))

    def reset(self) -> None:
        self.sums.zero_()
        self.count.zero_()

    def read(self) -> tuple[dict[str, float], dict[str, int]]:
        """(means since the last read, {term: first non-finite step}); syncs,
        and starts the next averaging window.  After it :attr:`window` is the
        number of steps the means are over and :attr:`start` the terms'
        step-1 values (those seen: read in the same transfer)."""
        if self.names is None:
            return {}, {}
        n = len(self.names)
        values = torch.cat([self.sums / self.count.clamp(min=1), self.count.reshape(1), self.at_start]).tolist()
        means, self.window = values[:n], int(values[n])
        self.start = {k: v for k, v in zip(self.names, values[n + 1:]) if v == v}   # (NaN: not seen)
        bad = self.bad()
        self.reset()
        return dict(zip(self.names, means)), bad

    def peek(self, name: str) -> float | None:
        """The mean of term ``name`` since the last read, without ending the
        averaging window (None: no such term, or no step since), and
        :attr:`start` as :meth:`read` sets it; syncs."""
        if self.names is None or name not in self.names:
            return None
        total, count, *start = torch.cat([self.sums[self.names.index(name)].reshape(1), self.count.reshape(1),
                                          self.at_start]).tolist()
        self.start = {k: v for k, v in zip(self.names, start) if v == v}
        return total / count if count else None

    def bad(self) -> dict[str, int]:
        """{term: first non-finite step}, without ending the averaging window; syncs."""
        if self.names is None:
            return {}
        return {n: s for n, s in zip(self.names, self.first_bad.tolist()) if s >= 0}

    def tensors(self) -> list[Tensor]:
        """The tensors a step writes into (for a graph's warm-up to restore)."""
        return [t for t in (self.sums, self.count, self.first_bad, self.at_start) if t is not None]

    def state_dict(self) -> dict:
        if self.names is None:
            return {}
        return {"names": self.names, "sums": self.sums, "count": self.count, "first_bad": self.first_bad,
                "at_start": self.at_start}

    def load_state_dict(self, s: dict) -> None:
        if not s:
            return
        if self.names != list(s["names"]):
            self._create(list(s["names"]))
        for mine, saved in ((self.sums, s["sums"]), (self.count, s["count"]), (self.first_bad, s["first_bad"])):
            mine.copy_(saved)
        if "at_start" in s:   # (a checkpoint from before step-1 values were recorded: not seen)
            self.at_start.copy_(s["at_start"])
        else:
            self.at_start.fill_(float("nan"))
