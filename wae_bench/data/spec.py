"""The dataset contract: a :class:`DatasetSpec` turns (root, split) into an
:class:`ImageSet`; registered through the ``wae_bench.datasets`` entry points."""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
from torch import Tensor

from wae_bench.errors import WaeError, os_error_text

Split = Literal["train", "test"]


@dataclass
class ImageSet:
    """``images``: a uint8 ``torch.Tensor`` N×C×H×W (values 0..255);
    ``variant`` names exactly what the pixels are (e.g. ``cifar10`` for
    torchvision's copy, ``cifar10-files`` for a folder or zip of image
    files), recorded with every score.  :func:`load_split` checks what a
    loader gave (:func:`check_images`) and names the dataset when it is wrong."""

    images: Tensor
    variant: str


@dataclass(frozen=True)
class DatasetSpec:
    """``load(root, split, image_size, download)`` -> :class:`ImageSet`.

    ``image_size``/``channels`` are the defaults, ``arch``/``epochs`` the
    suggested training settings, ``fid_samples`` the default number of
    generated samples to score (the paper's 10,000), ``downloadable`` whether ``--download`` can
    fetch it, ``needs_root`` whether ``--data-root`` is
    required (it is not for the embedded default).  ``n_train``/``n_test``:
    the split sizes of the standard copy, known without loading it (for the
    time estimates of ``bench --dry-run``, and MoCA's queue size on a small
    dataset); None where they depend on the files.  The contract of ``load``
    and what :func:`load_split` checks: docs/datasets.md.
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
    """Load one split with the checks every dataset gets: the root,
    ``spec.load``'s own failure (:func:`call_load`), what it gave
    (:func:`check_images`) and the warnings of :func:`suspect_images`."""
    online = " (or --download when online)" if spec.downloadable else ""
    if spec.needs_root and root is None and not download:
        raise WaeError(f"dataset {spec.name!r} needs --data-root DIR{online}")
    path = Path(root).expanduser() if root is not None else None
    if path is not None and not path.exists() and not download:
        raise WaeError(f"data root {str(path)!r} does not exist; pass an existing --data-root{online}")
    data = call_load(spec, path, split, image_size, download)
    check_images(spec, split, data, image_size)
    for text in suspect_images(spec, data.images):
        _warn_once(text)
    return data


def is_builtin(spec: DatasetSpec) -> bool:
    """Whether ``spec`` is one of wae-bench's own datasets (its loader is wae-bench's code)."""
    return getattr(spec.load, "__module__", "").startswith("wae_bench.")


def who(spec: DatasetSpec) -> str:
    """The dataset as a message names it: ``dataset 'digits'``, or for a
    plugin ``dataset plugin 'mine' (my-pkg 0.1)``: its entry-point name and
    the distribution that provides it (:meth:`~wae_bench.registry.Registry.provider`)."""
    if is_builtin(spec):
        return f"dataset {spec.name!r}"
    from wae_bench.registry import DATASETS

    if spec.name in DATASETS and DATASETS.get(spec.name) is spec:
        return DATASETS.label(spec.name).replace("dataset", "dataset plugin", 1)
    return f"dataset plugin {spec.name!r} (module {getattr(spec.load, '__module__', '?')})"


def call_load(spec: DatasetSpec, path: Path | None, split: Split, image_size: int, download: bool) -> ImageSet:
    """``spec.load(...)``; an exception of a plugin's own loader (not a
    :class:`WaeError`) is the plugin's: one line naming it, its provider and
    the line of its code that raised, not an internal error of wae-bench's.
    A built-in loader's exceptions pass unchanged (the CLI has their lines)."""
    try:
        return spec.load(path, split, image_size, download)
    except (WaeError, MemoryError):
        raise
    except Exception as e:
        if is_builtin(spec):
            raise
        if isinstance(e, OSError) and e.filename:
            raise WaeError(f"{who(spec)}: {os_error_text(e)}") from e
        msg = " ".join(str(e).split())[:200]
        rootless = (" (it was called with root None: its DatasetSpec says needs_root=False; set needs_root=True "
                    "if it reads --data-root)" if path is None and "NoneType" in msg else "")
        raise WaeError(f"{who(spec)} raised {type(e).__name__}: {msg} (at {_raised_at(e, spec)}) loading its "
                       f"{split} split{rootless}; fix its load()") from e


def _raised_at(e: BaseException, spec: DatasetSpec) -> str:
    """``file.py:LINE``: the innermost frame of ``e`` in the loader's own
    package (else the innermost frame)."""
    top = getattr(spec.load, "__module__", "").split(".")[0]
    frames = list(traceback.walk_tb(e.__traceback__))
    own = [(f, line) for f, line in frames if str(f.f_globals.get("__name__", "")).split(".")[0] == top]
    f, line = (own or frames or [(None, 0)])[-1]
    return f"{Path(f.f_code.co_filename).name}:{line}" if f is not None else "?"


def check_images(spec: DatasetSpec, split: Split, data: object, image_size: int) -> None:
    """What ``spec.load`` gave is an :class:`ImageSet` of uint8 N×C×H×W
    ``image_size``-square images, or a :class:`WaeError` naming the dataset,
    the mistake and its fix."""
    name = who(spec)
    if not isinstance(data, ImageSet):
        raise WaeError(f"{name}: load() returned a {_kind(data)}, not an ImageSet; return "
                       f"wae_bench.data.ImageSet(images, variant)")
    x = data.images
    if not isinstance(x, Tensor):
        fix = ("wrap it with torch.from_numpy(x)" if type(x).__module__.split(".")[0] == "numpy"
               else "convert it to a torch.Tensor")
        raise WaeError(f"{name} gave its {split} images as a {_kind(x)}, not a torch.Tensor; {fix} (uint8 N×C×H×W)")
    if x.dtype != torch.uint8:
        fix = ("convert [0, 1] floats with (x * 255).round().to(torch.uint8)" if x.dtype.is_floating_point
               else "convert with x.to(torch.uint8) (values 0..255)")
        raise WaeError(f"{name} gave {x.dtype} {split} images of shape {tuple(x.shape)}; a dataset gives uint8 "
                       f"N×C×H×W: {fix}")
    if x.dim() != 4:
        fix = " (grayscale N×H×W: x.unsqueeze(1))" if x.dim() == 3 else ""
        raise WaeError(f"{name} gave {split} images of shape {tuple(x.shape)}; a dataset gives uint8 N×C×H×W{fix}")
    if len(x) == 0:
        raise WaeError(f"{name} gave no {split} images; check --data-root")
    n, c, h, w = x.shape
    if w in (1, 3) and c == h and c not in (1, 3):
        raise WaeError(f"{name} gave {split} images of shape {tuple(x.shape)}, which looks like N×H×W×C; a dataset "
                       f"gives N×C×H×W: x.permute(0, 3, 1, 2)")
    if h != w:
        raise WaeError(f"{name} {split} images are {h}x{w}, not square; crop or resize them in the loader to the "
                       f"image_size it is given ({image_size}x{image_size})")
    if h != image_size:
        raise WaeError(f"{spec.name} {split} images are {h}x{w}, expected {image_size}x{image_size}; "
                       f"pass --set image_size={h} or resize the data")


def suspect_images(spec: DatasetSpec, x: Tensor) -> list[str]:
    """Warnings about images that pass :func:`check_images` but are likely a
    loader's mistake: every pixel 0 or 1 (floats in [0, 1] cast to uint8
    without × 255: they train, and score, on black images), or a channel
    count that is not the DatasetSpec's (what `wae-bench list` shows)."""
    out = []
    if int(x.max()) <= 1:
        out.append(f"{who(spec)}: every pixel is 0 or 1, but uint8 images are 0..255; if they were floats in "
                   f"[0, 1], convert with (x * 255).round().to(torch.uint8)")
    if x.shape[1] != spec.channels:
        out.append(f"{who(spec)} gives {x.shape[1]}-channel images, but its DatasetSpec says channels="
                   f"{spec.channels} (what `wae-bench list` shows); set channels={x.shape[1]} there")
    return out


_WARNED: set[str] = set()


def _warn_once(text: str) -> None:
    """A warning once per process (a bench loads a dataset for every cell), from the main process only."""
    if text not in _WARNED and int(os.environ.get("RANK", "0")) == 0:
        _WARNED.add(text)
        from rich.markup import escape

        from wae_bench import progress

        progress.notice(f"[yellow]warning:[/] {escape(text)}")


def _kind(obj: object) -> str:
    """``numpy.ndarray``, ``Tensor``, ``tuple``: what a value is, for a message."""
    t = type(obj)
    return t.__name__ if t.__module__ in ("builtins", "torch") else f"{t.__module__.split('.')[0]}.{t.__name__}"
