"""Kernel counts, eager against compiled: a CPU proxy for what a plugin adds
to a captured GPU step.

Inside a whole-step CUDA graph there is no launch overhead left, but every
kernel still costs its work plus ~1-2 µs, so a penalty made of hundreds of
tiny kernels costs about its kernel count: on the H200, sinkhorn's extra time
was the same ~1.57 ms on a1 and a2 (benchmarks/results/h200-2026-11-28), and
rae-sn's grows with the number of decoder layers.  This script counts, on the
CPU, for one forward + backward:

* ``penalty`` rows: every plugin that holds a
  :class:`~wae_bench.regularizer.Divergence`, called with the arguments it
  gets in a real training step (batch 64, d = 128, the paper's), at its
  defaults, plus sinkhorn at its former default ε-scaling 0.9;
* ``decoder`` rows: the a1 decoder plain (ae) and spectrally normalised (rae-sn);

``eager_ops`` = the leaf aten ops that launch work (torch.profiler; views and
allocations excluded), ``compiled_kernels`` = the kernels Inductor generates
for the same module (``torch._inductor.metrics.generated_kernel_count``;
matrix products and convolutions stay library calls, not counted).  Inductor
fuses differently for the GPU (Triton) than for the CPU (C++), so these are
proxies; the GPU figure is benchmarks/speed.py --compile.

    python benchmarks/kernel_count.py --out benchmarks/results/kernel-counts-cpu.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from datetime import datetime, timezone

# The profiler's own C++ log lines (profiler_start/stop, "gpuGetDeviceCount
# failed" on a machine without CUDA) are noise on stderr: level 6 is above
# its ERROR and USDT levels.  Read when the profiler starts, so set first.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")
import torch  # noqa: E402
from torch import nn  # noqa: E402

from wae_bench.atomic import write_text
from wae_bench.config import TrainConfig, split_list
from wae_bench.errors import run_script
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import Divergence
from wae_bench.run.build import build_model, build_run, resolve, stand_in_data
from wae_bench.run.directory import source_revision

# Ops that launch no kernel of their own (views, metadata, allocation).
NO_WORK = {"aten::view", "aten::empty", "aten::as_strided", "aten::expand", "aten::reshape", "aten::detach",
           "aten::t", "aten::transpose", "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::_unsafe_view",
           "aten::empty_like", "aten::empty_strided", "aten::slice", "aten::select", "aten::alias",
           "aten::resolve_conj", "aten::resolve_neg", "aten::result_type", "aten::lift_fresh",
           "aten::_reshape_alias", "aten::unflatten", "aten::flatten", "aten::contiguous", "aten::clone"}


def _backward_of(out) -> None:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    sum(o.float().sum() for o in outs).backward()


def eager_ops(module: nn.Module, args: tuple) -> int:
    """Leaf aten ops that do work, in one forward + backward."""
    from torch.profiler import profile

    with profile() as prof:
        _backward_of(module(*args))
    return sum(1 for e in prof.events()
               if e.name.startswith("aten::") and not e.cpu_children and e.name not in NO_WORK)


def compiled_kernels(module: nn.Module, args: tuple) -> int:
    """Kernels Inductor generates for one forward + backward of ``module``."""
    from torch._inductor import metrics

    torch._dynamo.reset()
    metrics.reset()
    _backward_of(torch.compile(module, dynamic=False)(*args))
    return metrics.generated_kernel_count


def plan_of(name: str, arch: str, size: int, B: int, d: int, cfg: dict):
    """Plugin ``name`` (settings ``cfg``) on net ``arch`` at ``size``×``size``, resolved as a run is."""
    config = TrainConfig(regularizer=name, arch=arch, image_size=size, latent_dim=d, batch_size=B, reg=cfg)
    return resolve(config, data=stand_in_data(size, 3, arch))


def divergence_args(name: str, B: int, d: int, cfg: dict) -> tuple[nn.Module, tuple] | None:
    """Plugin ``name``'s Divergence (config ``cfg``) and the arguments it is
    called with in one real trainer step (a tiny 16×16 net, batch B, latent
    d); None if the plugin holds no Divergence."""
    run = build_run(plan_of(name, "tiny", 16, B, d, cfg), channels=3, total_steps=10, device=torch.device("cpu"))
    if not isinstance(getattr(run.reg, "divergence", None), Divergence):
        return None
    seen: list[tuple] = []
    run.reg.divergence.register_forward_hook(lambda m, a, out: seen.append(a))
    run.trainer.step(torch.rand(B, 3, 16, 16))
    args = tuple(a.detach().clone().requires_grad_(i == 0) for i, a in enumerate(seen[0]))
    return run.reg.divergence, args


def decoder_args(name: str, d: int) -> tuple[nn.Module, tuple]:
    """The a1 decoder at 32×32 as plugin ``name`` leaves it (rae-sn: spectrally normalised)."""
    ae, _ = build_model(plan_of(name, "a1", 32, 2, d, {}), 3, 10, torch.device("cpu"))
    return ae.decoder, (torch.randn(2, d, requires_grad=True),)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--latent-dim", type=int, default=128)
    ap.add_argument("--regs", default="all", help="comma list of regularizers (penalty rows; ae / rae-sn also "
                    "give the decoder rows), or 'all'")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    # Inductor's "No CUDA runtime is found, using CUDA_HOME=..." on a CPU-only machine: noise here
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    names = REGULARIZERS.names() if a.regs == "all" else split_list(a.regs)
    for name in names:   # an unknown name is one line before anything is compiled
        REGULARIZERS.get(name)
    rows = []
    for name in names:
        for cfg in [{}, *([{"scaling": 0.9}] if name == "sinkhorn" else [])]:
            found = divergence_args(name, a.batch_size, a.latent_dim, cfg)
            if found is None:
                break
            mod, args = found
            rows.append({"what": "penalty", "regularizer": name, "function": mod.fn.func.__name__,
                         "config": cfg, "eager_ops": eager_ops(mod, args),
                         "compiled_kernels": compiled_kernels(mod, args)})
    for name in [n for n in ("ae", "rae-sn") if n in names]:
        mod, args = decoder_args(name, a.latent_dim)
        rows.append({"what": "decoder a1", "regularizer": name, "function": "decoder", "config": {},
                     "eager_ops": eager_ops(mod, args), "compiled_kernels": compiled_kernels(mod, args)})
    print(f"{'what':<11} {'regularizer':<12} {'function':<10} {'config':<16} {'eager ops':>10} "
          f"{'compiled kernels':>17}")
    for r in rows:
        cfg = ",".join(f"{k}={v}" for k, v in r["config"].items()) or "default"
        print(f"{r['what']:<11} {r['regularizer']:<12} {r['function']:<10} {cfg:<16} {r['eager_ops']:>10} "
              f"{r['compiled_kernels']:>17}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "commit": source_revision() or "unknown", "torch": torch.__version__,   # (as speed.py's)
                "machine": platform.processor() or platform.machine(), "batch_size": a.batch_size,
                "latent_dim": a.latent_dim, "command": "python " + " ".join(sys.argv)}
        write_text(a.out, json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
