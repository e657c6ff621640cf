"""How long a grid will take, from committed measured rates (``bench
--dry-run``), so that one sees before starting whether it fits a GPU window.

The rates are ``benchmarks/results/rates.json`` (written by
``python benchmarks/rates.py`` from the measurement files beside it, each row
citing its file; ``WAE_BENCH_RATES=PATH`` names another):

- a training step's wall time for one cell when ``concurrency`` cells train at
  once, keyed by :data:`KEY` (device kind, architecture, regularizer,
  precision, step mode, memory layout, compile, batch, image size, latent
  dimension, concurrency), matched exactly; at a concurrency measured for
  another regularizer of the same net and settings (moca, ae), a cell's
  one-cell rate times that factor, said so (:meth:`Estimator.scaled_rate`);
  where neither holds, the estimate says so instead of guessing;
- the evaluation's Inception rate per device kind (images per second: a
  whole scored cell's evaluation where one was measured, else the FID of the
  test split against cached statistics; the newest on a GPU kind, the median
  on ``cpu``, which names every CPU alike, :func:`typical`), applied to the images a cell's
  evaluation generates, and once per reference split to its statistics.
  Cells scored with stand-in features are not estimated.

Not counted: building a cell, capture and compilation, the ex-post fit, the
checkpoints and the picture grids (seconds per cell on a GPU).

A cell's training time is its step count (epochs × steps per epoch from the
number of training images, less the hold-out; capped at ``max_steps``) times
its step time; with ``--concurrent N`` the grid's training time is the sum
over cells divided by N.  The number of images is what the dataset's
``scan`` hook counted at the cell's ``data_root`` (the data check of
``--dry-run``), else the standard copy's size (``n_train``/``n_test``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wae_bench.bench.grid import Cell
from wae_bench.config import EvalSettings
from wae_bench.errors import doc_ref, source_file
from wae_bench.registry import DATASETS, REGULARIZERS

FORMAT = "wae-bench-rates/1"
KEY = ("device", "arch", "regularizer", "precision", "step_mode", "channels_last", "compile", "batch_size",
       "image_size", "latent_dim", "concurrency")
SETTINGS = ("precision", "step_mode", "channels_last", "compile")   # of KEY: what ``--set train.X=`` chooses
RATES = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "rates.json"
SIZED_BY = ("epochs", "batch_size", "image_size", "latent_dim")   # the settings a cell's steps and rate need


def rates_path() -> Path:
    return Path(os.environ.get("WAE_BENCH_RATES") or RATES)


def load_rates(path: Path | None = None) -> dict | None:
    """The rates file, or None where there is none (an installed package without the repository)."""
    p = path or rates_path()
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def device_kind(device: str) -> str:
    """The rates' name of a cell's device here: the GPU's name (``NVIDIA H200``) or ``cpu``."""
    import torch

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        return device
    return torch.cuda.get_device_name(torch.device(device) if device.startswith("cuda:") else None)


def same_device(wanted: str, recorded: str) -> bool:
    """Whether a device name a user typed (``nvidia-h200``, ``h200``, ``NVIDIA H200``)
    names a rates file's device: case, spaces and dashes aside, equal or its end."""
    a, b = ("".join(ch for ch in s.lower() if ch.isalnum()) for s in (wanted, recorded))
    return bool(a) and b.endswith(a)


@dataclass
class CellEstimate:
    steps: int | None
    train_s: float | None = None
    eval_images: int = 0
    eval_s: float | None = None
    rate: dict | None = None
    missing: str = ""                # why there is no training estimate
    settings: tuple | None = None    # its SETTINGS on the device, where no rate matched them

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "train_s": self.train_s, "eval_images": self.eval_images,
                "eval_s": self.eval_s, "rate_source": self.rate["source"] if self.rate else None,
                **({"missing": self.missing} if self.missing else {})}


Scanned = dict[tuple[str, str | None], dict[str, int]]
"""Split sizes counted in a cell's data by its dataset's ``scan`` hook (``bench --dry-run``'s data check),
by (dataset, data_root)."""


def split_sizes(cfg: dict, scanned: Scanned | None = None) -> dict[str, int | None]:
    """The ``train``/``test`` image counts of a cell's data: those its dataset's
    ``scan`` hook counted at its ``data_root`` (``scanned``), else the standard
    copy's (``n_train``/``n_test`` of its :class:`~wae_bench.data.spec.DatasetSpec`;
    None where they depend on the files)."""
    spec = DATASETS.get(cfg["dataset"])
    sizes = {"train": getattr(spec, "n_train", None), "test": getattr(spec, "n_test", None)}
    found = (scanned or {}).get((cfg["dataset"], cfg.get("data_root")), {})
    return {split: found.get(split, n) for split, n in sizes.items()}


def total_steps(cfg: dict, scanned: Scanned | None = None) -> int | None:
    """A cell's step count from its data's size (:func:`split_sizes`), or None when unknown."""
    n = split_sizes(cfg, scanned)["train"]
    if n is None:
        return None
    spe = (n - (cfg.get("holdout") or 0)) // cfg["batch_size"]
    T = spe * cfg["epochs"]
    return min(T, cfg["max_steps"]) if cfg.get("max_steps") else T


def eval_images(cfg: dict, ev: EvalSettings, scanned: Scanned | None = None) -> tuple[int, tuple[str, str, int]]:
    """(images a cell's evaluation generates, its reference (dataset, split, size)),
    the sizes as :func:`split_sizes` gives them."""
    spec = DATASETS.get(cfg["dataset"])
    n = ev.fid_samples or spec.fid_samples
    ref = {**split_sizes(cfg, scanned), "val": cfg.get("holdout")}.get(ev.split) or 0
    total = sum(min(n, ref) if w == "rec" and ref else n for w in ev.what)
    return total, (cfg["dataset"], ev.split, ref)


def typical(rows: list[dict], device: str) -> dict:
    """The Inception rate row of ``rows`` (one kind, ``what``) that an
    estimate on ``device`` applies: on a GPU kind, the newest measurement (one
    named device, re-measured as the code gets faster); on ``cpu``, which
    names every CPU alike (2 shared cores measured 1.2 img/s, a free Xeon 7),
    the median row of all, said so in its ``source``."""
    if not same_device(device, "cpu") or len(rows) < 2:
        return max(rows, key=lambda r: r.get("measured", ""))
    ranked = sorted(rows, key=lambda r: (r["images_per_s"], r.get("measured", "")))
    mid = ranked[(len(ranked) - 1) // 2]
    return {**mid, "source": f"{mid.get('source', 'rates.json')}, the median of {len(rows)} CPU measurements, "
                             f"{ranked[0]['images_per_s']:g} to {ranked[-1]['images_per_s']:g} img/s"}


class Estimator:
    """Look-ups in one rates file for one device kind and concurrency."""

    def __init__(self, rates: dict, device: str, concurrency: int = 1):
        self.device, self.concurrency = device, concurrency
        self.steps = [r for r in rates.get("steps", []) if same_device(device, r.get("device", ""))]
        rows = [r for r in rates.get("fid", []) if same_device(device, r.get("device", ""))]
        fid = {what: typical([r for r in rows if r["what"] == what], device) for what in {r["what"] for r in rows}}
        self.fid = fid.get("cell_evaluation") or fid.get("test_vs_cached")
        self.ref_rate = fid.get("reference_statistics") or fid.get("test_vs_cached")

    def on_device(self, cfg: dict) -> dict:
        """``cfg`` with the step mode and layout a cell gets on this device kind
        (``step_mode = "auto"``, ``channels_last`` unset: one process, so a
        GPU captures the step in NHWC, the CPU runs it eagerly;
        :func:`~wae_bench.step.graph.fast_path`)."""
        from wae_bench.step.graph import fast_path

        fast = fast_path(cfg.get("step_mode"), cfg.get("channels_last"),
                         "cpu" if same_device(self.device, "cpu") else "cuda", 1)
        return {**cfg, "step_mode": fast.step_mode, "channels_last": fast.channels_last}

    def step_rate(self, cfg: dict) -> dict | None:
        cfg = self.on_device(cfg)
        want = {k: cfg.get(k) for k in KEY if k not in ("device", "concurrency")}
        rows = [r for r in self.steps if r.get("concurrency") == self.concurrency
                and all(r.get(k) == v for k, v in want.items())]
        return max(rows, key=lambda r: r.get("measured", "")) if rows else None

    def scaled_rate(self, cfg: dict) -> dict | None:
        """Where no rate of ``cfg``'s regularizer was measured at this
        concurrency but its one-cell rate was, and another regularizer's
        rates at both (same net and settings: moca first, then ae, then by
        name): the one-cell rate times that regularizer's factor
        (``ms_per_step`` at N over at 1), marked ``scaled_by``.  None otherwise."""
        if self.concurrency == 1:
            return None
        cfg = self.on_device(cfg)
        same = [k for k in KEY if k not in ("device", "concurrency", "regularizer")]

        def rows(reg: str, n: int) -> list[dict]:
            return [r for r in self.steps if r.get("concurrency") == n and r.get("regularizer") == reg
                    and all(r.get(k) == cfg.get(k) for k in same)]
        one = rows(cfg["regularizer"], 1)
        if not one:
            return None
        others = sorted({r["regularizer"] for r in self.steps if r.get("regularizer") != cfg["regularizer"]},
                        key=lambda r: (r != "moca", r != "ae", r))
        for ref in others:
            at_n, at_1 = rows(ref, self.concurrency), rows(ref, 1)
            if at_n and at_1:
                newest = [max(x, key=lambda r: r.get("measured", "")) for x in (one, at_n, at_1)]
                factor = newest[1]["ms_per_step"] / newest[2]["ms_per_step"]
                return {**newest[0], "concurrency": self.concurrency, "ms_per_step": newest[0]["ms_per_step"] * factor,
                        "scaled_by": ref, "factor": factor,
                        "source": f"{newest[0]['source']} × {ref}'s {self.concurrency}-cell factor {factor:.3g} "
                                  f"({newest[1]['source']})"}
        return None

    def cell(self, cfg: dict, ev: EvalSettings, scanned: Scanned | None = None) -> CellEstimate:
        unset = [k for k in SIZED_BY if cfg.get(k) is None]
        if unset:   # (a final cell whose tuned value of one of them is not chosen yet: --dry-run sets it None)
            return CellEstimate(None, missing=f"its {', '.join(unset)} is tuned and not chosen yet")
        est = CellEstimate(total_steps(cfg, scanned))
        n, held = split_sizes(cfg, scanned)["train"], cfg.get("holdout") or 0
        if est.steps is None:
            est.missing = (f"the size of dataset {cfg['dataset']!r} is not known without its files "
                           f"(its data_root was not scanned)")
        elif n - held < cfg["batch_size"]:   # (the run refuses it: HoldoutSize)
            est.steps = None
            est.missing = (f"its hold-out of {held:,} leaves fewer than one batch of the {n:,} {cfg['dataset']} "
                           f"training images: it would not train")
        else:
            est.rate = self.step_rate(cfg) or self.scaled_rate(cfg)
            if est.rate is None:
                est.settings = settings_of(self.on_device(cfg))
                est.missing = (f"no measured rate for {describe(self.on_device(cfg))} at concurrency "
                               f"{self.concurrency} on {self.device}")
            else:
                est.train_s = est.steps * est.rate["ms_per_step"] / 1e3
        if ev.features == "inception":
            est.eval_images = eval_images(cfg, ev, scanned)[0]
            if self.fid is not None:
                est.eval_s = est.eval_images / self.fid["images_per_s"]
        return est


def evaluation_rate(device: str, rates: dict | None = None) -> dict | None:
    """The evaluation rate row (``images_per_s``, ``source``) that ``--dry-run``
    applies on ``device`` (a rates device kind, e.g. ``cpu``); None without one."""
    rates = rates if rates is not None else load_rates()
    return Estimator(rates, device).fid if rates is not None else None


def settings_of(cfg: dict) -> tuple:
    """A cell's (or a rate row's) :data:`SETTINGS` values."""
    return tuple(cfg.get(k) for k in SETTINGS)


def describe_settings(settings: tuple) -> str:
    """``bf16 graph channels-last compile=none``."""
    precision, step_mode, channels_last, compile_ = settings
    return f"{precision} {step_mode}{' channels-last' if channels_last else ''} compile={compile_}"


def set_flags(have: tuple, want: tuple) -> str:
    """The ``--set`` flags that turn settings ``have`` into ``want``."""
    return " ".join(f"--set train.{k}={w if isinstance(w, str) else json.dumps(w)}" for k, h, w in zip(SETTINGS, have, want) if h != w)


def describe(cfg: dict) -> str:
    """The rate key of a cell, as one reads it."""
    return (f"{cfg['regularizer']} {cfg['arch']} {cfg['image_size']}px batch {cfg['batch_size']} "
            f"d {cfg['latent_dim']} {cfg['precision']} {cfg['step_mode']}"
            f"{' channels-last' if cfg['channels_last'] else ''} compile={cfg['compile']}")


@dataclass
class GridEstimate:
    device: str
    concurrency: int
    source: str
    cells: dict[str, CellEstimate] = field(default_factory=dict)
    train_s: float = 0.0          # over the cells with a rate, divided by the concurrency
    eval_s: float = 0.0           # generated images plus each reference split's statistics once
    unknown: dict[str, list[str]] = field(default_factory=dict)   # why -> cell ids
    no_fid_rate: int = 0          # Inception-scored cells without an evaluation rate
    standin: int = 0              # cells scored with stand-in features (not estimated)
    eval_rate: dict | None = None
    other_devices: list[str] = field(default_factory=list)   # the rates' devices, when none is this one
    measured: dict[tuple, int] = field(default_factory=dict)  # SETTINGS measured on this device at this
    #                                  concurrency -> how many of the unestimated cells each would cover
    unselected_tuning: int = 0    # tuning cells left that the selected final cells wait for, not selected
    nets: tuple[list[str], list[str]] = ([], [])   # the unestimated cells' architectures, and those the
    #                                  device's rates at this concurrency are for
    unmeasured: dict[str, list[str]] = field(default_factory=dict)   # a regularizer the device's rates at
    #                                  this concurrency do not cover (a plugin) -> its unestimated cells whose
    #                                  settings they do cover
    regularizers: list[str] = field(default_factory=list)   # the regularizers those rates are for
    scaled: dict[str, list[str]] = field(default_factory=dict)   # a regularizer whose N-cell factor scaled
    #                                  other cells' one-cell rates (Estimator.scaled_rate) -> those cells


def estimate(cells: list[Cell], configs: dict[str, dict], evals: dict[str, EvalSettings], device: str,
             concurrency: int = 1, rates: dict | None = None, source: str = "",
             scanned: Scanned | None = None) -> GridEstimate | None:
    """The grid's estimate on ``device`` (a rates device kind); None without a rates file.
    ``scanned``: the split sizes the data check counted (:func:`split_sizes`)."""
    rates = rates if rates is not None else load_rates()
    if rates is None:
        return None
    est = Estimator(rates, device, concurrency)
    out = GridEstimate(device, concurrency, source or _shown(rates_path()))
    refs = set()
    train = 0.0
    for c in cells:
        cfg, ev = configs[c.id], evals[c.id]
        e = out.cells[c.id] = est.cell(cfg, ev, scanned)
        if e.train_s is None:
            out.unknown.setdefault(e.missing, []).append(c.id)
        else:
            train += e.train_s
            if e.rate.get("scaled_by"):
                out.scaled.setdefault(e.rate["scaled_by"], []).append(c.id)
        if ev.features != "inception":
            out.standin += 1
        elif e.eval_s is None:
            out.no_fid_rate += 1
        else:
            out.eval_s += e.eval_s
            refs.add(eval_images(cfg, ev, scanned)[1])
    out.train_s = train / concurrency
    unestimated = [configs[c.id] for c in cells if out.cells[c.id].settings is not None]
    out.measured = _measured(est, unestimated)
    out.nets = (sorted({cfg["arch"] for cfg in unestimated}),
                sorted({r["arch"] for r in est.steps if r.get("concurrency") == concurrency and r.get("arch")}))
    out.regularizers = sorted({r["regularizer"] for r in est.steps if r.get("concurrency") == concurrency
                               and r.get("regularizer")})
    for c in cells:
        e = out.cells[c.id]
        if e.settings in out.measured and configs[c.id]["regularizer"] not in out.regularizers:
            out.unmeasured.setdefault(configs[c.id]["regularizer"], []).append(c.id)
    out.eval_rate = est.fid
    if not est.steps and est.fid is None:
        out.other_devices = sorted({r["device"] for part in ("steps", "fid") for r in rates.get(part, [])
                                    if r.get("device")})
    if est.ref_rate is not None:
        out.eval_s += sum(n for _, _, n in refs) / est.ref_rate["images_per_s"]
    return out


def _measured(est: Estimator, unestimated: list[dict]) -> dict[tuple, int]:
    """The settings measured on ``est``'s device at its concurrency, each with
    the number of ``unestimated`` cells it has a rate for, most first (ties:
    the settings with the most rows)."""
    rows = [settings_of(r) for r in est.steps if r.get("concurrency") == est.concurrency]
    cover = {}
    for settings in dict.fromkeys(rows):
        cover[settings] = sum(est.step_rate({**cfg, **dict(zip(SETTINGS, settings))}) is not None
                              for cfg in unestimated)
    return dict(sorted(cover.items(), key=lambda kv: (-kv[1], -rows.count(kv[0]))))   # ties: the most measured


def _shown(p: Path) -> str:
    """``p`` relative to the working directory where it is under it."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def summary(g: GridEstimate, n_cells: int) -> list[str]:
    """The lines ``--dry-run`` prints."""
    known = n_cells - sum(len(v) for v in g.unknown.values())
    scored = n_cells - g.standin - g.no_fid_rate
    head = f"time estimate on {g.device}, {g.concurrency} cell(s) at once (measured rates: {g.source}): "
    if not n_cells:
        return [head + "nothing left to run (every cell selected is done, diverged or excluded)"]
    training = (f"training {duration(g.train_s)} for {known} of {n_cells} cell(s) left" if known
                else f"training not estimated: {_no_rates(g)}")
    lines = [head
             + training
             + (f" + {g.unselected_tuning} tuning cell(s) not selected (they run first; not in this estimate)"
                if g.unselected_tuning else "")
             + (f", evaluation {duration(g.eval_s)} for {scored} ({g.eval_rate['images_per_s']:,.0f} Inception "
                f"images/s, {g.eval_rate['source']})" if scored else "")
             + "; building, capture, ex-post fits, checkpoints and pictures not counted"]
    for ref, ids in g.scaled.items():
        lines.append(f"  scaled, not measured ({len(ids)} cell(s), e.g. {ids[0]}): their one-cell rate times "
                     f"{ref}'s measured {g.concurrency}-cell factor (same net and settings)")
    if g.other_devices:
        lines.append(f"  nothing measured on {g.device}; the rates file has: {', '.join(g.other_devices)} "
                     f"(choose one with --estimate-on)")
    if known and g.measured and any(e.settings for e in g.cells.values()):
        lines.append(f"  {_no_rates(g)}")
    for why, ids in g.unknown.items():
        lines.append(f"  not estimated ({len(ids)} cell(s), e.g. {ids[0]}): {why}")
    if g.no_fid_rate:
        lines.append(f"  evaluation not estimated ({g.no_fid_rate} cell(s)): no measured Inception rate on {g.device}")
    if g.standin:
        lines.append(f"  evaluation not estimated ({g.standin} cell(s)): stand-in features")
    return lines


def _no_rates(g: GridEstimate) -> str:
    """Why the unestimated cells have no rate on the device: settings it has no
    rates at (which it has, and the flags for the best of those), nets it
    has none of, regularizers it has none of (a plugin); each said of the
    cells it holds for."""
    unrated = [e.settings for e in g.cells.values() if e.settings is not None]
    if not unrated:   # (each cell's reason, a size not known, a hold-out too large, a tuned size: its own line)
        return "no cell left has a step count to time (why: below)"
    missing = list(dict.fromkeys(st for st in unrated if st not in g.measured))
    cells_nets, measured_nets = g.nets
    parts = []
    if missing:
        text = (f"no measured rates for {', '.join(map(describe_settings, missing))} at concurrency {g.concurrency} "
                f"on {g.device}")
        if g.measured:
            best, covers = next(iter(g.measured.items()))
            text += f"; rates exist for {', '.join(map(describe_settings, g.measured))}"
            flags = set_flags(missing[0], best) if len(missing) == 1 else ""
            text += f" (for {covers} of these cells with {flags})" if covers and flags else ""
        parts.append(text)
    elif not set(cells_nets) & set(measured_nets):   # the settings are measured, not the nets
        parts.append(f"no measured rates for {', '.join(cells_nets)} on {g.device} at concurrency {g.concurrency} "
                     f"(its rates are for {', '.join(measured_nets)}: measure these nets with "
                     f"{source_file('benchmarks/speed.py')})")
    for reg, ids in g.unmeasured.items():
        fix = (f"a built-in without one: measure it with the --regs {reg} of {source_file('benchmarks/speed.py')}, "
               f"then rewrite the rates: {doc_ref('maintaining.md', 'Adding a built-in regularizer')}"
               if REGULARIZERS.builtin(reg) else
               f"a plugin has none; time one of its cells with --only {ids[0]}")
        parts.append(f"no measured rates for {reg} ({len(ids)} cell(s)) on {g.device} at concurrency "
                     f"{g.concurrency}: its rates are for {', '.join(g.regularizers)} ({fix})")
    return "; ".join(parts) or ("no measured rate for these cells' batch size, image size or latent dimension "
                                "(below)")


def duration(s: float) -> str:
    """``42 s``, ``12.5 min``; ``< 1 s`` for a time that rounds to 0 but is not
    (a cell of a few steps: not "0 s", as if it took none)."""
    return f"{s / 60:.1f} min" if s >= 60 else "< 1 s" if 0 < s < 0.5 else f"{s:.0f} s"
