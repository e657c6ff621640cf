"""The tuning summary of a results table with a ``[tune]`` table
(:mod:`wae_bench.bench.tune`): each row's "tuned" text (the value it used and
that it was tuned), and a tuning section listing, per group, the grid, the
budget and every value's validation score (``tuning.csv`` holds the same
numbers)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from wae_bench.bench import grid, tune
from wae_bench.bench.aggregate import decimals, mean_std, number, within_spread
from wae_bench.bench.grid import Cell, axis_label, display_value, format_value
from wae_bench.bench.spec import WHAT_LABELS, Spec
from wae_bench.bench.table_notes import budget, count, metric_label, protocol, score_name
from wae_bench.errors import WaeError


@dataclass
class TuningSummary:
    tuned: dict[tuple, str] = field(default_factory=dict)     # row (regularizer, arch, axes) -> the "tuned" column
    values: dict[tuple, str] = field(default_factory=dict)    # row -> the value alone ("λ = 100"; table.tex)
    grids: dict[str, list[str]] = field(default_factory=dict)  # regularizer -> its grids and budgets (table.tex)
    lines: list[str] = field(default_factory=list)            # the tuning section
    rows: list[dict[str, Any]] = field(default_factory=list)  # tuning.csv


@dataclass
class Used:
    """A final cell's tuned values and the grid and budget they were chosen over."""

    values: dict[str, Any]
    grid: dict[str, list]
    budget: dict[str, Any]

    @property
    def over(self) -> str:
        """``λ ∈ {10, 100} at 1 epoch capped at 6 steps``."""
        grid_ = "; ".join(f"{axis_label(k)} ∈ {{{', '.join(map(display_value, vs))}}}" for k, vs in self.grid.items())
        return f"{grid_} at {_steps(self.budget)}"

    @property
    def text(self) -> str:
        """``λ = 100, tuned over λ ∈ {10, 100} at 1 epoch capped at 6 steps``."""
        return f"{values_text(self.values)}, tuned over {self.over}"


def _steps(budget: dict[str, Any]) -> str:
    """``1 epoch capped at 6 steps``: a tuning budget's length (:func:`~wae_bench.bench.tune.budget`)."""
    return count(budget.get("epochs"), "epoch") + (f" capped at {count(budget['max_steps'], 'step')}"
                                                    if budget.get("max_steps") else "")


def values_text(values: dict[str, Any]) -> str:
    """Tuned values as the tables and the report write them: ``λ = 10, lr =
    1e+12`` (each axis's label, :func:`~wae_bench.bench.grid.axis_label`, and
    value, :func:`~wae_bench.bench.grid.display_value`)."""
    return ", ".join(f"{axis_label(k)} = {display_value(v)}" for k, v in values.items())


def reopened(ch: tune.Choice) -> str:
    """``tuning open again: 1 tuning cell pending`` for a final cell that
    trained at its group's choice once made, now that a tuning cell of the
    group is pending again (its folder removed, the grid widened) or failed:
    the choice it trained at may move (it is stale then, :meth:`~wae_bench.bench.tune.Tuning.changes`);
    "" while the choice stands."""
    parts = [f"{count(len(ids), 'tuning cell')} {word}" for ids, word in ((ch.pending, "pending"),
                                                                            (ch.failed, "failed")) if ids]
    return "tuning open again: " + ", ".join(parts) if parts else ""


def tuned_note(read: tune.Tuning, final: Cell) -> tuple[dict | None, str]:
    """A final cell's tuned values (those it trained at, read from its
    config.json, else its group's choice now; None while none is made) and
    the note ``bench --dry-run`` and `wae-bench compare`'s summary say of it
    (``tuned λ = 10``, ``tuned λ pending``, ``tuned λ = 10 (tuning open
    again: ...)``)."""
    names = ", ".join(map(grid.axis_label, final.tuned))
    values = tune.trained_values(read.folder, final)
    ch = read.choice(final) if values is None else None
    again = reopened(read.choice(final)) if values is not None else ""   # (its choice open again: may move)
    values = values or (ch.made if ch is not None else None)
    if values is None:
        why = ("pending" if ch.pending else f"waits for {len(ch.failed)} failed tuning cell(s)" if ch.failed
               else "failed (every value diverged)")
        return None, f"tuned {names} {why}"
    return values, "tuned " + ", ".join(f"{grid.axis_label(k)} = {grid.format_value(v)}" for k, v in values.items()) \
        + (f" ({again})" if again else "")


def used(read: tune.Tuning, final: Cell) -> Used | str:
    """What ``final`` is tuned to: the values it trained at (its own
    ``config.json``, :func:`~wae_bench.bench.tune.trained_values`), over the
    grid and budget recorded when it trained; a final cell not started yet
    (a seed added later, a shard's cell waiting to run) the choice its group
    makes now (:meth:`~wae_bench.bench.tune.Tuning.chosen`), over the group's grid
    and budget; else why there is none (``tuned λ pending`` while the group's
    tuning cells are, ``tuned λ waits for failed tuning cells``, ``every
    tuned λ diverged``).  A cell trained at other values than the choice now
    says so (``λ = 0.5 (stale: tuning now chooses λ = 0.15)``): it is stale
    (:meth:`~wae_bench.bench.tune.Tuning.changes`); one whose group's choice
    is open again (:func:`reopened`) too (``λ = 10 (tuning open again: 1
    tuning cell pending)``)."""
    folder = read.folder
    ch = read.choice(final)
    now = ch.made
    names = ", ".join(map(axis_label, final.tuned))
    trained = tune.trained_values(folder, final)
    here = tune.budget(read.spec, read.members(final)[0])
    if trained is None:
        if now is not None:
            return Used(now, ch.grid, here)
        return (f"tuned {names} waits for failed tuning cells" if ch.failed else f"tuned {names} pending"
                if ch.pending else f"every tuned {names} diverged")
    if now is not None and not _same(trained, now):
        return f"{values_text(trained)} (stale: tuning now chooses {values_text(now)})"
    axes = ch.grid
    if not all(any(tune.same(v, x) for x in axes.get(k, [v])) for k, v in trained.items()):
        return f"{values_text(trained)} (stale: not in the tuning grid now)"
    if reopened(ch):
        return f"{values_text(trained)} ({reopened(ch)})"
    try:
        rec = tune.recorded(folder, final)
    except WaeError:
        rec = None
    if rec is not None and _same(rec["values"], trained) and (now is None or rec["grid"] == axes):
        return Used(trained, rec["grid"], rec.get("budget", here))
    return Used(trained, axes, here)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(tune.same(v, b[k]) for k, v in a.items())


#: The tuning section of a grid in which no regularizer has a tuned axis (a ``[tune]`` with no tuning cell).
NOTHING_TUNED = ("no tuning cell: no regularizer of this grid has an axis to tune, so each trained at the "
                 "settings the table states")


def validation_metric(spec: Spec) -> str:
    """The tuning score's name in the tuning section: ``fid``, or with
    stand-in features ``fid on standin features (NOT FID)``
    (:func:`~wae_bench.bench.table_notes.metric_label`), so no line of it
    reads as FID."""
    metric = spec.tune.metric
    return metric if spec.eval.features == "inception" else metric_label(spec, metric)


def tuning(read: tune.Tuning) -> TuningSummary:
    """The tuned column, the tuning section and the tuning.csv rows of the
    table of ``read``'s spec, from the tuning cells and the recorded choices."""
    spec, folder, cells = read.spec, read.folder, read.cells
    t = spec.tune
    out = TuningSummary()
    tcells = [c for c in cells if c.role == "tune"]
    samplers = {c.regularizer: grid.sampler(c.regularizer) for c in tcells}
    by_sampler = "; ".join(f"{WHAT_LABELS[w]}: {', '.join(r for r, s in samplers.items() if s == w)}"
                           for w in dict.fromkeys(samplers.values()))
    out.lines = [f"chosen by the {tune.RULE.format(metric=t.metric)}; scored by {validation_metric(spec)} of "
                 f"{t.fid_samples} images of each regularizer's sampler ({by_sampler}) against the validation split: "
                 f"{t.holdout} training images held out of every tuning run (a seeded random subset, the same "
                 f"for every run of a dataset), never the test split; tuning seeds {spec.tune_seeds}"
                 + ("; one tuning seed: spread unknown, so a choice by a small margin may be noise (give "
                    "tune.seeds two or more seeds)" if len(spec.tune_seeds) == 1 else "")
                 ] if tcells else [NOTHING_TUNED]   # (no tuned axis: every row says "nothing to tune")
    unjudged = tune.unjudged_line(spec, cells)
    out.lines += [f"WARNING: {unjudged}"] if unjudged else []
    out.lines += [f"tuning budget: {line}" for line in budget(folder, spec, tcells)] if tcells else []
    out.lines += [f"tuning evaluation {line}" for line in protocol(folder, spec, tcells, generated=False)
                  if line.startswith("recorded")]
    long: dict[tuple, dict[str, list[str]]] = {}    # row -> dataset -> the values its final cells used, with grids
    short: dict[tuple, dict[str, list[str]]] = {}   # row -> dataset -> the values alone
    for c in cells:
        row = (c.regularizer, c.arch, c.axes)
        if c.role == "plain":
            out.tuned[row] = out.values[row] = "nothing to tune"
        elif c.role == "final":
            u = used(read, c)
            texts = (u.text, values_text(u.values)) if isinstance(u, Used) else (u, u)
            for into, text in zip((long, short), texts):
                per = into.setdefault(row, {}).setdefault(c.dataset, [])
                if text not in per:
                    per.append(text)
            if isinstance(u, Used) and u.over not in out.grids.setdefault(c.regularizer, []):
                out.grids[c.regularizer].append(u.over)
    many = len(spec.bench.datasets) > 1
    for into, by_row in ((out.tuned, long), (out.values, short)):
        for row, per in by_row.items():
            into[row] = "; ".join(f"{ds}: " * many + " / ".join(texts) for ds, texts in per.items())
    groups: dict[Any, list[Cell]] = {}
    for c in cells:
        if c.role == "final":
            groups.setdefault(c.group, []).append(c)
    out.lines += _unequal_effort(read, [finals[0] for finals in groups.values()])
    for finals in groups.values():   # (the group's choice is shared: any of its final cells that trained)
        final = next((c for c in finals if tune.trained_values(folder, c) is not None), finals[0])
        out.lines.append(_tuning_line(read, out.rows, final))
    return out


def _effort(read: tune.Tuning, final: Cell) -> str:
    """The tuning effort of ``final``'s group: ``3 tuning cells per group (3
    values × 1 seed, 1 epoch capped at 6 steps each)``."""
    members = read.members(final)
    seeds = len({c.seed for c in members})
    budget = tune.budget(read.spec, members[0]) if members else {}
    return (f"{count(len(members), 'tuning cell')} per group ({count(len(read.choice(final).points), 'value')} × "
            f"{count(seeds, 'seed')}, {_steps(budget)} each)")


def _unequal_effort(read: tune.Tuning, finals: list[Cell]) -> list[str]:
    """A line where the tuned regularizers of the table got different tuning
    effort (``finals``: a final cell of each group): their number of tuning
    cells per group (grid values × tuning seeds) or the budget of each
    differ, e.g. a plugin's own grid of 7 values against another's 2 in
    ``[reg.NAME.tune]``.  A head-to-head of tuned regularizers is fair only
    under equal effort.  Nothing where it is equal, or one regularizer is tuned."""
    by_reg: dict[str, list[str]] = {}
    for final in finals:
        text = _effort(read, final)
        if text not in by_reg.setdefault(final.regularizer, []):
            by_reg[final.regularizer].append(text)
    if len(by_reg) < 2 or len({tuple(texts) for texts in by_reg.values()}) < 2:
        return []
    each = "; ".join(f"{reg}: {' / '.join(texts)}" for reg, texts in by_reg.items())
    return [f"WARNING: unequal tuning effort: {each}; the head-to-head of tuned values is fair only under equal "
            f"effort (give each regularizer's [reg.NAME.tune] as many values, at the same budget)"]


def _tuning_line(read: tune.Tuning, rows: list[dict[str, Any]], final: Cell) -> str:
    """One group's grid with every value's validation score, the chosen one
    marked (and its tuning.csv rows, appended to ``rows``); the scores with
    enough decimals to tell apart values that differ (:func:`distinct_decimals`); a
    value with some seeds scored, or one failed, as it stands
    (:func:`_point_text`)."""
    spec = read.spec
    metric = spec.tune.metric
    trained = tune.trained_values(read.folder, final) is not None
    ch = read.choice(final)
    pick = ch.made
    digits = distinct_decimals([mean_std(p.scores)[0] for p in ch.points
                                if _state(p) in ("ok", "pending") and p.scores])
    seed_of = {c.id: c.seed for c in read.members(final)}
    parts = []
    for p in ch.points:
        chosen = p.values == pick
        parts.append(f"{values_text(p.values)}: {_point_text(p, digits)}" + (" (chosen)" if chosen else ""))
        state = _state(p)
        mean, std = mean_std(p.scores) if p.scores and state in ("ok", "pending") else (None, None)
        name = f"val:{score_name(spec, metric)}"
        rows.append({"regularizer": final.regularizer, "arch": final.arch, "dataset": final.dataset,
                     **{k: format_value(v) for k, v in final.axes},
                     **{f"tuned:{k}": format_value(v) for k, v in p.values.items()},
                     "state": state, name: "" if mean is None else repr(mean),
                     f"{name}:std": "" if std is None else repr(std),
                     f"{name}:scores": " ".join(map(repr, p.scores)),
                     "seeds": len(p.scores), "chosen": chosen, "error": p.errors[0] if p.errors else "",
                     f"{name}:seeds": " ".join(str(seed_of[cid]) for cid in _scored_cells(p)),
                     "pending": len(p.pending)})
    if pick is None:
        status = (" (waiting for its tuning cells)" if ch.pending else
                  f" (no choice yet: {len(ch.failed)} tuning cell(s) failed; rerun to retry them)" if ch.failed
                  else " (every value diverged)")
    else:
        own = spec.tune_axes(final.regularizer) is not None
        status = _scored(ch) + _tie(ch) + _within_spread(ch, pick, digits) + (
            "" if ch.ties else _at_edge(ch, pick, final.regularizer, own)) + (
            "" if trained else " (best so far: its final cells have not run)")
    where = " · ".join([final.regularizer, final.arch, final.dataset,
                        *(f"{axis_label(k)} = {display_value(v)}" for k, v in final.axes)])
    return f"{where}, validation {validation_metric(spec)}: " + "; ".join(parts) + (f" —{status}" if status else "")


def _state(p: tune.Point) -> str:
    """A point's state as the tuning section and tuning.csv show it: a
    divergence or failure as soon as one seed's cell has one, even while
    another seed's is pending (:attr:`~wae_bench.bench.tune.Point.state`
    says "pending" until every seed ran); "excluded" where its failed cells
    were all excluded from the choice (``bench --exclude-failed-tuning``)."""
    return ("diverged" if p.diverged else "failed" if p.failed else "excluded" if p.excluded else
            "failed" if p.errors else "pending" if p.pending else "ok")


def _scored_cells(p: tune.Point) -> list[str]:
    """The ids of the cells whose scores :attr:`~wae_bench.bench.tune.Point.scores`
    holds, in the same order: those neither pending nor with an error."""
    return [cid for cid in p.cells if cid not in p.pending and not any(e.startswith(f"{cid}: ") for e in p.errors)]


def _point_text(p: tune.Point, digits: int) -> str:
    """A value's entry of the tuning line: its mean score; ``1.24 (1 of 2
    seeds)`` while some seeds are scored and others pending; ``failed (out
    of memory), 1 seed pending`` (or ``diverged``) as soon as a seed's cell
    failed; ``pending`` before any seed ran."""
    state = _state(p)
    waiting = f", {count(len(p.pending), 'seed')} pending" if p.pending else ""
    if state in ("diverged", "failed", "excluded"):
        return f"{state} ({_clip(p.errors[0].split(': ', 1)[-1])}){waiting}"
    if not p.scores:
        return "pending"
    text = number(mean_std(p.scores)[0], digits)
    return text + (f" ({len(p.scores)} of {len(p.cells)} seeds)" if p.pending else "")


def _clip(error: str, most: int = 100) -> str:
    """An error's first clause (up to its first ``;``), cut to at most
    ``most`` characters at a word boundary, with ``…``: before a parenthesis
    the cut would leave open where that keeps half of it (``no loadable
    checkpoint in '.../checkpoints'…``), else with the parentheses it left
    open closed (``... (2 unreadable, newest…)``)."""
    clause = error.split(";")[0].strip()
    if len(clause) <= most:
        return clause
    cut = clause[:most]
    cut = (cut[:cut.rfind(" ")] if " " in cut else cut).rstrip(" ,:(—-")
    stack: list[int] = []     # (where each parenthesis left open so far starts)
    for i, ch in enumerate(cut):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            stack.pop()
    if stack and stack[0] >= most // 2:
        cut, stack = cut[:stack[0]].rstrip(" ,:—-"), []
    return cut + "…" + ")" * len(stack)


def distinct_decimals(means: list[float], most: int = 4) -> int:
    """The number of decimals that print every two different ``means`` differently
    (from :func:`~wae_bench.bench.aggregate.decimals` of the lowest, up to
    ``most`` more): a margin of 0.0004 is not shown as 12.80 against 12.80."""
    if not means:
        return 2
    base = decimals(min(means))
    distinct = sorted(set(means))
    for d in range(base, base + most + 1):
        if len({f"{v:.{d}f}" for v in distinct}) == len(distinct):
            return d
    return base + most


def _scored(ch: tune.Choice) -> str:
    """A note where only some values scored (the others failed or diverged)."""
    n, k = len(ch.points), len(ch.scored)
    return f" (only {k} of {n} values scored)" if k < n else ""


def _tie(ch: tune.Choice) -> str:
    """A note where the best score is shared exactly (:attr:`~wae_bench.bench.tune.Choice.ties`):
    the first value listed is used; no advice to widen the grid follows."""
    tied = ch.ties
    if not tied:
        return ""
    keys = [k for k in tied[0].values if len({format_value(p.values[k]) for p in tied}) > 1] or list(tied[0].values)
    shown = "; ".join(f"{axis_label(k)} = {', '.join(display_value(p.values[k]) for p in tied)}" for k in keys)
    return f" (tie: {shown} score alike; the first listed is used)"


def _at_edge(ch: tune.Choice, pick: dict[str, Any] | None, regularizer: str, own: bool) -> str:
    """A note where the chosen value is the lowest or highest of its axis
    among the values that scored (:meth:`~wae_bench.bench.tune.Choice.edges`):
    the best may lie beyond it.  ``own``: the grid is the spec's
    ``[reg.NAME.tune]``, which widens in the same folder
    (:func:`~wae_bench.bench.spec.widens`); the plugin's own grid does not."""
    edges = ch.edges(pick or {})
    if not edges:
        return ""
    where = "; ".join(f"{axis_label(k)} = {display_value(pick[k])}, its {side}" for k, side in edges.items())
    how = (f"widen [reg.{regularizer}.tune]" if own else
           f"give [reg.{regularizer}.tune] a wider grid, in another --out: this folder tuned the plugin's own")
    return f" (at the edge of the grid: {where}; {how})"


def _within_spread(ch: tune.Choice, pick: dict[str, Any] | None, digits: int) -> str:
    """A note where the chosen value beats the next best by less than the
    seed spread (:func:`~wae_bench.bench.aggregate.within_spread`); nothing
    with one seed (the header says the spread is unknown there).  The margin
    and spread with the scores' ``digits``, or as many more as the margin
    needs not to print as 0 (:func:`distinct_decimals` of 0 and the margin): 0.003
    beside 12.769 and 12.772, not 0.00."""
    ok = ch.scored
    best = next((p for p in ok if p.values == pick), None)
    rest = sorted((p for p in ok if p is not best), key=lambda p: p.mean)
    close = within_spread(best.scores, rest[0].scores) if best is not None and rest else None
    if close is None:
        return ""
    margin, spread = close
    digits = max(digits, distinct_decimals([0.0, margin]))
    return (f" (margin {number(margin, digits)} to {values_text(rest[0].values)} is below the seed spread, std "
            f"{number(spread, digits)}: "
            f"the choice may be noise)")


def tuning_csv(metric: str, rows: list[dict[str, Any]]) -> str:
    """``tuning.csv``: the :attr:`TuningSummary.rows` (per value of the tuned
    axes: its state (:func:`_state`), the mean validation score over the
    tuning seeds scored so far, its sample std -- empty with one seed -- and
    each seed's score, their number (``seeds``), whether it was chosen, the
    first error, the seed of each score in the same order (``:seeds``, as
    ``table.csv``'s) and the seeds not run yet (``pending``)), ``metric`` the tuning
    metric's name (:func:`~wae_bench.bench.table_notes.score_name`: ``standin-fid`` with stand-in features)."""
    buf = io.StringIO()
    tail = ["state", f"val:{metric}", f"val:{metric}:std", f"val:{metric}:scores", "seeds", "chosen", "error",
            f"val:{metric}:seeds", "pending"]
    head = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in tail] + tail
    w = csv.DictWriter(buf, head, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()

