"""Shared parts of the built-in plugins whose prior is a Gaussian
N(0, σ_z² I) (WAE-MMD, WAE-GAN, SWAE, Sinkhorn) beside the public ones of
:mod:`wae_bench.priors` (the prior's Config, the WAE paper's σ_z and λ):
the batch-size check, the sample-based divergences' λ, and
:class:`SampleDivergence`, the base of the three whose penalty is a
divergence between the batch and as many prior samples."""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from wae_bench.config import check
from wae_bench.priors import DIGIT_DATASETS, GaussianPriorConfig, wae_lambda, wae_sigma_z  # noqa: F401
# (wae_sigma_z and the Config re-exported: plugins written before wae_bench.priors import them from here)
from wae_bench.regularizer import Context, Divergence, RegOut, Regularizer, Setup


def check_batch(setup: Setup, name: str, need: int = 2) -> None:
    """Sample-based estimates need at least ``need`` latents in the (global) batch."""
    B = setup.batch_size * setup.world_size
    check(B >= need, f"{name} needs a global batch of at least {need} latents, got {B}; raise --batch-size")


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
