"""FID of image tensors one holds (a notebook's samples, another model's
images), not of a run: the path `wae-bench eval` takes --
:func:`~wae_bench.metrics.features.make_extractor` (torch-fidelity's
TF-Inception, or the stand-in), :func:`~wae_bench.metrics.features.extract`,
:func:`~wae_bench.metrics.fid.statistics` and
:func:`~wae_bench.metrics.fid.frechet_distance` (Heusel et al. 2017, Eq. 6,
through torch-fidelity) -- behind one call whose inputs are checked first,
each mistake refused in one line.  Nothing is cached: both sides are the
caller's tensors."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from wae_bench.data.batcher import to_uint8
from wae_bench.errors import WaeError
from wae_bench.metrics import fid as F
from wae_bench.metrics.features import FEATURES, extract, make_extractor

EXPECTED = "uint8 (N, C, H, W) images in 0..255, or float ones in [0, 1], C = 1 or 3"


def fid_of(images: Tensor, reference: Tensor, *, features: str = "inception", fid_weights: str | None = None,
           device: str | torch.device = "auto", batch_size: int = 250) -> float:
    """The FID between ``images`` and ``reference``.

    Each side is a tensor of at least 2 images, (N, C, H, W) with C = 1
    (repeated to 3 channels, as a run's grayscale images are) or 3: uint8 in
    0..255, or float in [0, 1] (a decoder's output clamped,
    ``ae.decode(z).clamp(0, 1)``), which is rounded to uint8 as a run's
    generated images are (:func:`~wae_bench.data.batcher.to_uint8`); both
    sides of one C, H and W.  ``features``: ``"inception"`` (TF-Inception
    pool3, the FID the papers report; the weights found as `wae-bench eval`
    finds them: ``fid_weights``, ``$WAE_BENCH_FID_WEIGHTS``, the cache) or
    ``"standin"`` (random conv features, NOT FID: for tests, no weights
    needed).  ``device``: ``"auto"`` (CUDA if there is one), ``"cpu"``,
    ``"cuda:N"``; ``batch_size``: images per forward of the feature net.
    Fewer images than feature dimensions (2,048 for Inception) give a
    singular covariance and an FID biased high: a warning says so
    (:func:`~wae_bench.metrics.fid.few_images_note`)."""
    from wae_bench.metrics.weights import resolve
    from wae_bench.run.build import pick_device

    x, ref = _as_uint8(images, "images"), _as_uint8(reference, "reference")
    if x.shape[1:] != ref.shape[1:]:
        raise WaeError(f"images are {_kind(x)} but reference {_kind(ref)}; FID compares images of one size and "
                       f"channel count: resize or convert one side")
    if features not in FEATURES:
        raise WaeError(f"unknown features {features!r}; choose one of: {', '.join(FEATURES)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise WaeError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    weights = resolve(fid_weights) if features == "inception" else None
    ext = make_extractor(features, dev, weights.path if weights else None)
    f_x, f_ref = (extract(ext, side, batch_size)[ext.layer] for side in (x, ref))
    note = F.few_images_note(min(len(f_x), len(f_ref)), f_x.shape[1])
    if note:
        warnings.warn(note, stacklevel=2)
    return F.frechet_distance(F.statistics(f_x), F.statistics(f_ref))


def _as_uint8(x, side: str) -> Tensor:
    """``x`` as the uint8 images the feature extractors take; anything else
    than :data:`EXPECTED` is refused in one line naming what it is."""
    if not isinstance(x, Tensor):
        raise WaeError(f"{side} is a {type(x).__name__}, not a torch.Tensor; pass {EXPECTED} "
                       f"(torch.from_numpy(a).permute(0, 3, 1, 2) for an N×H×W×C array)")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        hint = " (N×H×W×C: x.permute(0, 3, 1, 2))" if x.dim() == 4 and x.shape[-1] in (1, 3) else ""
        raise WaeError(f"{side} has shape {tuple(x.shape)}; pass {EXPECTED}{hint}")
    if len(x) < 2:
        raise WaeError(f"{side} holds {len(x)} image(s); FID needs at least 2 a side (thousands for a "
                       f"meaningful number)")
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise WaeError(f"{side} is {x.dtype}; pass {EXPECTED}")
    if not bool(torch.isfinite(x).all()):
        raise WaeError(f"{side} holds NaN or infinite values; pass {EXPECTED}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise WaeError(f"{side} is {x.dtype} with values in [{lo:.4g}, {hi:.4g}]; float images must be in [0, 1] "
                       f"(a decoder's output: .clamp(0, 1); 0..255 floats: .div(255)), or pass uint8 in 0..255")
    return to_uint8(x)


def _kind(x: Tensor) -> str:
    return "×".join(map(str, x.shape[1:]))
