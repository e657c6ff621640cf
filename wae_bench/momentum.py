"""Momentum-encoder helpers shared by plugins that keep an EMA copy of the
encoder (MoCA; MoCo and BYOL style methods): the cosine momentum schedule
and the in-place EMA update, both capture-safe (the step is a device tensor)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def cosine_momentum(m0: float, t: Tensor, T: int) -> Tensor:
    """BYOL's schedule, MoCA's momentum: ``m_t = 1 - (1 - m0)(cos(π t/T) + 1)/2``
    (m_0 = m0, m_T = 1); ``t`` a device tensor so it is capture-safe."""
    ratio = t.to(torch.float32) / max(T, 1)
    return 1.0 - (1.0 - m0) * (torch.cos(math.pi * ratio) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, m: Tensor, buffers: bool = False) -> None:
    """``θ_k ← m θ_k + (1 − m) θ`` for every parameter (buffers are left to the
    target's own forward passes, as MoCo does); ``buffers``: the floating-point
    buffers too (batch-norm running statistics)."""
    tk = [p for p in target.parameters()]
    tq = [p.detach() for p in source.parameters()]
    if buffers:
        tk += [b for b in target.buffers() if b.is_floating_point()]
        tq += [b for b in source.buffers() if b.is_floating_point()]
    torch._foreach_mul_(tk, m)
    torch._foreach_add_(tk, torch._foreach_mul(tq, 1.0 - m))
