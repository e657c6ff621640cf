"""Step-time benchmark: the wae-bench trainer against plain-PyTorch reference
loops written in this file, run in the same process.

For every regularizer and net: the trainer's ``Trainer.step`` and, as
references, (1) a plain eager autoencoder step (reconstruction only) and (2)
for MoCA a plain eager MoCA step written from the paper without any
wae-bench code.  Reports ms/step and the ratios

* ``overhead`` = trainer-MoCA / plain-MoCA  (framework overhead; target <= 1.05 on CPU),
* ``vs_ae``    = trainer-REG / plain-AE     (a regularizer's cost; target <= 1.3).

Timing: warm-up, then ``--repeats`` interleaved rounds of ``--steps`` steps
each (so drift hits every variant alike); the median round is reported.

    python benchmarks/speed.py --arch tiny --image-size 16 --batch-size 64 \
        --regs all --out benchmarks/results/speed-cpu-tiny.json
"""
from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from wae_bench.atomic import write_json, write_text
from wae_bench.config import TrainConfig, split_list
from wae_bench.nets import build_arch
from wae_bench.registry import ARCHITECTURES, REGULARIZERS
from wae_bench.run.build import Run, build_run, resolve, stand_in_data
from wae_bench.run.directory import source_revision


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class PlainAE:
    """Reference 1: plain eager autoencoder step, no regularizer."""

    def __init__(self, ae):
        self.ae = ae
        self.opt = torch.optim.Adam(ae.parameters(), lr=1e-3)

    def step(self, x):
        x_hat = self.ae.decoder(self.ae.encoder(x))
        loss = (x_hat - x).pow(2).flatten(1).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class PlainMoCA:
    """Reference 2: MoCA written directly from the paper in plain PyTorch."""

    def __init__(self, ae, K, tau, m0, lam, T):
        self.ae, self.K, self.tau, self.m0, self.lam, self.T = ae, K, tau, m0, lam, T
        self.enc_k = copy.deepcopy(ae.encoder).requires_grad_(False)
        dev = next(ae.parameters()).device
        self.queue = F.normalize(torch.randn(K, ae.latent_dim, device=dev), dim=1)
        self.ptr, self.t = 0, 0
        self.opt = torch.optim.Adam(ae.parameters(), lr=1e-3)

    def step(self, x):
        q = F.normalize(self.ae.encoder(x), dim=1)
        x_hat = self.ae.decoder(q)
        with torch.no_grad():
            k = F.normalize(self.enc_k(x), dim=1)
        neg = torch.logsumexp(q @ self.queue.t() / self.tau, 1).mean() - math.log(self.K)
        pos = (q * k).sum(1).mean() / self.tau
        loss = (x_hat - x).pow(2).flatten(1).sum(1).mean() + self.lam * (neg - pos)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        m = 1 - (1 - self.m0) * (math.cos(math.pi * self.t / self.T) + 1) / 2
        with torch.no_grad():
            for pk, pq in zip(self.enc_k.parameters(), self.ae.encoder.parameters()):
                pk.mul_(m).add_(pq, alpha=1 - m)
            idx = (self.ptr + torch.arange(len(k), device=k.device)) % self.K
            self.queue[idx] = k
        self.ptr = (self.ptr + len(k)) % self.K
        self.t += 1
        return loss.detach()


def provenance(dev: torch.device) -> dict:
    """What a result JSON records of where and how it was measured; ``commit``:
    the code's, as a run's config.json records it (``-dirty`` with uncommitted
    changes under wae_bench/, regularizers/, pyproject.toml), ``unknown``
    outside a git checkout of wae-bench."""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
            "commit": source_revision() or "unknown",
            "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else platform.processor() or platform.machine(), "torch": str(torch.__version__),
            "threads": torch.get_num_threads()}


def make_run(reg_name: str, a: argparse.Namespace, dev: torch.device, T: int, reg_over: dict,
             **cfg) -> Run:
    """The trainer's run of ``reg_name``, built as `wae-bench run` builds one
    (``cfg``: precision, channels_last, compile, step_mode)."""
    config = TrainConfig(regularizer=reg_name, arch=a.arch, image_size=a.image_size, latent_dim=a.latent_dim,
                         batch_size=a.batch_size, lr=1e-3, seed=0, reg=reg_over.get(reg_name, {}), **cfg)
    plan = resolve(config, data=stand_in_data(a.image_size, 3, a.arch))
    return build_run(plan, channels=3, total_steps=T, device=dev)


def time_rounds(fns: dict, x, steps, repeats, warmup, dev) -> dict:
    """Median ms/step per variant over ``repeats`` rounds; each round runs the
    variants in a fresh random order so drift and cache effects hit all alike."""
    import random

    for fn in fns.values():
        for _ in range(warmup):
            fn(x)
    sync(dev)
    rounds = {k: [] for k in fns}
    order = random.Random(0)
    for _ in range(repeats):
        keys = list(fns)
        order.shuffle(keys)
        for k in keys:
            fn = fns[k]
            sync(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                fn(x)
            sync(dev)
            rounds[k].append((time.perf_counter() - t0) / steps * 1e3)
    return {k: statistics.median(v) for k, v in rounds.items()}


def profile(fn, x, dev, steps: int, path: str) -> None:
    """Where the time of ``steps`` steps goes: torch.profiler's per-kernel
    table (device time; a captured graph's kernels are listed too) and the
    share of the wall time the device was busy."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    sync(dev)
    with torch_profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            fn(x)
        sync(dev)
        wall = (time.perf_counter() - t0) / steps * 1e3
    ka = prof.key_averages()
    key = "self_device_time_total" if hasattr(ka[0], "self_device_time_total") else "self_cuda_time_total"
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0) for e in kernels) / 1e3 / steps
    table = ka.table(sort_by=key if dev.type == "cuda" else "self_cpu_time_total", row_limit=40, max_name_column_width=90)
    head = (f"{steps} steps profiled: {wall:.3f} ms/step wall (profiler on), device busy {busy:.3f} ms/step "
            f"({100 * busy / wall:.0f} %)\n")
    write_text(path, head + table)
    print(head.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--latent-dim", type=int, default=128)
    ap.add_argument("--K", type=int, default=4096)
    ap.add_argument("--regs", default="moca", help="comma list or 'all'")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="trainer's autocast")
    ap.add_argument("--step-mode", choices=["eager", "graph"], default="eager", help="trainer's step")
    ap.add_argument("--channels-last", action="store_true", help="trainer's memory format")
    ap.add_argument("--compile", default="none", choices=["none", "default", "max-autotune-no-cudagraphs"],
                    help="torch.compile the trainer's nets (the compile time is reported, not timed)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--profile", help="write a per-kernel table of the trainer's MoCA step (torch.profiler) here")
    ap.add_argument("--profile-regs", default="moca",
                    help="comma list: whose steps --profile tables (moca's at PATH, another's at PATH-NAME.txt)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if a.device == "auto" else a.device))
    regs = REGULARIZERS.names() if a.regs == "all" else split_list(a.regs)
    T = 10_000
    over = {"moca": {"K": a.K}}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch_size, 3, a.image_size, a.image_size, generator=g).to(dev)

    torch.manual_seed(0)
    plain_ae = PlainAE(build_arch(ARCHITECTURES.get(a.arch), a.image_size, 3, a.latent_dim).to(dev))
    torch.manual_seed(0)
    ae_m = build_arch(ARCHITECTURES.get(a.arch), a.image_size, 3, a.latent_dim).to(dev)
    plain_moca = PlainMoCA(ae_m, a.K, 0.05, 0.99, 1000.0, T)
    fns = {"plain-ae": plain_ae.step, "plain-moca": plain_moca.step}
    xt = x.to(memory_format=torch.channels_last) if a.channels_last else x
    failed, setup_s = {}, {}
    for r in regs:
        try:   # one regularizer that cannot be built or captured must not cost the others' figures
            t0 = time.perf_counter()
            run = make_run(r, a, dev, T, over, precision=a.precision, channels_last=a.channels_last,
                           compile=a.compile, step_mode=a.step_mode)
            run.capture(xt)
            step = run.trainer.step
            step(xt)
            sync(dev)
            setup_s[r] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - reported in the table and the JSON
            failed[r] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            print(f"{r}: FAILED ({failed[r]})", file=sys.stderr)
            continue
        fns[f"trainer-{r}"] = (lambda f: (lambda _x: f(xt)))(step)
    ms = time_rounds(fns, x, a.steps, a.repeats, a.warmup, dev)
    for r in (split_list(a.profile_regs) if a.profile else []):
        if f"trainer-{r}" not in fns:
            continue
        path = a.profile if r == "moca" else a.profile.replace(".txt", "") + f"-{r}.txt"
        profile(fns[f"trainer-{r}"], x, dev, a.steps, path)
        if a.step_mode == "graph":   # the same step uncaptured: its kernels named by the ops that launch them
            eager = make_run(r, a, dev, T, over, precision=a.precision, channels_last=a.channels_last).trainer
            for _ in range(a.warmup):
                eager.step(xt)
            profile(lambda _x: eager.step(xt), x, dev, a.steps, path.replace(".txt", "") + "-eager.txt")

    rows = []
    for r in regs:
        if r in failed:
            rows.append({"regularizer": r, "error": failed[r]})
            continue
        row = {"regularizer": r, "ms_per_step": ms[f"trainer-{r}"], "vs_ae": ms[f"trainer-{r}"] / ms["plain-ae"],
               "setup_s": setup_s[r]}
        if "trainer-ae" in ms:
            row["vs_trainer_ae"] = ms[f"trainer-{r}"] / ms["trainer-ae"]
        if r == "moca":
            row["overhead_vs_plain_moca"] = ms["trainer-moca"] / ms["plain-moca"]
        rows.append(row)
    result = {**provenance(dev), "arch": a.arch, "image_size": a.image_size, "batch_size": a.batch_size, "latent_dim": a.latent_dim,
              "K": a.K, "steps": a.steps, "repeats": a.repeats, "precision": a.precision,
              "step_mode": a.step_mode, "channels_last": a.channels_last, "compile": a.compile,
              "plain_ae_ms": ms["plain-ae"], "plain_moca_ms": ms["plain-moca"], "rows": rows}
    if a.compile != "none":   # did everything compile, in whole graphs? (a silent fall-back would show here)
        from torch._dynamo.utils import counters

        result["dynamo"] = {"frames_ok": counters["frames"]["ok"], "frames_total": counters["frames"]["total"],
                            "unique_graphs": counters["stats"]["unique_graphs"],
                            "graph_breaks": dict(counters["graph_break"])}
        print(f"dynamo: {result['dynamo']}")
    print(f"{a.arch} {a.image_size}x{a.image_size} batch {a.batch_size} on {dev} (trainer: {a.precision}, "
          f"{a.step_mode}{', channels_last' if a.channels_last else ''}"
          f"{', compile ' + a.compile if a.compile != 'none' else ''}): plain AE {ms['plain-ae']:.3f} ms, "
          f"plain MoCA {ms['plain-moca']:.3f} ms")
    print(f"{'regularizer':<12} {'ms/step':>9} {'vs plain AE':>12} {'vs trainer AE':>14} {'vs plain MoCA':>14}")
    for row in rows:
        if "error" in row:
            print(f"{row['regularizer']:<12} FAILED: {row['error']}")
            continue
        ov = f"{row['overhead_vs_plain_moca']:.3f}" if "overhead_vs_plain_moca" in row else ""
        tae = f"{row['vs_trainer_ae']:.3f}" if "vs_trainer_ae" in row else ""
        print(f"{row['regularizer']:<12} {row['ms_per_step']:9.3f} {row['vs_ae']:12.3f} {tae:>14} {ov:>14}")
    if a.out:
        write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
