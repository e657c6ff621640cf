"""The validation split: a seeded random subset of a dataset's *training*
images that a run holds out (``TrainConfig.holdout``) and never trains on,
so that hyper-parameters can be chosen without looking at the test split
(the tuning protocol, :mod:`wae_bench.bench.tune`).

The held-out images are one pure function of (training-set size, hold-out
size, dataset name): :func:`indices`, a :func:`~wae_bench.data.subset.random_subset`
named after the dataset.  Its seed is fixed per dataset (:func:`seed`),
independent of the run's seed, so every run of a dataset with the same
``holdout`` holds out the same images, and training
(:func:`wae_bench.run.load_data`) and evaluation (``split = "val"``,
:func:`wae_bench.run.load_val`) agree on them.
"""
from __future__ import annotations

import torch

from wae_bench import worded
from wae_bench.data.spec import ImageSet
from wae_bench.data.subset import name_seed, random_subset
from wae_bench.errors import WaeError


class HoldoutSize(WaeError):
    """The hold-out does not fit the training set: a setting of the whole
    spec or run, not of one cell (the bench runner stops on it)."""


def _lower() -> str:
    """``lower holdout`` in a run; in a bench (:func:`wae_bench.worded.bench`:
    its tuning cells hold out ``tune.holdout`` images), the key and the flag that set it."""
    key = worded.now().holdout_key
    return "lower holdout" if key == "holdout" else f"lower {key} (--set {key}=N)"


def _batch() -> str:
    """The batch size's flag: a run's ``--batch-size``; a bench has none, its ``--set train.batch_size=N``."""
    return worded.setting("--batch-size", "train.batch_size")


def seed(dataset: str) -> int:
    """The hold-out seed of ``dataset``: fixed per dataset, never the run's seed."""
    return name_seed(f"holdout/{dataset}")


def indices(n: int, size: int, dataset: str) -> torch.Tensor:
    """Sorted indices of the ``size`` held-out images among ``n`` training images."""
    if not 0 < size < n:
        raise HoldoutSize(f"holdout = {size:,} must be between 1 and {n - 1:,} (the {dataset} training set has "
                          f"{n:,} images); {_lower()}")
    return random_subset(n, size, f"holdout/{dataset}")


def split(train: ImageSet, size: int, dataset: str, batch: int | None = None) -> tuple[ImageSet, ImageSet]:
    """``(the images trained on, the held-out validation images)``; both keep
    the training set's order.  With ``batch`` (the global batch size), a
    hold-out that leaves fewer images than one batch is a :class:`HoldoutSize`."""
    n = len(train.images)
    held = indices(n, size, dataset)
    if batch is not None and n - size < batch:
        fix = f"{_lower()} (to at most {n - batch:,}) or {_batch()}" if n - batch >= 1 else f"lower {_batch()}"
        raise HoldoutSize(f"holdout = {size:,} leaves {n - size:,} of the {n:,} {dataset} training images, fewer than "
                          f"one batch of {batch:,}; {fix}")
    keep = torch.ones(len(train.images), dtype=torch.bool)
    keep[held] = False
    return ImageSet(train.images[keep], train.variant), ImageSet(train.images[held], train.variant)


def record(n_kept: int, size: int, dataset: str) -> dict:
    """What a run and a score record about their hold-out."""
    return {"size": size, "of": n_kept + size, "seed": seed(dataset),
            "rule": f"randperm(N, generator seeded by sha256('wae-bench/holdout/{dataset}'))[:size], sorted"}
