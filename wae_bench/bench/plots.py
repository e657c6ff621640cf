"""Plots of a grid (PNG, and PDF or SVG where asked; matplotlib's Agg
backend), after the MoCA paper:

- score against each numeric grid axis, mean ± std over seeds as error bars,
  one line per regularizer / architecture / other axis value (FID against λ
  on a log axis: Figs. 3-4; FID against K: Table 4), each final cell's tuned
  values said beside its point (or once in its curve's legend entry);
- the tuning protocol's curves: the validation score ``tune.metric`` chose by
  against each tuned axis of two or more values;
- singular-value spectra of the latents, one line per λ (Fig. 5), read from
  each cell's ``latent_spectrum.json`` (``diagnostics.spectrum`` of its results).
"""
from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from wae_bench.bench import grid, tune
from wae_bench.bench.aggregate import Entry
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell, axis_label, display_value, format_value, is_number
from wae_bench.bench.spec import WHAT_LABELS, Spec, flat_keys
from wae_bench.bench.table import better_note, metric_label, points
from wae_bench.atomic import atomic_write
from wae_bench.errors import WaeError

LOG_AXES = {"reg.lambda", "reg.K"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


FORMATS = ("png", "pdf", "svg")   # png always (the report embeds it); pdf and svg for print, where asked
PNG_DPI = 200                     # a PNG plot's resolution (--plot-dpi): sharp in a paper or on a slide
FIGSIZE = (6.4, 4.2)              # inches: 1280 × 840 px at PNG_DPI (the HTML report shows it 600 px wide)
# A PNG at its figure's dpi (recorded in its pHYs chunk); no creation date in a PDF or SVG: the same plot,
# the same bytes.
_SAVE = {"png": {"dpi": "figure", "pil_kwargs": {"optimize": True}}, "pdf": {"metadata": {"CreationDate": None}},
         "svg": {"metadata": {"Date": None}}}


def _figure(dpi: int):
    """A new figure of :data:`FIGSIZE` and its axes, ``dpi`` dots per inch
    (what its PNG is written at; PDF and SVG are vector)."""
    return _pyplot().subplots(figsize=FIGSIZE, dpi=dpi)


def parse_formats(text: str | None) -> list[str]:
    """``--plot-format png,pdf`` -> ``["png", "pdf"]`` (png always first);
    an unknown name is one clear line."""
    names = [n.strip().lower() for n in (text or "").split(",") if n.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise WaeError(f"--plot-format {text!r}: choose from {', '.join(FORMATS)} (comma-separated; png is always "
                       f"written), e.g. --plot-format png,pdf")
    return list(dict.fromkeys(["png", *names]))


def formats_of(folder: ResultsDir, asked: list[str] | None = None) -> list[str]:
    """The formats to write the plots in: png, those ``asked``, and those
    ``plots/`` already holds (so a PDF written once is never left stale)."""
    root = folder.path / "plots"
    there = {p.suffix[1:] for p in root.iterdir()} if root.is_dir() else set()
    return list(dict.fromkeys(["png", *(asked or []), *(f for f in FORMATS if f in there)]))


def _save(fig, path: Path, formats: list[str] = ("png",)) -> list[Path]:
    """``path`` (a .png) and the same plot in each other of ``formats`` beside it."""
    out = []
    for fmt in dict.fromkeys(["png", *formats]):
        p = path.with_suffix(f".{fmt}")
        atomic_write(p, lambda f, fmt=fmt: fig.savefig(f, format=fmt, bbox_inches="tight", **_SAVE[fmt]))
        out.append(p)
    _pyplot().close(fig)
    return out


def _ylabel(spec: Spec, metric: str) -> str:
    return f"{metric_label(spec, metric)}{better_note(metric)}"


Curve = dict[tuple, list[tuple[float, Entry]]]   # (regularizer, arch, other axes) -> points along the axis


Unscored = dict[str, dict[tuple, list[float]]]   # "failed" / "excluded" / "diverged" -> curve -> unscored values


# How a plot marks the values of a curve with no finite score, in the curve's colour at the top of the axes:
# an error (retried by the next run; or excluded from the choice, never retried) apart from a divergence (a result,
# never chosen).
UNSCORED_STYLE = {"failed": dict(marker="v", label="failed (an error: the next run retries it)"),
                  "excluded": dict(marker="s", label="failed, excluded (--exclude-failed-tuning: never chosen)"),
                  "diverged": dict(marker="x", label="diverged (non-finite: never chosen)")}
MARK_TOP, MARK_STEP = 0.97, 0.045   # axes fraction of the first curve's marks; each next curve's a step lower
FAR_STEPS = 10   # an unscored value this many grid steps (their median, on the axis' scale) past its neighbour
FAR_SCORE = 10   # a finite score this many times the median score (all positive): above the y axis, not on it
#                  toward the scored values is far off (λ = 1e39 beside 10 ... 10,000): marked at the axis edge


def _doubling(xs: list[float]) -> bool:
    """Whether axis values ``xs`` are three or more powers of two (d = 16, 32,
    ..., 512 in the paper's Fig. 3): drawn on a log-2 axis, one tick a value."""
    values = set(xs)
    return len(values) > 2 and all(x > 0 and math.log2(x).is_integer() for x in values)


def _log_like(key: str, xs: list[float]) -> bool:
    """Whether axis ``key`` over values ``xs`` is drawn on a log axis (λ, K;
    or positive values spanning 50× or more)."""
    return bool(xs) and (key in LOG_AXES or (min(xs) > 0 and max(xs) / min(xs) >= 50))


def far_off(scored: list[float], unscored: list[float], log: bool) -> dict[float, int]:
    """The unscored axis values that would stretch the axis: -1 (below) or 1
    (above) for each one separated from the scored values by a gap wider than
    :data:`FAR_STEPS` times the grid's median step (decades on a log axis,
    at least one decade), every value past it far too; none without scored
    values (nothing to stretch away from).  The step is the scored values'
    (the gap a far value leaves is no step of the grid: of ``10, 100, 1e39``
    it would be the median), or with one scored value, the smallest of all."""
    if not scored:
        return {}
    pos = (lambda v: math.log10(v)) if log else (lambda v: v)
    usable = sorted({v for v in [*scored, *unscored] if not log or v > 0})
    grid = sorted({pos(v) for v in scored if not log or v > 0})
    if len(grid) > 1:
        steps = sorted(b - a for a, b in zip(grid, grid[1:]))
        step = steps[len(steps) // 2]
    else:
        every = [pos(v) for v in usable]
        step = min((b - a for a, b in zip(every, every[1:])), default=0.0)
    limit = FAR_STEPS * step
    limit = max(limit, 1.0) if log else (limit or abs(max(scored)) or 1.0)
    out: dict[float, int] = {}
    for side, ahead in ((1, sorted(v for v in usable if v > max(scored))),
                        (-1, sorted((v for v in usable if v < min(scored)), reverse=True))):
        edge = max(scored) if side > 0 else min(scored)
        for v in ahead:
            if v in out or abs(pos(v) - pos(edge)) > limit:
                out.update({w: side for w in ahead if side * (w - v) >= 0})
                break
            edge = v
    return {v: side for v, side in out.items() if v in unscored}


def far_above(means: list[float]) -> set[float]:
    """The finite scores that would stretch the y axis: above :data:`FAR_SCORE`
    times the median of ``means`` (three or more, all positive: an FID of
    3e7 from a nearly diverged cell beside 60 ... 200 flattens the curve it
    is judged against); none otherwise."""
    if len(means) < 3 or min(means) <= 0:
        return set()
    ordered = sorted(means)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {m for m in means if m > FAR_SCORE * median}


def _line_of(reg: str, arch: str, axes: tuple, key: str) -> tuple:
    """The curve a point of axis ``key`` lies on: its regularizer, arch and other axis values."""
    return (reg, arch, tuple((k, v) for k, v in axes if k != key))


def _curves(pts: dict[tuple, Entry], ds: str, key: str) -> tuple[Curve, Unscored]:
    """Points of dataset ``ds`` along axis ``key``, one curve per regularizer /
    arch / other axis values; and per curve the values whose every seed
    failed (an error; "excluded" where every failed seed was excluded from
    the choice), or diverged (a non-finite loss, or score) where one did."""
    lines: Curve = {}
    unscored: Unscored = {"failed": {}, "diverged": {}}   # (and "excluded" where a value is)
    for (reg, arch, d, axes), e in pts.items():
        values = dict(axes)
        if d != ds or key not in values or not is_number(values[key]):
            continue
        line = _line_of(reg, arch, axes, key)
        finite = [v for v in e.values if math.isfinite(v)]
        if finite:
            lines.setdefault(line, []).append((float(values[key]), Entry(finite, e.expected, e.failed)))
        elif e.failed or e.values:
            how = ("diverged" if e.diverged or e.values else
                   "excluded" if e.excluded == e.failed else "failed")
            unscored.setdefault(how, {}).setdefault(line, []).append(float(values[key]))
    return lines, unscored


def _sortable(v: Any) -> tuple:
    """An axis value as a sort key: numbers by value (d = 8, 16, 128, not "128" < "16"), then the rest by text."""
    return (0, float(v), "") if is_number(v) else (1, 0.0, str(v))


def _line_order(line: tuple) -> tuple:
    reg, arch, others = line
    return (str(reg), str(arch), tuple((k, _sortable(v)) for k, v in others))


def _curve_name(line: tuple) -> str:
    """``moca · tiny d=8``: a curve as its legend entry names it."""
    reg, arch, others = line
    return " ".join([f"{reg} · {arch}", *(f"{axis_label(k)}={format_value(v)}" for k, v in others)])


def _assigned(values: dict[str, Any]) -> str:
    """``λ=30, cov_weight=0.5``: tuned values as a plot says them."""
    return ", ".join(f"{axis_label(k)}={display_value(v)}" for k, v in values.items())


def spread(lines: Curve, seed: str = "seed") -> str:
    """What a plot's error bars are, for its title: ``mean ± sample std over
    n seeds`` where a point has two or more seeds; ``one seed per point, no
    error bars`` where none has (``seed``: ``tuning seed`` for tuning)."""
    ns = {e.n for pts_ in lines.values() for _, e in pts_}
    if not ns:
        return "no value scored"
    return f"mean ± sample std over n {seed}s" if max(ns) >= 2 else f"one {seed} per point, no error bars"


def _seeds(pts_: list[tuple[float, Entry]]) -> str:
    """``n = 3``, ``n = 2-3``: the seeds behind a curve's error bars."""
    ns = sorted({e.n for _, e in pts_})
    return f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}-{ns[-1]}"


def _plot(spec: Spec, key: str, lines: Curve, path: Path, title: str, ylabel: str,
          unscored: Unscored | None = None, cited: dict[str, list[tuple[float, float]]] | None = None,
          chosen: dict[tuple, dict[str, Any]] | None = None, formats: list[str] = ("png",),
          dpi: int = PNG_DPI, tuned: dict[tuple, dict[float, str]] | None = None) -> list[Path]:
    """Score against axis ``key``: mean ± std error bars per curve (its
    legend entry says over how many seeds, n), in the order of the axis
    values, each in a colour of its own; a curve's failed and diverged values
    (``unscored``) marked in its colour at the top of the axes, a marker per
    kind (:data:`UNSCORED_STYLE`), a legend entry per kind and curve (naming
    the curve where there are several); one far off the scored values
    (:func:`far_off`: a λ = 1e39 of a grid of 10 ... 10,000) marked at
    the axis edge instead, its value in its legend entry, so that it never
    stretches the axis; likewise a finite score far above the others
    (:func:`far_above`) leaves the y axis to the rest: its curve runs off
    the top, where a triangle marks it, the value in its legend entry;
    ``chosen`` values starred (per curve,
    the chosen value of every tuned axis: ``{"reg.lambda": 1, "reg.cov_weight": 0.5}``,
    each named in the legend); ``tuned``: per curve and axis value, the tuned
    values its point rests on (``λ=30``), said once in the curve's legend
    entry where every point of it has the same, else beside each point; cited
    values dashed; written in each of ``formats``, the PNG at ``dpi``."""
    from matplotlib.container import ErrorbarContainer

    fig, ax = _figure(dpi)
    unscored = unscored or {}
    order = sorted({*lines, *(c for curves in unscored.values() for c in curves)}, key=_line_order)
    palette = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {line: palette[i % len(palette)] for i, line in enumerate(order)}
    xs_all = []
    for line in (c for c in order if c in lines):
        pts_ = sorted(lines[line], key=lambda p: p[0])
        xs = [x for x, _ in pts_]
        xs_all += xs
        says = [((tuned or {}).get(line) or {}).get(x) for x in xs]
        shared = says[0] if says[0] and len(set(says)) == 1 else None
        label = f"{_curve_name(line)} ({_seeds(pts_)}{f'; tuned {shared}' if shared else ''})"
        ax.errorbar(xs, [e.mean for _, e in pts_], yerr=[e.std or 0.0 for _, e in pts_], marker="o",
                    capsize=3, color=colour[line], label=label)
        for x, (_, e), text in zip(xs, pts_, says):
            if text and not shared:
                ax.annotate(text, (x, e.mean), textcoords="offset points", xytext=(4, 4), fontsize=6,
                            color=colour[line])
        picked = (chosen or {}).get(line) or {}
        x = float(picked[key]) if key in picked else None
        if x is not None and x in xs:
            ax.plot([x], [pts_[xs.index(x)][1].mean], "*", ms=16, color=colour[line],
                    label="chosen: " + ", ".join(f"{axis_label(k)} = {format_value(v)}" for k, v in picked.items()))
    at_top = ax.get_xaxis_transform()   # x in data, y in axes fractions
    scored = list(xs_all)
    far = far_off(scored, [x for curves in unscored.values() for xs in curves.values() for x in xs],
                  _log_like(key, scored))
    for how, curves in unscored.items():
        style = UNSCORED_STYLE[how]
        for line in sorted(curves, key=_line_order):
            name = f"{style['label']}: {_curve_name(line)}" if len(order) > 1 else style["label"]
            y = MARK_TOP - MARK_STEP * order.index(line)
            near = sorted(x for x in curves[line] if x not in far)
            if near:
                ax.plot(near, [y] * len(near), ls="none", marker=style["marker"], ms=9, mew=2, color=colour[line],
                        transform=at_top, clip_on=False, label=name)
                xs_all += near
            for side in (-1, 1):       # far off the scored values: at the axis edge, its values in the legend
                off = sorted(x for x in curves[line] if far.get(x) == side)
                if off:
                    ax.plot([0.0 if side < 0 else 1.0], [y], ls="none", marker=style["marker"], ms=9, mew=2,
                            color=colour[line], transform=ax.transAxes, clip_on=False,
                            label=f"{name} ({'below' if side < 0 else 'beyond'} the axis: {axis_label(key)} = "
                                  f"{', '.join(format_value(x) for x in off)})")
    for label, pts_ in (cited or {}).items():
        ax.plot([x for x, _ in pts_], [y for _, y in pts_], "x--", color="grey", label=label)
    _keep_y_to_the_rest(ax, lines, order, colour, key, cited)
    if _doubling(xs_all) and key not in LOG_AXES:   # (d: evenly spaced, each value its tick)
        from matplotlib.ticker import FuncFormatter, NullLocator

        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(xs_all)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    elif _log_like(key, xs_all):
        if min(xs_all) > 0:
            ax.set_xscale("log")
        else:  # λ = 0 (Fig. 5) has no place on a log axis: linear near 0
            ax.set_xscale("symlog", linthresh=min([x for x in xs_all if x > 0] or [1.0]))
    ax.set_xlabel(axis_label(key))
    ax.ticklabel_format(axis="y", useOffset=False)   # scores as they are: an offset (+1.28e1) makes 0.007 look a trend
    ax.set_ylabel(textwrap.fill(ylabel, 45))   # a long label would run off the figure
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    curves_first = sorted(range(len(handles)), key=lambda i: not isinstance(handles[i], ErrorbarContainer))
    ax.legend([handles[i] for i in curves_first], [labels[i] for i in curves_first], fontsize=7)
    return _save(fig, path, formats)


def _keep_y_to_the_rest(ax, lines: Curve, order: list, colour: dict, key: str,
                        cited: dict[str, list[tuple[float, float]]] | None) -> None:
    """The y axis spans the scores but those :func:`far_above` them (and the
    cited values); each of those is a triangle at the top edge in its
    curve's colour, the curve's name, axis value and score in the legend."""
    means = [e.mean for line in lines for _, e in lines[line] if math.isfinite(e.mean)]
    far = far_above(means)
    if not far:
        return
    near = [(e.mean - (e.std or 0.0), e.mean + (e.std or 0.0)) for line in lines for _, e in lines[line]
            if math.isfinite(e.mean) and e.mean not in far]
    near += [(y, y) for pts_ in (cited or {}).values() for _, y in pts_]
    lo, hi = min(a for a, _ in near), max(b for _, b in near)
    pad = 0.08 * (hi - lo) or 0.08 * abs(hi) or 1.0
    ax.set_ylim(lo - pad, hi + pad)
    at_top = ax.get_xaxis_transform()
    for line in (c for c in order if c in lines):
        off = sorted((x, e.mean) for x, e in lines[line] if e.mean in far)
        if off:
            ax.plot([x for x, _ in off], [1.0] * len(off), ls="none", marker="^", ms=9, color=colour[line],
                    transform=at_top, clip_on=False,
                    label=f"{_curve_name(line)} above the axis: "
                          + ", ".join(f"{axis_label(key)} = {format_value(x)} scored {m:.3g}" for x, m in off))


def _axis_name(key: str) -> str:
    return axis_label(key).replace("λ", "lambda").replace("τ", "tau").replace("β", "beta")


def _tuned_at(read: tune.Tuning, cells: list[Cell], ds: str, key: str) -> dict[tuple, dict[float, str]]:
    """Per curve of dataset ``ds`` along axis ``key`` and per axis value, the
    tuned values its scored final cells rest on (``λ=30``): those each trained
    at (:func:`~wae_bench.bench.tune.trained_values`), else its group's choice
    now (:meth:`~wae_bench.bench.tune.Tuning.chosen`); stale cells (scored, not
    shown) left out; cells of no tuning: none."""
    found: dict[tuple, dict[float, set[str]]] = {}
    for c in cells:
        values = dict(c.axes)
        if c.role != "final" or c.dataset != ds or not is_number(values.get(key)) or not read.folder.results(c.id):
            continue
        got = tune.trained_values(read.folder, c) or read.chosen(c)
        if got and not read.changes(c):
            found.setdefault(_line_of(c.regularizer, c.arch, c.axes, key), {}).setdefault(
                float(values[key]), set()).add(_assigned(got))
    return {line: {x: " / ".join(sorted(t)) for x, t in by_x.items()} for line, by_x in found.items()}


def score_vs_axis(folder: ResultsDir, spec: Spec, cells: list[Cell], key: str, metric: str = "fid",
                  what: str = "samples", formats: list[str] = ("png",), dpi: int = PNG_DPI,
                  read: tune.Tuning | None = None) -> list[Path]:
    """One plot per dataset: the score against grid axis ``key``, each
    tuned final cell's point saying the tuned values it rests on
    (:func:`_tuned_at`; ``read``: the folder's tuning as read already,
    default read here)."""
    read = tune.Tuning(folder) if read is None else read
    pts = points(read, cells, what, metric)
    out = []
    for ds in spec.bench.datasets:
        lines, unscored = _curves(pts, ds, key)
        if not lines:
            continue
        name = _slug(f"{metric}-vs-{_axis_name(key)}-{ds}")
        out += _plot(spec, key, lines, folder.path / "plots" / f"{name}.png",
                     f"{ds}, {WHAT_LABELS[what]}: {spread(lines)}", _ylabel(spec, metric), unscored,
                     _cited_lines(spec, ds, key, metric, what), formats=formats, dpi=dpi,
                     tuned=_tuned_at(read, cells, ds, key))
    return out


def tuning_curves(folder: ResultsDir, spec: Spec, cells: list[Cell], formats: list[str] = ("png",),
                  dpi: int = PNG_DPI, read: tune.Tuning | None = None) -> list[Path]:
    """The tuning protocol's curves: per regularizer, dataset and numeric tuned
    axis with two or more values there, the validation score the choice is
    made by (``tune.metric``) of its sampler against the axis (log axis for
    λ), one curve per architecture, error bars the std over the tuning
    seeds, the chosen value starred (``cells``: the whole expansion; ``read``:
    the folder's tuning as read already, default read here)."""
    read = tune.Tuning(folder, spec, cells) if read is None else read
    metric = spec.tune.metric
    out = []
    tcells = [c for c in cells if c.role == "tune"]
    for reg in dict.fromkeys(c.regularizer for c in tcells):
        mine = [c for c in tcells if c.regularizer == reg]
        what = grid.sampler(reg)
        pts = points(read, mine, what, metric)
        finals = {c.group: c for c in cells if c.role == "final" and c.regularizer == reg}
        picks = [(f, read.chosen(f)) for f in finals.values()]
        for key in dict.fromkeys(k for c in mine for k in c.tuned if is_number(dict(c.axes)[k])):
            for ds in spec.bench.datasets:
                if len({dict(c.axes)[key] for c in mine if c.dataset == ds}) < 2:
                    continue   # (one value tuned: a single point, no curve to read)
                lines, unscored = _curves(pts, ds, key)
                if not lines and not any(unscored.values()):
                    continue
                # the curve a final cell's choice lies on: its group's axes, then the other tuned values
                chosen = {(f.regularizer, f.arch, f.axes + tuple((k, values[k]) for k in f.tuned if k != key)):
                          {k: values[k] for k in f.tuned} for f, values in picks if f.dataset == ds and values}
                name = _slug(f"tune-{metric}-vs-{_axis_name(key)}-{reg}-{ds}")
                ylabel = f"validation {metric_label(spec, metric)}, {WHAT_LABELS[what]}{better_note(metric)}"
                out += _plot(spec, key, lines, folder.path / "plots" / f"{name}.png",
                             f"tuning {reg} on {ds} (validation split): {spread(lines, 'tuning seed')}",
                             ylabel, unscored, chosen=chosen, formats=formats, dpi=dpi)
    return out


def _cited_lines(spec: Spec, ds: str, key: str, metric: str, what: str) -> dict[str, list[tuple[float, float]]]:
    """The paper's values along axis ``key``, one dashed line per source (never
    merged with ours)."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for c in spec.cited:
        axes = flat_keys(c.axes) if c.axes else {}
        if c.dataset == ds and c.metric == metric and c.what == what and is_number(axes.get(key)):
            label = f"{c.regularizer} · {c.arch or '?'} (cited: {c.source})"
            lines.setdefault(label, []).append((float(axes[key]), c.value))
    return {k: sorted(v) for k, v in lines.items()}


def read_spectrum(path: Path) -> list[float] | None:
    """Singular values from a spectrum JSON: a list, or from a dict its
    ``normalised`` list (comparable across runs), else ``singular_values``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict):
        for k in ("normalised", "normalized", "singular_values", "values"):
            if isinstance(data.get(k), list):
                data = data[k]
                break
        else:
            data = next((v for v in data.values() if isinstance(v, list)), None)
    if isinstance(data, list) and data and all(is_number(v) for v in data):
        return [float(v) for v in data]
    return None


def _spectrum_of(folder: ResultsDir, cell: Cell) -> list[float] | None:
    res = folder.results(cell.id)
    name = ((res or {}).get("diagnostics") or {}).get("spectrum") if res else None
    return read_spectrum(folder.cell_dir(cell.id) / name) if isinstance(name, str) else None


def spectra(folder: ResultsDir, spec: Spec, cells: list[Cell], key: str = "reg.lambda",
            formats: list[str] = ("png",), dpi: int = PNG_DPI) -> list[Path]:
    """One PNG per (regularizer, arch, dataset, other axes): a spectrum per value
    of ``key`` (the first seed that has one, named in its legend entry)."""
    groups: dict[tuple, dict[float, tuple[int, list[float]]]] = {}
    for c in cells:
        values = dict(c.axes)
        if key not in values or not is_number(values[key]):
            continue
        g = groups.setdefault((c.regularizer, c.arch, c.dataset, tuple((k, v) for k, v in c.axes if k != key)), {})
        if float(values[key]) not in g:
            s = _spectrum_of(folder, c)
            if s is not None:
                g[float(values[key])] = (c.seed, s)
    out = []
    for (reg, arch, ds, others), by_value in groups.items():
        if not by_value:
            continue
        fig, ax = _figure(dpi)
        for v in sorted(by_value):
            seed, s = by_value[v]
            ax.plot(range(1, len(s) + 1), s, label=f"{axis_label(key)} = {format_value(v)} (seed {seed})")
        ax.set_yscale("log")
        ax.set_xlabel("index of singular value")
        ax.set_ylabel("normalised singular value")
        extra = " ".join(f"{axis_label(k)}={format_value(v)}" for k, v in others)
        ax.set_title(f"latent spectrum: {reg} · {arch} · {ds} {extra}".strip())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        name = _slug("-".join(["spectra", reg, arch, ds, *(f"{axis_label(k)}{format_value(v)}" for k, v in others)])
                     .replace("λ", "lambda").replace("τ", "tau"))
        out += _save(fig, folder.path / "plots" / f"{name}.png", formats)
    return out


def write_all(folder: ResultsDir, spec: Spec, cells: list[Cell], metric: str = "fid",
              what: str | None = None, formats: list[str] | None = None, dpi: int = PNG_DPI,
              read: tune.Tuning | None = None) -> list[Path]:
    """Every plot the grid has axes for (none for a grid without numeric axes),
    of column ``what`` (by default the first the spec scores, ``eval.what``:
    the GMM column of a spec that scores only that), and the tuning
    protocol's curves (:func:`tuning_curves`, of ``tune.metric``, whatever ``metric``); as PNG, and in each other of
    ``formats`` and those the folder's plots already have (:func:`formats_of`);
    the PNGs at ``dpi`` (``--plot-dpi``); ``spec``, ``cells``: the folder's
    spec and its whole expansion; ``read``: its tuning as read already (the
    table's), default read here, once for every plot."""
    what = what or spec.eval.what[0]
    formats = formats_of(folder, formats)
    read = tune.Tuning(folder, spec, cells) if read is None else read
    tuning = tuning_curves(folder, spec, cells, formats, dpi, read) if spec.tune is not None else []
    cells = [c for c in cells if c.role != "tune"]
    keys = list(dict.fromkeys(k for c in cells for k, v in c.axes if is_number(v)))
    keys = [k for k in keys if len({dict(c.axes).get(k) for c in cells} - {None}) >= 2]
    out = []
    for k in keys:
        out += score_vs_axis(folder, spec, cells, k, metric, what, formats, dpi, read)
    if "reg.lambda" in keys:
        out += spectra(folder, spec, cells, formats=formats, dpi=dpi)
    return out + tuning
