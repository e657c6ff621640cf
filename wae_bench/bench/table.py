"""The results table in the layout of the MoCA paper's Table 1, collected:
rows = regularizer and architecture (and grid values), columns = datasets
(optionally the RAE paper's REC / N / GMM / Interp columns, Ghosh et al. 2020
Table 1), entries = mean ± std over seeds with the number of seeds.  Values
the papers report sit in columns of their own, marked "(cited)", never mixed
with ours.  Each row's entry in the column of its
plugin's own sampler (the one that judges it: prior samples, or the ex-post
GMM for the AE and RAE family) is marked, the best of those per dataset and
architecture too, and those within the seed spread of it
(:func:`~wae_bench.bench.aggregate.within_spread`).  The description, budget,
settings and evaluation protocol stated above the table come
from :mod:`~wae_bench.bench.table_notes`; with a ``[tune]`` table, each row's
tuned value and the tuning section from
:mod:`~wae_bench.bench.tuning_summary`.  :mod:`~wae_bench.bench.table_render`
writes and prints it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wae_bench.bench import grid, tune
from wae_bench.bench.aggregate import Entry, number, pooled_std, within_spread
from wae_bench.bench.folder import METRIC_SCORES, SCORE_NAMES, ResultsDir, better, evaluation, score
from wae_bench.bench.grid import Cell, format_value
from wae_bench.bench.spec import WHAT_LABELS, Cited, Spec, flat_keys
from wae_bench.bench.table_notes import (MIXED_CODE, budget, description, metric_label, mixed_code,
                                         one_or_varies, protocol, regularizer_code, resolved, row_code, row_settings,
                                         settings)
from wae_bench.bench.tuning_summary import tuning
from wae_bench.errors import WaeError
from wae_bench.run.directory import missing_plugin

RowKey = tuple[str, str | None, tuple]          # regularizer, arch, axes
ColKey = tuple[str, str]                        # dataset, what
NOT_STATED = "(not stated)"
OWN = "†"    # the entry of the row's own sampler: the column that judges it
NEAR = "≈"   # within the seed spread of the best own-sampler entry


def better_note(metric: str) -> str:
    """`` (lower is better)``, `` (higher is better)`` (:func:`~wae_bench.bench.folder.better`), or
    nothing for a score without a direction (a std)."""
    way = better(metric)
    return f" ({way} is better)" if way else ""


def points(tuning: tune.Tuning, cells: list[Cell], what: str, metric: str) -> dict[tuple, Entry]:
    """``{cell.point: Entry}``: each grid point's scores over its seeds in
    ``tuning``'s folder, each cell's from the evaluation whose protocol the
    spec asks for (:func:`~wae_bench.bench.folder.evaluation`; a cell
    with none is listed in the entry's ``other_protocol``); the score of a
    stale cell (:meth:`~wae_bench.bench.tune.Tuning.changes`: trained with
    settings other than the spec's now) is counted as stale, not shown as current."""
    folder = tuning.folder
    ev = tuning.spec.eval if cells else None
    out: dict[tuple, Entry] = {}
    for c in cells:
        e = out.setdefault(c.point, Entry())
        e.expected += 1
        res = folder.results(c.id)
        used, matched = evaluation(ev, res, what, c.dataset) if res else ({}, True)
        v = score(used, what, metric) if res else None
        if v is not None and tuning.changes(c):
            e.stale += 1
            e.unscored[c.seed] = "stale"
        elif v is not None:
            e.values.append(v)
            e.seeds.append(c.seed)
            if not matched:
                e.other_protocol.append(c.id)
        elif folder.failure(c.id) is not None:
            e.failed += 1
            e.diverged += bool(folder.failure(c.id).get("diverged"))
            e.excluded += folder.failure(c.id).get("excluded") is True
            e.unscored[c.seed] = "failed"
        else:
            e.unscored[c.seed] = "missing"
    return out


def _cited_axes(cited: Cited) -> tuple[tuple[str, Any], ...]:
    return tuple(flat_keys(cited.axes).items()) if cited.axes else ()


def _axes_match(cited: Cited, axes: tuple) -> bool:
    """The same grid values (1000 and 1000.0 alike)."""
    return ({k: format_value(v) for k, v in _cited_axes(cited)} == {k: format_value(v) for k, v in axes})


@dataclass
class Report:
    spec: Spec
    metric: str
    columns: list[ColKey]
    rows: list[RowKey]
    axis_keys: list[str]
    entries: dict[tuple[RowKey, ColKey], Entry] = field(default_factory=dict)
    cited: dict[tuple[RowKey, ColKey], Cited] = field(default_factory=dict)
    description: str = ""
    budget: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)                 # one line per regularizer
    row_settings: dict[RowKey, dict[str, Any]] = field(default_factory=dict)   # table.csv's settings column
    axis_values: dict[RowKey, dict[str, str]] = field(default_factory=dict)    # each row's resolved axis values
    marks: dict[tuple[RowKey, ColKey], str] = field(default_factory=dict)     # "best" / "near" (own sampler's)
    judged_by: dict[str, str] = field(default_factory=dict)   # regularizer -> its plugin's sampler
    protocol: list[str] = field(default_factory=list)
    tuned: dict[RowKey, str] = field(default_factory=dict)     # the "tuned" column (specs with [tune])
    tuned_values: dict[RowKey, str] = field(default_factory=dict)   # the same, the value alone (table.tex)
    tuned_grids: dict[str, list[str]] = field(default_factory=dict)  # regularizer -> grids and budgets tuned over
    tuning: list[str] = field(default_factory=list)            # the tuning section
    tuning_rows: list[dict[str, Any]] = field(default_factory=list)   # tuning.csv
    tuning_read: tune.Tuning | None = None   # the folder's tuning as the table read it (the report and exports reuse it)
    code: list[str] = field(default_factory=list)         # the regularizer code block under the table
    code_paper: list[str] = field(default_factory=list)   # the same without local paths (table.tex)
    mixed_code: dict[RowKey, str] = field(default_factory=dict)   # rows pooling cells of different plugin code
    row_code: dict[RowKey, str] = field(default_factory=dict)     # table.csv's code column
    unknown_spread: list[tuple[RowKey, ColKey]] = field(default_factory=list)   # compared with a best on one seed

    @property
    def cited_columns(self) -> set[ColKey]:
        return {col for (_, col) in self.cited}

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(c.source for c in self.cited.values()))

    def header(self, col: ColKey, cited: bool = False) -> str:
        ds, what = col
        name = ds if [w for _, w in self.columns] == ["samples"] * len(self.columns) else f"{ds}: {WHAT_LABELS[what]}"
        return f"{name} (cited)" if cited else name

    def layout(self) -> list[tuple[ColKey, bool]]:
        out = []
        for col in self.columns:
            out.append((col, False))
            if col in self.cited_columns:
                out.append((col, True))
        return out

    def own(self, row: RowKey) -> str | None:
        """The column kind that judges a row: its plugin's sampler (``samples``, ``gmm``, ``n``;
        None for a row only cited)."""
        return self.judged_by.get(row[0])

    def row_cells(self, row: RowKey, short: bool = False, marked: bool = True) -> list[str]:
        """A row's leading cells: regularizer, arch, its axis values and (with
        ``[tune]``) its tuned column, ``short``: the value alone (``λ = 100``,
        the grid and budget stated apart: :attr:`tuned_grids`); ``marked``:
        the regularizer of a row pooling cells of different plugin code
        followed by :data:`~wae_bench.bench.table_notes.MIXED_CODE` (not in
        table.csv, whose ``code`` column says it)."""
        reg, arch, axes = row
        reg += MIXED_CODE if marked and row in self.mixed_code else ""
        values = {**self.axis_values.get(row, {}), **{k: format_value(v) for k, v in axes}}
        tuned = [(self.tuned_values if short else self.tuned).get(row, "")] if self.spec.tune is not None else []
        return [reg, arch or NOT_STATED, *(values.get(k, "") for k in self.axis_keys), *tuned]

    @property
    def marks_own(self) -> bool:
        """Whether own-sampler entries are marked :data:`OWN`: where the
        table has more than one kind of column to judge a row by."""
        return len({w for _, w in self.columns}) > 1

    def value(self, row: RowKey, col: ColKey, cited: bool, best_word: bool = True) -> str:
        """An entry's text with its marks: :data:`OWN` after the row's
        own-sampler entry (:attr:`marks_own`), :data:`NEAR` before one within
        the seed spread of the best, ``best`` after the best (``best_word``:
        table.tex says it in bold alone)."""
        if cited:
            c = self.cited.get((row, col))
            return "" if c is None else f"{number(c.value)} [{self.sources.index(c.source) + 1}]"
        e = self.entries.get((row, col))
        if e is None or not e.expected:
            return ""
        text = e.text()
        if not e.values or col[1] != self.own(row):
            return text
        mark = self.marks.get((row, col))
        return (NEAR if mark == "near" else "") + text + (OWN if self.marks_own else "") + \
            (" best" if mark == "best" and best_word else "")


def results_folder(path: str | Path, command: str = "table") -> ResultsDir:
    """The benchmark results folder ``path`` for ``wae-bench COMMAND``; a
    folder inside one (a cell's, ``cells/``, ``plots/``) is refused naming
    the results folder to pass, and a run folder of ``wae-bench run`` (its
    ``config.json``, no ``spec.json``) naming what it is, each in one line
    (any other folder without ``spec.json``: :meth:`ResultsDir.spec`)."""
    p = Path(path)
    if not (p / "spec.json").is_file():
        up = next((a for a in (os.path.normpath(p / ".."), os.path.normpath(p / ".." / ".."))
                   if (Path(a) / "spec.json").is_file()), None)
        if up is not None:
            raise WaeError(f"{str(path)!r} is inside the benchmark results folder {up!r} (a cell or a folder of "
                           f"it); pass that folder: wae-bench {command} {up}")
        if (p / "config.json").is_file():
            raise WaeError(f"{str(path)!r} is a run folder of `wae-bench run` (config.json, no spec.json), not a "
                           f"benchmark results folder: its scores are in its results.json (`wae-bench eval {path}` "
                           f"scores it again); `wae-bench {command}` takes the --out of a `wae-bench bench` run")
    return ResultsDir(p)


def require_plugins(folder: ResultsDir) -> None:
    """Every plugin the folder's cells trained with is here (the table expands
    the grid by them: tuning grids, samplers, defaults): the first one that
    is not, as a cell's config.json recorded its provider, is refused in one
    line naming that provider and how to get it
    (:func:`~wae_bench.run.directory.missing_plugin`, as a resume says it);
    one no cell recorded is left to the registry's own error."""
    for d in sorted(folder.cells_path.iterdir()) if folder.cells_path.is_dir() else ():
        rec = folder.config(d.name) or {}
        saved, recorded = rec.get("config"), rec.get("versions")
        missing = missing_plugin(saved, recorded) if isinstance(saved, dict) and isinstance(recorded, dict) else None
        if missing:
            raise WaeError(f"cannot tabulate {str(folder.path)!r}: {missing}")


def collect(folder: ResultsDir, columns: list[str] | None = None, metric: str | None = None) -> Report:
    """Everything the table shows, read from the results folder; ``metric``:
    a score name (:data:`~wae_bench.bench.folder.SCORE_NAMES`), by default
    the first the spec scores.  Every regularizer of the folder must be
    installed (:func:`require_plugins`)."""
    spec = folder.spec()
    require_plugins(folder)
    columns = columns or list(spec.eval.what)
    for w in columns:
        if w not in WHAT_LABELS:
            raise WaeError(f"unknown column {w!r}; choose from {', '.join(WHAT_LABELS)}")
    everything = grid.expand(spec)
    cells = [c for c in everything if c.role != "tune"]
    tuning_read = tune.Tuning(folder, spec, everything)   # (each group's tuning cells read once for the whole table)
    metric = metric or METRIC_SCORES[spec.eval.metrics[0]][0]
    _check_metric(folder, spec, cells, columns, metric)
    cols = [(ds, w) for ds in spec.bench.datasets for w in columns]
    axis_keys = list(dict.fromkeys(k for c in cells for k, _ in c.axes))
    rows = list(dict.fromkeys((c.regularizer, c.arch, c.axes) for c in cells))
    rep = Report(spec, metric, cols, rows, axis_keys, judged_by={r: grid.sampler(r) for r in spec.bench.regularizers},
                 tuning_read=tuning_read)
    for w in columns:
        for (reg, arch, ds, axes), e in points(tuning_read, cells, w, metric).items():
            rep.entries[((reg, arch, axes), (ds, w))] = e
    for c in spec.cited:
        if c.metric != metric or c.what not in columns:
            continue
        row = next((r for r in rows if r[0] == c.regularizer and r[1] == c.arch and _axes_match(c, r[2])), None)
        if row is None:
            row = (c.regularizer, c.arch, _cited_axes(c))
            rows.append(row)
            rep.axis_keys += [k for k, _ in row[2] if k not in rep.axis_keys]
        if (c.dataset, c.what) not in rep.columns:
            rep.columns.append((c.dataset, c.what))
        rep.cited[(row, (c.dataset, c.what))] = c
    _axis_values(rep, cells)
    _mark_best(rep)
    other = list(dict.fromkeys(cid for e in rep.entries.values() for cid in e.other_protocol))
    rep.description = description(folder, spec)
    rep.budget = budget(folder, spec, cells)
    rep.settings = settings(tuning_read, cells)
    of_row = {row: mine for row in rep.rows if (mine := [c for c in cells if (c.regularizer, c.arch, c.axes) == row])}
    for row, mine in of_row.items():
        rep.row_settings[row] = row_settings(tuning_read, mine)
        rep.row_code[row] = row_code(folder, mine)
    rep.mixed_code = mixed_code(folder, of_row)
    rep.code = regularizer_code(folder, cells) + list(rep.mixed_code.values())
    rep.code_paper = regularizer_code(folder, cells, paper=True) + list(mixed_code(folder, of_row, paper=True).values())
    rep.protocol = protocol(folder, spec, cells, other=other)
    if spec.tune is not None:
        t = tuning(tuning_read)
        rep.tuned, rep.tuned_values, rep.tuned_grids, rep.tuning, rep.tuning_rows = (t.tuned, t.values, t.grids,
                                                                                     t.lines, t.rows)
    return rep


def _axis_values(rep: Report, cells: list[Cell]) -> None:
    """Each row's value on the axes it is not a point of (``d`` 8 for the
    rows trained at the default latent dimension), as its cells resolve."""
    for row in rep.rows:
        mine = [c for c in cells if (c.regularizer, c.arch, c.axes) == row]
        given = dict(row[2])
        for k in rep.axis_keys:
            if k in given or not mine:
                continue
            found = [flat_keys(resolved(c)).get(k) for c in mine]
            if all(v is not None for v in found):
                rep.axis_values.setdefault(row, {})[k] = one_or_varies(found)


def _mark_best(rep: Report) -> None:
    """Per dataset and architecture, the best scored own-sampler entry
    (:meth:`Report.own`; the lowest, or the highest for a score where higher
    is better, :func:`~wae_bench.bench.folder.better`) is "best", and so is
    any whose mean prints the same (a tie at the table's decimals), those
    within the seed spread of it "near" (where two or more regularizers
    compete: a head-to-head, not one's own grid alone); an entry of one seed
    compared with the best, or a best of one seed, is listed in
    ``unknown_spread`` (:func:`~wae_bench.bench.aggregate.pooled_std`: the
    spread, and so ≈, cannot be told).  A score without a direction (a std)
    marks none."""
    way = better(rep.metric)
    if way is None:
        return
    groups: dict[tuple, list[tuple[RowKey, ColKey]]] = {}
    for row in rep.rows:
        for ds, what in rep.columns:
            e = rep.entries.get((row, (ds, what)))
            if what == rep.own(row) and e is not None and e.values:
                groups.setdefault((ds, row[1]), []).append((row, (ds, what)))
    for keys in groups.values():
        if len({row[0] for row, _ in keys}) < 2:
            continue
        best = (max if way == "higher" else min)(keys, key=lambda k: rep.entries[k].mean)
        rep.marks[best] = "best"
        shown = number(rep.entries[best].mean)
        for k in keys:
            if k != best and number(rep.entries[k].mean) == shown:
                rep.marks[k] = "best"      # a tie as printed: two entries that read the same are both best
            elif k != best and pooled_std(rep.entries[best].values, rep.entries[k].values) is None:
                rep.unknown_spread += [e for e in (best, k) if len(rep.entries[e].values) < 2
                                       and e not in rep.unknown_spread]   # (one seed: ≈ cannot be told)
            elif k != best and within_spread(rep.entries[best].values, rep.entries[k].values,
                                           higher=way == "higher") is not None:
                rep.marks[k] = "near"


def _check_metric(folder: ResultsDir, spec: Spec, cells: list[Cell], columns: list[str], metric: str) -> None:
    """A metric the spec scores, or that some cell has: anything else would
    write an empty table over the last one."""
    if metric not in SCORE_NAMES:
        raise WaeError(f"unknown --metric {metric!r}; choose one of: {', '.join(SCORE_NAMES)}")
    if any(metric in METRIC_SCORES[m] for m in spec.eval.metrics):
        return
    if any(score(folder.results(c.id) or {}, w, metric) is not None for c in cells for w in columns):
        return
    raise WaeError(f"no cell of {str(folder.path)!r} has a {metric} score (its spec scores "
                   f"{', '.join(spec.eval.metrics)}); choose --metric {METRIC_SCORES[spec.eval.metrics[0]][0]}, or "
                   f"score the cells with `wae-bench eval CELL --metrics ...` first")
