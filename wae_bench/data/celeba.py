"""CelebA's files: where the aligned images and ``list_eval_partition`` are,
and which images each split takes.

The images are ``img_align_celeba/`` or ``img_align_celeba.zip`` (torchvision
downloads the zip and extracts it beside itself: the folder is read when
both are there), under ``--data-root`` or its ``celeba/``; Kaggle's copy
(``img_align_celeba/img_align_celeba/*.jpg``) is found the same way.  The
partition file, ``list_eval_partition.txt`` (torchvision's) or
``list_eval_partition.csv`` (Kaggle's, with an ``image_id,partition``
header), lies beside them.  Without one, the split is by file order and the
variant says so (``celeba-140crop-fileorder``), so such a score is never
labelled as the official partition's (``celeba-140crop``).
"""
from __future__ import annotations

from pathlib import Path

from wae_bench.errors import WaeError

IMAGES = "img_align_celeba"
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
SPLIT_CODE = {"train": "0", "test": "2"}          # 1 is CelebA's validation split, unused
OFFICIAL, FILE_ORDER = "celeba-140crop", "celeba-140crop-fileorder"
# The standard partition is by file order: 162,770 / 19,867 / 19,962 of 202,599.
STANDARD_N, STANDARD_CUTS = 202599, (162770, 182637)


def images_path(root: Path) -> Path:
    """The folder or zip holding the aligned images under ``root``."""
    base = root / "celeba" if (root / "celeba").is_dir() else root
    if base.is_dir():
        for cand in (base / IMAGES, base / f"{IMAGES}.zip"):
            if cand.exists():
                return cand
    return base


def partition_path(root: Path, images: Path) -> Path | None:
    """The partition file beside ``images`` (in it, when the images lie
    directly in ``--data-root`` or its ``celeba/``), or None."""
    top = {root, root / "celeba"}
    where = images if images.is_dir() and images in top else images.parent
    for name in PARTITION_FILES:
        if (where / name).is_file():
            return where / name
    return None


def read_partition(path: Path) -> dict[str, str]:
    """``list_eval_partition``'s ``file -> 0|1|2``: two fields a line,
    separated by spaces or a comma; a header line before the first entry is skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise WaeError(f"cannot read {str(path)!r} ({e}); restore CelebA's list_eval_partition file") from None
    part: dict[str, str] = {}
    header = False
    for no, line in enumerate(text.splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) == 2 and fields[1] in ("0", "1", "2"):
            part[Path(fields[0]).name] = fields[1]
        elif len(fields) == 2 and not part and not header and not fields[1].isdigit():
            header = True                                   # e.g. Kaggle's "image_id,partition"
        else:
            raise WaeError(f"cannot read {str(path)!r} line {no} ({line.strip()!r}): expected '<file> <0|1|2>' "
                           f"(or '<file>,<0|1|2>'); fix the line, or restore CelebA's file")
    return part


def split_indices(names: list[str], images: Path, partition: Path | None, split: str) -> tuple[list[int], str]:
    """The indices into ``names`` (the images in ``images``, sorted) that
    ``split`` takes, and the variant naming the rule used."""
    if partition is not None:
        part, want = read_partition(partition), SPLIT_CODE[split]
        idx = [i for i, n in enumerate(names) if part.get(Path(n).name) == want]
        if not idx:
            listed = sum(v == want for v in part.values())
            why = (f"no line gives {want}" if not listed else
                   f"its {listed:,} lines that give {want} name none of the {len(names):,} images in {str(images)!r}")
            raise WaeError(f"{str(partition)!r} puts no image in the {split} split ({want}): {why}; fix the "
                           f"file, or move it aside to split by file order")
        return idx, OFFICIAL
    n = len(names)
    cut_train, cut_test = STANDARD_CUTS if n == STANDARD_N else (int(0.8 * n), int(0.9 * n))
    return (list(range(cut_train)) if split == "train" else list(range(cut_test, n))), FILE_ORDER
