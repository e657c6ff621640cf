"""Re-encode committed PNGs losslessly, smaller: a colour PNG whose three
channels are equal (a grey dataset's grid, as ``wae_bench.pictures`` wrote
them before it kept one channel one) becomes a grey PNG, every PNG is
re-compressed (``optimize``), and a file is replaced only when the decoded
pixels are the same and it is smaller.  The committed results must leave room
for the GPU call's data (benchmarks/payload.py).

    python benchmarks/shrink_pngs.py benchmarks/results/digits-d-lambda
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wae_bench.atomic import atomic_write  # noqa: E402
from wae_bench.errors import WaeError, run_script  # noqa: E402


def shrunk(path: Path) -> bytes | None:
    """The smaller lossless encoding of ``path``, or None if there is none."""
    im = Image.open(path)
    im.load()
    a = np.asarray(im)
    grey = im.mode == "RGB" and bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
    out = im.convert("L") if grey else im
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    again = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(im.mode))
    if not np.array_equal(again, a):
        raise AssertionError(f"{path}: re-encoding changed the pixels")
    data = buf.getvalue()
    return data if len(data) < path.stat().st_size else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    a = ap.parse_args(argv)
    for folder in a.folders:
        if not folder.is_dir():
            raise WaeError(f"{str(folder)!r} is not a folder; pass results folders")
    before = after = 0
    for folder in a.folders:
        for path in sorted(folder.rglob("*.png")):
            size = path.stat().st_size
            data = shrunk(path)
            before += size
            if data is not None:
                atomic_write(path, lambda f, d=data: f.write(d))
            after += len(data) if data is not None else size
    print(f"PNGs: {before:,} -> {after:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
