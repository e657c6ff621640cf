"""Pure loss functions of tensors (no state), one per paper equation."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def reconstruction(x_hat: Tensor, x: Tensor) -> Tensor:
    """``(1/B) Σ_i ||x_i − Dec(Enc(x_i))||²₂`` summed over pixels and channels
    (MoCA Eq. 5, first term), in fp32."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).sum(1).mean()


def moca_loss(q: Tensor, k: Tensor, queue: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """MoCA's L_MoCo (paper Sec. 3, Eq. 5's second term), as (neg, pos):

    ``neg = (1/B) Σ_i log( (1/K) Σ_j exp(q_iᵀ q_j / τ) )`` over the K queue
    entries (the entropy / "negative samples" term, *including* the constant
    ``log(1/K)``), and ``pos = (1/B) Σ_i q_iᵀ k_i / τ``; L_MoCo = neg − pos.
    ``q``: B×d (unit norm, with grad), ``k``: B×d keys, ``queue``: K×d.
    """
    logits = q.float() @ queue.float().t() / tau          # B×K
    neg = (torch.logsumexp(logits, dim=1) - math.log(queue.shape[0])).mean()
    pos = (q.float() * k.float()).sum(1).mean() / tau
    return neg, pos
