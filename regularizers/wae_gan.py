"""WAE-GAN (Tolstikhin, Bousquet, Gelly, Schölkopf, "Wasserstein
Auto-Encoders", ICLR 2018, Algorithm 1).

Prior ``P_Z = N(0, σ_z² I)``.  A latent discriminator ``D_γ: Z → (0, 1)`` (an
MLP: d → 4 × [FC512, ReLU] → FC1, paper App. C) with its own Adam optimiser.
Per iteration, in the trainer's order (:mod:`wae_bench.regularizer`):

1. discriminator step on *detached* latents (the contract's auxiliary step,
   one per iteration as in Algorithm 1: ``aux_steps`` = 1),
   ascending ``λ/n Σ_i [log D(z̃_i) + log(1 − D(z_i))]`` with ``z̃_i ~ P_Z``,
   i.e. descending λ × the binary cross-entropy of prior (label 1) against
   encoded (label 0) latents, whose two parts are logged unweighted
   (``wae-gan/bce_p`` = −mean log D(z̃), ``wae-gan/bce_q`` = −mean log(1 − D(z)));
2. autoencoder step with the penalty ``−λ/n Σ_i log D(z_i)`` (the
   non-saturating form the authors' code trains with), evaluated through a
   *detached* copy of D's parameters so that the autoencoder's backward leaves
   D's gradients untouched.

The trainer's autoencoder optimiser holds only encoder and decoder parameters
and the auxiliary optimiser only D's, so neither step can move the other's
weights; both optimiser states are checkpointed by the trainer.

Option ``p_trick`` (the authors' code, after AVB): add the known log-density
of the prior to D's logit, so D only learns the log Q_Z part.

Defaults: λ = 1 (paper Sec. 4) on the authors' reconstruction scale, i.e.
λ = 5 on RGB data and 20 on digits on ours (see
:func:`wae_bench.priors.wae_lambda`); D = 4 × 512 (paper App. C and the
authors' MNIST config; their CelebA config uses 1024 units); D's Adam with
β1 = 0.5 and a learning rate half the autoencoder's (the authors' configs:
5e-4 vs 1e-3 on MNIST, 5e-5 vs 1e-4 on CelebA); σ_z² = 2 on RGB data (the
paper's CelebA value; the authors' code uses 1) and 1 on digits.
Under DDP, D is trained on the latents gathered from all processes and on
prior samples from each rank's own generator, and its gradients are averaged
over the ranks before its optimiser steps, so D's update is the same on
every rank.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wae_bench.config import check
from wae_bench.priors import GaussianPriorConfig, wae_lambda, wae_sigma_z
from wae_bench.regularizer import Context, RegOut, Regularizer, Setup


@dataclass
class WaeGanConfig(GaussianPriorConfig):
    """d_hidden, d_layers: the discriminator MLP; d_lr_scale: its learning rate
    relative to the autoencoder's; d_beta1: its Adam β1; p_trick: add log p_Z to D's logit."""

    lambda_: float = 5.0
    sigma_z: float = math.sqrt(2.0)
    d_hidden: int = 512
    d_layers: int = 4
    d_lr_scale: float = 0.5
    d_beta1: float = 0.5
    p_trick: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(self.d_hidden >= 1 and self.d_layers >= 1,
              f"d_hidden and d_layers must be >= 1, got {self.d_hidden} and {self.d_layers}")
        check(self.d_lr_scale > 0, f"d_lr_scale must be > 0, got {self.d_lr_scale}")
        check(0.0 <= self.d_beta1 < 1.0, f"d_beta1 must be in [0, 1), got {self.d_beta1}")


def discriminator(d: int, hidden: int, layers: int) -> nn.Sequential:
    """d → layers × [Linear(hidden), ReLU] → Linear(1): logits of "from the prior"."""
    mods: list[nn.Module] = []
    width = d
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


class WaeGan(Regularizer):
    """Latent discriminator (own Adam, stepped on detached z) and the encoder penalty −λ·log D(z)."""

    name = "wae-gan"
    paper = "Tolstikhin et al. 2018, Wasserstein Auto-Encoders (Alg. 1, App. C)"
    Config = WaeGanConfig
    prior = "gaussian"
    tuning_spans = {"lambda": (1.5, 1.5)}   # λ from 1/30 to 30× the WAE paper's, on our scale

    @classmethod
    def defaults(cls, setup: Setup) -> dict:
        return {"lambda_": wae_lambda(setup, 1.0), "sigma_z": wae_sigma_z(setup)}

    def __init__(self, cfg: WaeGanConfig, setup: Setup):
        super().__init__(cfg, setup)
        self.D = discriminator(setup.latent_dim, cfg.d_hidden, cfg.d_layers)

    def logits(self, z: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        """D's logit per latent (B), with D's own or the given parameters."""
        z = z.float()
        out = self.D(z) if params is None else torch.func.functional_call(self.D, params, (z,))
        out = out.squeeze(1)
        if self.cfg.p_trick:  # + log N(z; 0, σ_z² I)
            s2, d = self.cfg.sigma_z ** 2, z.shape[1]
            out = out - z.pow(2).sum(1) / (2 * s2) - 0.5 * d * math.log(2 * math.pi * s2)
        return out

    def penalty(self, x: Tensor, z: Tensor, ae: nn.Module, ctx: Context) -> RegOut:
        frozen = {n: p.detach() for n, p in self.D.named_parameters()}
        lq = self.logits(z, frozen)                                              # B
        gan = F.binary_cross_entropy_with_logits(lq, torch.ones_like(lq))        # −mean log D(z)
        return RegOut(self.cfg.lambda_ * gan, {"gan": gan, "d_q": torch.sigmoid(lq).mean()})

    def make_aux_optimizer(self) -> torch.optim.Optimizer:
        # lr is set by the trainer (base lr × lr_scale) before the first step.
        s = self.cfg.d_lr_scale
        return torch.optim.Adam([{"params": list(self.D.parameters()), "lr_scale": s}], lr=1e-3 * s,
                                betas=(self.cfg.d_beta1, 0.999))

    def aux_loss(self, z: Tensor, ctx: Context) -> RegOut:
        zq = ctx.gather_nograd(z)                                  # (B·W)×d, detached
        zp = self.sample_prior(len(zq), device=zq.device, generator=ctx.generator)   # (B·W)×d
        lp, lq = self.logits(zp), self.logits(zq)
        bce = F.binary_cross_entropy_with_logits
        bce_p = bce(lp, torch.ones_like(lp))                      # −mean log D(z̃): prior samples, label 1
        bce_q = bce(lq, torch.zeros_like(lq))                     # −mean log(1 − D(z)): encoded, label 0
        return RegOut(self.cfg.lambda_ * (bce_p + bce_q), {"bce_p": bce_p, "bce_q": bce_q})
