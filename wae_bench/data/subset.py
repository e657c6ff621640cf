"""Seeded random subsets of a dataset, never "the first N": image folders and
zips are read in sorted order, class by class (the CIFAR-10 JPEG copy starts
with its 5,000 airplanes), so the first N images are a few classes.

:func:`random_subset` is a pure function of (set size, subset size, a name
that keys the seed); the validation hold-out (:mod:`wae_bench.data.holdout`),
the images an ex-post density is fitted on (:func:`wae_bench.expost.fit_indices`),
the REC column's reference images and the Interp column's pairs
(:mod:`wae_bench.metrics.generate`), the latents of the spectrum
diagnostic and the images reconstructed under ``--diagnostics-limit``
(:mod:`wae_bench.evaluate`) and ``benchmarks/fid_reference.py
--limit`` are drawn by it (or by :func:`name_seed`), each under its own name.
Picture grids take images evenly spaced through the set
(:func:`wae_bench.pictures.spread`).
"""
from __future__ import annotations

import hashlib

import torch
from torch import Tensor

RULE = "randperm(N, generator seeded by sha256('wae-bench/<name>'))[:k], sorted; all N when k >= N"


def name_seed(name: str) -> int:
    """The seed of the subsets named ``name``."""
    h = hashlib.sha256(f"wae-bench/{name}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def random_subset(n: int, k: int, name: str) -> Tensor:
    """Sorted indices of ``k`` of ``n`` items, drawn at random with the seed of
    ``name``; every index when ``k >= n``."""
    if k >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(name_seed(name)))
    return perm[:k].sort().values
