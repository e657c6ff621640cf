"""Shared parts of the plugins whose prior is a Gaussian N(0, σ_z² I)
(WAE-MMD, WAE-GAN, SWAE, Sinkhorn): the prior scale σ_z, the WAE paper's
per-dataset choices (Tolstikhin et al. 2018, Sec. 4: σ_z² = 1 on MNIST,
σ_z² = 2 on CelebA), and :class:`SampleDivergence`, the base of the three
whose penalty is a divergence between the batch and as many prior samples."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from wae_bench.config import check
from wae_bench.regularizer import Context, Divergence, RegOut, Regularizer, RegularizerConfig, Setup

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


class SampleDivergence(Regularizer):
    """Penalty ``λ · D(z, z̃)``: a divergence (:attr:`divergence`, a
    :class:`~wae_bench.regularizer.Divergence`) between the batch ``z``
    gathered from all processes and as many prior samples ``z̃ ~ N(0, σ_z² I)``
    (WAE Eq. 4 with a sample-based D), drawn from the run's generator.  A subclass sets ``term`` (its name in
    the metrics log) and makes the divergence in :meth:`divergence_of`."""

    prior = "gaussian"
    tuning_spans = {"lambda": (1.5, 1.5)}   # λ from 1/30 to 30× the WAE paper's, on our scale
    term: ClassVar[str] = ""
    min_batch: ClassVar[int] = 1         # latents the estimate needs in the global batch

    @classmethod
    def defaults(cls, setup: Setup) -> dict:
        return {"lambda_": sample_lambda(setup)}

    def __init__(self, cfg: GaussianPriorConfig, setup: Setup):
        super().__init__(cfg, setup)
        check_batch(setup, self.name, need=self.min_batch)
        self.divergence = self.divergence_of(cfg, setup.latent_dim)

    def divergence_of(self, cfg: GaussianPriorConfig, d: int) -> Divergence:
        raise NotImplementedError

    def extra_args(self, zg: Tensor, ctx: Context) -> tuple[Tensor, ...]:
        """Further tensor arguments of the divergence drawn each step from
        ``ctx.generator`` (SWAE's directions)."""
        return ()

    def penalty(self, x: Tensor, z: Tensor, ae: nn.Module, ctx: Context) -> RegOut:
        zg = ctx.gather(z)                                                       # (B·W)×d
        p = self.sample_prior(len(zg), device=zg.device, generator=ctx.generator)   # (B·W)×d
        value = self.divergence(zg, p, *self.extra_args(zg, ctx))
        return RegOut(self.cfg.lambda_ * value, {self.term: value})
