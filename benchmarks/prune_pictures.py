"""Keep committed results inside the GPU call's carry limit: every committed
file travels with each later GPU call, and the carried data leaves about
2 MiB (benchmarks/payload.py; benchmarks/GPU.md).  A cell's picture grids
are the bulk of a results folder (a CIFAR-10 cell's five grids at 64-px
tiles: ~0.9 MB), so in a committed results folder each cell keeps the grid
of its regularizer's own sampler (``samples.png``, or ``samples-gmm.png``
for the AE and the RAE family: what its FID judges) and nothing else that is
a picture of the model; its numbers (results.json, latent_spectrum.json,
metrics.jsonl) and the folder's plots stay.

    python benchmarks/prune_pictures.py FOLDER...                 # what would go, and the bytes
    python benchmarks/prune_pictures.py FOLDER... --apply         # remove it
    python benchmarks/prune_pictures.py FOLDER... --keep-final    # final cells keep every picture

A cell is any folder holding ``config.json`` under a FOLDER, at any depth
(a bench's ``cells/``, a committed copy, folders of folders); a tuning cell
is one whose id starts with ``tune-``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wae_bench.bench.grid import TUNE_PREFIX, sampler  # noqa: E402
from wae_bench.errors import WaeError, run_script  # noqa: E402

PICTURE = ".png"


def kept(cell: Path) -> str:
    """The picture a cell keeps: the grid of its regularizer's sampler."""
    try:
        regularizer = json.loads((cell / "config.json").read_text())["config"]["regularizer"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WaeError(f"{str(cell / 'config.json')!r} is unreadable ({e}); fix or remove that cell folder") from None
    what = sampler(regularizer)
    return "samples.png" if what == "samples" else f"samples-{what}.png"


def to_remove(folders: list[Path], keep_final: bool = False) -> list[Path]:
    """The pictures of the cells under ``folders`` that are not their sampler's grid."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            raise WaeError(f"{str(folder)!r} is not a folder; pass results folders")
        for cell in sorted(p.parent for p in folder.rglob("config.json")):
            if keep_final and not cell.name.startswith(TUNE_PREFIX):
                continue
            keep = kept(cell)
            out += [p for p in sorted(cell.iterdir()) if p.suffix == PICTURE and p.name != keep]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Remove the picture grids of committed cells but their sampler's.")
    ap.add_argument("folders", nargs="+", type=Path, help="results folders (a bench's --out, or a committed copy)")
    ap.add_argument("--apply", action="store_true", help="remove them (default: list what would go)")
    ap.add_argument("--keep-final", action="store_true", help="final (non-tuning) cells keep every picture")
    args = ap.parse_args(argv)
    paths = to_remove(args.folders, args.keep_final)
    size = sum(p.stat().st_size for p in paths)
    for p in paths:
        if args.apply:
            p.unlink()
        else:
            print(p)
    print(f"{'removed' if args.apply else 'would remove'} {len(paths)} pictures, {size:,} bytes"
          + ("" if args.apply else " (--apply to remove them)"))
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
