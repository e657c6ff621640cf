"""Pure aggregation over seeds: mean, sample standard deviation (n − 1) and
the number of seeds, for one table entry or plot point (MoCA paper, Table 1
reports one number per entry; we report mean ± std and n).

A missing seed is *missing*, never zero: it does not enter the mean, it
lowers ``n``, and an entry with no score at all prints "—" (or "failed").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MISSING = "—"


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1; None for a single value)."""
    if not values:
        raise ValueError("mean_std of no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass
class Entry:
    """The scores of one table entry over its seeds."""

    values: list[float] = field(default_factory=list)
    expected: int = 0   # seeds in the grid
    failed: int = 0     # seeds whose cell failed
    stale: int = 0      # seeds whose score is of a run trained with other settings (not in ``values``)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return mean_std(self.values)[0] if self.values else None

    @property
    def std(self) -> float | None:
        return mean_std(self.values)[1] if self.values else None

    @property
    def status(self) -> str:
        if self.n and self.n == self.expected:
            return "ok"
        if self.n:
            return "partial"
        return "failed" if self.failed else "stale" if self.stale else "missing"

    def text(self, digits: int = 2) -> str:
        """``54.36 ± 1.20 (3/3)``, ``54.36 (1/3, 1 stale)``, ``—``, ``failed``, ``stale (3/3)``."""
        if not self.values:
            if self.stale and not self.failed:
                return f"stale ({self.stale}/{self.expected})"
            if not self.failed:
                return MISSING
            return "failed" if self.failed == self.expected else f"failed ({self.failed}/{self.expected})"
        m, s = mean_std(self.values)
        body = f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else "")
        extra = (f", {self.failed} failed" if self.failed else "") + (f", {self.stale} stale" if self.stale else "")
        return f"{body} ({self.n}/{self.expected}{extra})"
