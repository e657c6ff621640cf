"""WAE-MMD (Tolstikhin, Bousquet, Gelly, Schölkopf, "Wasserstein
Auto-Encoders", ICLR 2018, Algorithm 2).

Prior ``P_Z = N(0, σ_z² I)``.  Penalty: λ times the unbiased MMD² estimate
between the encoded batch ``z_1..z_n`` and prior samples ``z̃_1..z̃_n``::

    λ/(n(n−1)) Σ_{l≠j} k(z_l, z_j) + λ/(n(n−1)) Σ_{l≠j} k(z̃_l, z̃_j) − 2λ/n² Σ_{l,j} k(z_l, z̃_j)

with the inverse multiquadratics kernel ``k(x, y) = C / (C + ||x − y||²)``,
``C = 2·d·σ_z²`` (paper Sec. 4), summed over the scales
``s ∈ {.1, .2, .5, 1, 2, 5, 10}`` of C as the authors' code does; a Gaussian
kernel ``exp(−||x − y||²/C)`` over the same constants is the RBF option.

Defaults (paper Sec. 4): λ = 100 and σ_z² = 2 on CelebA (used for every RGB
dataset), λ = 10 and σ_z² = 1 on MNIST (used for digit datasets), converted
to our reconstruction scale (:func:`wae_bench.priors.wae_lambda`: the
authors' code weighs ``0.05·Σ(x − x̂)²`` on [−1, 1] CelebA pixels / [0, 1]
MNIST pixels): λ = 500 on RGB data, 200 on digits.
Under DDP the MMD is taken over the batch gathered from all processes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from wae_bench.config import check
from wae_bench.losses import WAE_SCALES, mmd, wae_scales
from wae_bench.priors import GaussianPriorConfig, wae_sigma_z
from wae_bench.regularizer import Divergence, Setup

from ._gaussian import SampleDivergence


@dataclass
class WaeMmdConfig(GaussianPriorConfig):
    """kernel: imq (paper) or rbf; scales: multipliers s of C = 2·d·σ_z²."""

    lambda_: float = 500.0
    sigma_z: float = math.sqrt(2.0)
    kernel: Literal["imq", "rbf"] = "imq"
    scales: list[float] = field(default_factory=lambda: list(WAE_SCALES))

    def __post_init__(self):
        super().__post_init__()
        check(len(self.scales) > 0 and all(s > 0 for s in self.scales),
              f"scales must be a non-empty list of positive numbers, got {self.scales}")


class WaeMmd(SampleDivergence):
    """Unbiased MMD (IMQ kernel, summed scales) between z and N(0, σ_z² I) samples."""

    name = "wae-mmd"
    paper = "Tolstikhin et al. 2018, Wasserstein Auto-Encoders (Alg. 2, Sec. 4)"
    Config = WaeMmdConfig
    term = "mmd"
    min_batch = 2

    @classmethod
    def defaults(cls, setup: Setup) -> dict:
        return {**super().defaults(setup), "sigma_z": wae_sigma_z(setup)}

    def divergence_of(self, cfg: WaeMmdConfig, d: int) -> Divergence:
        self.Cs = wae_scales(d, cfg.sigma_z, cfg.scales)
        return Divergence(mmd, Cs=self.Cs, kernel=cfg.kernel)
