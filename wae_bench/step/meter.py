"""Device-side running sums of the step's loss terms, read on the host only
every ``log_every`` steps (no sync inside :meth:`Trainer.step`).  The sums
since the last read (the averaging window) are state, saved in every
checkpoint, so a resumed run logs what an uninterrupted one would."""
from __future__ import annotations

import torch
from torch import Tensor


class Meter:
    """Device-side running sums of named scalars plus a non-finite guard:
    ``first_bad[i]`` is the first step at which term ``i`` was not finite.
    Its tensors are created once and then only changed in place (reset,
    load), so a captured CUDA graph keeps writing into the tensors read here."""

    def __init__(self, device: torch.device):
        self.device, self.names = device, None
        self.sums = self.count = self.first_bad = None

    def add(self, terms: dict[str, Tensor], t: Tensor) -> None:
        vals = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if self.names != list(terms):   # (host-side names: the first step, or the first after a load)
            self._adopt(list(terms))
        finite = torch.isfinite(vals)
        self.sums.add_(torch.where(finite, vals, torch.zeros_like(vals)))
        self.count.add_(1)
        self.first_bad.copy_(torch.where(~finite & (self.first_bad < 0), t, self.first_bad))

    def _adopt(self, names: list[str]) -> None:
        """Sums for the terms ``names``: new ones, or, where a loaded
        checkpoint's window holds other terms (written before the plugin
        logged some of them), the loaded sums and first non-finite steps of
        the terms both have and none for the others."""
        old = {} if self.names is None else dict(zip(self.names, zip(self.sums, self.first_bad)))
        count = self.count
        self._create(names)
        if old:
            with torch.no_grad():
                self.count.copy_(count)
                for i, n in enumerate(names):
                    if n in old:
                        self.sums[i], self.first_bad[i] = old[n]

    def _create(self, names: list[str]) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=self.device)
        self.count = torch.zeros((), device=self.device)
        self.first_bad = torch.full((len(names),), -1, dtype=torch.long, device=self.device)

    def reset(self) -> None:
        self.sums.zero_()
        self.count.zero_()

    def read(self) -> tuple[dict[str, float], dict[str, int]]:
        """(means since the last read, {term: first non-finite step}); syncs,
        and starts the next averaging window."""
        if self.names is None:
            return {}, {}
        means = (self.sums / self.count.clamp(min=1)).tolist()
        bad = self.bad()
        self.reset()
        return dict(zip(self.names, means)), bad

    def bad(self) -> dict[str, int]:
        """{term: first non-finite step}, without ending the averaging window; syncs."""
        if self.names is None:
            return {}
        return {n: s for n, s in zip(self.names, self.first_bad.tolist()) if s >= 0}

    def tensors(self) -> list[Tensor]:
        """The tensors a step writes into (for a graph's warm-up to restore)."""
        return [t for t in (self.sums, self.count, self.first_bad) if t is not None]

    def state_dict(self) -> dict:
        if self.names is None:
            return {}
        return {"names": self.names, "sums": self.sums, "count": self.count, "first_bad": self.first_bad}

    def load_state_dict(self, s: dict) -> None:
        if not s:
            return
        if self.names != list(s["names"]):
            self._create(list(s["names"]))
        for mine, saved in ((self.sums, s["sums"]), (self.count, s["count"]), (self.first_bad, s["first_bad"])):
            mine.copy_(saved)
