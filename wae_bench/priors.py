"""The Gaussian prior N(0, σ_z² I) and the WAE paper's settings for it, for
any plugin whose prior is Gaussian (the built-in WAE-MMD, WAE-GAN, SWAE and
Sinkhorn, and third-party ones that want their λ and σ_z on the same scale).

- :class:`GaussianPriorConfig`: a plugin Config with the field ``sigma_z``,
  the prior's standard deviation, which
  :meth:`~wae_bench.regularizer.Regularizer.sample_prior` reads by that name
  (a Config without it samples N(0, I)).
- :func:`wae_sigma_z`: the WAE paper's σ_z per dataset (Tolstikhin et al.
  2018, Sec. 4: σ_z² = 1 on MNIST, σ_z² = 2 on CelebA).
- :func:`wae_lambda`: the paper's λ converted to wae-bench's reconstruction
  scale (×20 on digit data, ×5 on RGB data).

Usage, in a plugin::

    from wae_bench.priors import GaussianPriorConfig, wae_lambda, wae_sigma_z

    @dataclass
    class CriticConfig(GaussianPriorConfig):
        \"\"\"sigma_z: the prior's std; hidden: the critic's width.\"\"\"
        hidden: int = 64

    class Critic(Regularizer):
        @classmethod
        def defaults(cls, setup):
            return {"lambda_": wae_lambda(setup, 1.0), "sigma_z": wae_sigma_z(setup)}
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from wae_bench.config import RegularizerConfig, check
from wae_bench.regularizer import Setup

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


def wae_lambda(setup: Setup, paper_lambda: float) -> float:
    """The WAE paper's λ on our reconstruction scale.  The authors' code (which
    produced the paper's numbers) uses the cost ``0.05·Σ(x − x̂)²`` with pixels
    in [0, 1] on MNIST and in [−1, 1] on CelebA (4× the squared error of
    [0, 1] pixels); our cost is ``Σ(x − x̂)²`` on [0, 1] pixels, so λ is
    multiplied by 1/0.05 = 20 on digit data and by 1/(0.05·4) = 5 otherwise."""
    return paper_lambda * (20.0 if setup.dataset in DIGIT_DATASETS else 5.0)
