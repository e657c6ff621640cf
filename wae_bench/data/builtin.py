"""Built-in datasets: digits (embedded), cifar10, celeba, mnist, folder.

``cifar10``/``mnist``/``celeba`` use torchvision when ``--data-root`` holds
torchvision's layout (or with ``--download`` when online); a root holding
``train``/``test`` folders or ``*train*.zip``/``*test*.zip`` archives of image
files is read as files instead (variant ``<name>-files``; e.g. the CIFAR-10
JPEG copies, which should be labelled ``--set data_variant=cifar10-jpeg-q75``).
"""
from __future__ import annotations

import contextlib

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from wae_bench import worded
from wae_bench.data import celeba
from wae_bench.data.files import find_split, members, no_images, read_images
from wae_bench.data.spec import DataScan, DatasetSpec, ImageSet, note_once
from wae_bench.errors import WaeError, doc_ref


FOLDER_NAME = "folder"   # the dataset of a user's own train/ and test/ images (no torchvision layout)


def _split_place(name: str, root: Path, split: str) -> Path:
    """The folder or zip of ``split`` under a files root (:func:`find_split`), or the error naming the fix
    (and, for a dataset torchvision also lays out, that layout: ``folder`` has none)."""
    where = find_split(root, split) if root.is_dir() else None
    if where is None:
        layout = "" if name == FOLDER_NAME else "torchvision's layout, or "
        raise WaeError(f"no {name} {split} split in {str(root)!r}: expected {layout}"
                       f"'{split}/' or '*{split}*.zip' of images there; {_split_hint(root, split, name)}")
    return where


def _files(name: str, root: Path, split: str, channels: int, expect: int | None = None,
           resize_to: int | None = None, crop: int | None = None) -> ImageSet:
    return ImageSet(read_images(_split_place(name, root, split), channels, resize_to=resize_to, crop=crop,
                                expect=expect), f"{name}-files")


def _scan_files(name: str, root: Path) -> DataScan:
    """What :func:`_files` would read, counted by name (``bench --dry-run``)."""
    places = {split: _split_place(name, root, split) for split in ("train", "test")}
    sizes = {split: len(members(where)) for split, where in places.items()}
    for split, n in sizes.items():
        if not n:
            raise no_images(places[split])
    return DataScan(f"{str(places['train'])!r} and {str(places['test'])!r}", sizes, f"{name}-files")


# torchvision's layout of a dataset: (its folder in --data-root, the archive its --download fetches and extracts)
TORCHVISION_LAYOUT = {"cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz"), "mnist": ("MNIST", None)}


def _split_hint(root: Path, split: str, name: str = FOLDER_NAME) -> str:
    """The fix for a missing split: pass the parent of a split folder (or
    split archive, or torchvision's folder) given itself, extract
    torchvision's archive left packed, pass the folder a level down that
    holds the data, make a test split of a train-only folder, add the train
    split beside a test-only one, or unpack one archive given as --data-root
    (a zip is one split, never both); else fix --data-root."""
    layout, archive = TORCHVISION_LAYOUT.get(name, (None, None))
    if layout is not None and root.name == layout and root.is_dir():
        return f"this is torchvision's {layout} folder itself: pass its parent {str(root.parent)!r} as --data-root"
    if archive is not None and (root / archive).is_file():
        return (f"{archive} there is not extracted: extract it there (tar -xzf {str(root / archive)!r} -C "
                f"{str(root)!r}), or pass --download, which extracts it without the network when its md5 checks")
    below = _data_below(root, split, layout)
    if below:
        shown = " and ".join(repr(str(p)) for p in below[:4]) + (f" (and {len(below) - 4} more)" if len(below) > 4
                                                                  else "")
        which = "it" if len(below) == 1 else "the one to use"
        return f"the data is a level down, in {shown}: pass {which} as --data-root"
    given_split = root.is_file() or (root.name in ("train", "test") and root.is_dir())
    if given_split and find_split(root.parent, split) is not None:
        return f"pass its parent {str(root.parent)!r} as --data-root"
    if root.is_file():
        return ("--data-root is a file, and a zip of both splits is not read: unzip it and pass the folder, "
                "or zip each split as train.zip and test.zip in one folder and pass that")
    if split == "test" and root.is_dir() and find_split(root, "train") is not None:
        return "move some of the training images (e.g. 10%) into test/<class>/ beside train/, or fix --data-root"
    if split == "train" and root.is_dir() and find_split(root, "test") is not None:
        return ("put the training images in train/<class>/ beside test/ (a test split alone trains nothing), or "
                "fix --data-root")
    return "fix --data-root"


def _data_below(root: Path, split: str, layout: str | None) -> list[Path]:
    """The sub-folders of ``root`` (not hidden) holding torchvision's ``layout``
    folder or ``split``: a --data-root one level too high."""
    if not root.is_dir() or root.name in ("train", "test"):
        return []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []

    def holds(child: Path) -> bool:
        if layout is not None and (child / layout).is_dir():
            return True
        try:
            return find_split(child, split) is not None
        except WaeError:   # (two candidates there: their own error once it is passed)
            return True
    return [c for c in children if holds(c)]


def _digits_8x8() -> np.ndarray:
    """scikit-learn's bundled digits as float N×8×8 in [0, 16], read from the
    file it ships (skipping the ~1 s ``import sklearn``), else via sklearn."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            if data.shape == (1797, 65):
                return data[:, :64].reshape(-1, 8, 8)
    from sklearn.datasets import load_digits as sk_digits

    return sk_digits().images


def load_digits(root, split, image_size, download) -> ImageSet:
    """scikit-learn's bundled 8×8 digits (1,797 images, no network), upsampled;
    a fixed shuffle puts 1,500 in train and 297 in test."""
    x = torch.from_numpy(_digits_8x8().astype(np.float32) / 16.0)[:, None]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x = x[order[:1500] if split == "train" else order[1500:]]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return ImageSet(x.clamp(0, 1).mul(255).round().to(torch.uint8), "digits-sklearn")


def _torchvision(cls_name: str, root: Path, download: bool, inside: tuple[str, ...] = (),
                 damage: Callable[[Path], str | None] | None = None, **kw):
    """torchvision's ``cls_name`` dataset at ``root``; its errors as one line,
    and the folders a failed download made (still empty) removed again:
    ``root`` and its parents, and ``inside`` (the folders torchvision makes
    in ``root``, deepest first: CelebA's ``celeba``).  ``damage(root)``: what
    is wrong with the files torchvision refused (missing, failing its md5),
    where the dataset can tell (:func:`_cifar10_damage`)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    made = [root / p for p in inside if not (root / p).exists()]
    made += [p for p in (root, *root.parents) if not p.exists()]
    try:
        return cls(str(root), download=download, **kw)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"; gdown missing (CelebA)
        _remove_empty(made)
        if "gdown" in str(e):   # torchvision fetches CelebA from Google Drive with gdown, not a dependency
            raise WaeError(f"--download of {cls_name} needs gdown: pip install gdown (or pip install "
                           f"'wae-bench[celeba]'); Google Drive often refuses {cls_name}'s files over its daily "
                           f"quota, so the download may still fail: then download img_align_celeba.zip and "
                           f"list_eval_partition.txt by hand ({doc_ref('datasets.md', 'CelebA')}) and pass --data-root") from None
        found = damage(root) if damage is not None else None
        if found:
            raise WaeError(f"{cls_name} not found in {str(root)!r}: {found}; restore them (extract "
                           f"{getattr(cls, 'filename', 'its archive')} there again), or delete that folder and "
                           f"pass {worded.download_flag()} when online, or pass another --data-root") from None
        raise WaeError(f"{cls_name} not found in {str(root)!r} ({str(e).splitlines()[0]}); pass the folder "
                       f"that holds it as --data-root, or {worded.download_flag()} when online") from None
    except OSError as e:
        _remove_empty(made)
        if not download:
            raise WaeError(f"cannot read {cls_name} in {str(root)!r} ({e}); restore its files, or pass another "
                           f"--data-root") from None
        raise WaeError(f"could not download {cls_name} to {str(root)!r} ({e}); {_by_hand(cls, root)}") from None


def _by_hand(cls, root: Path) -> str:
    """The fix of a failed ``--download``: fetch torchvision's archive
    elsewhere and put it in ``root`` (a --download then only checks and
    extracts it), where the class names one; a copy there that failed its
    md5 check (which made torchvision fetch it again) is named."""
    url, archive = getattr(cls, "url", None), getattr(cls, "filename", None)
    if not (isinstance(url, str) and isinstance(archive, str)):
        return "download it elsewhere and pass --data-root, or check the network"
    from torchvision.datasets.utils import check_integrity

    there, md5 = "", getattr(cls, "tgz_md5", None)
    if (root / archive).is_file() and isinstance(md5, str) and not check_integrity(str(root / archive), md5):
        there = (f"the {archive} there fails torchvision's md5 check (a download cut short?), so it was "
                 f"fetched again: replace it; ")
    return (f"{there}download {url} elsewhere and put it in {str(root)!r} (--download then extracts it without "
            f"the network), or pass the folder holding its extracted {getattr(cls, 'base_folder', 'files')} as "
            f"--data-root")


def _cifar10_damage(root: Path) -> str | None:
    """What is wrong with ``root/cifar-10-batches-py`` that torchvision
    refused: the files it lacks, else those failing torchvision's md5 check
    (its own lists of names and md5s); None when neither."""
    import torchvision.datasets.cifar as tv_cifar

    cls = tv_cifar.CIFAR10
    folder = root / cls.base_folder
    if not folder.is_dir():
        return None
    listed = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    missing = [name for name, _ in listed if not (folder / name).is_file()]
    if missing:
        return f"{str(folder)!r} lacks {', '.join(missing)} (an extraction cut short?)"
    bad = [name for name, md5 in listed if not tv_cifar.check_integrity(str(folder / name), md5)]
    if bad:
        return (f"{', '.join(bad)} in {str(folder)!r} fail{'s' * (len(bad) == 1)} torchvision's md5 check "
                f"(damaged, or not CIFAR-10's own files)")
    return None


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they exist and are empty."""
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


def load_cifar10(root, split, image_size, download) -> ImageSet:
    if download or (root / "cifar-10-batches-py").is_dir():
        ds = _torchvision("CIFAR10", root, download, damage=_cifar10_damage, train=split == "train")
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        variant = "cifar10"
    else:
        data = _files("cifar10", root, split, 3, expect=32)
        x, variant = data.images, data.variant
    if image_size != 32:
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear",
                          antialias=True).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(x, variant)


def load_mnist(root, split, image_size, download) -> ImageSet:
    """MNIST 28×28, zero-padded to 32×32 (or resized to another size)."""
    if download or (root / "MNIST").is_dir():
        ds = _torchvision("MNIST", root, download, inside=("MNIST/raw", "MNIST"), train=split == "train")
        x, variant = ds.data[:, None].contiguous(), "mnist"
    else:
        data = _files("mnist", root, split, 1, expect=28)
        x, variant = data.images, data.variant
    pad = (image_size - 28) // 2
    if image_size == 32:
        x = F.pad(x, (pad, pad, pad, pad))
    elif image_size != 28:
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear").round().to(torch.uint8)
    return ImageSet(x, variant)


def load_celeba(root, split, image_size, download) -> ImageSet:
    """CelebA aligned faces, 140×140 centre crop resized to 64×64 (MoCA App. A).

    ``root/celeba/img_align_celeba`` (torchvision's layout, folder or zip,
    with ``list_eval_partition.txt`` beside it), the Google Drive's
    ``CelebA/Img`` + ``CelebA/Eval``, Kaggle's layout, or any folder/zip of
    the images (:mod:`wae_bench.data.celeba`), each image 178×218 (the size
    the crop is defined on); a folder holding ``train``/``test`` splits is
    read as files (variant ``celeba-files``, the same crop of any size).
    """
    if download:
        _torchvision("CelebA", root, True, inside=("celeba",), split="train")
    images = celeba.images_path(root)
    if _has_splits(images):
        return _files("celeba", images, split, 3, resize_to=image_size, crop=140)
    layout = celeba.find(root)
    x = read_images(layout.images, 3, resize_to=image_size, crop=140, source=celeba.ALIGNED_SIZE)
    for text in layout.notes:   # (once read: a bad image is the only line)
        note_once(text)
    return ImageSet(x[layout.splits[split]], layout.variant)


def _has_splits(images: Path) -> bool:
    """A CelebA folder holding ``train``/``test`` splits (read as files)."""
    return images.is_dir() and any(find_split(images, s) is not None for s in ("train", "test"))


def scan_celeba(root: Path) -> DataScan:
    """What :func:`load_celeba` would read, from the names alone."""
    images = celeba.images_path(root)
    if _has_splits(images):
        return _scan_files("celeba", images)
    layout = celeba.find(root)
    return DataScan(layout.describe(), {s: len(i) for s, i in layout.splits.items()}, layout.variant, layout.notes)


CIFAR10_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def scan_cifar10(root: Path) -> DataScan:
    """torchvision's ``cifar-10-batches-py`` (its files there: 10,000 images
    each, the format's), else the files :func:`load_cifar10` would read."""
    folder = root / "cifar-10-batches-py"
    if not folder.is_dir():
        return _scan_files("cifar10", root)
    missing = [f for fs in CIFAR10_BATCHES.values() for f in fs if not (folder / f).is_file()]
    if missing:
        raise WaeError(f"{str(folder)!r} lacks {', '.join(missing)} (torchvision's CIFAR-10 is data_batch_1 to "
                       f"data_batch_5 and test_batch); restore them, or download CIFAR-10 again")
    return DataScan(f"torchvision's {str(folder)!r}", {s: 10000 * len(fs) for s, fs in CIFAR10_BATCHES.items()},
                    "cifar10")


def scan_mnist(root: Path) -> DataScan:
    """torchvision's ``MNIST/raw`` (the image counts in the idx headers), else
    the files :func:`load_mnist` would read."""
    if not (root / "MNIST").is_dir():
        return _scan_files("mnist", root)
    sizes = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        path = root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte"
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError as e:
            raise WaeError(f"cannot read {str(path)!r} ({e.strerror or e}); restore torchvision's MNIST/raw files, "
                           f"or download MNIST again") from None
        if len(head) < 8 or head[:4] != b"\x00\x00\x08\x03":
            raise WaeError(f"{str(path)!r} is not an idx image file; restore torchvision's MNIST/raw files, or "
                           f"download MNIST again")
        sizes[split] = int.from_bytes(head[4:8], "big")
    return DataScan(f"torchvision's {str(root / 'MNIST')!r}", sizes, "mnist")


def load_folder(root, split, image_size, download) -> ImageSet:
    """Any ``train``/``test`` folders or zips of images, each resized to
    ``image_size`` (default 32; ``--set image_size=N``)."""
    if root is None:
        raise WaeError("dataset 'folder' needs --data-root DIR holding train/ and test/ (folders or zips)")
    return _files(FOLDER_NAME, root, split, 3, resize_to=image_size)


DIGITS = DatasetSpec("digits", "scikit-learn digits, embedded (offline default)", load_digits,
                     image_size=16, channels=1, arch="tiny", epochs=30, needs_root=False, downloadable=False,
                     fid_samples=500, n_train=1500, n_test=297)   # Inception on 2 CPU cores: ~6 img/s
CIFAR10 = DatasetSpec("cifar10", "CIFAR-10 (Krizhevsky 2009), 50k/10k, 32x32", load_cifar10,
                      image_size=32, arch="a1", epochs=100, n_train=50000, n_test=10000, scan=scan_cifar10)
# train: partitions 0 + 1 (162,770 + 19,867), the paper's "~180k train"; test: partition 2
CELEBA = DatasetSpec("celeba", "CelebA (Liu et al. 2015), 140 crop -> 64x64", load_celeba,
                     image_size=64, arch="a1", epochs=200, n_train=celeba.STANDARD_CUT,
                     n_test=celeba.STANDARD_N - celeba.STANDARD_CUT, scan=scan_celeba)
MNIST = DatasetSpec("mnist", "MNIST (LeCun et al. 1998), padded to 32x32", load_mnist,
                    image_size=32, channels=1, arch="a1", epochs=100, n_train=60000, n_test=10000, scan=scan_mnist)
FOLDER = DatasetSpec(FOLDER_NAME, "your images: train/ and test/ folders or zips", load_folder,
                     image_size=32, arch="a1", epochs=100, downloadable=False,
                     scan=lambda root: _scan_files(FOLDER_NAME, root))
