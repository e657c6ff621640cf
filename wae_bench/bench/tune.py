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
validation score over the tuning seeds; failed tuning cells and non-finite
scores (divergence) are never chosen; a diverged tuning cell is a result,
not an error: it is not retried.  The choice is recorded once, in
``RESULTS_DIR/tuning/<final cell id>.json`` (the values, the grid, the
budget, every point's scores), and a resumed final cell keeps it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from wae_bench import atomic
from wae_bench.bench import grid
from wae_bench.bench.folder import ResultsDir, State, score
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import Spec
from wae_bench.config import EvalSettings
from wae_bench.errors import WaeError
from wae_bench.run.directory import RunDir, stale

RULE = "lowest mean validation {metric} over the tuning seeds; failed or diverged values are never chosen"


class Waiting(WaeError):
    """A final cell whose tuning cells are not all done or failed (another
    shard or a later run has them): it runs later; not an error."""


def eval_settings(spec: Spec, cell: Cell) -> EvalSettings:
    """What ``cell`` is scored by: a tuning cell by its plugin's sampler
    against the validation split, at the tuning sample count; others as the spec says."""
    if cell.role != "tune":
        return spec.eval
    t = spec.tune
    return dataclasses.replace(spec.eval, fid_samples=t.fid_samples, metrics=[t.metric],
                               what=[grid.sampler(cell.regularizer)], split="val")


def cell_state(folder: ResultsDir, spec: Spec, cell: Cell) -> str:
    """The folder's state of ``cell`` (:meth:`ResultsDir.state`); "stale" for
    a cell whose run was trained with settings other than those it resolves
    to now (:func:`changes`: never done, never resumed); "diverged" for a
    tuning cell that failed on a non-finite loss."""
    state: State = folder.state(cell, eval_settings(spec, cell))
    if state != "pending" and changes(folder, cell):
        return "stale"
    if state == "failed" and cell.role == "tune" and (folder.failure(cell.id) or {}).get("diverged"):
        return "diverged"
    return state


def changes(folder: ResultsDir, cell: Cell) -> list[str]:
    """How the run in ``cell``'s folder differs from what the cell resolves to
    now, e.g. ``["reg.lambda 0.5 -> 2.0"]`` after a plugin's default changed
    (:func:`wae_bench.run.directory.stale`); a final cell is compared with
    its recorded tuned values.  [] for a folder without a run."""
    run = RunDir(folder.cell_dir(cell.id))
    if not run.config_path.is_file():
        return []
    o = cell.overrides
    if cell.role == "final":
        rec = recorded(folder, cell)
        if rec is None:   # (its tuned values were never recorded: nothing to compare them with)
            return []
        o = apply(o, rec["values"])
    return stale(run, o)


def refuse_stale(folder: ResultsDir, cells: list[Cell]) -> None:
    """Refuse, in one line naming each such cell, its changed settings and
    the fix, to train, resume or skip as done a cell whose run no longer
    matches its settings: retraining would replace a result, reusing it
    would present an old one as current."""
    found = [(c, d) for c in cells for d in [changes(folder, c)] if d]
    if not found:
        return
    shown = "; ".join(f"{c.id} ({', '.join(d)})" for c, d in found[:3]) + ("; ..." if len(found) > 3 else "")
    raise WaeError(f"{len(found)} cell(s) in {str(folder.path)!r} were trained with settings other than the spec "
                   f"resolves to now: {shown}; remove those cells' folders ({str(folder.cells_path)}/ID) to retrain "
                   f"them, or use another --out")


def members(cells: list[Cell], final: Cell) -> list[Cell]:
    """The tuning cells of ``final``'s group (``cells``: the whole expansion)."""
    return [c for c in cells if c.role == "tune" and c.group == final.group]


def nothing_to_tune(spec: Spec, cells: list[Cell]) -> list[str]:
    """One line per regularizer of a ``[tune]`` spec whose cells have nothing
    to tune (its plugin has no :attr:`~wae_bench.regularizer.Regularizer.tuning_spans`
    and the spec gives no ``[reg.NAME.tune]``): they train once at their settings."""
    if spec.tune is None:
        return []
    regs = dict.fromkeys(c.regularizer for c in cells if c.role == "plain")
    return [f"{r}: nothing to tune (no tuning_spans); give [reg.{r}.tune] values to tune it" for r in regs]


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
    pending: list[str] = field(default_factory=list)    # ids not done or failed yet

    @property
    def state(self) -> str:
        if self.pending:
            return "pending"
        return "diverged" if self.diverged else "failed" if self.errors else "ok"

    @property
    def mean(self) -> float | None:
        return math.fsum(self.scores) / len(self.scores) if self.scores and self.state == "ok" else None

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "state": self.state, "mean": self.mean, "scores": self.scores,
                "cells": self.cells, "errors": self.errors}


@dataclass
class Choice:
    """The tuning group's points in grid order and the best of them."""

    points: list[Point]

    @property
    def pending(self) -> list[str]:
        return [cid for p in self.points for cid in p.pending]

    @property
    def best(self) -> Point | None:
        ok = [p for p in self.points if p.mean is not None]
        return min(ok, key=lambda p: p.mean) if ok else None     # ties: the first in grid order

    @property
    def grid(self) -> dict[str, list]:
        keys = list(self.points[0].values) if self.points else []
        return {k: list(dict.fromkeys(p.values[k] for p in self.points)) for k in keys}

    def edges(self, values: dict[str, Any]) -> dict[str, str]:
        """The numeric axes of two or more values on which ``values`` (a
        choice) is the grid's ``"lowest"`` or ``"highest"`` value: the best
        may lie beyond it, so the grid should be widened."""
        out = {}
        for key, vs in self.grid.items():
            if len(vs) > 1 and all(map(grid.is_number, vs)) and values.get(key) in (min(vs), max(vs)):
                out[key] = "lowest" if values[key] == min(vs) else "highest"
        return out


def choose(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell]) -> Choice:
    """Read the tuning cells of ``final``'s group from the results folder."""
    points: dict[str, Point] = {}
    for c in members(cells, final):
        values = tuned_values(c)
        p = points.setdefault(grid.format_value(values), Point(values))
        p.cells.append(c.id)
        ev = eval_settings(spec, c)
        state = cell_state(folder, spec, c)
        if state == "done":
            v = score(folder.results(c.id), ev.what[0], spec.tune.metric)
            if math.isfinite(v):
                p.scores.append(v)
            else:
                p.errors.append(f"{c.id}: validation {spec.tune.metric} is {v}")
                p.diverged = True
        elif state in ("failed", "diverged"):
            p.errors.append(f"{c.id}: {folder.failure(c.id)['error']}")
            p.diverged |= state == "diverged"
        else:
            p.pending.append(c.id)
    return Choice(list(points.values()))


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
    """The choice recorded for ``final`` (None before it first ran)."""
    p = record_path(folder, final)
    try:
        rec = json.loads(p.read_text()) if p.is_file() else None
        if rec is not None and not (isinstance(rec, dict) and isinstance(rec.get("values"), dict)
                                    and isinstance(rec.get("grid"), dict)):
            raise ValueError("no values and grid tables: not a tuning record")
        return rec
    except (OSError, ValueError) as e:
        raise WaeError(f"{str(p)!r} is unreadable ({e}); delete it to choose again from the tuning cells") from None


def ready(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell], busy: set[str] = frozenset()) -> bool:
    """Whether ``final`` can run now: its choice is recorded, or every tuning
    cell of its group is done or failed and none is queued or running (``busy``)."""
    if final.role != "final" or recorded(folder, final) is not None:
        return True
    ch = choose(folder, spec, final, cells)
    return not ch.pending and not any(cid in busy for p in ch.points for cid in p.cells)


def chosen(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell]) -> dict[str, Any] | None:
    """``final``'s tuned values: recorded, or the best so far once its group
    is complete; None while pending or when every value failed."""
    rec = recorded(folder, final)
    if rec is not None:
        return rec["values"]
    ch = choose(folder, spec, final, cells)
    return None if ch.pending or ch.best is None else ch.best.values


def settle(folder: ResultsDir, spec: Spec, final: Cell, cells: list[Cell]) -> dict[str, Any]:
    """The tuned values of ``final``: recorded, or chosen now and recorded.
    Raises :class:`Waiting` while the group is incomplete, a :class:`WaeError`
    when every value failed."""
    rec = recorded(folder, final)
    if rec is not None:
        return rec["values"]
    ch = choose(folder, spec, final, cells)
    if ch.pending:
        raise Waiting(f"cell {final.id} waits for {len(ch.pending)} tuning cell(s) ({ch.pending[0]}, ...); "
                      f"it runs once they are done (rerun after the other shards)")
    best = ch.best
    if best is None:
        raise WaeError(f"every tuning cell of {final.id} failed or diverged ({ch.points[0].errors[0]}); fix the "
                       f"cause or give [reg.{final.regularizer}.tune] other values, then rerun")
    members_ = members(cells, final)
    atomic.write_json(record_path(folder, final), {
        "cell": final.id, "tuned": True, "values": best.values, "score": best.mean, "grid": ch.grid,
        "budget": budget(spec, members_[0]), "rule": RULE.format(metric=spec.tune.metric),
        "points": [p.as_dict() for p in ch.points], "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return best.values


def apply(overrides: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the tuned ``values`` set (``reg.KEY`` into the reg table)."""
    out = {**overrides, "reg": dict(overrides.get("reg", {}))}
    for key, v in values.items():
        if key.startswith("reg."):
            out["reg"][key[4:]] = v
        else:
            out[key] = v
    return out


def overrides(folder: ResultsDir, spec: Spec, cell: Cell, cells: list[Cell]) -> dict[str, Any]:
    """The TrainConfig overrides ``cell`` trains with (a final cell's tuned values set)."""
    if cell.role != "final":
        return cell.overrides
    return apply(cell.overrides, settle(folder, spec, cell, cells))
