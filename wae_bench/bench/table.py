"""The results table in the layout of the MoCA paper's Table 1: rows =
regularizer and architecture (and grid values), columns = datasets (optionally
the RAE paper's REC / N / GMM / Interp columns, Ghosh et al. 2020 Table 1),
entries = mean ± std over seeds with the number of seeds.  Values the papers
report sit in columns of their own, marked "(cited)", never mixed with ours.
The budget and the evaluation protocol are stated above the table.

With a ``[tune]`` table (:mod:`wae_bench.bench.tune`) each row also states the
value it used and that it was tuned, and a tuning section lists, per group,
the grid, the budget and every value's validation score (``tuning.csv``
holds the same numbers).
"""
from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from wae_bench import atomic
from wae_bench.bench import grid, tune
from wae_bench.bench.aggregate import Entry
from wae_bench.bench.folder import METRIC_SCORES, SCORE_NAMES, ResultsDir, score
from wae_bench.bench.grid import AXIS_SYMBOLS, Cell, format_value
from wae_bench.bench.spec import WHAT_LABELS, Cited, Spec, flat_keys
from wae_bench.config import to_dict
from wae_bench.errors import WaeError

RowKey = tuple[str, str | None, tuple]          # regularizer, arch, axes
ColKey = tuple[str, str]                        # dataset, what
NOT_STATED = "(not stated)"


def axis_label(key: str) -> str:
    return AXIS_SYMBOLS.get(key, key.split(".")[-1])


def metric_label(spec: Spec, metric: str) -> str:
    """``FID``, or a plain warning when the features are a stand-in."""
    if spec.eval.features != "inception":
        return f"{metric} on {spec.eval.features} features (NOT {metric.upper()})"
    return metric.upper()


def points(folder: ResultsDir, cells: list[Cell], what: str, metric: str) -> dict[tuple, Entry]:
    """``{cell.point: Entry}``: each grid point's scores over its seeds; the
    score of a stale cell (:func:`~wae_bench.bench.tune.changes`: trained with
    settings other than the spec's now) is counted as stale, not shown as current."""
    out: dict[tuple, Entry] = {}
    for c in cells:
        e = out.setdefault(c.point, Entry())
        e.expected += 1
        res = folder.results(c.id)
        v = score(res, what, metric) if res else None
        if v is not None and tune.changes(folder, c):
            e.stale += 1
        elif v is not None:
            e.values.append(v)
        elif folder.failure(c.id) is not None:
            e.failed += 1
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
    budget: list[str] = field(default_factory=list)
    protocol: list[str] = field(default_factory=list)
    tuned: dict[RowKey, str] = field(default_factory=dict)     # the "tuned" column (specs with [tune])
    tuning: list[str] = field(default_factory=list)            # the tuning section
    tuning_rows: list[dict[str, Any]] = field(default_factory=list)   # tuning.csv

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

    def row_cells(self, row: RowKey) -> list[str]:
        reg, arch, axes = row
        values = dict(axes)
        tuned = [self.tuned.get(row, "")] if self.spec.tune is not None else []
        return [reg, arch or NOT_STATED, *(format_value(values[k]) if k in values else "" for k in self.axis_keys),
                *tuned]

    def value(self, row: RowKey, col: ColKey, cited: bool) -> str:
        if cited:
            c = self.cited.get((row, col))
            return "" if c is None else f"{c.value:.2f} [{self.sources.index(c.source) + 1}]"
        e = self.entries.get((row, col))
        return "" if e is None or not e.expected else e.text()


def collect(folder: ResultsDir, columns: list[str] | None = None, metric: str | None = None) -> Report:
    """Everything the table shows, read from the results folder; ``metric``:
    a score name (:data:`~wae_bench.bench.folder.SCORE_NAMES`), by default
    the first the spec scores."""
    spec = folder.spec()
    columns = columns or list(spec.eval.what)
    for w in columns:
        if w not in WHAT_LABELS:
            raise WaeError(f"unknown column {w!r}; choose from {', '.join(WHAT_LABELS)}")
    everything = grid.expand(spec)
    cells = [c for c in everything if c.role != "tune"]
    metric = metric or METRIC_SCORES[spec.eval.metrics[0]][0]
    _check_metric(folder, spec, cells, columns, metric)
    cols = [(ds, w) for ds in spec.bench.datasets for w in columns]
    axis_keys = list(dict.fromkeys(k for c in cells for k, _ in c.axes))
    rows = list(dict.fromkeys((c.regularizer, c.arch, c.axes) for c in cells))
    rep = Report(spec, metric, cols, rows, axis_keys)
    for w in columns:
        for (reg, arch, ds, axes), e in points(folder, cells, w, metric).items():
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
    rep.budget = budget(folder, spec, cells)
    rep.protocol = protocol(folder, spec, cells)
    if spec.tune is not None:
        tuning(rep, folder, everything)
    return rep


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


BUDGET_KEYS = ("arch", "epochs", "max_steps", "batch_size", "lr", "lr_halve_every", "latent_dim", "image_size",
               "precision")


def _resolved(cell: Cell) -> dict[str, Any]:
    try:
        return to_dict(grid.resolve(cell))
    except WaeError:  # a plugin no longer installed: show the spec's own values
        return dict(cell.overrides)


def _values(xs: list[Any]) -> str:
    distinct = list(dict.fromkeys(format_value(x) if x is not None else "none" for x in xs))
    return distinct[0] if len(distinct) == 1 else f"{' / '.join(distinct)} (varies)"


def budget(folder: ResultsDir, spec: Spec, cells: list[Cell]) -> list[str]:
    """One line per dataset: what every cell of it was given."""
    lines = []
    for ds in spec.bench.datasets:
        mine = [c for c in cells if c.dataset == ds]
        cfgs = [_resolved(c) for c in mine]
        runs = [r for r in (folder.config(c.id) for c in mine) if r]
        v = {k: _values([c.get(k) for c in cfgs]) for k in BUDGET_KEYS}
        text = (f"{ds}: {len(mine)} cell{'s' if len(mine) != 1 else ''}, arch {v['arch']}, "
                f"{v['epochs']} epoch{'' if v['epochs'] == '1' else 's'}"
                + (f" capped at {v['max_steps']} steps" if v["max_steps"] not in ("0", "none") else "")
                + f", batch {v['batch_size']}, Adam lr {v['lr']} halved every {v['lr_halve_every']} epoch{'' if v['lr_halve_every'] == '1' else 's'}, "
                  f"latent d {v['latent_dim']}, {v['image_size']}×{v['image_size']} images, {v['precision']}")
        if runs:
            r = {k: _values([run.get(k) for run in runs]) for k in ("total_steps", "data_variant", "n_train", "n_test")}
            text += (f"; steps per run {r['total_steps']}, data {r['data_variant']} "
                     f"({r['n_train']} train / {r['n_test']} test)")
        lines.append(text)
    return lines


def _weights_source(w: dict[str, Any]) -> str:
    """Where the FID weights came from, without a local path (``file
    /tmp/x.pth``: a file given with --fid-weights; its sha256 names it)."""
    source = str(w.get("source", "?"))
    return "a --fid-weights file" if source.startswith("file ") else source


def protocol_summary(p: dict[str, Any], generated: bool = True) -> str:
    """The parts of a recorded protocol that decide whether two scores compare
    (not its timings, paths or device names; ``generated``: nor which columns
    were generated)."""
    w, ref = p.get("weights") or {}, p.get("reference") or {}
    gen = p.get("generated") or {}
    parts = [str(p.get("implementation", "?")), f"features {p.get('features', '?')}",
             f"weights {_weights_source(w)}" + (f" sha256 {str(w['sha256'])[:12]}" if w.get("sha256") else ""),
             *(["generated " + ", ".join(f"{k} {v.get('n', '?')}" for k, v in gen.items() if isinstance(v, dict))]
               if generated else []),
             f"reference {ref.get('split', '?')} split, {ref.get('n', '?')} images of "
             f"{ref.get('dataset_variant', p.get('dataset_variant', '?'))} at {p.get('image_size', '?')}px",
             f"seed {p.get('seed', '?')}"]
    tf32 = p.get("tf32") or {}
    if tf32.get("applies"):
        parts.append(f"TF32 matmul {tf32.get('cuda_matmul')} / cuDNN {tf32.get('cudnn_conv')}")
    return "; ".join(parts)


def protocol(folder: ResultsDir, spec: Spec, cells: list[Cell], generated: bool = True) -> list[str]:
    """The evaluation protocol asked for, and as the scored cells recorded it
    (each distinct one with its number of cells)."""
    e = spec.eval
    lines = [f"asked: {'/'.join(e.metrics)} of {', '.join(WHAT_LABELS[w] for w in e.what)}, "
             f"{e.fid_samples or 'the dataset’s number of'} generated images vs the {e.split} split, features {e.features}, seed {e.seed}"]
    if e.features != "inception":
        lines.append(f"NOT FID: eval.features = {e.features!r} is a stand-in feature extractor; these numbers "
                     f"compare runs within this table only, never with published FIDs")
    seen: dict[str, int] = {}
    for c in cells:
        res = folder.results(c.id)
        p = res.get("protocol") if res else None
        if isinstance(p, dict) and p:
            s = protocol_summary(p, generated)
            seen[s] = seen.get(s, 0) + 1
    for s, n in seen.items():
        lines.append(f"recorded ({n} cell{'s' if n > 1 else ''}): {s}")
    if len(seen) > 1:
        lines.append("WARNING: the cells were scored under different protocols (above); compare with care")
    return lines


# -- tuning ---------------------------------------------------------------------------
def _assign(values: dict[str, Any]) -> str:
    return ", ".join(f"{axis_label(k)} = {format_value(v)}" for k, v in values.items())


def _used(rec: dict[str, Any]) -> str:
    """``λ = 100, tuned over λ ∈ {10, 100} at 1 epoch capped at 6 steps``: a recorded choice."""
    b = rec.get("budget", {})
    grid_ = "; ".join(f"{axis_label(k)} ∈ {{{', '.join(map(format_value, vs))}}}" for k, vs in rec["grid"].items())
    at = f"{b.get('epochs')} epoch{'s' if b.get('epochs') != 1 else ''}" + \
        (f" capped at {b['max_steps']} steps" if b.get("max_steps") else "")
    return f"{_assign(rec['values'])}, tuned over {grid_} at {at}"


def tuning(rep: Report, folder: ResultsDir, cells: list[Cell]) -> None:
    """Fill the tuned column, the tuning section and the tuning.csv rows of
    ``rep`` from the tuning cells and the recorded choices."""
    spec, t = rep.spec, rep.spec.tune
    tcells = [c for c in cells if c.role == "tune"]
    samplers = {c.regularizer: grid.sampler(c.regularizer) for c in tcells}
    by_sampler = "; ".join(f"{WHAT_LABELS[w]}: {', '.join(r for r, s in samplers.items() if s == w)}"
                           for w in dict.fromkeys(samplers.values()))
    rep.tuning = [f"chosen by the {tune.RULE.format(metric=t.metric)}; scored by {t.metric} of {t.fid_samples} "
                  f"images of each regularizer's sampler ({by_sampler or 'none'}) against the validation split: "
                  f"{t.holdout} training images held out of every tuning run (a seeded random subset, the same "
                  f"for every run of a dataset), never the test split; tuning seeds {spec.tune_seeds}"
                  + ("; one tuning seed: spread unknown, so a choice by a small margin may be noise (give "
                     "tune.seeds two or more seeds)" if len(spec.tune_seeds) == 1 else "")]
    rep.tuning += [f"tuning budget: {line}" for line in budget(folder, spec, tcells)]
    rep.tuning += [f"tuning evaluation {line}" for line in protocol(folder, spec, tcells, generated=False)
                   if line.startswith("recorded")]
    used: dict[RowKey, dict[str, list[str]]] = {}   # row -> dataset -> the values its final cells used
    for c in cells:
        row = (c.regularizer, c.arch, c.axes)
        if c.role == "plain":
            rep.tuned[row] = "nothing to tune"
        elif c.role == "final":
            rec = tune.recorded(folder, c)
            per = used.setdefault(row, {}).setdefault(c.dataset, [])
            text = _used(rec) if rec else f"tuned {', '.join(map(axis_label, c.tuned))} pending"
            if text not in per:
                per.append(text)
    many = len(spec.bench.datasets) > 1
    for row, per in used.items():
        rep.tuned[row] = "; ".join(f"{ds}: " * many + " / ".join(texts) for ds, texts in per.items())
    groups: dict[Any, list[Cell]] = {}
    for c in cells:
        if c.role == "final":
            groups.setdefault(c.group, []).append(c)
    for finals in groups.values():   # (the group's choice is shared: any of its final cells that recorded it)
        final = next((c for c in finals if tune.recorded(folder, c) is not None), finals[0])
        rep.tuning.append(_tuning_line(rep, folder, final, cells))


def _tuning_line(rep: Report, folder: ResultsDir, final: Cell, cells: list[Cell]) -> str:
    """One group's grid with every value's validation score, the chosen one
    marked (and its tuning.csv rows)."""
    metric = rep.spec.tune.metric
    rec = tune.recorded(folder, final)
    ch = tune.choose(folder, rep.spec, final, cells)
    pick = tune.chosen(folder, rep.spec, final, cells)
    parts = []
    for p in ch.points:
        chosen = p.values == pick
        value = (f"{p.mean:.2f}" if p.mean is not None else "pending" if p.pending
                 else f"{p.state} ({p.errors[0].split(': ', 1)[-1].split(';')[0][:100]})")
        parts.append(f"{_assign(p.values)}: {value}" + (" (chosen)" if chosen else ""))
        rep.tuning_rows.append({"regularizer": final.regularizer, "arch": final.arch, "dataset": final.dataset,
                                **{k: format_value(v) for k, v in final.axes},
                                **{f"tuned:{k}": format_value(v) for k, v in p.values.items()},
                                "state": p.state, f"val:{metric}": "" if p.mean is None else repr(p.mean),
                                "seeds": len(p.scores), "chosen": chosen, "error": p.errors[0] if p.errors else ""})
    status = _within_spread(ch, pick) + _at_edge(ch, pick, final.regularizer) + (
        "" if rec else " (best so far: its final cells have not run)" if pick
        else " (waiting for its tuning cells)" if ch.pending else " (every value failed)")
    where = " · ".join([final.regularizer, final.arch, final.dataset,
                        *(f"{axis_label(k)} = {format_value(v)}" for k, v in final.axes)])
    return f"{where}, validation {metric}: " + "; ".join(parts) + (f" —{status}" if status else "")


def _at_edge(ch: tune.Choice, pick: dict[str, Any] | None, regularizer: str) -> str:
    """A note where the chosen value is the lowest or highest of its axis
    (:meth:`~wae_bench.bench.tune.Choice.edges`): the best may lie beyond the grid."""
    edges = ch.edges(pick or {})
    if not edges:
        return ""
    where = "; ".join(f"{axis_label(k)} = {format_value(pick[k])}, its {side} value" for k, side in edges.items())
    return f" (at the edge of the grid: {where}; widen [reg.{regularizer}.tune])"


def _within_spread(ch: tune.Choice, pick: dict[str, Any] | None) -> str:
    """A note where the chosen value beats the next best by less than the
    seed spread (the pooled sample std of the two points' scores); nothing
    with one seed (the header says the spread is unknown there)."""
    ok = [p for p in ch.points if p.mean is not None]
    best = next((p for p in ok if p.values == pick), None)
    rest = sorted((p for p in ok if p is not best), key=lambda p: p.mean)
    if best is None or not rest or min(len(best.scores), len(rest[0].scores)) < 2:
        return ""
    spread = math.sqrt((statistics.variance(best.scores) + statistics.variance(rest[0].scores)) / 2)
    margin = rest[0].mean - best.mean
    if margin >= spread:
        return ""
    return (f" (margin {margin:.2f} to {_assign(rest[0].values)} is below the seed spread, std {spread:.2f}: "
            f"the choice may be noise)")


def tuning_csv(rep: Report) -> str:
    buf = io.StringIO()
    tail = ["state", f"val:{rep.spec.tune.metric}", "seeds", "chosen", "error"]
    head = [k for k in dict.fromkeys(k for r in rep.tuning_rows for k in r) if k not in tail] + tail
    w = csv.DictWriter(buf, head, lineterminator="\n")
    w.writeheader()
    w.writerows(rep.tuning_rows)
    return buf.getvalue()


# -- rendering ----------------------------------------------------------------------
def headers(rep: Report) -> list[str]:
    return ["regularizer", "arch", *(axis_label(k) for k in rep.axis_keys),
            *(["tuned"] if rep.spec.tune is not None else []),
            *(rep.header(col, cited) for col, cited in rep.layout())]


def legend(rep: Report) -> str:
    """What an entry of the table means."""
    return (f"Entries: {metric_label(rep.spec, rep.metric)} (lower is better), mean ± sample std over seeds, then "
            f"(seeds scored / seeds in the grid). — = not scored yet; failed = every seed failed (see "
            f"cells/*/failed.json); stale = seeds trained with settings other than the spec resolves to now, "
            f"left out of the mean (`wae-bench bench SPEC --dry-run` lists what changed). Columns marked (cited) hold values reported in the papers below, not measured "
            f"here.")


def markdown(rep: Report) -> str:
    s = rep.spec
    m = metric_label(s, rep.metric)
    out = [f"# {s.name}: {m} by regularizer and architecture", ""]
    if s.bench.description:
        out += [s.bench.description.strip(), ""]
    out += [legend(rep), "",
            "**Budget**", "", *(f"- {b}" for b in rep.budget), "", "**Evaluation**", "",
            *(f"- {p}" for p in rep.protocol), ""]
    if rep.tuning:
        out += ["**Tuning** (validation scores of the tuning cells, per group; plots/tune-*.png)", "",
                *(f"- {line}" for line in rep.tuning), ""]
    head = headers(rep)
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rep.rows:
        vals = rep.row_cells(row) + [rep.value(row, col, cited) for col, cited in rep.layout()]
        out.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    if rep.cited:
        out += ["", "**Cited**", ""]
        notes = {c.source: c.note for c in rep.cited.values() if c.note}
        out += [f"{i}. {src}" + (f" ({notes[src]})" if src in notes else "") for i, src in enumerate(rep.sources, 1)]
    return "\n".join(out) + "\n"


def csv_text(rep: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["regularizer", "arch", *rep.axis_keys, *(["tuned"] if rep.spec.tune is not None else [])]
    for col, cited in rep.layout():
        p = f"{col[0]}:{col[1]}:{rep.metric}"
        head += [f"{p}:cited", f"{p}:cited_source"] if cited else [f"{p}:{k}" for k in ("mean", "std", "n", "of",
                                                                                        "status")]
    w.writerow(head)
    for row in rep.rows:
        vals: list[Any] = rep.row_cells(row)
        for col, cited in rep.layout():
            if cited:
                c = rep.cited.get((row, col))
                vals += [c.value, c.source] if c else ["", ""]
                continue
            e = rep.entries.get((row, col))
            if e is None or not e.expected:
                vals += ["", "", "", "", "not in grid"]
            else:
                vals += [_num(e.mean), _num(e.std), e.n, e.expected, e.status]
        w.writerow(vals)
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(v)


def rich_table(rep: Report) -> Table:
    t = Table()
    for h in headers(rep):
        t.add_column(h, overflow="fold", style="dim" if h.endswith("(cited)") else None)
    for row in rep.rows:
        t.add_row(*rep.row_cells(row), *(rep.value(row, col, cited) for col, cited in rep.layout()))
    return t


def title(rep: Report) -> str:
    return (f"{rep.spec.name}: {metric_label(rep.spec, rep.metric)}, mean ± std (seeds scored/in grid); "
            f"(cited) columns are not ours")


def print_rich(rep: Report, console: Console) -> None:
    """The table on ``console``: its title on a line above it, the budget,
    protocol and tuning notes as lines under it (left-aligned, each wrapped
    to the console, never to the table's width)."""
    console.print(title(rep), soft_wrap=True, markup=False, highlight=False)
    console.print(rich_table(rep))
    for line in rep.budget + rep.protocol + rep.tuning:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def write(folder: ResultsDir, rep: Report) -> list[Path]:
    out = [atomic.write_text(folder.path / "table.md", markdown(rep)),
           atomic.write_text(folder.path / "table.csv", csv_text(rep))]
    if rep.tuning_rows:
        out.append(atomic.write_text(folder.path / "tuning.csv", tuning_csv(rep)))
    return out
