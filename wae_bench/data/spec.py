"""The dataset contract: a :class:`DatasetSpec` turns (root, split) into an
:class:`ImageSet`; registered through the ``wae_bench.datasets`` entry points."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
from torch import Tensor

from wae_bench.errors import WaeError

Split = Literal["train", "test"]


@dataclass
class ImageSet:
    """``images``: uint8 N×C×H×W; ``variant`` names exactly what the pixels are
    (e.g. ``cifar10`` for torchvision's copy, ``cifar10-files`` for a folder
    or zip of image files), recorded with every score."""

    images: Tensor
    variant: str

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise WaeError(f"dataset {self.variant!r} gave {self.images.dtype} images of shape "
                           f"{tuple(self.images.shape)}; a dataset must give uint8 N×C×H×W")
        if len(self.images) == 0:
            raise WaeError(f"dataset {self.variant!r} is empty; check --data-root")


@dataclass(frozen=True)
class DatasetSpec:
    """``load(root, split, image_size, download)`` -> :class:`ImageSet`.

    ``image_size``/``channels`` are the defaults, ``arch``/``epochs`` the
    suggested training settings, ``fid_samples`` the default number of
    generated samples to score (the paper's 10,000), ``downloadable`` whether ``--download`` can
    fetch it, ``needs_root`` whether ``--data-root`` is
    required (it is not for the embedded default).  ``n_train``/``n_test``:
    the split sizes of the standard copy, known without loading it (for the
    time estimates of ``bench --dry-run``); None where they depend on the files.
    """

    name: str
    source: str
    load: Callable[[Path | None, Split, int, bool], ImageSet]
    image_size: int
    channels: int = 3
    arch: str = "a1"
    epochs: int = 100
    fid_samples: int = 10000
    needs_root: bool = True
    downloadable: bool = True
    n_train: int | None = None
    n_test: int | None = None


def load_split(spec: DatasetSpec, root: str | None, split: Split, image_size: int,
               download: bool = False) -> ImageSet:
    """Load one split with the checks every dataset gets."""
    online = " (or --download when online)" if spec.downloadable else ""
    if spec.needs_root and root is None and not download:
        raise WaeError(f"dataset {spec.name!r} needs --data-root DIR{online}")
    path = Path(root).expanduser() if root is not None else None
    if path is not None and not path.exists() and not download:
        raise WaeError(f"data root {str(path)!r} does not exist; pass an existing --data-root{online}")
    data = spec.load(path, split, image_size, download)
    n, c, h, w = data.images.shape
    if (h, w) != (image_size, image_size):
        raise WaeError(f"{spec.name} {split} images are {h}x{w}, expected {image_size}x{image_size}; "
                       f"pass --set image_size={h} or resize the data")
    return data
