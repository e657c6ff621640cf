"""Shared settings of the plugins whose prior is a Gaussian N(0, σ_z² I)
(WAE-MMD, WAE-GAN, SWAE, Sinkhorn): the prior scale σ_z and the WAE paper's
per-dataset choices (Tolstikhin et al. 2018, Sec. 4: σ_z² = 1 on MNIST,
σ_z² = 2 on CelebA)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from wae_bench.config import check
from wae_bench.regularizer import RegularizerConfig, Setup

# Datasets the WAE paper's MNIST settings apply to (small grey-scale digits).
DIGIT_DATASETS = frozenset({"mnist", "digits"})


@dataclass
class GaussianPriorConfig(RegularizerConfig):
    """sigma_z: standard deviation σ_z of the prior N(0, σ_z² I)."""

    sigma_z: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check(self.sigma_z > 0, f"sigma_z must be > 0, got {self.sigma_z}")


def wae_sigma_z(setup: Setup) -> float:
    """σ_z of the WAE paper: 1 for digit datasets, √2 (σ_z² = 2, CelebA's) otherwise."""
    return 1.0 if setup.dataset in DIGIT_DATASETS else math.sqrt(2.0)


def check_batch(setup: Setup, name: str, need: int = 2) -> None:
    """Sample-based estimates need at least ``need`` latents in the (global) batch."""
    B = setup.batch_size * setup.world_size
    check(B >= need, f"{name} needs a global batch of at least {need} latents, got {B}; raise --batch-size")


def wae_lambda(setup: Setup, paper_lambda: float) -> float:
    """The WAE paper's λ on our reconstruction scale.  The authors' code (which
    produced the paper's numbers) uses the cost ``0.05·Σ(x − x̂)²`` with pixels
    in [0, 1] on MNIST and in [−1, 1] on CelebA (4× the squared error of
    [0, 1] pixels); our cost is ``Σ(x − x̂)²`` on [0, 1] pixels, so λ is
    multiplied by 1/0.05 = 20 on digit data and by 1/(0.05·4) = 5 otherwise."""
    return paper_lambda * (20.0 if setup.dataset in DIGIT_DATASETS else 5.0)


def sample_lambda(setup: Setup) -> float:
    """λ of the sample-based divergences (WAE-MMD, SWAE, Sinkhorn): the WAE
    paper's MMD value (100 on CelebA, 10 on MNIST) on our scale."""
    return wae_lambda(setup, 10.0 if setup.dataset in DIGIT_DATASETS else 100.0)
