"""RAE: regularized deterministic autoencoders (Ghosh, Sajjadi, Vergari,
Black, Schölkopf, "From Variational to Deterministic Autoencoders", ICLR 2020).

Objective ``L_RAE = L_REC + β·L_Z + λ·L_REG`` with ``L_Z = ||z||²/2`` and one
decoder regulariser per variant (``rae-l2``, ``rae-gp``, ``rae-sn``; ``ae`` has
none and β = 0):

- RAE-L2: Tikhonov / weight decay ``L_REG = ||θ_Dec||²``, applied as the
  trainer's Adam ``weight_decay`` on the decoder group (coupled L2, like a
  Keras kernel regulariser; here on all decoder parameters);
- RAE-GP: gradient penalty ``L_REG = ||∇_z Dec(z)||²`` w.r.t. the latent, through
  :func:`wae_bench.losses.decoder_gradient` (``grad``: ``code`` = the
  authors' ``∇_z Σ Dec(z)²`` (default), ``sum`` = ``∇_z Σ Dec(z)``,
  ``frobenius`` = one-probe estimate of ``||J||_F²``), evaluated in a second
  decoder pass whose batch-norm statistics updates are discarded;
- RAE-SN: spectral normalisation (``torch.nn.utils.parametrizations.spectral_norm``)
  of every linear / conv / transposed-conv layer of the decoder, applied in
  :meth:`attach` before the optimiser exists; no weight.

Units.  β and λ are the values of the authors' configs (``embedding_weight``,
``gen_reg_weight`` in ParthaEth/Regularized_autoencoders-RAE-, configurations/config.py),
whose loss is ``mean_{batch,pixels} Σ_channels (x − x̂)² + β·mean_j z_j² + λ·R``
with ``R`` = ``mean_{batch,j} g_j²`` (GP) or ``Σ θ²`` (L2).  Our reconstruction
term sums over pixels too, S = H·W times theirs, so we multiply their whole
objective by S: the penalty is ``S·β·mean_{i,j} z_ij² + S·λ·mean_{i,j} g_ij²``
(= β'·mean_i ||z_i||²/2 with β' = 2Sβ/d) and the decoder weight decay is 2·S·λ
(Adam's ``weight_decay`` w is the gradient of w/2·||θ||²).  The optimum is then
exactly the authors'.

Defaults per dataset from those configs: CelebA (and any other data): RAE-L2
β = 1e-4, λ = 1e-7; RAE-GP β = 1e-4, λ = 1e-7; RAE-SN β = 2.4e-3.  CIFAR-10:
RAE-L2 β = 1e-3, λ = 1e-6; RAE-GP β = 9e-4 with λ = 1e-7 (their CIFAR GP
config lists weight 0, which would switch the penalty off; we keep CelebA's);
RAE-SN β = 0.03.  MNIST/digits: RAE-L2 β = 1e-4, λ = 1e-7; RAE-GP β = 1e-4,
λ = 5e-8; RAE-SN β = 9e-3.

Sampling needs ex-post density estimation (a Gaussian "N" or a 10-component
GMM fitted to the training latents; :mod:`wae_bench.expost`, fitted at the end
of every run); the nominal prior N(0, I) is only a placeholder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from wae_bench.config import check
from wae_bench.losses import decoder_gradient
from wae_bench import worded
from wae_bench.errors import WaeError
from wae_bench.regularizer import Context, RegOut, Regularizer, RegularizerConfig, Setup

PAPER = "Ghosh et al. 2020, From Variational to Deterministic Autoencoders"

# (beta, lambda) of the authors' configs, by dataset; "celeba" is also the fallback.
_WEIGHTS: dict[str, dict[str, tuple[float, float]]] = {
    "rae-l2": {"celeba": (1e-4, 1e-7), "cifar10": (1e-3, 1e-6), "mnist": (1e-4, 1e-7)},
    "rae-gp": {"celeba": (1e-4, 1e-7), "cifar10": (9e-4, 1e-7), "mnist": (1e-4, 5e-8)},
    "rae-sn": {"celeba": (2.4e-3, 0.0), "cifar10": (0.03, 0.0), "mnist": (9e-3, 0.0)},
}


def _family_defaults(name: str, setup: Setup) -> dict:
    key = "mnist" if setup.dataset in ("mnist", "digits") else setup.dataset
    beta, lam = _WEIGHTS[name].get(key, _WEIGHTS[name]["celeba"])
    return {"beta": beta, "lambda_": lam}


@dataclass
class RaeConfig(RegularizerConfig):
    """beta: latent weight β (authors' embedding_weight); lambda: decoder
    regulariser weight λ (authors' gen_reg_weight); both in the authors' units."""

    lambda_: float = 1e-7
    beta: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        check(self.beta >= 0, f"beta must be >= 0, got {self.beta}")


@dataclass
class RaeGpConfig(RaeConfig):
    """grad: which decoder gradient is penalised (code, sum, frobenius)."""

    grad: Literal["code", "sum", "frobenius"] = "code"


@dataclass
class RaeSnConfig(RaeConfig):
    """Spectral normalisation has no weight: lambda must stay 0."""

    lambda_: float = 0.0
    beta: float = 2.4e-3

    def __post_init__(self):
        super().__post_init__()
        check(self.lambda_ == 0, f"rae-sn has no decoder-penalty weight (spectral norm is a constraint), "
                                 f"got lambda={self.lambda_}; {worded.drop('--lambda', 'reg.lambda', 'rae-sn')}, "
                                 f"or tune reg.beta")


@dataclass
class AeConfig(RegularizerConfig):
    """The plain autoencoder has no penalty: lambda must stay 0."""

    lambda_: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check(self.lambda_ == 0, f"ae has no penalty, got lambda={self.lambda_}; "
                                 f"{worded.drop('--lambda', 'reg.lambda', 'ae')}, or use "
                                 f"rae-l2 / rae-gp / rae-sn")


class _RaeBase(Regularizer):
    """Shared latent term ``S·β·mean z²`` of the RAE family (see the module docstring)."""

    paper = PAPER
    prior = "gaussian"
    sampler = "gmm"       # the nominal prior is a placeholder: judged by ex-post GMM samples

    @classmethod
    def defaults(cls, setup: Setup) -> dict:
        return _family_defaults(cls.name, setup) if cls.name in _WEIGHTS else {}

    def __init__(self, cfg: RegularizerConfig, setup: Setup):
        super().__init__(cfg, setup)
        self.S = 0  # pixels per channel H·W, known once attached

    def attach(self, ae: nn.Module) -> None:
        self.S = int(ae.image_size) ** 2

    def pixels(self) -> int:
        """S = H·W, the factor between the authors' units and ours (set by :meth:`attach`)."""
        if not self.S:
            raise WaeError(f"{self.name}'s weights depend on the image size; call attach(ae) before training "
                           f"(wae_bench.run.build.build_model does)")
        return self.S

    def latent_terms(self, x: Tensor, z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        zf = z.float()
        beta = getattr(self.cfg, "beta", 0.0)
        lz = zf.pow(2).sum(1).mean() / 2                        # L_Z = mean_i ||z_i||²/2
        return self.pixels() * beta * zf.pow(2).mean(), {"lz": lz}

    def penalty(self, x: Tensor, z: Tensor, ae: nn.Module, ctx: Context) -> RegOut:
        loss, terms = self.latent_terms(x, z)
        return RegOut(loss, terms)


class RaeL2(_RaeBase):
    """RAE-L2: β·||z||²/2 plus L2 weight decay on the decoder; ex-post GMM sampling."""

    name = "rae-l2"
    paper = f"{PAPER}: RAE-L2 (decoder weight decay), Table 1"
    Config = RaeConfig
    tuning_spans = {"lambda": (1.5, 1.5)}   # the decoder weight, 1/30 to 30× the authors'

    def decoder_weight_decay(self) -> float:
        return 2.0 * self.pixels() * self.cfg.lambda_


class RaeGp(_RaeBase):
    """RAE-GP: β·||z||²/2 plus the gradient penalty ||∇_z Dec(z)||²; ex-post GMM sampling."""

    name = "rae-gp"
    paper = f"{PAPER}: RAE-GP (gradient penalty), Table 1"
    Config = RaeGpConfig
    tuning_spans = {"lambda": (1.5, 1.5)}   # the decoder weight, 1/30 to 30× the authors'
    compilable = False   # the penalty's double backward through the decoder

    def penalty(self, x: Tensor, z: Tensor, ae: nn.Module, ctx: Context) -> RegOut:
        loss, terms = self.latent_terms(x, z)
        dec = ae.decoder
        # A second decoder pass whose batch-norm running statistics go to throw-away copies.
        state = {**dict(dec.named_parameters()), **{n: b.clone() for n, b in dec.named_buffers()}}
        g = decoder_gradient(lambda zz: torch.func.functional_call(dec, state, (zz,)), z, self.cfg.grad,
                             generator=ctx.generator)
        gp = g.float().pow(2).sum(1).mean()                     # mean_i ||g_i||²
        loss = loss + self.pixels() * self.cfg.lambda_ * gp / z.shape[1]
        return RegOut(loss, {**terms, "gp": gp})


class RaeSn(_RaeBase):
    """RAE-SN: β·||z||²/2 with a spectrally normalised decoder; ex-post GMM sampling."""

    name = "rae-sn"
    paper = f"{PAPER}: RAE-SN (spectral norm), Table 1"
    Config = RaeSnConfig
    tuning_spans = {"beta": (1.5, 1.5)}     # spectral norm has no weight: the latent weight β

    def attach(self, ae: nn.Module) -> None:
        super().attach(ae)
        for m in list(ae.decoder.modules()):
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                              nn.ConvTranspose2d, nn.ConvTranspose3d)):
                spectral_norm(m)


class Ae(_RaeBase):
    """Plain deterministic autoencoder: no penalty; ex-post GMM sampling."""

    name = "ae"
    paper = f"{PAPER}: AE baseline, Table 1"
    Config = AeConfig
