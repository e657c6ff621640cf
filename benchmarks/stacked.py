"""Throughput of N MoCA cells of one architecture run as ONE batched model:
the alternative to N cells on N CUDA streams (``benchmarks/throughput.py``)
that issue 15 names for when streams fall short.

The N cells' parameters, batch-norm buffers, key encoders and queues are
stacked along a leading cell axis (``torch.func.stack_module_state``) and
the paper's MoCA step — :class:`speed.PlainMoCA`, Eq. (3) of the paper's
loss ``‖x − Dec(q)‖² + λ (log Σ_K exp(qᵀk⁻/τ) − log K − qᵀk⁺/τ)`` with the
EMA key encoder and the FIFO queue — is ``torch.func.vmap``-ed over that
axis: one (grouped) kernel per layer for all N cells instead of N small
ones, one Adam over the stacked tensors (Adam is per element, so it is N
independent Adams).  Each cell computes exactly what it would alone (within
float tolerance: grouped and single kernels differ;
``tests/test_benchmarks.py`` checks N stacked cells against N
``PlainMoCA`` cells stepped one by one).

A measurement, not a runner: it has no data loader, checkpoints or scoring,
and no channels-last (under ``vmap`` the cell axis folds into the
convolutions' channels).  Per N it reports what ``throughput.py`` reports
(aggregate images/s, wall ms per step per cell, speed-up over N = 1, memory
per cell), so the two JSONs compare row by row.

    python benchmarks/stacked.py --arch a1 --concurrency 1,2,4,8 --precision bf16 --step-mode graph \\
        --K 30000 --out benchmarks/results/<session>/stacked-a1.json
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import PlainMoCA, provenance  # noqa: E402
from throughput import device_of, measure, shared_options, sweep  # noqa: E402

from wae_bench.config import split_list  # noqa: E402
from wae_bench.nets import build_arch  # noqa: E402
from wae_bench.registry import ARCHITECTURES  # noqa: E402


def stacked(modules: list[torch.nn.Module], grad: bool) -> tuple[dict, dict]:
    """The modules' parameters and buffers stacked along a new leading cell
    axis: leaf tensors (requiring grad when ``grad``), copies of the originals."""
    params, buffers = stack_module_state(modules)
    return ({k: v.detach().requires_grad_(grad) for k, v in params.items()},
            {k: v.detach().clone() for k, v in buffers.items()})


class StackedMoCA:
    """N :class:`speed.PlainMoCA` cells of one architecture stepped as one
    batched model (their current states are copied; the originals are left
    as they are).  ``step(x)`` takes the N cells' batches stacked,
    ``(N, B, C, H, W)``, and returns the N losses.

    The step is graph-capturable (``capturable=True``): the EMA momentum
    ``m_t`` (cosine schedule from ``m0`` to 1, as PlainMoCA's) and the queue
    pointer live on the device."""

    def __init__(self, cells: list[PlainMoCA], precision: str = "fp32", capturable: bool = False):
        one = cells[0]
        self.K, self.tau, self.m0, self.lam, self.T = one.K, one.tau, one.m0, one.lam, one.T
        dev = one.queue.device
        self.enc, self.dec, self.enc_k = (copy.deepcopy(m).to("meta") for m in
                                          (one.ae.encoder, one.ae.decoder, one.enc_k))
        self.enc_p, self.enc_b = stacked([c.ae.encoder for c in cells], grad=True)
        self.dec_p, self.dec_b = stacked([c.ae.decoder for c in cells], grad=True)
        self.key_p, self.key_b = stacked([c.enc_k for c in cells], grad=False)
        self.queue = torch.stack([c.queue for c in cells]).clone()
        self.ptr = torch.tensor(one.ptr, device=dev)
        self.t = one.t
        self.m = torch.ones((), device=dev)
        self.autocast = torch.autocast(dev.type, torch.bfloat16, enabled=precision == "bf16")
        self.opt = torch.optim.Adam([*self.enc_p.values(), *self.dec_p.values()], lr=1e-3, capturable=capturable)

    def batch_norm_in_fp32(self) -> None:
        """Run every batch norm on fp32 inputs (the next layer's autocast casts
        back): the fall-back where ``vmap`` of a bf16 batch norm with running
        statistics is not supported (PyTorch's CPU kernels)."""
        for net in (self.enc, self.dec, self.enc_k):
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.register_forward_pre_hook(lambda _m, args: (args[0].float(), *args[1:]))

    def momentum(self) -> float:
        """``m_t = 1 − (1 − m0)(cos(π t / T) + 1) / 2`` (PlainMoCA's schedule)."""
        return 1 - (1 - self.m0) * (math.cos(math.pi * self.t / self.T) + 1) / 2

    def cell_loss(self, enc_p, enc_b, dec_p, dec_b, key_p, key_b, queue, x):
        """One cell's MoCA loss and keys (vmapped over the cell axis)."""
        q = F.normalize(functional_call(self.enc, (enc_p, enc_b), (x,)), dim=1)
        x_hat = functional_call(self.dec, (dec_p, dec_b), (q,))
        with torch.no_grad():
            k = F.normalize(functional_call(self.enc_k, (key_p, key_b), (x,)), dim=1)
        neg = torch.logsumexp(q @ queue.t() / self.tau, 1).mean() - math.log(self.K)
        pos = (q * k).sum(1).mean() / self.tau
        rec = (x_hat.float() - x).pow(2).flatten(1).sum(1).mean()
        return rec + self.lam * (neg.float() - pos.float()), k

    def device_step(self, x: torch.Tensor) -> torch.Tensor:
        """The step's device work (what a CUDA graph captures)."""
        with self.autocast:
            losses, k = vmap(self.cell_loss)(self.enc_p, self.enc_b, self.dec_p, self.dec_b,
                                             self.key_p, self.key_b, self.queue, x)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        with torch.no_grad():
            key, query = list(self.key_p.values()), list(self.enc_p.values())
            torch._foreach_mul_(key, self.m)
            torch._foreach_add_(key, torch._foreach_mul(query, 1 - self.m))
            idx = (self.ptr + torch.arange(k.shape[1], device=k.device)) % self.K
            self.queue[:, idx] = k.to(self.queue.dtype)
            self.ptr.add_(k.shape[1]).remainder_(self.K)
        return losses.detach()

    def step(self, x: torch.Tensor) -> torch.Tensor:
        self.m.fill_(self.momentum())
        self.t += 1
        return self.device_step(x)


class CapturedStep:
    """``StackedMoCA.device_step`` captured once in a CUDA graph on a static
    batch, replayed per step (warm-up steps on a side stream first, as
    PyTorch's whole-network capture recipe does)."""

    def __init__(self, model: StackedMoCA, x: torch.Tensor, warmup: int = 3):
        self.model, self.x = model, x.clone()
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model.step(self.x)
        torch.cuda.current_stream(x.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.losses = model.device_step(self.x)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        self.x.copy_(x, non_blocking=True)
        self.model.m.fill_(self.model.momentum())
        self.model.t += 1
        self.graph.replay()
        return self.losses


def plain_cells(n: int, a: argparse.Namespace, dev: torch.device) -> list[PlainMoCA]:
    """``n`` independently initialised plain MoCA cells (seeds 0 .. n − 1)."""
    out = []
    for i in range(n):
        torch.manual_seed(i)
        ae = build_arch(ARCHITECTURES.get(a.arch), a.image_size, 3, a.latent_dim).to(dev)
        out.append(PlainMoCA(ae, a.K, 0.05, 0.99, 1000.0, 10 ** 9))
    return out


def group(n: int, a: argparse.Namespace, dev: torch.device, notes: dict):
    """N cells as one stacked model, captured when ``a.step_mode == "graph"``,
    and their batches (random images in [0, 1]: the step time does not depend
    on the pixels).  ``notes["batch_norm"]``: the dtype the batch norms ran in."""
    x = torch.rand(n, a.batch_size, 3, a.image_size, a.image_size, generator=torch.Generator().manual_seed(n)).to(dev)
    model = StackedMoCA(plain_cells(n, a, dev), a.precision, capturable=a.step_mode == "graph")
    if a.precision == "bf16":
        try:
            model.step(x)
            notes["batch_norm"] = "bf16"
        except RuntimeError as e:   # the batch norms' vmap rule needs fp32 inputs here: say so in the result
            if "expected scalar type" not in str(e):
                raise
            model.batch_norm_in_fp32()
            notes["batch_norm"] = f"fp32 (vmap of a bf16 batch norm failed: {str(e).splitlines()[0][:120]})"
    return (CapturedStep(model, x) if a.step_mode == "graph" else model), x


def advance(g, k: int) -> None:
    step, x = g
    for _ in range(k):
        step.step(x)


def main(argv=None):
    ap = shared_options(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    a = ap.parse_args(argv)
    dev = device_of(a)
    if a.step_mode == "graph" and dev.type != "cuda":
        ap.error("--step-mode graph needs a CUDA device; use --step-mode eager on the CPU")
    base = {"arch": a.arch, "regularizer": "moca", "runner": "stacked (torch.func.vmap)", "precision": a.precision,
            "step_mode": a.step_mode, "channels_last": False, "compile": "none", "batch_size": a.batch_size,
            "image_size": a.image_size, "latent_dim": a.latent_dim, "K": a.K}
    result = {**provenance(dev), **base, "rows": []}
    print(f"moca {a.arch} {a.image_size}px batch {a.batch_size} on {dev}, N cells as one stacked model "
          f"({a.precision}, {a.step_mode}); {a.steps} steps")
    return sweep(split_list(a.concurrency), lambda n: measure(n, a, dev, lambda k: group(k, a, dev, result), advance),
                 base, result, a.out)


if __name__ == "__main__":
    main()
