"""A head-to-head as a bench spec (`wae-bench compare REG REG ...`): the
regularizers named on the command line, on one dataset, every one with that
dataset's default budget (the budget of `wae-bench run --dataset D`: its
architecture, epochs and number of FID samples) and scored by real FID of
the prior samples and the test reconstructions (MoCA Table 1's "prior
samples" and RAE's "REC"), and of every named plugin's own sampler where
that is another column (the AE and RAE family: the ex-post GMM), so each
regularizer is judged by the samples it is meant to be used with.

The spec is written as TOML into its results folder (``compare.toml``), so
the cells run through the bench runner (:mod:`wae_bench.bench.runner`):
rerunning the same command skips the cells that are done and resumes a
stopped one, and ``wae-bench bench RESULTS_DIR/compare.toml --out RESULTS_DIR``
is the same run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell
from wae_bench.config import merge, parse_sets
from wae_bench.pictures import GRID_NAMES

SPEC_FILE = "compare.toml"
WHAT = ["samples", "rec"]
PICTURES = [f"{name}.png" for name in GRID_NAMES]     # a picture row: the grids every run writes


def scored(regularizers: list[str]) -> list[str]:
    """The columns scored: prior samples, reconstructions, then each plugin's
    sampler (:attr:`~wae_bench.regularizer.Regularizer.sampler`) not among them."""
    return list(dict.fromkeys([*WHAT, *(grid.sampler(r) for r in regularizers)]))


def spec_data(regularizers: list[str], dataset: str, seeds: list[int], sets: list[str] = ()) -> dict[str, Any]:
    """The spec of a head-to-head, with ``sets`` (``section.key=value``) applied."""
    name = f"compare-{dataset}-{'-'.join(regularizers)}"
    data = {"bench": {"name": name, "datasets": [dataset], "regularizers": list(regularizers), "seeds": list(seeds)},
            "eval": {"metrics": ["fid"], "what": scored(regularizers), "features": "inception"}}
    overrides = parse_sets(sets)
    data = merge(data, overrides)
    about = data["bench"].get("description") or description(regularizers, dataset, overrides, data["eval"])
    data["bench"] = {"name": data["bench"]["name"], "description": about, **data["bench"]}
    return data


BUDGET = {"train": ("arch", "epochs", "max_steps", "batch_size", "image_size", "latent_dim"),
          "eval": ("fid_samples",)}   # the settings a "default budget" claim is about


def description(regularizers: list[str], dataset: str, overrides: dict[str, Any], ev: dict[str, Any]) -> str:
    """What the head-to-head is, from the settings it uses: "the dataset's
    default budget" only where no budget setting is overridden (else the
    overrides), "real FID" only with Inception features."""
    changed = [assignment(f"{sec}.{k}", overrides[sec][k]) for sec, keys in BUDGET.items()
               for k in keys if k in (overrides.get(sec) or {})]
    budget = (f"the dataset's default budget but {', '.join(changed)}" if changed
              else "the dataset's default budget")
    features = ev.get("features")
    score = "real FID" if features == "inception" else \
        f"{'stand-in' if features == 'standin' else features} features (NOT FID)"
    return (f"Head-to-head of {', '.join(regularizers)} on {dataset} (wae-bench compare): "
            f"{budget} for every regularizer, {score}.")


def assignment(key: str, value: Any) -> str:
    """``train.epochs=300``: a setting as ``--set`` writes it (the value in TOML)."""
    return f"{key}={_value(value)}"


def default_out(spec: specs.Spec, changed: bool) -> Path:
    """``runs/compare/<dataset>-<regularizers>``; with settings changed from
    the defaults, the spec's hash is appended, so each setting has its own
    cache instead of a refused folder (seeds are not in the hash: more seeds
    add to the folder of the same settings)."""
    name = spec.name.removeprefix("compare-")
    return Path("runs") / "compare" / (f"{name}-{spec.hash()[:8]}" if changed else name)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)          # JSON's numbers and strings are TOML's
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """``data`` as TOML: a table's plain keys, then its sub-tables (``[a.b]``)."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            name = f"{prefix}{_key(k)}"
            lines += ["", f"[{name}]", toml_text(v, f"{name}.").strip("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def spec_file_text(data: dict[str, Any], command: str) -> str:
    return (f"# Generated by `{command}`: rerun it to continue (done cells are skipped).\n"
            f"# The same run: wae-bench bench THIS_FILE --out THIS_FOLDER\n\n" + toml_text(data))


def pictures_of(regularizer: str) -> list[str]:
    """A regularizer's picture row: the samples of its own sampler (the AE's
    ``samples-gmm.png``, MoCA's prior ``samples.png``), its reconstructions and interpolations."""
    sampler = grid.sampler(regularizer)
    return [PICTURES[0] if sampler == "samples" else f"samples-{sampler}.png", *PICTURES[1:]]


def picture_rows(folder: ResultsDir, cells: list[Cell]) -> list[tuple[str, list[Path | None]]]:
    """One row per regularizer (its first cell): the paths of its sample,
    reconstruction and interpolation grids (None where not written)."""
    rows: dict[str, list[Path | None]] = {}
    for c in cells:
        if c.regularizer not in rows:
            d = folder.cell_dir(c.id)
            rows[c.regularizer] = [d / n if (d / n).is_file() else None for n in pictures_of(c.regularizer)]
    return list(rows.items())
