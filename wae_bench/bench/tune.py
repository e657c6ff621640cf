"""The tuning protocol at run time: one rule for every regularizer, so the
head-to-head is fair by construction (the MoCA paper chose its λ by a grid
search, App. A; the baselines' values come from their own papers, in other
units).

For each group -- a regularizer × architecture × dataset × spec-grid point --
the tuning cells (:func:`wae_bench.bench.grid.expand`) train every value of
the tuned axes at the ``[tune]`` budget, holding out ``tune.holdout``
training images (:mod:`wae_bench.data.holdout`), and are scored on those
validation images (never the test split) by the plugin's sampler
(:attr:`~wae_bench.regularizer.Regularizer.sampler`).  The group's final
cells then train at the full budget with the value of the lowest mean
validation score over the tuning seeds.  The choice is made only once
every tuning cell of the group is done or diverged: a diverged tuning cell
(a non-finite loss or score) is a result, never chosen and never retried; a
failed one (an error) is retried by the next run, so it blocks the choice
and the final cells wait for it (:class:`Waiting`) -- unless the user
excludes it (``bench --exclude-failed-tuning``, :meth:`Tuning.exclude_failed`):
its ``failed.json`` then says ``"excluded": true``, it is never retried and
its value never chosen, and the choice is made over the rest, for this run
and every later one (until its folder is removed).

The choice is always the one the group's tuning cells make now
(:meth:`Tuning.chosen`; a :class:`Tuning` reads each group's tuning cells
once, until told they may have changed); ``RESULTS_DIR/tuning/<final cell
id>.json`` records the one a final cell trained with (the values, the grid,
the budget, every point's scores).  A final cell's tuned values are read from its own
``config.json`` (:func:`trained_values`); one trained at values other
than the current choice -- the scores it rests on changed, its group's grid
moved -- is stale (:meth:`Tuning.changes`), so a table row never pools cells
trained at different values.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from wae_bench import atomic, worded
from wae_bench.bench import grid
from wae_bench.bench.folder import ResultsDir, State, evaluation, score
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import Spec
from wae_bench.config import EvalSettings
from wae_bench.errors import WaeError
from wae_bench.lock import Busy
from wae_bench.run.directory import RunDir, stale

RULE = ("lowest mean validation {metric} over the tuning seeds, made once every tuning cell is done or diverged; "
        "diverged values (and failed ones excluded with --exclude-failed-tuning) are never chosen; on an exact tie "
        "the first value listed")
EXCLUDE_FLAG = "--exclude-failed-tuning"
# (the alternative to retrying a failed tuning cell, as the waiting lines word it)
EXCLUDE_HINT = f"or rerun with {EXCLUDE_FLAG} to choose among the other values (a failed value is then never chosen)"


def retry_words() -> str:
    """How to retry a failed cell: ``rerun (without --skip-failed)`` in a
    bench; in `wae-bench compare` (no --skip-failed; it retries failed
    cells), ``rerun the same compare command``."""
    return worded.rerun() if worded.now().command == "compare" else "rerun (without --skip-failed)"


class Waiting(WaeError):
    """A final cell whose group's choice cannot be made yet: a tuning cell is
    not done (another shard or a later run has it) or failed (the next run
    retries it, unless excluded: :data:`EXCLUDE_FLAG`); it runs later, not an error."""


def eval_settings(spec: Spec, cell: Cell) -> EvalSettings:
    """What ``cell`` is scored by: a tuning cell by its plugin's sampler
    against the validation split, at the tuning sample count; others as the spec says."""
    if cell.role != "tune":
        return spec.eval
    t = spec.tune
    return dataclasses.replace(spec.eval, fid_samples=t.fid_samples, metrics=[t.metric],
                               what=[grid.sampler(cell.regularizer)], split="val")


def same(a: Any, b: Any) -> bool:
    """Equal tuned values (``1`` and ``1.0`` alike, as cell ids print them)."""
    return grid.is_number(a) and grid.is_number(b) and float(a) == float(b) or a == b


def trained_values(folder: ResultsDir, final: Cell) -> dict[str, Any] | None:
    """The tuned values ``final`` trained (or is training) at, read from its
    own ``config.json``; None without one (or one that lacks a tuned key)."""
    cfg = (folder.config(final.id) or {}).get("config")
    if not isinstance(cfg, dict):
        return None
    out = {}
    for key in final.tuned:
        table, name = (cfg.get("reg"), key[4:]) if key.startswith("reg.") else (cfg, key)
        if not isinstance(table, dict) or name not in table:
            return None
        out[key] = table[name]
    return out


def members(cells: list[Cell], final: Cell) -> list[Cell]:
    """The tuning cells of ``final``'s group (``cells``: the whole expansion)."""
    return [c for c in cells if c.role == "tune" and c.group == final.group]


def nothing_to_tune(spec: Spec, cells: list[Cell], command: str = "bench") -> list[str]:
    """One line per regularizer of a ``[tune]`` spec whose cells have nothing
    to tune (its plugin has no :attr:`~wae_bench.regularizer.Regularizer.tuning_spans`
    and the spec gives no ``[reg.NAME.tune]``): they train once at their settings.
    The fix is the spec's table, or for ``compare``, which has no spec file of
    the user's, the ``--set`` that gives it."""
    if spec.tune is None:
        return []
    regs = dict.fromkeys(c.regularizer for c in cells if c.role == "plain")
    fix = ((lambda r: f"--set 'reg.{r}.tune.reg.KEY=[V1,V2]' gives it values to tune") if command == "compare"
           else (lambda r: f"give [reg.{r}.tune] values to tune it"))
    return [f"{r}: nothing to tune (no tuning_spans); {fix(r)}" for r in regs]


def unjudged_samplers(spec: Spec, cells: list[Cell] | None = None) -> dict[str, str]:
    """The tuned regularizers (those with tuning cells in ``cells``, default
    the spec's expansion) whose sampler -- the column their tuning cells are
    scored by (:func:`eval_settings`) -- is not one of ``eval.what``, the
    columns of the final cells and the table, with that sampler: their value
    was chosen on a column the table does not show."""
    if spec.tune is None:
        return {}
    cells = grid.expand(spec) if cells is None else cells
    tuned = dict.fromkeys(c.regularizer for c in cells if c.role == "tune")
    return {r: grid.sampler(r) for r in tuned if grid.sampler(r) not in spec.eval.what}


def unjudged_line(spec: Spec, cells: list[Cell] | None = None) -> str | None:
    """One line on :func:`unjudged_samplers` with the fix (None where every
    tuned sampler is a column): said by ``bench --dry-run``, at the start of
    a bench, and in the table's tuning section."""
    found = unjudged_samplers(spec, cells)
    if not found:
        return None
    samplers = list(dict.fromkeys(found.values()))
    return (f"{', '.join(f'{r} (its sampler: {s})' for r, s in found.items())} "
            f"{'is' if len(found) == 1 else 'are'} tuned on {' and '.join(samplers)} scores, but eval.what = "
            f"{', '.join(spec.eval.what)} does not show {'that column' if len(samplers) == 1 else 'those columns'}"
            f": the value was chosen on a column the table leaves out; add {', '.join(samplers)} to eval.what "
            f"(in the spec's [eval] what, for a new --out: it is part of the folder's spec)")


# The states of a cell that no run trains again: done; a tuning cell diverged, or failed and excluded.
SETTLED = ("done", "diverged", "excluded")


def tuned_values(cell: Cell) -> dict[str, Any]:
    return {k: v for k, v in cell.axes if k in cell.tuned}


@dataclass
class Point:
    """One value of the tuned axes: its tuning cells over the seeds."""

    values: dict[str, Any]
    cells: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)     # one line per failed or diverged cell
    diverged: bool = False                               # a non-finite loss or score
    pending: list[str] = field(default_factory=list)    # ids not done, failed or diverged yet
    failed: list[str] = field(default_factory=list)     # ids that failed (not diverged): retried by the next run
    excluded: list[str] = field(default_factory=list)   # ids that failed and were excluded: never retried

    @property
    def state(self) -> str:
        if self.pending:
            return "pending"
        return ("diverged" if self.diverged else "excluded" if self.excluded and not self.failed else
                "failed" if self.errors else "ok")

    @property
    def mean(self) -> float | None:
        return math.fsum(self.scores) / len(self.scores) if self.scores and self.state == "ok" else None

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "state": self.state, "mean": self.mean, "scores": self.scores,
                "cells": self.cells, "errors": self.errors, **({"excluded": self.excluded} if self.excluded else {})}


@dataclass
class Choice:
    """The tuning group's points in grid order and the best of them."""

    points: list[Point]

    @property
    def pending(self) -> list[str]:
        return [cid for p in self.points for cid in p.pending]

    @property
    def failed(self) -> list[str]:
        """The failed (not diverged) tuning cells: the choice waits for their retry."""
        return [cid for p in self.points for cid in p.failed]

    @property
    def excluded(self) -> list[str]:
        """The failed tuning cells excluded from the choice (:data:`EXCLUDE_FLAG`): it does not wait for them."""
        return [cid for p in self.points for cid in p.excluded]

    @property
    def complete(self) -> bool:
        """Every tuning cell done or diverged: the choice can be made."""
        return not self.pending and not self.failed

    @property
    def made(self) -> dict[str, Any] | None:
        """The choice: the best point's values once every tuning cell is done
        or diverged; None while one is pending or failed, or when every value diverged."""
        return self.best.values if self.complete and self.best is not None else None

    @property
    def scored(self) -> list[Point]:
        return [p for p in self.points if p.mean is not None]

    @property
    def best(self) -> Point | None:
        """The lowest mean score; on an exact tie the first in grid order
        (the order ``[reg.NAME.tune]`` or the plugin lists the values)."""
        ok = self.scored
        return min(ok, key=lambda p: p.mean) if ok else None

    @property
    def ties(self) -> list[Point]:
        """The points scoring exactly as the best one (the best first); [] without a tie."""
        best = self.best
        tied = [p for p in self.scored if best is not None and p.mean == best.mean]
        return tied if len(tied) > 1 else []

    @property
    def grid(self) -> dict[str, list]:
        return _axes(self.points)

    def edges(self, values: dict[str, Any]) -> dict[str, str]:
        """The numeric axes on which ``values`` (a choice) is the lowest or
        highest of the values that scored (two or more): the best may lie
        beyond it, so the grid should be widened.  ``"lowest value"`` /
        ``"highest value"``, with ``" that scored"`` where a value beyond it
        diverged."""
        out = {}
        scored, listed = _axes(self.scored), self.grid
        for key, vs in scored.items():
            if len(vs) > 1 and all(map(grid.is_number, vs)) and values.get(key) in (min(vs), max(vs)):
                low = values[key] == min(vs)
                beyond = [v for v in listed[key] if grid.is_number(v) and (v < min(vs) if low else v > max(vs))]
                out[key] = ("lowest" if low else "highest") + " value" + (" that scored" if beyond else "")
        return out


def _axes(points: list[Point]) -> dict[str, list]:
    keys = list(points[0].values) if points else []
    return {k: list(dict.fromkeys(p.values[k] for p in points)) for k in keys}


def budget(spec: Spec, cell: Cell) -> dict[str, Any]:
    """The tuning budget of ``cell``'s group, as recorded and tabulated."""
    t = spec.tune
    cfg = grid.resolve(cell) if cell.role == "tune" else None
    return {"epochs": cfg.epochs if cfg else t.epochs, "max_steps": cfg.max_steps if cfg else t.max_steps,
            "holdout": t.holdout, "seeds": spec.tune_seeds, "metric": t.metric, "fid_samples": t.fid_samples,
            "what": grid.sampler(cell.regularizer), "split": "val"}


def record_path(folder: ResultsDir, final: Cell):
    return folder.path / "tuning" / f"{final.id}.json"


def recorded(folder: ResultsDir, final: Cell) -> dict[str, Any] | None:
    """The choice ``final`` last trained with (None before it first ran):
    the evidence, never what decides its value (:func:`chosen` does)."""
    p = record_path(folder, final)
    try:
        rec = json.loads(p.read_text()) if p.is_file() else None
        if rec is not None and not (isinstance(rec, dict) and isinstance(rec.get("values"), dict)
                                    and isinstance(rec.get("grid"), dict)):
            raise ValueError("no values and grid tables: not a tuning record")
        return rec
    except (OSError, ValueError) as e:
        raise WaeError(f"{str(p)!r} is unreadable ({e}); delete it (the choice is read from the tuning cells; the final cell's next run writes it again)") from None


# Why a final cell waits when the tuning cells it waits for are not known here (other shards', or a later run's).
TUNING_NOT_RUN = "its tuning cells have not run yet (another shard's, or outside --only): run them, then rerun"


def wait_line(ch: Choice) -> str:
    """Why the final cell of choice ``ch`` cannot run yet, in one line with
    the fix, the first failed tuning cell's error whole (the bench's line
    names the cell: ``[3/3] waiting ID: ...``)."""
    if ch.failed:
        n, first = len(ch.failed), ch.failed[0]
        error = next(e for p in ch.points for e in p.errors if e.startswith(f"{first}: ")).split(": ", 1)[1]
        return (f"{n} of its tuning cells failed, the first {first} with: {error} -- its value is chosen only "
                f"once every tuning cell is done or diverged: fix the cause and {retry_words()} to "
                f"retry {'it' if n == 1 else 'them'}, {EXCLUDE_HINT}")
    return (f"{len(ch.pending)} of its tuning cells are not done ({ch.pending[0]}"
            f"{', ...' if len(ch.pending) > 1 else ''}); it runs once they are (another shard's, or outside "
            f"--only: run them, then rerun)")


def apply(overrides: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the tuned ``values`` set (``reg.KEY`` into the reg table)."""
    out = {**overrides, "reg": dict(overrides.get("reg", {}))}
    for key, v in values.items():
        if key.startswith("reg."):
            out["reg"][key[4:]] = v
        else:
            out[key] = v
    return out


class Tuning:
    """The tuning protocol over one results folder: its ``spec`` (default the
    folder's) and that spec's whole expansion ``cells`` (default
    :func:`grid.expand` of it, when a final cell first needs its group), with
    each group's :class:`Choice` read from the folder once (:meth:`choice`)
    and kept until :meth:`forget`.  A command that only reads the folder
    (table, report, export, plots, ``bench --dry-run``) builds one, so each
    tuning cell is read once per command, not once per final cell of its
    group; a runner calls :meth:`forget` wherever a cell may have ended since
    (its own, another process's), so a final cell trains at the choice its
    group's tuning cells make then."""

    def __init__(self, folder: ResultsDir, spec: Spec | None = None, cells: list[Cell] | None = None):
        self.folder = folder
        self._spec, self._cells = spec, cells
        self._choices: dict[tuple, Choice] = {}   # Cell.group -> its choice as last read

    @property
    def spec(self) -> Spec:
        if self._spec is None:
            self._spec = self.folder.spec()
        return self._spec

    @property
    def cells(self) -> list[Cell]:
        """The spec's whole expansion (a final cell's tuning group is read from it)."""
        if self._cells is None:
            self._cells = grid.expand(self.spec)
        return self._cells

    def forget(self) -> None:
        """Drop every group's choice read so far: the next question reads the tuning cells again."""
        self._choices.clear()

    def members(self, final: Cell) -> list[Cell]:
        """The tuning cells of ``final``'s group."""
        return members(self.cells, final)

    def state(self, cell: Cell) -> str:
        """The folder's state of ``cell`` (:meth:`ResultsDir.state`); "stale" for
        a cell whose run was trained with settings other than those it resolves
        to now (:meth:`changes`: never done, never resumed); "diverged" for a
        tuning cell that failed on a non-finite loss; "excluded" for a failed
        tuning cell excluded from the choice (:meth:`exclude_failed`); "partial"
        for a tuning cell scored, but not by the tuning protocol (its top
        evaluation another one, e.g. `wae-bench eval` of its folder on the test
        split, and none in its history): the next run scores it on the validation split."""
        ev = eval_settings(self.spec, cell)
        state: State = self.folder.state(cell, ev)
        if state == "done" and cell.role == "tune" and self._validation(cell, ev) is None:
            state = "partial"
        if state != "pending" and self.changes(cell):
            return "stale"
        if state == "failed" and cell.role == "tune":
            fail = self.folder.failure(cell.id) or {}
            return "diverged" if fail.get("diverged") else "excluded" if fail.get("excluded") is True else state
        return state

    def exclude_failed(self, cells: list[Cell]) -> list[str]:
        """Exclude from the choice the failed (not diverged) tuning cells of the
        groups of ``cells`` (tuning or final cells; :data:`EXCLUDE_FLAG`): each
        one's ``failed.json`` gets ``"excluded": true``, where the evidence is,
        so that this run and every later one make the choice over the other
        values and never retry it (until its folder is removed).  A cell another
        process holds (being retried) is left to it.  Returns the ids excluded now."""
        groups = {c.group for c in cells if c.role in ("tune", "final")}
        out = []
        for c in self.cells:
            if c.role != "tune" or c.group not in groups or self.state(c) != "failed":
                continue
            try:
                with self.folder.cell_lock(c):
                    fail = self.folder.failure(c.id)
                    if fail is not None and not fail.get("diverged"):
                        atomic.write_json(self.folder.cell_dir(c.id) / "failed.json", {**fail, "excluded": True})
                        out.append(c.id)
            except Busy:
                continue
        self.forget()
        return out

    def changes(self, cell: Cell) -> list[str]:
        """How the run in ``cell``'s folder differs from what the cell resolves to
        now, e.g. ``["reg.lambda 0.5 -> 2.0"]`` after a plugin's default changed
        (:func:`wae_bench.run.directory.stale`); [] for a folder without a run.
        A final cell is compared with its group's current choice (:meth:`chosen`):
        ``reg.lambda 0.5 -> 0.15`` once its tuning chooses another value; while
        the choice is not made, with the values it trained at, which must still be
        in its group's grid (``reg.lambda 0.5 -> not in the tuning grid {0.45,
        1.5, 4.5}``)."""
        run = RunDir(self.folder.cell_dir(cell.id))
        if not run.config_path.is_file():
            return []
        o = cell.overrides
        if cell.role != "final":
            return stale(run, o)
        trained = trained_values(self.folder, cell)
        now = self.chosen(cell)
        if now is not None:
            return stale(run, apply(o, now))
        if trained is None:   # (a config.json without the tuned keys: nothing to compare them with)
            return []
        axes = self.choice(cell).grid   # (the tuned axes of its group as its tuning cells list them now)
        out = [f"{k} {grid.format_value(v)} -> not in the tuning grid {{{', '.join(map(grid.format_value, axes[k]))}}}"
               for k, v in trained.items() if k in axes and not any(same(v, x) for x in axes[k])]
        return out + stale(run, apply(o, trained))

    def refuse_stale(self, cells: list[Cell]) -> None:
        """Refuse, in one line naming each such cell, its changed settings and
        the fix, to train, resume or skip as done a cell whose run no longer
        matches its settings: retraining would replace a result, reusing it
        would present an old one as current."""
        found = [(c, d) for c in cells for d in [self.changes(c)] if d]
        if not found:
            return
        shown = "; ".join(f"{c.id} ({', '.join(d)})" for c, d in found[:3]) + ("; ..." if len(found) > 3 else "")
        folder = self.folder
        raise WaeError(f"{len(found)} cell(s) in {str(folder.path)!r} were trained with settings other than the "
                       f"spec resolves to now: {shown}; remove those cells' folders ({str(folder.cells_path)}/ID) "
                       f"to retrain them, or use another --out")

    def choice(self, final: Cell) -> Choice:
        """The tuning cells of ``final``'s group as read from the results
        folder: once per group until :meth:`forget`."""
        ch = self._choices.get(final.group)
        if ch is None:
            ch = self._choices[final.group] = self._read(final)
        return ch

    def _read(self, final: Cell) -> Choice:
        spec, folder = self.spec, self.folder
        points: dict[str, Point] = {}
        for c in self.members(final):
            values = tuned_values(c)
            p = points.setdefault(grid.format_value(values), Point(values))
            p.cells.append(c.id)
            state = self.state(c)
            if state == "done":
                v = self._validation(c, eval_settings(spec, c))
                if math.isfinite(v):
                    p.scores.append(v)
                else:
                    p.errors.append(f"{c.id}: validation {spec.tune.metric} is {v}")
                    p.diverged = True
            elif state in ("failed", "diverged", "excluded"):
                p.errors.append(f"{c.id}: {folder.failure(c.id)['error']}")
                p.diverged |= state == "diverged"
                if state != "diverged":
                    (p.failed if state == "failed" else p.excluded).append(c.id)
            else:
                p.pending.append(c.id)
        return Choice(list(points.values()))

    def _validation(self, cell: Cell, ev: EvalSettings) -> float | None:
        """A tuning cell's validation score: from the evaluation of its
        ``results.json`` that the tuning protocol ``ev`` asks for (the split,
        features, seed and number of images: :func:`~wae_bench.bench.folder.evaluation`;
        the top, else the newest in its history), never from another one at
        the top; None without one."""
        res = self.folder.results(cell.id) or {}
        what = ev.what[0]
        found, matched = evaluation(ev, res, what, cell.dataset)
        return score(found, what, self.spec.tune.metric) if matched else None

    def chosen(self, final: Cell) -> dict[str, Any] | None:
        """``final``'s group's choice now: the best value once every tuning cell
        is done or diverged; None while one is pending or failed, or when every
        value diverged."""
        return self.choice(final).made

    def ready(self, final: Cell, busy: set[str] = frozenset()) -> bool:
        """Whether ``final`` can be started now: every tuning cell of its group is
        done or diverged (:attr:`Choice.complete`: a failed one blocks the
        choice) and none is queued or running (``busy``, a failed one being retried)."""
        if final.role != "final":
            return True
        ch = self.choice(final)
        return ch.complete and not any(cid in busy for p in ch.points for cid in p.cells)

    def settle(self, final: Cell) -> dict[str, Any]:
        """The tuned values ``final`` trains at: its group's choice now
        (:meth:`chosen`), recorded in ``tuning/<final id>.json`` as the choice it
        trained with.  Raises :class:`Waiting` while a tuning cell of the group is
        pending or failed, a :class:`WaeError` when every value diverged."""
        spec, folder = self.spec, self.folder
        ch = self.choice(final)
        if not ch.complete:
            raise Waiting(wait_line(ch))
        best = ch.best
        if best is None:
            table = f"[reg.{final.regularizer}.tune]"
            how = (f"add values to {table} after the ones tuned (they stay listed: a grid only grows in place), "
                   f"then rerun, or use another --out" if spec.tune_axes(final.regularizer) is not None else
                   f"give {table} other values, in another --out (this folder tuned the plugin's own grid)")
            raise WaeError(f"every tuning cell of {final.id} diverged ({ch.points[0].errors[0]}); {how}")
        trained = trained_values(folder, final)
        if trained is not None and any(not same(trained[k], v) for k, v in best.values.items() if k in trained):
            # (a run started at another value -- the choice moved during this bench, e.g. a widened grid's new
            # cells trained first -- is not resumed at this one, and its record stays what it trained with)
            self.refuse_stale([final])
        rec = {"cell": final.id, "tuned": True, "values": best.values, "score": best.mean, "grid": ch.grid,
               "budget": budget(spec, self.members(final)[0]), "rule": RULE.format(metric=spec.tune.metric),
               "points": [p.as_dict() for p in ch.points],
               **({"excluded": {"cells": ch.excluded, "points": [p.values for p in ch.points if p.excluded],
                                "by": EXCLUDE_FLAG}} if ch.excluded else {})}
        try:
            old = recorded(folder, final)
        except WaeError:
            old = None    # (an unreadable record: written afresh)
        if old is None or {k: old.get(k) for k in rec} != json.loads(json.dumps(rec)):
            atomic.write_json(record_path(folder, final), {**rec, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return best.values

    def overrides(self, cell: Cell) -> dict[str, Any]:
        """The TrainConfig overrides ``cell`` trains with (a final cell's tuned values set)."""
        if cell.role != "final":
            return cell.overrides
        return apply(cell.overrides, self.settle(cell))


# One question asked of the folder as it is now (a Tuning of its own): for a single cell; a command
# asking of many cells builds one Tuning and asks it.
def changes(folder: ResultsDir, cell: Cell, spec: Spec | None = None, cells: list[Cell] | None = None) -> list[str]:
    """:meth:`Tuning.changes` (``spec``/``cells``: the spec and its whole expansion, default the folder's)."""
    return Tuning(folder, spec, cells).changes(cell)


def chosen(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell]) -> dict[str, Any] | None:
    """:meth:`Tuning.chosen`."""
    return Tuning(folder, spec, cells).chosen(final)


def settle(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell]) -> dict[str, Any]:
    """:meth:`Tuning.settle`."""
    return Tuning(folder, spec, cells).settle(final)
