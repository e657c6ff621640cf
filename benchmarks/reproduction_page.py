"""docs/reproduction.md: every Table 1 cell of the MoCA paper beside our
committed score, generated from the Table 1 specs and the committed results.

    python benchmarks/reproduction_page.py           # rewrite docs/reproduction.md
    python benchmarks/reproduction_page.py --check   # exit 1 if it is not current

One row per final (full-budget) cell of each ``benchmarks/table1-*.toml``
spec: the paper's value where the spec cites one (``[[cited]]``), ours — the
mean over the committed seeds of the score of the regularizer's sampler
(prior samples; the ex-post GMM for the RAE family and AE), read from each
committed cell's ``results.json`` (cells found as
``benchmarks/readme_table.py`` finds them, in every folder under
``benchmarks/results/``) — the data it was scored on (:func:`data_of`: one row per variant, a mean never
mixing the JPEG copy and the real images; a seed committed twice is
refused), the value of
each tuned setting and how it was chosen (the results folder's
``tuning/<cell>.json`` when the tuning protocol chose it, else fixed by the
spec or the plugin's default), the date of the score and the commit of the
code (``config.json``'s ``source``, else the results folder's
``provenance.json``: :func:`provenance`) and the results folder of every cell
in the mean.  A committed cell counts for a spec's
row when its regularizer, architecture, dataset, budget (epochs,
max_steps, batch size, latent dimension, image size) and model settings
(decoder output, learning rate and its schedule, hold-out) are the row's.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.bench.aggregate import Entry
from wae_bench.bench.folder import score
from wae_bench.bench.grid import AXIS_SYMBOLS, format_value
from wae_bench.bench.spec import WHAT_LABELS
from wae_bench.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reproduction.md"
RESULTS = "benchmarks/results"
BUDGET_KEYS = ("epochs", "max_steps", "batch_size", "latent_dim", "image_size")
# ... and what else makes a cell another model than the row's (an AE cell with a sigmoid
# decoder output is not a seed of the spec's linear one; a tuning run holds images out)
MODEL_KEYS = ("decoder_output", "lr", "lr_halve_every", "holdout")
# a key an older config.json lacks had its default then
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _readme_table():
    spec = importlib.util.spec_from_file_location("readme_table", Path(__file__).with_name("readme_table.py"))
    mod = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = mod          # dataclasses look their module up there
        spec.loader.exec_module(mod)
    return mod


readme_table = _readme_table()


@dataclass
class Row:
    spec: specs.Spec
    cell: grid.Cell                        # the seed-0 (first) final cell of this point
    budget: dict                           # its resolved budget and model settings (BUDGET_KEYS, MODEL_KEYS)
    seeds: int


def rows_of(spec: specs.Spec) -> list[Row]:
    """The spec's final cells, one row per point (all seeds of it)."""
    rows: dict[tuple, Row] = {}
    for c in grid.expand(spec):
        if c.role == "tune":
            continue
        if c.point in rows:
            rows[c.point].seeds += 1
            continue
        cfg = grid.resolve(c)
        rows[c.point] = Row(spec, c, {k: getattr(cfg, k) for k in (*BUDGET_KEYS, *MODEL_KEYS)}, 1)
    return list(rows.values())


def committed(root: Path = ROOT) -> list:
    """Every committed cell folder (``config.json`` + ``results.json``) under the results folders."""
    base = root / RESULTS
    found = sorted(p.parent for p in base.glob("**/results.json") if (p.parent / "config.json").is_file())
    return [readme_table.read_cell(d) for d in found]


def matches(row: Row, cell) -> bool:
    cfg = cell.config
    return ((cfg.get("regularizer"), cfg.get("arch"), cfg.get("dataset")) ==
            (row.cell.regularizer, row.cell.arch, row.cell.dataset)
            and all(cfg.get(k, DEFAULTS.get(k)) == v for k, v in row.budget.items()))


def tuning_record(cell) -> dict | None:
    """The tuning protocol's choice for a committed cell, if its results folder holds one."""
    folder = cell.path.parent.parent if cell.path.parent.name == "cells" else cell.path.parent
    p = folder / "tuning" / f"{cell.path.name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _symbol(key: str) -> str:
    return AXIS_SYMBOLS.get(key, key.split(".")[-1])


def setting_text(row: Row, cell) -> str:
    """The tuned settings' values in ``cell`` and how they were chosen."""
    keys = list(row.cell.tuned) or ["reg.lambda"]
    reg = cell.config.get("reg") or {}
    values = ", ".join(f"{_symbol(k)} = {format_value(reg.get(k[4:]) if k.startswith('reg.') else cell.config.get(k))}"
                       for k in keys if (reg.get(k[4:]) if k.startswith("reg.") else cell.config.get(k)) is not None)
    rec = tuning_record(cell)
    if rec:
        b = rec.get("budget") or {}
        budget = f"{b['epochs']} epochs" if b.get("epochs") else f"{b.get('max_steps')} steps"
        grids = "; ".join(f"{_symbol(k)} ∈ {{{', '.join(format_value(v) for v in vs)}}}"
                          for k, vs in (rec.get("grid") or {}).items())
        return f"{values}: tuned over {grids} at {budget} (validation {b.get('metric', 'fid').upper()})"
    now = "; the spec now tunes it" if row.cell.tuned else ""     # (a cell of before the tuning protocol)
    return f"{values}: fixed (not tuned{now})" if values else "none to tune"


def render(spec_paths: list[Path], cells: list) -> str:
    out = ["# Reproduction status: Table 1", "",
           "Generated by `python benchmarks/reproduction_page.py` from the Table 1 specs and the committed results;",
           "do not edit by hand (a test checks it is current). How the cells are tuned and scored:",
           "[Benchmarks](benchmarks.md#the-tuning-protocol-tune); what is open: [Status](status.md).", "",
           "Your own results count once committed: put a bench's results folder under `benchmarks/results/`",
           "(this page reads every cell folder there; the README's table, folders named `table1-*`), with a",
           "`README.md` beside it giving the command (the source column links it), then run",
           "`python benchmarks/reproduction_page.py` and `python benchmarks/readme_table.py`.", ""]
    for path in spec_paths:
        spec = specs.load(path)
        rows = rows_of(spec)
        ran = sum(any(matches(r, c) for c in cells) for r in rows)
        out += [f"## {spec.name}", "", f"`{path.relative_to(ROOT).as_posix()}`: {len(rows)} settings × "
                f"{len(spec.bench.seeds)} seed(s); {ran} with a committed score. Scores are FID (lower is "
                f"better) of {spec.eval.fid_samples:,} generated images against the {spec.eval.split} split: "
                f"mean ± std over seeds, then (seeds scored / seeds in the spec); a setting scored on two data "
                f"variants has a line for each, and the source column links the results folder of every "
                f"seed in the mean.", "",
                "| regularizer | arch | scored | cited | ours | data | setting, and how it was chosen | date | "
                "commit | source |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            c0 = r.cell
            what = grid.sampler(c0.regularizer)
            cited = [x for x in spec.cited if (x.regularizer, x.dataset, x.what, x.metric) ==
                     (c0.regularizer, c0.dataset, what, "fid") and x.arch in (None, c0.arch)]
            paper = ", ".join(format_value(x.value) + ("" if x.arch else " (arch not stated)") for x in cited) or "—"
            mine = [readme_table.real_fid(c) for c in cells if matches(r, c)]
            if not mine:
                out.append(f"| {c0.regularizer} | {c0.arch} | {WHAT_LABELS[what]} | {paper} | not run | | "
                           f"{'tuned (pending)' if c0.tuned else 'not tuned'} | | | |")
                continue
            for variant, group in by_data(mine).items():     # (a mean never mixes the data it was scored on)
                e = Entry(expected=r.seeds)
                e.values += [v for c in group if (v := score(c.results, what, "fid")) is not None]
                out.append(" | ".join([
                    f"| {c0.regularizer}", c0.arch, WHAT_LABELS[what], paper, e.text(), variant,
                    "; ".join(dict.fromkeys(setting_text(r, c) for c in group)),
                    ", ".join(dict.fromkeys(str(c.results.get("protocol", {}).get("time", ""))[:10] for c in group)),
                    ", ".join(dict.fromkeys(str(_source(c) or "not recorded") for c in group)),
                    ", ".join(dict.fromkeys(_link(c) for c in group))]) + " |")
        sources = sorted({x.source for x in spec.cited})
        if sources:
            out += ["", "Cited values: " + "; ".join(sources) + "."]
        out.append("")
    return "\n".join(out)


def data_of(cell) -> str:
    """The data a committed cell was scored on: its evaluation's reference
    variant (``protocol.reference.dataset_variant``), else the run's
    ``data_variant``, else its dataset."""
    ref = (cell.results.get("protocol") or {}).get("reference") or {}
    return ref.get("dataset_variant") or cell.config.get("data_variant") or cell.config.get("dataset", "")


def by_data(cells: list) -> dict[str, list]:
    """A row's committed cells, grouped by the data they were scored on
    (:func:`data_of`: the JPEG copy's FIDs are not the real CIFAR-10's), each
    seed once: a seed committed twice (a results folder copied under another
    name) is refused in one line naming both, as its mean would count it twice."""
    out: dict[str, list] = {}
    for c in cells:
        group = out.setdefault(data_of(c), [])
        twin = next((o for o in group if o.config.get("seed") == c.config.get("seed")), None)
        if twin is not None:
            raise SystemExit(f"seed {c.config.get('seed')} of {c.config.get('regularizer')} {c.config.get('arch')} "
                             f"on {data_of(c)} is committed twice ({readme_table._shown(twin.path)}, "
                             f"{readme_table._shown(c.path)}): a mean over seeds would count it twice; remove one")
        group.append(c)
    return out


def _link(cell) -> str:
    """The cell's results folder as the page links it (its README, else its path)."""
    return readme_table.source_link(str(cell.path.relative_to(ROOT))).replace("](", "](../", 1)


def _source(cell) -> str | None:
    """The commit of a cell's code: its ``config.json``'s ``source``, else the
    commit its results folder's ``provenance.json`` gives (:func:`provenance`)."""
    path = cell.path / "config.json"
    recorded = json.loads(path.read_text()).get("source") if path.is_file() else None
    if recorded:
        return recorded
    found = provenance(cell.path)
    return f"{found[1]['commit']} ({found[0].parent.name}/provenance.json)" if found and found[1].get("commit") else None


def provenance(cell_dir: Path) -> tuple[Path, dict] | None:
    """The nearest ``provenance.json`` above a committed cell (up to
    ``benchmarks/results``) and its contents: what is known of the code of
    cells that record no ``source`` (made before runs recorded it), with the
    evidence for it."""
    results = ROOT / "benchmarks" / "results"
    for folder in Path(cell_dir).resolve().parents:
        if (folder / "provenance.json").is_file():
            return folder / "provenance.json", json.loads((folder / "provenance.json").read_text())
        if folder == results:
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    text = render(sorted((ROOT / "benchmarks").glob("table1-*.toml")), committed())
    old = PAGE.read_text() if PAGE.is_file() else ""
    return _readme_table().generate(PAGE, text, old, argv, "reproduction_page.py")


if __name__ == "__main__":
    sys.exit(main())
