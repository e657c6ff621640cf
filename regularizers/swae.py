"""SWAE (Kolouri, Pope, Martin, Rohde, "Sliced-Wasserstein Autoencoder: An
Embarrassingly Simple Generative Model", ICLR 2019).

Prior ``P_Z = N(0, σ_z² I)``.  Penalty: λ times SW₂², the squared sliced
2-Wasserstein distance between the encoded batch and an equal number of prior
samples, over L directions θ_l drawn uniformly on the unit sphere each step::

    SW₂² ≈ (1/L) Σ_l (1/n) Σ_m | sort(θ_l·z)_m − sort(θ_l·z̃)_m |²

(the 1-D optimal coupling of two equal-size samples pairs sorted values; the
authors' code computes exactly this with ``top_k``).  Checked against POT's
``ot.sliced_wasserstein_distance`` in ``tests/test_divergences.py``.

Prior samples, then directions, come from the run's generator
(``ctx.generator``, on z's device): capture-safe, and exact on resume since
its state is checkpointed.

Defaults: L = 50 (the paper's and the authors' code), σ_z = 1.  λ: the
authors' code weighs SW₂² by 10 against a *per-pixel mean* BCE + L1
reconstruction loss, which has no exact counterpart for our per-image sum of
squared errors; we give every sample-based divergence WAE-MMD's λ on our
scale (500 on RGB data, 200 on digits; :func:`wae_bench.priors.wae_lambda`),
since SW₂² and the IMQ-MMD take values of the same order here (~0.01-0.1
apart between matched and mismatched latents at d = 128, B = 64).  Under DDP
SW₂² is taken over the batch gathered from all processes.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from wae_bench.config import check
from wae_bench.losses import sliced_w2, unit_directions
from wae_bench.priors import GaussianPriorConfig
from wae_bench.regularizer import Context, Divergence

from ._gaussian import SampleDivergence


@dataclass
class SwaeConfig(GaussianPriorConfig):
    """L: number of random projection directions per step."""

    lambda_: float = 500.0
    L: int = 50

    def __post_init__(self):
        super().__post_init__()
        check(self.L >= 1, f"L must be >= 1, got {self.L}")


class Swae(SampleDivergence):
    """Sliced W₂² (L random directions, sorted 1-D matching) between z and N(0, σ_z² I) samples."""

    name = "swae"
    paper = "Kolouri et al. 2019, Sliced-Wasserstein Autoencoder (ICLR 2019)"
    Config = SwaeConfig
    term = "sw2"

    def divergence_of(self, cfg: SwaeConfig, d: int) -> Divergence:
        return Divergence(sliced_w2)

    def extra_args(self, zg: Tensor, ctx: Context) -> tuple[Tensor]:
        return (unit_directions(self.cfg.L, zg.shape[1], device=zg.device, generator=ctx.generator),)   # L×d
