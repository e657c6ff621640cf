"""The notes stated above the results table: the budget every cell of a
dataset was given, and the evaluation protocol asked for and as the scored
cells recorded it (:func:`protocol_summary`: the parts that decide whether
two scores compare)."""
from __future__ import annotations

from typing import Any

from wae_bench.bench import grid
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell, format_value
from wae_bench.bench.spec import WHAT_LABELS, Spec
from wae_bench.config import to_dict
from wae_bench.errors import WaeError

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

