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

import numpy as np
import torch
import torch.nn.functional as F

from wae_bench.data import celeba
from wae_bench.data.files import find_split, members, read_images
from wae_bench.data.spec import DatasetSpec, ImageSet
from wae_bench.errors import WaeError


def _files(name: str, root: Path, split: str, channels: int, expect: int | None = None,
           resize_to: int | None = None, crop: int | None = None) -> ImageSet:
    where = find_split(root, split) if root.is_dir() else None
    if where is None:
        raise WaeError(f"no {name} {split} split in {str(root)!r}: expected torchvision's layout, or "
                       f"'{split}/' or '*{split}*.zip' of images there; {_split_hint(root, split)}")
    return ImageSet(read_images(where, channels, resize_to=resize_to, crop=crop, expect=expect), f"{name}-files")


def _split_hint(root: Path, split: str) -> str:
    """The fix for a missing split: pass the parent of a split folder given
    itself, or make a test split of a train-only folder; else fix --data-root."""
    if root.name in ("train", "test") and root.is_dir() and find_split(root.parent, split) is not None:
        return f"pass its parent {str(root.parent)!r} as --data-root"
    if split == "test" and root.is_dir() and find_split(root, "train") is not None:
        return "move some of the training images (e.g. 10%) into test/<class>/ beside train/, or fix --data-root"
    return "fix --data-root"


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


def _torchvision(cls_name: str, root: Path, download: bool, **kw):
    """torchvision's ``cls_name`` dataset at ``root``; its errors as one line,
    and the folders a failed download made (still empty) removed again."""
    import torchvision.datasets as tvd

    made = [p for p in (root, *root.parents) if not p.exists()]
    try:
        return getattr(tvd, cls_name)(str(root), download=download, **kw)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
        _remove_empty(made)
        raise WaeError(f"{cls_name} not found in {str(root)!r} ({str(e).splitlines()[0]}); pass the folder "
                       f"that holds it as --data-root, or --download when online") from None
    except OSError as e:
        _remove_empty(made)
        raise WaeError(f"could not download {cls_name} to {str(root)!r} ({e}); download it elsewhere and "
                       f"pass --data-root, or check the network") from None


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they exist and are empty."""
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


def load_cifar10(root, split, image_size, download) -> ImageSet:
    if download or (root / "cifar-10-batches-py").is_dir():
        ds = _torchvision("CIFAR10", root, download, train=split == "train")
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
        ds = _torchvision("MNIST", root, download, train=split == "train")
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
    with ``list_eval_partition.txt`` beside it), Kaggle's layout, or any
    folder/zip of the images (:mod:`wae_bench.data.celeba`); a folder holding
    ``train``/``test`` splits is read as files (variant ``celeba-files``).
    """
    if download:
        _torchvision("CelebA", root, True, split="train")
    images = celeba.images_path(root)
    split_dir = find_split(images, split) if images.is_dir() else None
    if split_dir is not None:
        return ImageSet(read_images(split_dir, 3, resize_to=image_size, crop=140), "celeba-files")
    names = [n for n, _ in members(images)]
    if not names:
        raise WaeError(f"no CelebA images in {str(images)!r}: expected {celeba.IMAGES}/ or {celeba.IMAGES}.zip of "
                       f"the aligned .jpg images (with {celeba.PARTITION_FILES[0]} beside it) under --data-root "
                       f"or its celeba/; fix --data-root")
    idx, variant = celeba.split_indices(names, images, celeba.partition_path(root, images), split)
    x = read_images(images, 3, resize_to=image_size, crop=140)
    return ImageSet(x[idx], variant)


def load_folder(root, split, image_size, download) -> ImageSet:
    """Any ``train``/``test`` folders or zips of images, each resized to
    ``image_size`` (default 32; ``--set image_size=N``)."""
    if root is None:
        raise WaeError("dataset 'folder' needs --data-root DIR holding train/ and test/ (folders or zips)")
    return _files("folder", root, split, 3, resize_to=image_size)


DIGITS = DatasetSpec("digits", "scikit-learn digits, embedded (offline default)", load_digits,
                     image_size=16, channels=1, arch="tiny", epochs=30, needs_root=False, downloadable=False,
                     fid_samples=500, n_train=1500, n_test=297)   # Inception on 2 CPU cores: ~6 img/s
CIFAR10 = DatasetSpec("cifar10", "CIFAR-10 (Krizhevsky 2009), 50k/10k, 32x32", load_cifar10,
                      image_size=32, arch="a1", epochs=100, n_train=50000, n_test=10000)
CELEBA = DatasetSpec("celeba", "CelebA (Liu et al. 2015), 140 crop -> 64x64", load_celeba,
                     image_size=64, arch="a1", epochs=200, n_train=162770, n_test=19962)
MNIST = DatasetSpec("mnist", "MNIST (LeCun et al. 1998), padded to 32x32", load_mnist,
                    image_size=32, channels=1, arch="a1", epochs=100, n_train=60000, n_test=10000)
FOLDER = DatasetSpec("folder", "your images: train/ and test/ folders or zips", load_folder,
                     image_size=32, arch="a1", epochs=100, downloadable=False)
