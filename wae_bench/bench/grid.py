"""Spec -> cells.  A cell is one training run plus its evaluation: one
regularizer, architecture, dataset, seed and one value on each grid axis
(the rows × columns × seeds of the MoCA paper's Table 1, or one point of an
ablation curve, Tables 3-4 / Figs. 3-5).

Expansion order is fixed (datasets, archs, regularizers, axes in spec order,
seeds innermost), so ``--shard i/n`` -- every n-th cell from the i-th -- gives
every machine a deterministic, disjoint share and the shares cover the grid.

With a ``[tune]`` table (:mod:`wae_bench.bench.tune`) the grid starts with the
tuning cells (``tune-<id>``: each tuned value of each group, at the tuning
budget, holding out the validation split), then the full-budget cells, whose
tuned values are chosen when they run ("final" cells; a regularizer with
nothing to tune keeps "plain" ones).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import fnmatch
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Literal

from wae_bench.bench.spec import Spec, check_tuned_axis, flatten_axes, table_ref
from wae_bench.config import TrainConfig, from_dict, key_of, merge, split_list, to_dict
from wae_bench.errors import WaeError
from wae_bench.registry import DATASETS, REGULARIZERS
from wae_bench.run.build import Plan, resolve as resolve_run

# Short names of axes in cell ids and table headers.
AXIS_NAMES = {"latent_dim": "d", "reg.lambda": "lambda"}
AXIS_SYMBOLS = {"latent_dim": "d", "reg.lambda": "λ", "reg.tau": "τ", "reg.K": "K", "reg.m0": "m0",
                "reg.beta": "β"}
TUNE_PREFIX = "tune-"
Role = Literal["plain", "tune", "final"]


@dataclass(frozen=True)
class Cell:
    id: str
    regularizer: str
    arch: str
    dataset: str
    seed: int
    axes: tuple[tuple[str, Any], ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    role: Role = "plain"
    tuned: tuple[str, ...] = ()   # axes set by tuning: tried here ("tune") or chosen for this cell ("final")

    @property
    def point(self) -> tuple:
        """What a table row and a plot point are keyed by (all but the seed)."""
        return (self.regularizer, self.arch, self.dataset, self.axes)

    @property
    def group(self) -> tuple:
        """The tuning group: a final cell and the tuning cells that choose its
        values share it (the point without the tuned axes)."""
        return (self.regularizer, self.arch, self.dataset, tuple((k, v) for k, v in self.axes if k not in self.tuned))


def is_number(v: Any) -> bool:
    """An axis value on a number line (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_value(v: Any) -> str:
    """``1000.0`` -> ``1000``, ``0.05`` -> ``0.05``: the same text for 1000 and 1000.0."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v) if isinstance(v, (int, float, str)) else json.dumps(v, sort_keys=True)


def display_value(v: Any) -> str:
    """An axis value as tables, tuning notes and plots show it:
    :func:`format_value` (which cell ids are built from, so it never
    changes), except a number of magnitude 1e6 or more, or under 1e-4, in
    the shortest scientific form that reads back as it (``1e+12`` as Python
    prints ``1e+39``, not ``1000000000000``)."""
    if is_number(v) and v != 0 and not 1e-4 <= abs(v) < 1e6 and abs(v) < 1e308 and v == v:
        for d in range(17):
            text = f"{v:.{d}e}"
            if float(text) == v:
                mantissa, exp = text.split("e")
                return f"{mantissa}e{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"
    return format_value(v)


def axis_label(key: str) -> str:
    """``reg.lambda`` -> ``λ``: an axis's name in table headers, tuning notes and plots."""
    return AXIS_SYMBOLS.get(key, key.split(".")[-1])


def _id_part(key: str, value: Any) -> str:
    name = AXIS_NAMES.get(key, key.split(".")[-1])
    text = format_value(value)
    sep = "_" if name[-1].isdigit() or not (text[:1].isdigit() or text[:1] in "-.") else ""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}{sep}{text}")


def cell_id(regularizer: str, arch: str, dataset: str, axes: Iterable[tuple[str, Any]], seed: int) -> str:
    parts = [regularizer, arch, dataset, *(_id_part(k, v) for k, v in axes), f"s{seed}"]
    return "-".join(parts)


def default_arch(dataset: str) -> str:
    return DATASETS.get(dataset).arch


def check_settings_axes(spec: Spec) -> None:
    """Each ``reg.KEY`` axis (``[grid]``, ``[reg.R.grid]``, ``[reg.R.tune]``)
    names a setting of every installed regularizer it applies to (its
    ``Config``'s keys): refused in one line naming the spec table, not one
    of its generated cells.  A regularizer not installed is left to the
    cells' own resolution, which names it."""
    for reg in spec.bench.regularizers:
        if reg not in REGULARIZERS:
            continue
        keys = [key_of(f.name) for f in dataclasses.fields(REGULARIZERS.get(reg).Config) if f.init]
        tables = [("grid", spec.grid), (f"reg.{reg}.grid", flatten_axes(spec.reg.get(reg, {}).get("grid", {}))),
                  (f"reg.{reg}.tune", spec.tune_axes(reg) or {})]
        for section, axes in tables:
            for axis in axes:
                name = axis[4:] if axis.startswith("reg.") else None
                if name is not None and name not in keys:
                    close = difflib.get_close_matches(name, keys, n=1)
                    hint = f"did you mean \"reg.{close[0]}\"? " if close else ""
                    raise WaeError(f"{table_ref(section)}\"{axis}\": unknown setting of {reg}; {hint}valid keys: "
                                   f"{', '.join(keys)}")


def expand(spec: Spec) -> list[Cell]:
    """Every cell of the spec, in the fixed order."""
    check_settings_axes(spec)
    b = spec.bench
    cells: list[Cell] = []
    for ds in b.datasets:
        for arch in (b.archs or [default_arch(ds)]):
            for reg in b.regularizers:
                axes = spec.axes_for(reg)
                for values in itertools.product(*axes.values()):
                    point = tuple(zip(axes, values))
                    for seed in b.seeds:
                        cells.append(Cell(cell_id(reg, arch, ds, point, seed), reg, arch, ds, seed, point,
                                          _overrides(spec, reg, arch, ds, point, seed)))
    if not cells:
        raise WaeError(f"empty grid: spec {spec.name!r} has no cells; list datasets, regularizers and seeds")
    check_shared_axes(spec, cells)
    if spec.tune is not None:
        cells = _with_tuning(spec, cells)
    return _unique(cells)


def check_shared_axes(spec: Spec, cells: list[Cell]) -> None:
    """A ``[grid]`` axis is every regularizer's: a value one of them refuses
    (``"reg.lambda"`` of ``ae``, which has no penalty) is refused naming the
    axis and the fix, moving it to the ``[reg.NAME.grid]`` of those that take
    it, the regularizer's own words (which may name a run's flag, ``--lambda``)
    in parentheses."""
    shared = [k for k in spec.grid if k.startswith("reg.")]
    for c in cells:
        if c.regularizer not in REGULARIZERS or not any(k in shared for k, _ in c.axes):
            continue
        try:
            resolve_run(from_dict(TrainConfig, c.overrides))
        except WaeError as e:
            values = ", ".join(f"\"{k}\" = {format_value(v)}" for k, v in c.axes if k in shared)
            others = [f"[reg.{r}.grid]" for r in spec.bench.regularizers if r != c.regularizer]
            raise WaeError(f"[grid] {values} is refused by {c.regularizer} ({e}): a [grid] axis applies to every "
                           f"regularizer of bench.regularizers; move it to the [reg.NAME.grid] of each regularizer "
                           f"it applies to" + (f" (here: {', '.join(others)})" if others else "")) from None


def _with_tuning(spec: Spec, cells: list[Cell]) -> list[Cell]:
    """Tuning cells of every group (in the grid's order), then the grid's own
    cells as final ones (plain where the regularizer has nothing to tune)."""
    axes_of: dict[tuple, dict[str, list]] = {}
    for c in cells:
        if c.point not in axes_of:
            axes_of[c.point] = tuning_axes(spec, c)
    tuning = []
    for point, axes in axes_of.items():
        if not axes:
            continue
        base = next(c for c in cells if c.point == point)
        budget = _tuning_budget(spec, base)
        for values in itertools.product(*axes.values()):
            pt = base.axes + tuple(zip(axes, values))
            for seed in spec.tune_seeds:
                o = {**_overrides(spec, base.regularizer, base.arch, base.dataset, pt, seed), **budget}
                tuning.append(Cell(TUNE_PREFIX + cell_id(base.regularizer, base.arch, base.dataset, pt, seed),
                                   base.regularizer, base.arch, base.dataset, seed, pt, o, role="tune",
                                   tuned=tuple(axes)))
    return tuning + [replace(c, role="final", tuned=tuple(axes_of[c.point])) if axes_of[c.point] else c
                     for c in cells]


def tuning_axes(spec: Spec, cell: Cell) -> dict[str, list]:
    """The axes tuned for ``cell``'s group: ``[reg.NAME.tune]``, else the
    plugin's own :meth:`~wae_bench.regularizer.Regularizer.tuning_grid`."""
    axes = spec.tune_axes(cell.regularizer)
    if axes is None:
        plan = _plan(cell)
        axes = flatten_axes(plan.reg_cls.tuning_grid(plan.setup(0)), f"{cell.regularizer}.tuning_grid(): ")
        for key in axes:
            check_tuned_axis(spec, cell.regularizer, key, f"{cell.regularizer}.tuning_grid(): ")
    return axes


def sampler(regularizer: str) -> str:
    """The column a regularizer's tuning runs are scored on (its ``sampler``)."""
    return getattr(REGULARIZERS.get(regularizer), "sampler", "samples")


def _tuning_budget(spec: Spec, cell: Cell) -> dict[str, Any]:
    """What a tuning run changes in its cell's settings: the budget, the
    hold-out, and only the ex-post density it is scored by."""
    t = spec.tune
    how = sampler(cell.regularizer)
    out = {"holdout": t.holdout, "expost": [how] if how in ("n", "gmm") else []}
    out.update({k: v for k, v in (("epochs", t.epochs), ("max_steps", t.max_steps)) if v is not None})
    return out


def _overrides(spec: Spec, reg: str, arch: str, ds: str, point: tuple, seed: int) -> dict[str, Any]:
    """TrainConfig overrides of one cell: [train] < [dataset.D] < the cell's own;
    reg settings: [reg.R] < [reg.R.dataset.D] < [reg.R.arch.A] < grid axes."""
    o = merge(copy.deepcopy(spec.train), spec.dataset.get(ds, {}))
    table = spec.reg.get(reg, {})
    settings = merge(merge(spec.reg_settings(reg), table.get("dataset", {}).get(ds, {})),
                     table.get("arch", {}).get(arch, {}))
    for key, value in point:
        if key.startswith("reg."):
            settings[key[4:]] = value
        else:
            o[key] = value
    o.update(regularizer=reg, arch=arch, dataset=ds, seed=seed, reg=settings)
    return o


def _unique(cells: list[Cell]) -> list[Cell]:
    """Ids are readable; two cells whose values print alike get a short hash."""
    seen: dict[str, int] = {}
    for c in cells:
        seen[c.id] = seen.get(c.id, 0) + 1
    out = []
    for c in cells:
        if seen[c.id] > 1:
            h = hashlib.sha256(json.dumps(c.overrides, sort_keys=True).encode()).hexdigest()[:6]
            c = replace(c, id=f"{c.id}-{h}")
        out.append(c)
    if len({c.id for c in out}) != len(out):
        raise WaeError("two cells of the spec are identical; remove the repeated grid value")
    return out


def _plan(cell: Cell, device: str | None = None) -> Plan:
    """The cell's :class:`~wae_bench.run.build.Plan`; errors name the cell."""
    o = dict(cell.overrides, **({"device": device} if device else {}))
    try:
        return resolve_run(from_dict(TrainConfig, o))
    except WaeError as e:
        raise WaeError(f"cell {cell.id}: {e}") from None


def resolve(cell: Cell, device: str | None = None) -> TrainConfig:
    """The cell's fully resolved TrainConfig (dataset/arch/regularizer defaults
    filled in, the regularizer's settings validated); errors name the cell."""
    return _plan(cell, device).cfg


def resolve_all(cells: list[Cell]) -> dict[str, dict[str, Any]]:
    """Resolve every cell before anything runs (unknown regularizer, bad key or
    value: refused in one line).  Returns ``{cell id: resolved config dict}``."""
    return {c.id: to_dict(resolve(c)) for c in cells}


def select(cells: list[Cell], only: str | None) -> list[Cell]:
    """``--only``: comma-separated cell ids or glob patterns (``moca-*``, ``*-s0``)."""
    if not only:
        return cells
    patterns = split_list(only)
    picked = [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not picked:
        raise WaeError(f"--only {only!r} matches no cell; list the cells with --dry-run")
    return picked


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (0 <= i < n) -> ``(i, n)``."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise WaeError(f"bad --shard {text!r}: write I/N with 0 <= I < N, e.g. --shard 0/4 "
                       f"(a cluster array job: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(m.group(1)), int(m.group(2))


def shard(cells: list[Cell], part: tuple[int, int] | None) -> list[Cell]:
    """Every n-th cell from the i-th: disjoint shares covering the grid."""
    if part is None:
        return cells
    i, n = part
    return cells[i::n]
