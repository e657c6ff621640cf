"""Pure aggregation over seeds: mean, sample standard deviation (n − 1) and
the number of seeds, for one table entry or plot point (MoCA paper, Table 1
reports one number per entry; we report mean ± std and n).

A missing seed is *missing*, never zero: it does not enter the mean, it
lowers ``n``, and an entry with no score at all prints "—" (or "failed");
where the entry knows its seeds, it names the ones it lacks (``(2/3, no s2)``).
Two entries differ by less than the seed spread (:func:`within_spread`) when
their margin is below the pooled sample std of their scores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MISSING = "—"
OTHER_PROTOCOL = "‡"   # an entry with a seed scored under a protocol other than the spec asks


def pooled_std(a: list[float], b: list[float]) -> float | None:
    """The seed spread of two points: √((s_a² + s_b²) / 2), sample variances
    (None where either has fewer than two scores: the spread is unknown)."""
    if min(len(a), len(b)) < 2:
        return None
    return math.sqrt((mean_std(a)[1] ** 2 + mean_std(b)[1] ** 2) / 2)


def within_spread(best: list[float], other: list[float], higher: bool = False) -> tuple[float, float] | None:
    """``(margin, spread)`` where ``other``'s mean is worse than ``best``'s
    (above it; below it where ``higher`` values are better) by less than
    their pooled std (:func:`pooled_std`); None where it is not, or where the
    spread is unknown."""
    spread = pooled_std(best, other)
    if spread is None:
        return None
    margin = mean_std(other)[0] - mean_std(best)[0]
    margin = -margin if higher else margin
    return (margin, spread) if margin < spread else None


def decimals(v: float) -> int:
    """The decimals a table prints ``v`` (and its std) with: 2 (FID 54.36),
    or 3 significant digits for a value under 1 in magnitude (KID 0.00485,
    precision 0.812), which 2 decimals would round to 0.00."""
    if v == 0 or not math.isfinite(v) or abs(v) >= 1:
        return 2
    d = max(2, 2 - math.floor(math.log10(abs(v))))
    return 2 if round(abs(v), d) >= 1 else d     # 0.9996 rounds to 1: printed 1.00, as a value over 1


def number(v: float, digits: int | None = None) -> str:
    """``v`` with ``digits`` decimals, by default :func:`decimals`."""
    return f"{v:.{decimals(v) if digits is None else digits}f}"


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
    diverged: int = 0   # of those, the seeds whose cell diverged (a non-finite loss: a result, not an error)
    excluded: int = 0   # of those, failed tuning cells excluded from the choice (bench --exclude-failed-tuning)
    stale: int = 0      # seeds whose score is of a run trained with other settings (not in ``values``)
    seeds: list[int] = field(default_factory=list)        # the seed of each of ``values`` (where known)
    unscored: dict[int, str] = field(default_factory=dict)  # seed -> "missing" / "failed" / "stale" (where known)
    other_protocol: list[str] = field(default_factory=list)  # cells scored under another protocol than asked

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

    def _lacking(self) -> str:
        """``, no s2, s1 failed``: the seeds not in the mean, by name where
        known, else their numbers (``, 1 failed, 1 stale``)."""
        if self.unscored:
            return "".join(f", {'no ' if why == 'missing' else ''}s{seed}{'' if why == 'missing' else ' ' + why}"
                           for seed, why in sorted(self.unscored.items()))
        return (f", {self.failed} failed" if self.failed else "") + (f", {self.stale} stale" if self.stale else "")

    def text(self, digits: int | None = None) -> str:
        """``54.36 ± 1.20 (3/3)``, ``54.36 (1/3, 1 stale)``, ``54.36 (2/3, no s2)``, ``—``, ``failed``
        (every seed failed), ``stale (3/3)`` (every seed stale), ``— (0/2, s0 failed, s1 stale)`` (no seed
        scored, the others' reasons), ``0.00485 ± 0.00120 (3/3)`` (KID: the mean's :func:`decimals` for both, unless
        ``digits`` is given); :data:`OTHER_PROTOCOL` after it where a seed was scored under another protocol."""
        return self._text(digits) + (OTHER_PROTOCOL if self.other_protocol else "")

    def _text(self, digits: int | None) -> str:
        if not self.values:
            if self.stale == self.expected or self.failed == self.expected:
                return f"stale ({self.stale}/{self.expected})" if self.stale else "failed"
            if not (self.failed or self.stale):
                return MISSING
            return f"{MISSING} (0/{self.expected}{self._lacking()})"   # (no seed scored: no "failed (1/2)")
        m, s = mean_std(self.values)
        digits = decimals(m) if digits is None else digits
        body = number(m, digits) + (f" ± {number(s, digits)}" if s is not None else "")
        return f"{body} ({self.n}/{self.expected}{self._lacking()})"
