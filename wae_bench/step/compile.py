"""``compile``: ``torch.compile`` of the networks and of the plugin's penalty
(:class:`~wae_bench.regularizer.Divergence`), inside the (captured) step.

Whole-step CUDA graphs remove the launch overhead; what is left of an a1 or
a2 step on an H200 is kernel work, ~40 % of it (a1) batch norm, casts and
element-wise ops that Inductor fuses (benchmarks/results/h200-2026-11-28),
and a small penalty's chain of tiny kernels (benchmarks/kernel_count.py).
``nn.Module.compile`` compiles in place, so parameter names, checkpoints and
the optimiser are unchanged; the first (warm-up) steps pay the compile time.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from wae_bench.progress import console

# Every compiled module of one class shares a code object (nn.Sequential.forward
# for the a1 nets, the key encoder, RAE-SN's decoder, WAE-GAN's discriminator),
# and Dynamo keeps at most ``recompile_limit`` (default 8) graphs per code
# object before it silently runs the rest eagerly: a bench of several cells in
# one process, or four nets of different sizes, reaches that.
RECOMPILE_LIMIT = 64


def compile_nets(ae: nn.Module, reg, mode: str) -> bool:
    """Compile the encoder, the decoder and the plugin's
    :meth:`~wae_bench.regularizer.Regularizer.compile_targets`; returns
    whether anything was compiled (``mode="none"``, or a plugin that is not
    :attr:`~wae_bench.regularizer.Regularizer.compilable`: nothing, said once,
    naming the plugin).  torch.compile cannot differentiate a compiled module
    twice: a plugin whose step does so through a module of its own (a
    gradient penalty on its critic) leaves that module out of
    ``compile_targets()`` and keeps the nets compiled; the error it meets
    otherwise is translated by :func:`wae_bench.plugin_fault.double_backward`."""
    if mode == "none":
        return False
    if not reg.compilable:
        console.print(f"[yellow]compile={mode} is not used with {reg.name}: it sets compilable = False (its step "
                      f"differentiates a net twice, which torch.compile cannot); eager kernels[/]")
        return False
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    for m in (ae.encoder, ae.decoder, *reg.compile_targets()):
        m.compile(mode=mode, dynamic=False)
    return True


@contextlib.contextmanager
def eager(*roots: nn.Module) -> Iterator[None]:
    """Inside the block, every compiled module under ``roots`` runs its eager
    forward; on exit the compiled one is back.  For the work after training
    (encoding the training set for the ex-post densities, the picture grids):
    forward-only, eval-mode, new batch shapes -- each a fresh compilation that
    would cost more than it saves."""
    saved = [(m, m._compiled_call_impl) for r in roots for m in r.modules()
             if getattr(m, "_compiled_call_impl", None) is not None]
    for m, _ in saved:
        m._compiled_call_impl = None
    try:
        yield
    finally:
        for m, fn in saved:
            m._compiled_call_impl = fn
