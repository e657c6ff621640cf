"""Cached reference statistics (torch-fidelity's habit: never recompute the
real side, never cache the generated side).

One file per reference set under ``$WAE_BENCH_CACHE/fid/``, keyed by dataset
variant, split, image size, number of images, a hash of the images' bytes,
the feature extractor, the weights' sha256 and torch-fidelity's version.
It holds μ and Σ (FID) and, once KID or precision/recall asked for them, the
features.  Written atomically, loaded with ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from wae_bench.atomic import atomic_write
from wae_bench.metrics.cache import cache_root
from wae_bench.metrics.fid import Stats, statistics, stats_from_tensors, stats_to_tensors


@dataclass(frozen=True)
class RefKey:
    variant: str
    split: str
    image_size: int
    n: int
    content: str          # sha256 of the uint8 images, first 16 hex digits
    features: str         # "inception" or "standin"
    weights: str          # sha256 of the weights ("none" for the stand-in)
    torch_fidelity: str

    def filename(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.variant)
        return (f"{safe}-{self.split}-{self.image_size}px-n{self.n}-{self.content[:12]}-{self.features}-"
                f"w{self.weights[:12]}-tf{self.torch_fidelity}.pt")


def content_hash(images: Tensor) -> str:
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def make_key(images: Tensor, variant: str, split: str, features: str, weights_sha: str) -> RefKey:
    import torch_fidelity

    return RefKey(variant, split, int(images.shape[-1]), len(images), content_hash(images), features,
                  weights_sha, torch_fidelity.__version__)


def cache_file(key: RefKey) -> Path:
    return cache_root() / "fid" / key.filename()


def reference(key: RefKey, compute: Callable[[], Tensor], need_features: bool) -> tuple[Stats, Tensor | None, bool]:
    """(stats, features or None, was_cached).  ``compute()`` gives the
    reference features when the cache misses (or lacks features that are needed)."""
    path = cache_file(key)
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("key") == asdict(key) and (not need_features or "features" in blob):
                return stats_from_tensors(blob), blob.get("features"), True
        except Exception:  # noqa: BLE001 - a corrupt cache entry is recomputed
            pass
    feats = compute()
    stats = statistics(feats)
    blob = {"key": asdict(key), **stats_to_tensors(stats)}
    if need_features:
        blob["features"] = feats
    atomic_write(path, lambda f: torch.save(blob, f))
    return stats, feats, False
