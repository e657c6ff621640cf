"""CelebA's files: where the aligned images and ``list_eval_partition`` are,
and which images each split takes -- found by listing names, never decoding
(:func:`find`, which both the loader and ``bench --dry-run`` use).

The images are ``img_align_celeba/`` or ``img_align_celeba.zip`` (torchvision
downloads the zip and extracts it beside itself: the folder is read when
both are there), under ``--data-root``, its ``celeba/`` (any case:
torchvision's ``celeba/``, the Google Drive folder's ``CelebA/``) or the
``Img/`` of either (the Drive's own layout, ``CelebA/Img/img_align_celeba*``
beside ``CelebA/Eval/``); Kaggle's copy (``img_align_celeba/img_align_celeba/*.jpg``)
is found the same way.  Candidates in two of those places are refused,
never chosen between.  The partition file, ``list_eval_partition.txt``
(torchvision's, the Drive's) or ``list_eval_partition.csv`` (Kaggle's, with
an ``image_id,partition`` header), lies in the image folder, beside it, or
a level above (Kaggle's outer folder, the Drive's ``CelebA/`` above ``Img/``),
each also in an ``Eval/``: so passing the image folder (or zip) itself
finds it too.

With a partition file the variant is the official one (``celeba-140crop-trainval``)
only when the file and the images agree: a listed image that is missing,
or a name listed twice, is an error; images it does not list are left out
with a note.  Without one, the split is by file order, said in a note and
by the variant (``celeba-140crop-trainval-fileorder``), so such a score is never
labelled as the official partition's; the images then come from one folder
(several are refused: a root holding two copies of CelebA, or the JPEG and
PNG folders of the Drive, would otherwise put one copy's images in the
other's test split).

The training split is CelebA's partitions 0 (train) and 1 (valid): the
paper's "~180k train / ~20k test" (MoCA, Arpit et al. 2021, Table 1 and
App. A) is 162,770 + 19,867 = 182,637 training images against the 19,962
of partition 2, the test split (docs/datasets.md#celeba).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wae_bench.data.files import EXTS, members
from wae_bench.errors import WaeError

IMAGES = "img_align_celeba"
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
# The paper's ~180k training images are partitions 0 + 1 (train + valid); 2 is the test split.
SPLIT_CODES = {"train": ("0", "1"), "test": ("2",)}
CODE_NAMES = {"0": "train", "1": "valid", "2": "test"}
OFFICIAL, FILE_ORDER = "celeba-140crop-trainval", "celeba-140crop-trainval-fileorder"
# The standard partition is by file order: 162,770 / 19,867 / 19,962 of 202,599.
STANDARD_N, STANDARD_CUT = 202599, 182637
# Every aligned image is 178x218: the 140x140 centre crop (MoCA App. A, WAE's
# preprocessing) is defined on that size (left 19, top 39).
ALIGNED_SIZE = (178, 218)


def _children(folder: Path, name: str) -> list[Path]:
    """The sub-folders of ``folder`` named ``name`` in any case, sorted."""
    try:
        return sorted(p for p in folder.iterdir() if p.name.lower() == name.lower() and p.is_dir())
    except OSError:
        return []


def images_path(root: Path) -> Path:
    """The folder or zip holding the aligned images under ``root`` (see the
    module docstring), else ``root`` itself (a zip, or a folder of the
    images: the file-order fallback when no partition file is found)."""
    if not root.is_dir():
        return root
    celeba = _children(root, "celeba")
    if len(celeba) > 1:
        raise WaeError(f"{' and '.join(repr(p.name + '/') for p in celeba)} in {str(root)!r} could each be CelebA; "
                       f"move one of them aside")
    found = [cand for base in (root, *celeba) for cand in _candidates(base)]
    if len(found) > 1:
        raise WaeError(f"{len(found)} CelebA image folders under {str(root)!r} "
                       f"({', '.join(str(p.relative_to(root)) for p in found)}); pass the one to use as --data-root")
    if not found and not celeba:
        _refuse_one_level_up(root)
    return found[0] if found else root


def _candidates(base: Path) -> list[Path]:
    """The image folder (or zip) in ``base`` and in its ``Img/``: the
    folder where torchvision extracted the zip beside it."""
    found = []
    for where in (base, *_children(base, "Img")):
        for cand in (where / IMAGES, where / f"{IMAGES}.zip"):
            if cand.exists():
                found.append(cand)
                break
    return found


def _refuse_one_level_up(root: Path) -> None:
    """A --data-root one level above CelebA's (``DATA/`` holding
    ``DATA/mine/celeba/img_align_celeba``): refused, naming the folder to
    pass, rather than read as a folder of images split by file order."""
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return                                     # (unlistable: the read says why)
    below = [child for child in children if _candidates(child) or any(map(_candidates, _children(child, "celeba")))]
    if below:
        raise WaeError(f"CelebA's {IMAGES} is a level below {str(root)!r}, in "
                       f"{' and '.join(repr(str(p)) for p in below[:4])}{', ...' if len(below) > 4 else ''}: pass "
                       f"{'it' if len(below) == 1 else 'the one to use'} as --data-root (read from here, its images "
                       f"would be split by file order, not by its {PARTITION_FILES[0]})")


def partition_path(images: Path) -> Path | None:
    """The partition file of ``images``: in the folder itself, beside it, or
    a level above when the images lie in Kaggle's nested ``img_align_celeba/``
    or the Drive's ``Img/``, each place also in its ``Eval/``; the nearest
    first, the ``.txt`` before the ``.csv``.  None if there is none."""
    levels = [images] if images.is_dir() else []
    levels.append(images.parent)
    if images.parent.name.lower() in (IMAGES, "img"):
        levels.append(images.parent.parent)
    for level in levels:
        for where in (level, *_children(level, "Eval")):
            for name in PARTITION_FILES:
                if (where / name).is_file():
                    return where / name
    return None


def _searched(images: Path) -> str:
    """Where :func:`partition_path` looked for ``images``' file, for a message."""
    above = ", a level above" if images.parent.name.lower() in (IMAGES, "img") else ""
    return f"in {str(images)!r}, beside it{above} or in an Eval/ there" if images.is_dir() else \
        f"beside {str(images)!r}{above} or in an Eval/ there"


def read_partition(path: Path) -> dict[str, tuple[str, int]]:
    """``list_eval_partition``'s ``file -> (0|1|2, line number)``: two fields
    a line, separated by spaces or a comma.  A header is accepted only as the
    first line of the ``.csv`` (Kaggle's ``image_id,partition``), never in the
    ``.txt`` (torchvision's has none, so it would eat a data line); a name
    listed twice is refused, naming both lines."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise WaeError(f"cannot read {str(path)!r} ({e}); restore CelebA's list_eval_partition file") from None
    part: dict[str, tuple[str, int]] = {}
    header_allowed = path.suffix.lower() == ".csv"
    for no, line in enumerate(text.splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) == 2 and fields[1] in CODE_NAMES:
            name = Path(fields[0]).name
            if name in part:
                raise WaeError(f"{str(path)!r} lists {name} twice (line {part[name][1]} and line {no}); keep one of "
                               f"the two lines, or restore CelebA's file")
            part[name] = (fields[1], no)
        elif header_allowed and len(fields) == 2 and not fields[0].lower().endswith(EXTS):
            pass                                            # Kaggle's "image_id,partition"
        else:
            raise WaeError(f"cannot read {str(path)!r} line {no} ({line.strip()!r}): expected '<file> <0|1|2>' "
                           f"(or '<file>,<0|1|2>'); fix the line, or restore CelebA's file")
        header_allowed = False
    return part


@dataclass(frozen=True)
class Layout:
    """What :func:`find` made of a root: the images (a folder or zip), their
    names (sorted, as :func:`~wae_bench.data.files.members` lists them), the
    partition file (None: file order), the indices into ``names`` each split
    takes, and the notes to show once the images are read."""

    images: Path
    names: tuple[str, ...]
    partition: Path | None
    splits: dict[str, list[int]]
    notes: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        return OFFICIAL if self.partition is not None else FILE_ORDER

    def describe(self) -> str:
        """One phrase: where the images are and what split them."""
        how = (f"split by {str(self.partition)!r}" if self.partition is not None
               else "split by file order (no list_eval_partition file)")
        return f"{len(self.names):,} images in {str(self.images)!r}, {how}"


def find(root: Path) -> Layout:
    """CelebA's images under ``root`` and each split's share of them, from
    their names alone (:func:`images_path`, :func:`partition_path`,
    :func:`read_partition`); every disagreement is one :class:`WaeError`."""
    images = images_path(root)
    names = tuple(n for n, _ in members(images))
    if not names:
        raise WaeError(f"no CelebA images in {str(images)!r}: expected {IMAGES}/ or {IMAGES}.zip of the aligned "
                       f".jpg images (with {PARTITION_FILES[0]} beside it) under --data-root or its celeba/; "
                       f"fix --data-root")
    partition = partition_path(images)
    if partition is None:
        return _by_file_order(images, names)
    return _by_partition(images, names, partition)


def _by_file_order(images: Path, names: tuple[str, ...]) -> Layout:
    """The standard cut where there are CelebA's 202,599 images (the official
    partition is by file order), else the first 90% / the last 10%; the
    images of one folder only."""
    folders = sorted({str(Path(n).parent) for n in names})
    if len(folders) > 1:
        shown = ", ".join("(top level)" if f == "." else f for f in folders[:4]) + (", ..." if len(folders) > 4
                                                                                     else "")
        raise WaeError(f"{len(folders)} image folders under {str(images)!r} ({shown}); pass the one to use as "
                       f"--data-root (with no partition file the split is by file order, so images of two copies "
                       f"would be in both splits)")
    n = len(names)
    cut = STANDARD_CUT if n == STANDARD_N else int(0.9 * n)
    note = (f"no list_eval_partition.txt/.csv {_searched(images)}; splitting the {n:,} images by file order "
            f"(variant {FILE_ORDER})")
    return Layout(images, names, None, {"train": list(range(cut)), "test": list(range(cut, n))}, (note,))


def _by_partition(images: Path, names: tuple[str, ...], partition: Path) -> Layout:
    part = read_partition(partition)
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        base = Path(n).name
        if base in index:
            raise WaeError(f"two images named {base} in {str(images)!r} ({names[index[base]]}, {n}); the partition "
                           f"file names images by file name: remove one of them")
        index[base] = i
    for split, codes in SPLIT_CODES.items():
        if not any(code in codes for code, _ in part.values()):
            raise WaeError(f"{str(partition)!r} puts no image in the {split} split ({', '.join(codes)}): no line "
                           f"gives {' or '.join(codes)}; fix the file, or move it aside to split by file order")
    missing = {split: [f for f, (code, _) in part.items() if code in codes and f not in index]
               for split, codes in SPLIT_CODES.items()}
    n_missing = sum(map(len, missing.values()))
    if n_missing:
        listed = {split: sum(code in codes for code, _ in part.values()) for split, codes in SPLIT_CODES.items()}
        first = min((f for fs in missing.values() for f in fs), key=lambda f: part[f][1])
        other = [n for n in names if Path(n).stem == Path(first).stem and Path(n).name not in part]
        also = f"; {other[0]} is there, under another name" if other else ""
        counts = ", ".join(f"{split}: {len(missing[split]):,} of {listed[split]:,}" for split in SPLIT_CODES)
        archive = images.parent / f"{images.name}.zip"
        fix = (f"the {archive.name} beside it holds them: unzip it again, or move the folder aside to read the zip"
               if images.is_dir() and archive.is_file() else "restore them (an unzip cut short?)")
        raise WaeError(f"{n_missing:,} of the {len(part):,} images that {str(partition)!r} lists are not in "
                       f"{str(images)!r} ({counts}; first: {first}{also}); {fix}, "
                       f"or move the partition file aside to split by file order")
    splits = {split: sorted(index[f] for f, (code, _) in part.items() if code in codes)
              for split, codes in SPLIT_CODES.items()}
    unlisted = [n for n in names if Path(n).name not in part]
    notes = (f"{len(unlisted):,} image(s) in {str(images)!r} that {str(partition)!r} does not list (first: "
             f"{unlisted[0]}) are in neither split",) if unlisted else ()
    return Layout(images, names, partition, splits, notes)
