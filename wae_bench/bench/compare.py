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

``--tune`` (:func:`tune_table`) gives the spec a ``[tune]`` table, so every
regularizer is first tuned over its plugin's own grid (or a
``[reg.NAME.tune]`` given by ``--set``) by the bench's tuning protocol
(:mod:`wae_bench.bench.tune`) and its cells then train at the value chosen;
without it every regularizer trains at its plugin's defaults, and the
description the table prints says so.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import flat_keys
from wae_bench.config import merge, parse_sets
from wae_bench.errors import WaeError
from wae_bench.pictures import GRID_NAMES
from wae_bench.registry import DATASETS

SPEC_FILE = "compare.toml"
WHAT = ["samples", "rec"]
PICTURES = [f"{name}.png" for name in GRID_NAMES]     # a picture row: the grids every run writes


def scored(regularizers: list[str]) -> list[str]:
    """The columns scored: prior samples, reconstructions, then each plugin's
    sampler (:attr:`~wae_bench.regularizer.Regularizer.sampler`) not among them."""
    return list(dict.fromkeys([*WHAT, *(grid.sampler(r) for r in regularizers)]))


def spec_data(regularizers: list[str], dataset: str, seeds: list[int], sets: list[str] = (),
              tune: bool = False) -> dict[str, Any]:
    """The spec of a head-to-head, with ``sets`` (``section.key=value``)
    applied; tuned (:func:`tune_table`) with ``tune`` or where ``sets`` give
    tuning settings (:func:`asks_tuning`)."""
    name = f"compare-{dataset}-{'-'.join(regularizers)}"
    data = {"bench": {"name": name, "datasets": [dataset], "regularizers": list(regularizers), "seeds": list(seeds)},
            "eval": {"metrics": ["fid"], "what": scored(regularizers), "features": "inception"}}
    overrides = parse_sets(sets)
    refuse_own_keys(overrides)
    refuse_others_settings(overrides, regularizers)
    if tune or asks_tuning(overrides):
        data["tune"] = tune_table(merge(data, overrides))
    data = merge(data, overrides)
    if "tune" in data and "holdout" not in data["tune"]:
        raise WaeError(f"--tune on dataset {dataset!r} needs the size of the hold-out (its number of training "
                       f"images is not known before it is loaded): add --set tune.holdout=N, e.g. a fifth of "
                       f"its training images")
    about = data["bench"].get("description") or description(regularizers, dataset, overrides, data)
    data["bench"] = {"name": data["bench"]["name"], "description": about, **data["bench"]}
    return data


#: The spec keys the command's own arguments set, and how to give them instead.
OWN_KEYS = {"regularizers": "as its arguments, wae-bench compare REG REG ...",
            "datasets": "with --dataset NAME (a head-to-head is on one dataset)",
            "seeds": "with --seeds 0,1,2"}


def refuse_own_keys(overrides: dict[str, Any]) -> None:
    """A ``--set bench.KEY`` of a key the command line sets (:data:`OWN_KEYS`)
    is refused in one line: it silently replaced the regularizers, dataset or
    seeds given (``compare moca ae --set 'bench.regularizers=["swae"]'``
    trained swae alone, in a folder named for moca and ae)."""
    for key in (overrides.get("bench") or {}):
        if key in OWN_KEYS:
            raise WaeError(f"--set bench.{key}: wae-bench compare takes its {key} {OWN_KEYS[key]}; "
                           f"drop the --set")


def refuse_others_settings(overrides: dict[str, Any], regularizers: list[str]) -> None:
    """A ``--set reg.NAME.KEY=V`` of a regularizer not compared, one line in
    the command's words (a misspelling gets the name it is close to), not
    the spec's "[reg.NAME] ... not in bench.regularizers; add it there"."""
    for name in (overrides.get("reg") or {}):
        if name not in regularizers:
            close = difflib.get_close_matches(str(name), regularizers, n=1, cutoff=0.75)   # (swae is not ae)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise WaeError(f"--set reg.{name}.…: {name!r} is not one of the regularizers compared "
                           f"({', '.join(regularizers)}); {hint}set one of theirs, or add {name} to the REG arguments")


def asks_tuning(overrides: dict[str, Any]) -> bool:
    """``--set tune.KEY=V`` or ``--set reg.NAME.tune.AXIS=[...]``: settings
    of the tuning protocol, which only a tuned spec has."""
    regs = overrides.get("reg") or {}
    return "tune" in overrides or any(isinstance(t, dict) and "tune" in t for t in regs.values())


TUNE_EPOCHS = 0.3      # a tuning run's share of the cells' epochs (Table 1's specs: 30 tuning epochs of 100)
HOLDOUT_SHARE = 0.2    # of the training images held out as the validation split (the digits: 300 of 1,500) ...
MAX_HOLDOUT = 5000     # ... at most (Table 1's specs: 5,000 of CIFAR-10's 50,000)


def tune_table(data: dict[str, Any]) -> dict[str, Any]:
    """The ``[tune]`` table of a tuned head-to-head (the protocol of
    docs/benchmarks.md, "The tuning protocol"), sized by the budget the
    cells of ``data`` (the untuned spec with its overrides) resolve to: the
    tuning runs train :data:`TUNE_EPOCHS` of the cells' epochs (capped at
    their ``max_steps``), hold out :data:`HOLDOUT_SHARE` of the training
    images (at most :data:`MAX_HOLDOUT`; none where the dataset's size is
    not known before loading) and are scored by as many samples as the
    cells (``eval.fid_samples``, else the dataset's default)."""
    untuned = {k: v for k, v in data.items() if k != "tune"}
    untuned["reg"] = {r: {k: v for k, v in t.items() if k != "tune"} if isinstance(t, dict) else t
                      for r, t in (data.get("reg") or {}).items()}
    cfg = grid.resolve(grid.expand(specs.parse(untuned))[0])
    ds = DATASETS.get(cfg.dataset)
    table = {"epochs": max(1, round(cfg.epochs * TUNE_EPOCHS)),
             "fid_samples": data["eval"].get("fid_samples") or ds.fid_samples}
    if ds.n_train:
        table["holdout"] = min(MAX_HOLDOUT, round(ds.n_train * HOLDOUT_SHARE))
    return table


BUDGET = {"train": ("arch", "epochs", "max_steps", "batch_size", "image_size", "latent_dim"),
          "eval": ("fid_samples",)}   # the settings a "default budget" claim is about


def description(regularizers: list[str], dataset: str, overrides: dict[str, Any], data: dict[str, Any]) -> str:
    """What the head-to-head is, from the settings it uses: "the dataset's
    default budget" only where no budget setting is overridden (else the
    overrides), "real FID" only with Inception features, and whether every
    regularizer was tuned first (``data``'s ``[tune]``) or trains at its
    plugin's defaults (but the ``reg.*`` overrides), untuned."""
    changed = [assignment(f"{sec}.{k}", overrides[sec][k]) for sec, keys in BUDGET.items()
               for k in keys if k in (overrides.get(sec) or {})]
    budget = (f"the dataset's default budget but {', '.join(changed)}" if changed
              else "the dataset's default budget")
    features = data["eval"].get("features")
    score = "real FID" if features == "inception" else \
        f"{'stand-in' if features == 'standin' else features} features (NOT FID)"
    return (f"Head-to-head of {', '.join(regularizers)} on {dataset} (wae-bench compare{' --tune' * ('tune' in data)}): "
            f"{budget} for every regularizer, {score}. {tuning_line(data)}")


def tuning_line(data: dict[str, Any]) -> str:
    """One sentence: how each regularizer's settings were chosen -- tuned
    first (the ``[tune]`` budget), or its plugin's defaults (but the
    ``[reg.NAME]`` settings ``--set`` gave), untuned, and how to tune."""
    t = data.get("tune")
    if t is not None:
        return (f"Each regularizer tuned first over its plugin's grid (or its [reg.NAME.tune]): tuning runs of "
                f"{t['epochs']} epoch{'s' * (t['epochs'] != 1)}, each scored by {t.get('metric', 'fid')} of "
                f"{t['fid_samples']} samples of its own sampler against {t['holdout']} held-out training images; "
                f"its cells then train at the value scoring lowest.")
    mine = [assignment(k, v) for k, v in flat_keys({"reg": data.get("reg") or {}}).items()]
    return (f"Untuned: every regularizer at its plugin's default settings{' but ' + ', '.join(mine) if mine else ''}; "
            f"--tune tunes each first.")


def assignment(key: str, value: Any) -> str:
    """``train.epochs=300``: a setting as ``--set`` writes it (the value in TOML)."""
    return f"{key}={_value(value)}"


def default_out(spec: specs.Spec, changed: bool) -> Path:
    """``runs/compare/<dataset>-<regularizers>``, ``-tuned`` after it for a
    tuned one (so a tuned and an untuned head-to-head never share a folder);
    with settings changed from the defaults, the spec's hash is appended, so
    each setting has its own cache instead of a refused folder (seeds are not
    in the hash: more seeds add to the folder of the same settings)."""
    name = spec.name.removeprefix("compare-") + ("-tuned" if spec.tune is not None else "")
    return Path("runs") / "compare" / (f"{name}-{spec.hash()[:8]}" if changed else name)


def check_tuning_alike(folder: ResultsDir, spec: specs.Spec) -> None:
    """A folder made by a compare with --tune is refused to one without it
    (and the reverse) in one line: the two are different head-to-heads
    (:meth:`ResultsDir.check` would refuse it too, listing the ``tune.*``
    keys)."""
    rec = folder.record()
    if rec is None or ("tune" in rec["spec"]) == (spec.tune is not None):
        return
    made, asked = ("with", "without") if spec.tune is None else ("without", "with")
    raise WaeError(f"results folder {str(folder.path)!r} holds a head-to-head made {made} --tune; this one is "
                   f"{asked} --tune: pass another --out for it (or rerun {made} --tune to continue that one)")


def check_same_head_to_head(folder: ResultsDir, spec: specs.Spec, own_name: str) -> None:
    """A folder of a head-to-head of other regularizers (or another dataset)
    refused in those words, not as a spec that "differs in bench.name" (the
    name is made from them; ``compare moca ae swae --out`` the folder of
    ``compare moca ae``): the fix is a folder of its own beside it
    (``own_name``, the one it gets without ``--out``), which takes over the
    cells done there (:mod:`wae_bench.bench.reuse`), or the command that made it."""
    rec = folder.record()
    if rec is None or not (folder.path / SPEC_FILE).is_file():
        return
    made = rec["spec"].get("bench") or {}
    was = (list(made.get("regularizers") or []), list(made.get("datasets") or []))
    now = (spec.bench.regularizers, spec.bench.datasets)
    if was == now:
        return
    beside = folder.path.parent / own_name

    def of(regs_ds) -> str:
        return f"{', '.join(regs_ds[0])} on {', '.join(regs_ds[1])}"

    raise WaeError(f"results folder {str(folder.path)!r} was made by a different spec, the head-to-head of "
                   f"{of(was)}; this one is of {of(now)}: give it a folder of its own beside that one, --out "
                   f"{str(beside)!r} (which takes over the cells done there alike){rerun_maker(folder)}")


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v, ensure_ascii=False)   # JSON's numbers and strings are TOML's (λ as λ, not \u03bb)
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


def other_spec_fix(folder: ResultsDir) -> str:
    """The fix of a head-to-head refused by a folder of another spec (an
    ``--out`` given twice): another ``--out``, or the command that made the
    folder (:func:`rerun_maker`)."""
    return "pass another --out (without one, every head-to-head gets a folder of its own)" + rerun_maker(folder)


def rerun_maker(folder: ResultsDir) -> str:
    """``, or rerun the command that made it, `wae-bench compare ...```: the
    command from the first line of the folder's ``compare.toml``
    (:func:`spec_file_text`); empty where it has none."""
    try:
        made = re.match(r"# Generated by `(.+)`: ", (folder.path / SPEC_FILE).read_text(encoding="utf-8"))
    except OSError:
        made = None
    return f", or rerun the command that made it, `{made.group(1)}`" if made else ""


def pictures_of(regularizer: str) -> list[str]:
    """A regularizer's picture row: the samples of its own sampler (the AE's
    ``samples-gmm.png``, MoCA's prior ``samples.png``), its reconstructions and interpolations."""
    sampler = grid.sampler(regularizer)
    return [PICTURES[0] if sampler == "samples" else f"samples-{sampler}.png", *PICTURES[1:]]


def picture_rows(folder: ResultsDir, cells: list[Cell]) -> list[tuple[str, list[Path | None]]]:
    """One row per regularizer (its first cell that is not a tuning cell):
    the paths of its sample, reconstruction and interpolation grids (None
    where not written)."""
    rows: dict[str, list[Path | None]] = {}
    for c in cells:
        if c.role != "tune" and c.regularizer not in rows:
            d = folder.cell_dir(c.id)
            rows[c.regularizer] = [d / n if (d / n).is_file() else None for n in pictures_of(c.regularizer)]
    return list(rows.items())
