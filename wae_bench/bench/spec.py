"""A benchmark spec: one TOML file naming a grid of regularizers ×
architectures × datasets × seeds × hyper-parameter axes, the training budget
they all share and the evaluation protocol (MoCA paper, Table 1 and Sec. 5).

Sections (unknown keys are refused, as everywhere in wae-bench)::

    [bench]    name, description, datasets, archs (empty: each dataset's
               default), regularizers, seeds
    [train]    TrainConfig keys shared by every cell (epochs, batch_size, ...)
    [dataset.NAME]                  TrainConfig keys for one dataset only
    [eval]     EvalSettings keys (wae_bench.config; docs/cli.md): fid_samples,
               metrics, what, split, features, batch_size, seed, ...
    [reg.NAME]                      settings of one regularizer (its Config keys)
    [reg.NAME.dataset.D] / [reg.NAME.arch.A]   ... for one dataset / architecture
    [reg.NAME.grid]                 axes for this regularizer only
    [grid]     axes: "reg.lambda" = [...], latent_dim = [...]
    [tune]     the tuning protocol (:mod:`wae_bench.bench.tune`): holdout, epochs,
               max_steps, fid_samples, seeds, metric
    [reg.NAME.tune]                 tuning axes replacing the plugin's own grid
    [[cited]]  a value the paper reports, shown in a column of its own

The spec's hash covers everything that changes a result; locations and
bookkeeping (data_root, device, ckpt_every, fid_weights, description, cited)
are left out, so machines with different paths can share a results folder.
So is ``bench.seeds`` (each cell id carries its seed). A results folder
checks a spec with :func:`grow`, not by hash: a finished grid takes more
seeds, regularizers, archs or datasets (every cell id names them), more
values of a ``[reg.NAME.tune]`` axis and more tuning seeds (:func:`widens`),
as long as nothing the existing cells depend on changes.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from wae_bench.config import (LOCATION_KEYS, WHAT, EvalSettings, RegularizerConfig, TrainConfig, from_dict, key_of,
                              load_toml, location_keys, merge, parse_sets)
from wae_bench.errors import WaeError, doc_ref, source_file

What = typing.Literal[WHAT]
WHAT_LABELS = {"samples": "prior samples", "rec": "REC", "n": "N", "gmm": "GMM", "interp": "Interp"}

# TrainConfig keys the grid itself sets; [train] / [dataset.*] may not.
CELL_KEYS = ("regularizer", "arch", "dataset", "seed", "reg")
# Keys of a [reg.NAME] table that are not the regularizer's own settings.
REG_SUBTABLES = ("arch", "dataset", "grid", "tune")


def check_name(name: str) -> None:
    """``bench.name`` names the default results folder (``runs/bench/<name>``):
    one plain folder name, never a path that would write elsewhere."""
    bad = (not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")
           or name.startswith(("~", "-")) or len(name.encode()) > 200)
    if bad:
        raise WaeError(f"bench.name {name!r} must be one plain folder name (no '/', '\\', '..', leading '~' or "
                       f"'-', at most 200 bytes), e.g. name = \"my-ablation\"; it names runs/bench/<name>")


def same_value_key(v: Any) -> str:
    """Equal grid values get equal keys (``1`` and ``1.0`` alike, as cell ids print them)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(float(v))
    return json.dumps(v, sort_keys=True)


@dataclass
class BenchInfo:
    name: str = field(metadata={"example": '"my-grid"'})
    datasets: list[str] = field(metadata={"example": '["digits"]'})
    regularizers: list[str] = field(metadata={"example": '["moca", "ae"]'})
    description: str = ""
    archs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: list(BenchInfo.DEFAULT_SEEDS))
    DEFAULT_SEEDS: typing.ClassVar[tuple[int, ...]] = (0,)

    def __post_init__(self):
        check_name(self.name)
        for key in ("datasets", "regularizers", "seeds"):
            if not getattr(self, key):
                raise WaeError(f"empty grid: bench.{key} is empty; list at least one")
        for key in ("datasets", "regularizers", "archs", "seeds"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise WaeError(f"bench.{key} lists a value twice ({values}); list each once")


@dataclass
class TuneSettings:
    """``[tune]``: every regularizer's tunable settings (the plugin's
    ``tuning_grid``, or ``[reg.NAME.tune]``) are searched by short tuning runs
    that hold out ``holdout`` training images and are scored on them
    (``metric`` of ``fid_samples`` images of the plugin's sampler against
    that validation split); each full-budget cell then uses the best value.
    The budget of a tuning run, the same for every regularizer: ``epochs``
    capped at ``max_steps`` (0: no cap; None: the cells' own value).
    ``seeds``: the seeds of the tuning runs (not given: the first of bench.seeds)."""

    holdout: int = 0
    epochs: int | None = None
    max_steps: int | None = None
    fid_samples: int = 1000
    seeds: list[int] | None = None
    metric: str = "fid"

    def __post_init__(self):
        if self.holdout < 1:
            raise WaeError("tune.holdout must name how many training images the tuning runs hold out as the "
                           "validation split, e.g. holdout = 5000 (CIFAR-10) or 300 (digits)")
        if self.epochs is not None and self.epochs < 1:
            raise WaeError(f"tune.epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 0:
            raise WaeError(f"tune.max_steps must be >= 0 (0 = no cap), got {self.max_steps}")
        if self.fid_samples < 2:
            raise WaeError(f"tune.fid_samples must be >= 2, got {self.fid_samples}")
        if self.seeds is not None and not self.seeds:
            raise WaeError("tune.seeds is empty; list at least one seed, e.g. seeds = [0], or leave it out "
                           "(the first of bench.seeds)")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise WaeError(f"tune.seeds lists a value twice ({self.seeds}); list each once")
        if self.metric not in ("fid", "kid"):
            raise WaeError(f"tune.metric = {self.metric!r}: tuning picks the lowest score; choose fid or kid")


@dataclass
class Cited:
    """A number the paper reports; never mixed with measured ones.
    ``arch`` empty: the source does not say; ``axes``: grid values it belongs to."""

    regularizer: str = field(metadata={"example": '"moca"'})
    dataset: str = field(metadata={"example": '"cifar10"'})
    value: float = field(metadata={"example": "54.36"})
    source: str = field(metadata={"example": '"Arpit et al. 2021, Table 1"'})
    arch: str | None = None
    what: What = "samples"
    metric: str = "fid"
    axes: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Spec:
    bench: BenchInfo
    train: dict[str, Any] = field(default_factory=dict, metadata={"table_of": TrainConfig})  # (checked per cell)
    eval: EvalSettings = field(default_factory=EvalSettings)
    reg: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    tune: TuneSettings | None = None
    cited: list[Cited] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, init=False)
    source: str = field(default="", init=False)
    overrides: list[str] = field(default_factory=list, init=False)   # the --set lines applied to source

    @property
    def name(self) -> str:
        return self.bench.name

    def reg_settings(self, regularizer: str) -> dict[str, Any]:
        """The ``[reg.NAME]`` table without its arch/dataset/grid sub-tables."""
        table = self.reg.get(regularizer, {})
        return {k: v for k, v in table.items() if k not in REG_SUBTABLES}

    def axes_for(self, regularizer: str) -> dict[str, list]:
        """Grid axes of one regularizer: the shared ``[grid]`` then its own."""
        return {**self.grid, **flatten_axes(self.reg.get(regularizer, {}).get("grid", {}), table_ref(f"reg.{regularizer}.grid"))}

    def tune_axes(self, regularizer: str) -> dict[str, list] | None:
        """``[reg.NAME.tune]``: tuning axes replacing the plugin's own; None if not set."""
        table = self.reg.get(regularizer, {}).get("tune")
        return None if table is None else flatten_axes(table, table_ref(f"reg.{regularizer}.tune"))

    @property
    def tune_seeds(self) -> list[int]:
        return (self.tune.seeds or self.bench.seeds[:1]) if self.tune else []

    def hash(self) -> str:
        return spec_hash(self.raw)


def axis_key(key: str) -> str:
    """An axis in its key spelling: each dotted part as :func:`~wae_bench.config.key_of`
    spells a Config field (``reg.lambda_`` -> ``reg.lambda``), so that the field's
    Python name and its key are one axis (one cell id, one label, one column)."""
    return ".".join(key_of(part) for part in key.split("."))


def table_ref(section: str) -> str:
    """How an error names a spec table before one of its keys: ``[reg.moca.tune] ``."""
    return f"[{section}] "


def flatten_axes(table: dict[str, Any], where: str = "[grid] ") -> dict[str, list]:
    """``{"reg": {"lambda": [..]}, "latent_dim": [..]}`` -> ``{"reg.lambda": [..], "latent_dim": [..]}``
    (TOML's dotted keys and quoted ``"reg.lambda"`` keys mean the same; each
    axis in its key spelling, :func:`axis_key`: a table giving one axis in
    both spellings is refused, as :func:`~wae_bench.config.spelled` refuses a
    key given twice; one spelling given as a dotted key and a quoted one is
    the later, as ``--set grid.reg.lambda=[3]`` overrides a file's ``"reg.lambda"``).  ``where`` names the table in errors (``[reg.moca.tune] ``)."""
    out: dict[str, list] = {}
    given: dict[str, str] = {}                      # axis -> the spelling it was given in
    for spelling, value in _leaves(table):
        key = axis_key(spelling)
        if key in out and given[key] != spelling:   # (one spelling twice, dotted and quoted: the later, a --set, wins)
            raise WaeError(f"{where}\"{key}\" is given twice, as {given[key]!r} and {spelling!r}; give it "
                           f"once, as \"{key}\"")
        out[key], given[key] = _axis_values(value, where, spelling), spelling
    return out


def _leaves(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of each entry of ``table`` that is not a table."""
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _axis_values(value: Any, where: str, key: str) -> list:
    """The values of axis ``key``: a list, none repeated."""
    if not isinstance(value, list):
        raise WaeError(f"grid axis {where}\"{key}\" = {value!r} is not a list; write \"{key}\" = [{value!r}]")
    if not value:
        raise WaeError(f"empty grid: axis {where}\"{key}\" has no values; list at least one")
    if len({same_value_key(v) for v in value}) != len(value):
        raise WaeError(f"grid axis {where}\"{key}\" lists a value twice ({value}); list each once")
    return value


def _check_train_keys(table: dict[str, Any], where: str) -> None:
    """``[train]`` / ``[dataset.NAME]``: TrainConfig keys but the grid's own
    (:data:`CELL_KEYS`); a regularizer's setting (``lambda``) is named as
    the ``[reg.NAME]`` key it is."""
    reg_keys = {key_of(f.name) for f in dataclasses.fields(RegularizerConfig)}
    for key in table:
        if key in CELL_KEYS:
            hint = "[reg.NAME]" if key == "reg" else f"bench.{key}s"
            raise WaeError(f"{where}.{key} is set by the grid, not here; use {hint} instead")
        if key_of(str(key)) in reg_keys:
            raise WaeError(f"{where}.{key} is a regularizer's setting, not a training one; set it in a "
                           f"[reg.NAME] table (e.g. [reg.moca] {key_of(str(key))} = ...)")
    from_dict(TrainConfig, table, where=f"{where}.", unlisted=CELL_KEYS)  # unknown keys and bad types


def _check_axis(key: str, where: str, listed: list[str] | None = None) -> None:
    """``key`` is ``reg.KEY`` or a TrainConfig key; an unknown one is refused
    naming ``listed``, the keys the table may name (default: every
    TrainConfig key but the cell's own), and the key meant: the closest of
    them, else the setting ``"reg.KEY"`` (``"lambda"`` is ``"reg.lambda"``)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} - set(CELL_KEYS)
    if key.startswith("reg."):
        if key.count(".") != 1:
            raise WaeError(f"grid axis {where}\"{key}\": write reg.KEY (one level), e.g. \"reg.lambda\"")
        return
    if key not in names:
        listed = sorted(names) if listed is None else listed
        close = difflib.get_close_matches(key, listed, n=1)
        spelled = f" (\"reg.{key}\")" if key.isidentifier() and not close else ""
        raise WaeError(f"unknown grid axis {where}\"{key}\"; use reg.KEY for a regularizer setting{spelled} or one "
                       f"of: {', '.join(listed)}" + (f"; did you mean \"{close[0]}\"?" if close else ""))


# TrainConfig keys the tuning protocol sets itself ([tune]: the tuning cells' budget, their hold-out, the
# ex-post density they are scored by): never tuned, or the final cells would train with them.
TUNE_PROTOCOL_KEYS = ("holdout", "epochs", "max_steps", "expost")


def tunable_axes() -> list[str]:
    """The TrainConfig keys a tuning axis may name besides ``reg.KEY``: no
    cell key, location or key of the tuning protocol (:data:`TUNE_PROTOCOL_KEYS`)."""
    return sorted({f.name for f in dataclasses.fields(TrainConfig)} - set(CELL_KEYS) - set(TUNE_PROTOCOL_KEYS)
                  - set(LOCATION_KEYS))


def check_tuned_axis(spec: Spec, regularizer: str, key: str, where: str) -> None:
    """A tuned axis is a valid axis, not one the tuning protocol sets or a
    location, and not also a grid axis of the regularizer."""
    _check_axis(key, where, tunable_axes())
    if not key.startswith("reg.") and key not in tunable_axes():
        why = (f"tune.{key} sets it for the tuning cells, train.{key} for the final ones"
               if key in TUNE_PROTOCOL_KEYS else "a location, not a setting that changes a result")
        raise WaeError(f"tuning axis {where}\"{key}\" cannot be tuned ({why}); tune reg.KEY (a regularizer "
                       f"setting) or one of: {', '.join(tunable_axes())}")
    if key in spec.axes_for(regularizer):
        raise WaeError(f"{where}\"{key}\" is tuned and also a grid axis of {regularizer}; drop it from the grid "
                       f"(tuning picks its value) or from the tuning axes")


def _check_table(section: str, name: str, table: Any, listed: list[str], shape: str) -> None:
    """``[section.name]`` configures something the grid lists, and is a table."""
    field = {"dataset": "datasets", "reg": "regularizers"}[section]
    if name not in listed:
        what = "dataset" if section == "dataset" else "regularizer"
        raise WaeError(f"[{section}.{name}] configures a {what} not in bench.{field} ({', '.join(listed)}); "
                       f"add it there or remove the table")
    if not isinstance(table, dict):
        raise WaeError(f"{section}.{name} must be {shape}")


def validate(spec: Spec) -> Spec:
    """Structural checks that need no registry (the registry ones happen when
    the cells are resolved, :func:`wae_bench.bench.grid.resolve_all`)."""
    b = spec.bench
    spec.grid = flatten_axes(spec.grid)
    for key in spec.grid:      # (before the regularizers' tables: an error names the table the axis is in)
        _check_axis(key, table_ref("grid"))
    _check_train_keys(spec.train, "train")
    for name, table in spec.dataset.items():
        _check_table("dataset", name, table, b.datasets, "a table of training settings")
        _check_train_keys(table, f"dataset.{name}")
    for name, table in spec.reg.items():
        _check_table("reg", name, table, b.regularizers, f"a table of settings, e.g. [reg.{name}] lambda = 10")
        for sub in REG_SUBTABLES:
            if not isinstance(table.get(sub, {}), dict):
                raise WaeError(f"reg.{name}.{sub} must be a table, e.g. [reg.{name}.{sub}.NAME]")
        for sub in ("arch", "dataset"):
            for key, over in table.get(sub, {}).items():
                if not isinstance(over, dict):
                    raise WaeError(f"reg.{name}.{sub}.{key} must be a table, e.g. "
                                   f"[reg.{name}.{sub}.{key}] lambda = 100")
                if sub == "dataset" and key not in b.datasets:
                    raise WaeError(f"[reg.{name}.dataset.{key}]: {key!r} is not in bench.datasets; fix the name")
                if sub == "arch" and b.archs and key not in b.archs:
                    raise WaeError(f"[reg.{name}.arch.{key}]: {key!r} is not in bench.archs; fix the name")
        for key in flatten_axes(table.get("grid", {}), table_ref(f"reg.{name}.grid")):   # ([grid]'s: above)
            _check_axis(key, table_ref(f"reg.{name}.grid"))
        if "tune" in table:
            if spec.tune is None:
                raise WaeError(f"[reg.{name}.tune] sets tuning axes but the spec has no [tune] table; add [tune] "
                               f"holdout = N, or remove [reg.{name}.tune]")
            for key in spec.tune_axes(name):
                check_tuned_axis(spec, name, key, table_ref(f"reg.{name}.tune"))
    _check_tune_kid(spec)
    return spec


def _check_tune_kid(spec: Spec) -> None:
    """``tune.metric = "kid"``: each tuning score draws KID subsets of
    ``eval.kid_subset_size`` images from the validation split (``tune.holdout``
    images) and from the ``tune.fid_samples`` generated ones, without
    replacement (the check :func:`wae_bench.metrics.fid.check_kid_size` makes
    at scoring time, here before any cell trains)."""
    t = spec.tune
    if t is None or t.metric != "kid":
        return
    k = spec.eval.kid_subset_size
    short = [f"tune.holdout = {t.holdout} validation images"] * (t.holdout < k)
    short += [f"tune.fid_samples = {t.fid_samples} generated images"] * (t.fid_samples < k)
    if short:
        raise WaeError(f"tune.metric = \"kid\" draws subsets of eval.kid_subset_size = {k} images from each side, "
                       f"but a tuning score has only {' and '.join(short)}; set eval.kid_subset_size = "
                       f"{min(t.holdout, t.fid_samples)} or less (or raise those)")


def parse(data: dict[str, Any], source: str = "") -> Spec:
    """A spec from its TOML data (already merged with ``--set``)."""
    if not isinstance(data.get("bench"), dict):
        raise WaeError(f"spec {source or ''} has no [bench] table; start it with [bench] name = ..., "
                       f"datasets = [...], regularizers = [...]".replace("  ", " "))
    spec = from_dict(Spec, data)
    spec.source = source
    validate(spec)
    spec.raw = spelled_axes(data)
    return spec


def spelled_axes(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of raw spec ``data`` with the keys of its axis tables (``[grid]``,
    ``[reg.NAME.grid]``, ``[reg.NAME.tune]``) in their key spelling
    (:func:`axis_key`): the spec's hash and a results folder's record
    (:func:`grow`) are the same whichever spelling of an axis a spec gave."""
    out = json.loads(json.dumps(data))

    def spell(table: dict[str, Any]) -> dict[str, Any]:
        return {axis_key(k): spell(v) if isinstance(v, dict) else v for k, v in table.items()}
    if isinstance(out.get("grid"), dict):
        out["grid"] = spell(out["grid"])
    for table in (out.get("reg") or {}).values():
        for sub in ("grid", "tune"):
            if isinstance(table, dict) and isinstance(table.get(sub), dict):
                table[sub] = spell(table[sub])
    return out


def load(path: str | Path, sets: typing.Iterable[str] = ()) -> Spec:
    """Read ``path`` (TOML), apply ``--set section.key=value`` overrides, validate."""
    p = Path(path)
    if not p.is_file():
        raise WaeError(f"benchmark spec {str(p)!r} not found; pass a TOML file (its keys: "
                       f"{doc_ref('benchmarks.md', 'The spec in full')}), such as "
                       f"{source_file('benchmarks/smoke.toml')}")
    written, given = load_toml(p), parse_sets(sets)
    spec = parse(narrowed(merge(written, given), written, given), str(p))
    spec.overrides = list(sets)
    return spec


def narrowed(raw: dict[str, Any], written: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Spec ``raw`` (file ``written`` with overrides ``given`` merged) without
    the settings tables of the members that a ``--set bench.LIST=[...]``
    leaves out of the file's list: ``--set 'bench.regularizers=["ae"]'`` on a
    spec with ``[reg.moca]`` runs the ae cells alone, as a run of fewer
    members does (:func:`grow` keeps a results folder's tables of the members
    a run leaves out). A table of a member the file itself does not list
    stays, and :func:`validate` refuses it (a misspelt name)."""
    asked = given.get("bench", {}) if isinstance(given.get("bench"), dict) else {}
    left_out = {key: set(_members(written, key)) - set(asked[key]) for key in ("regularizers", "datasets", "archs")
                if isinstance(asked.get(key), list) and all(isinstance(m, str) for m in asked[key])}
    if not any(left_out.values()):
        return raw
    out = json.loads(json.dumps(raw))
    for name in left_out.get("regularizers", ()):
        out.get("reg", {}).pop(name, None)
    for name in left_out.get("datasets", ()):
        out.get("dataset", {}).pop(name, None)
    for table in out.get("reg", {}).values():
        for sub in ("dataset", "arch"):
            for name in left_out.get(f"{sub}s", ()):
                if isinstance(table, dict) and isinstance(table.get(sub), dict):
                    table[sub].pop(name, None)
    return out


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that decides results (see the module docstring).
    ``bench.seeds`` is not part of it (cell ids carry their seed, so seeds can
    be added to a results folder, :func:`grow`), but the tuning seeds
    it gives by default are: they decide every final cell's tuned values."""
    out = {k: v for k, v in data.items() if k != "cited"}
    bench = out.get("bench", {})
    if "tune" in out and not out["tune"].get("seeds"):
        out["tune"] = {**out["tune"], "seeds": tuning_seeds(data)}
    out["bench"] = {k: v for k, v in bench.items() if k not in ("description", "seeds")}
    out["train"] = {k: v for k, v in out.get("train", {}).items() if k not in LOCATION_KEYS}
    out["dataset"] = {n: {k: v for k, v in t.items() if k not in LOCATION_KEYS}
                      for n, t in out.get("dataset", {}).items()}
    out["eval"] = {k: v for k, v in out.get("eval", {}).items() if k not in location_keys(EvalSettings)}
    return {k: v for k, v in out.items() if v}


def tuning_seeds(raw: dict[str, Any]) -> list[int]:
    """The tuning seeds of raw spec ``raw``: ``tune.seeds``, else the first of ``bench.seeds``."""
    given = raw.get("tune", {}).get("seeds")
    return list(given or list(raw.get("bench", {}).get("seeds", BenchInfo.DEFAULT_SEEDS))[:1])


def spec_hash(raw: dict[str, Any]) -> str:
    text = json.dumps(_strip(raw), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The grid's member lists a results folder can grow (:func:`grow`), and the
# spec tables each member owns (``[reg.NAME]``; ``[dataset.NAME]``;
# ``[reg.R.dataset.NAME]`` / ``[reg.R.arch.NAME]``, which the regularizer R owns too).
MEMBERS = {"regularizers": "regularizer", "datasets": "dataset", "archs": "arch", "seeds": "seed"}


def _members(d: dict[str, Any], key: str) -> list:
    default = BenchInfo.DEFAULT_SEEDS if key == "seeds" else ()
    return list(d.get("bench", {}).get(key, default))


def _owners(key: str) -> list[tuple[str, str]]:
    """The grid members (list, name) a dotted spec key belongs to; none: every cell's."""
    parts = key.split(".")
    owners = []
    if parts[0] == "reg" and len(parts) > 2:
        owners.append(("regularizers", parts[1]))
        if len(parts) > 4 and parts[2] in ("dataset", "arch"):
            owners.append((f"{parts[2]}s", parts[3]))
    elif parts[0] == "dataset" and len(parts) > 2:
        owners.append(("datasets", parts[1]))
    return owners


def grow(recorded: dict[str, Any], raw: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any], list[str]]:
    """A results folder recorded with raw spec ``recorded`` is asked to run
    spec ``raw``. Cell ids carry their regularizer, arch, dataset and seed, so
    ``raw`` may list members the record lacks (their cells are new) or fewer
    (the others' cells stay in the table), as long as nothing an existing cell
    depends on changes. Returns the members ``raw`` adds (``{"seeds": [2]}``),
    the raw spec to record (``raw`` with the recorded members first, then the
    added ones, and the recorded tables of the members ``raw`` leaves out),
    and the dotted keys that differ for cells both specs hold (empty: the
    folder takes ``raw``). An empty ``bench.archs`` (each dataset's default)
    only matches itself. ``raw``'s tuning seeds (given, or implied: the first
    of ``bench.seeds``) must start with the record's (:func:`widens`)."""
    recorded = spelled_axes(recorded)   # (a folder recorded before axes were spelled: "reg.lambda_" is "reg.lambda")
    merged = json.loads(json.dumps(raw))
    bench = merged.setdefault("bench", {})
    added: dict[str, list] = {}
    grown = set()                                     # the member lists taken as a union
    for key in MEMBERS:
        old, new = _members(recorded, key), _members(raw, key)
        if key == "archs" and (not old or not new):
            continue                                  # (empty means the defaults: no union to take)
        grown.add(f"bench.{key}")
        added.update({key: [m for m in new if m not in old]} if any(m not in old for m in new) else {})
        if old + added.get(key, []) != new:
            bench[key] = old + added.get(key, [])
    listed = {k: set(_members(raw, k)) for k in MEMBERS}
    tables = recorded.get("reg", {})
    for name, table in tables.items():               # the tables of members the run leaves out, kept
        if name not in listed["regularizers"]:
            merged.setdefault("reg", {})[name] = table
            continue
        for sub in ("dataset", "arch"):
            for member, over in table.get(sub, {}).items():
                if member not in listed[f"{sub}s"]:
                    merged.setdefault("reg", {}).setdefault(name, {}).setdefault(sub, {})[member] = over
    for name, table in recorded.get("dataset", {}).items():
        if name not in listed["datasets"]:
            merged.setdefault("dataset", {})[name] = table

    def own(key: str) -> bool:   # a key of the grown lists, or of cells only one side has
        return key in grown or any((m in _members(recorded, lst)) != (m in listed[lst]) for lst, m in _owners(key))
    old_keys, new_keys = flat_keys(_strip(recorded)), flat_keys(_strip(raw))
    changed = {k for k in differences(recorded, merged) + differences(merged, raw)
               if not own(k) and not widens(k, old_keys.get(k), new_keys.get(k))}
    return added, merged, sorted(changed)


def widens(key: str, old: Any, new: Any) -> bool:
    """Whether spec key ``key`` going from ``old`` to ``new`` widens a tuning
    axis (``reg.NAME.tune.AXIS``): every value the folder tuned is still
    listed, in the same order, others added around or between them; or grows
    the tuning seeds (``tune.seeds``, the implied first of ``bench.seeds``
    included, :func:`_strip`): every seed the folder tuned kept, in the same
    order, new ones after them.  Tuning values and seeds are cell ids
    (``tune-moca-...-lambda10000-s0``), so only the new tuning cells train;
    the choice is then redone over all of them, and final cells trained at
    a value it no longer chooses go stale (:func:`wae_bench.bench.tune.changes`)."""
    if not (isinstance(old, list) and isinstance(new, list)):
        return False
    if key == "tune.seeds":
        return new[:len(old)] == old
    parts = key.split(".")
    if not (len(parts) > 3 and parts[0] == "reg" and parts[2] == "tune"):
        return False
    keys = [same_value_key(v) for v in new]
    kept = [k for k in keys if k in {same_value_key(v) for v in old}]
    return kept == [same_value_key(v) for v in old]


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Dotted keys whose result-deciding values differ between two raw specs."""
    fa, fb = flat_keys(_strip(a)), flat_keys(_strip(b))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def flat_keys(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"reg": {"K": 1}}`` -> ``{"reg.K": 1}``."""
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat_keys(v, f"{prefix}{k}."))
    return out
