"""The dataset contract: a :class:`DatasetSpec` turns (root, split) into an
:class:`ImageSet`; registered through the ``wae_bench.datasets`` entry points."""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
from torch import Tensor

from wae_bench import worded
from wae_bench.errors import WaeError, os_error_text
from wae_bench.launch import is_rank0

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
class DataScan:
    """What a cheap look at a dataset's files found, without decoding an
    image (a :class:`DatasetSpec`'s optional ``scan``, shown by ``bench
    --dry-run``): ``where`` says in one phrase where the images are and what
    splits them (``300 images in '…/img_align_celeba', split by
    '…/list_eval_partition.txt'``), ``sizes`` the images of each split
    (``{"train": 270, "test": 30}``), ``variant`` what :class:`ImageSet`'s
    variant will be, ``notes`` what the load will note about the files."""

    where: str
    sizes: dict[str, int]
    variant: str
    notes: tuple[str, ...] = ()


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
    dataset); None where they depend on the files.  ``scan(root)``
    (optional) -> :class:`DataScan`: the same files ``load`` would read,
    listed but not decoded, so that ``bench --dry-run`` can check the data
    before any cell runs (:func:`scan_root`); a problem is the
    :class:`WaeError` ``load`` would raise.  The contract of ``load`` and
    what :func:`load_split` checks: docs/datasets.md.
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
    scan: Callable[[Path], DataScan] | None = None


def root_problem(spec: DatasetSpec, root: str | None, download: bool = False) -> str | None:
    """Why ``root`` cannot be ``spec``'s data root (none given where one is
    needed, or a path that does not exist), or None; a download is asked for
    in the words of the command (:func:`wae_bench.worded.download_flag`:
    ``--download``, in a bench ``--set train.download=true``)."""
    online = f" (or {worded.download_flag()} when online)" if spec.downloadable else ""
    if spec.needs_root and root is None:   # (a download needs it too: the folder it fills)
        return f"dataset {spec.name!r} needs --data-root DIR" + (" to download it into" if download else online)
    path = Path(root).expanduser() if root is not None else None
    if path is not None and not path.exists() and not download:
        return f"data root {str(path)!r} does not exist; pass an existing --data-root{online}"
    return None


def load_split(spec: DatasetSpec, root: str | None, split: Split, image_size: int,
               download: bool = False) -> ImageSet:
    """Load one split with the checks every dataset gets: the root
    (:func:`root_problem`), ``spec.load``'s own failure (:func:`call_load`),
    what it gave (:func:`check_images`) and the warnings of :func:`suspect_images`."""
    problem = root_problem(spec, root, download)
    if problem:
        raise WaeError(problem)
    path = Path(root).expanduser() if root is not None else None
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
    return _call(spec, "load", f"loading its {split} split", path, split, image_size, download)


def scan_root(spec: DatasetSpec, path: Path) -> DataScan | None:
    """``spec.scan(path)`` (None for a dataset without the hook), checked
    and with a plugin's own exceptions worded as :func:`call_load` words them."""
    if spec.scan is None:
        return None
    found = _call(spec, "scan", "scanning its files", path)
    if not isinstance(found, DataScan):
        raise WaeError(f"{who(spec)}: scan() returned a {_kind(found)}, not a DataScan; return "
                       f"wae_bench.data.DataScan(where, sizes, variant)")
    sizes = found.sizes
    if not (isinstance(sizes, dict) and all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                            and v >= 0 for k, v in sizes.items())):
        raise WaeError(f"{who(spec)}: scan() returned sizes {sizes!r}; give each split's image count as an int "
                       f"(DataScan(where, {{'train': N, 'test': M}}, variant))")
    return found


def _call(spec: DatasetSpec, method: str, doing: str, path: Path | None, *args):
    """``spec.<method>(path, *args)``; a plugin's own exception (not a
    :class:`WaeError`) while ``doing`` becomes one line (:func:`_plugin_failure`)."""
    try:
        return getattr(spec, method)(path, *args)
    except (WaeError, MemoryError):
        raise
    except Exception as e:
        if is_builtin(spec):
            raise
        raise _plugin_failure(spec, e, path, doing, method) from e


def _plugin_failure(spec: DatasetSpec, e: Exception, path: Path | None, doing: str, method: str) -> WaeError:
    """A plugin's own exception raised by its ``method`` while ``doing``, as
    one :class:`WaeError` naming the plugin, its provider and the line of its
    code that raised."""
    if isinstance(e, OSError) and e.filename:
        return WaeError(f"{who(spec)}: {os_error_text(e)}")
    msg = " ".join(str(e).split())[:200]
    rootless = (" (it was called with root None: its DatasetSpec says needs_root=False; set needs_root=True "
                "if it reads --data-root)" if path is None and "NoneType" in msg else "")
    return WaeError(f"{who(spec)} raised {type(e).__name__}: {msg} (at {_raised_at(e, spec)}) {doing}{rootless}; "
                    f"fix its {method}()")


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


def _warn_once(text: str, kind: str = "warning") -> None:
    """A ``warning:`` (or ``note:``) line once per process (a bench loads a
    dataset for every cell), from the main process only."""
    if text not in _WARNED and is_rank0():
        _WARNED.add(text)
        from rich.markup import escape

        from wae_bench import progress

        progress.notice(f"[yellow]{kind}:[/] {escape(text)}")


def note_once(text: str) -> None:
    """A loader's ``note:`` about its files (split by file order, images
    left out), once per process."""
    _warn_once(text, "note")


def _kind(obj: object) -> str:
    """``numpy.ndarray``, ``Tensor``, ``tuple``: what a value is, for a message."""
    t = type(obj)
    return t.__name__ if t.__module__ in ("builtins", "torch") else f"{t.__module__.split('.')[0]}.{t.__name__}"
