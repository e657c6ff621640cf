"""Throughput of N cells training at once in one process on one device, as
``bench --concurrent N`` runs them: each cell built as a run is built
(``wae_bench.run.build``), its step captured on its own CUDA stream
(``step_mode graph``), its batches drawn from its own images on the device,
and the cells' :class:`~wae_bench.step.loop.Stepper` advanced round robin,
one step each per round, each on its own stream (the scheduler's hot loop;
on the CPU the steps interleave).

Per N: the aggregate images/s of all cells, each cell's wall ms per step, the
speed-up over N = 1, and the device memory per cell.  Random images (the
step time does not depend on the pixels); ``benchmarks/rates.py`` turns the
rows into the rates ``bench --dry-run`` estimates from.

    python benchmarks/throughput.py --arch a1 --concurrency 1,2,4,8 --precision bf16 --step-mode graph \\
        --channels-last --K 30000 --out benchmarks/results/<session>/throughput-a1.json
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import make_run, provenance, sync  # noqa: E402

from wae_bench.atomic import write_json  # noqa: E402
from wae_bench.config import split_list  # noqa: E402
from wae_bench.run.build import batches  # noqa: E402
from wae_bench.step.loop import Stepper  # noqa: E402

GiB = 1 << 30


def reserved(dev: torch.device) -> int:
    return torch.cuda.memory_reserved(dev) if dev.type == "cuda" else 0


def cells(n: int, a: argparse.Namespace, dev: torch.device) -> list[tuple[Stepper, object]]:
    """``n`` cells, each with its own images and captured on its own stream: (stepper, stream)."""
    out = []
    for i in range(n):
        run = make_run(a.regularizer, a, dev, 10 ** 9, {"moca": {"K": a.K}}, precision=a.precision,
                       channels_last=a.channels_last, compile=a.compile, step_mode=a.step_mode)
        images = torch.randint(0, 256, (a.images, 3, a.image_size, a.image_size), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(i))
        batcher, batch = batches(run.plan, images, dev)
        stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            run.capture(batch(0))
            out.append((Stepper(run.trainer, batch, start=0, total=10 ** 9, steps_per_epoch=batcher.steps_per_epoch,
                                lr_halve_every=0, log_every=50, ckpt_every=0, on_log=lambda s, m: None,
                                on_ckpt=lambda s: None), stream))
    return out


def rounds(group: list[tuple[Stepper, object]], k: int) -> None:
    for _ in range(k):
        for stepper, stream in group:
            if stream is None:
                stepper.advance()
            else:
                with torch.cuda.stream(stream):
                    stepper.advance()


def measure(n: int, a: argparse.Namespace, dev: torch.device, build=None, advance=None) -> dict:
    """One N: build the group (``build(n)``, default: ``cells``), ``a.warmup``
    rounds, then ``a.steps`` timed rounds (``advance(group, k)``, default:
    ``rounds``); aggregate images/s, wall ms per step per cell, setup seconds
    and the device memory per cell."""
    build = build or (lambda k: cells(k, a, dev))
    advance = advance or rounds
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    before = reserved(dev)
    t0 = time.perf_counter()
    group = build(n)
    advance(group, a.warmup)
    sync(dev)
    setup = time.perf_counter() - t0
    mem = (reserved(dev) - before) / n
    t0 = time.perf_counter()
    advance(group, a.steps)
    sync(dev)
    wall = time.perf_counter() - t0
    del group
    return {"concurrency": n, "steps": a.steps, "seconds": wall, "images_per_s": n * a.steps * a.batch_size / wall,
            "ms_per_step_per_cell": wall / a.steps * 1e3, "setup_s": setup,
            **({"memory_per_cell_gib": mem / GiB} if dev.type == "cuda" else {})}


def shared_options(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of N cells at once that this script and stacked.py share."""
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--latent-dim", type=int, default=128)
    ap.add_argument("--K", type=int, default=30000)
    ap.add_argument("--concurrency", default="1,2,4,8", help="comma list of N")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per cell")
    ap.add_argument("--warmup", type=int, default=20, help="steps per cell before timing (after the capture)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--step-mode", choices=["eager", "graph"], default="graph")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", help="write the results as JSON here (re-written after each N)")
    return ap


def device_of(a: argparse.Namespace) -> torch.device:
    """The device ``--device`` names (auto: CUDA if there is one), with ``--threads`` set."""
    if a.threads:
        torch.set_num_threads(a.threads)
    return torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                        ("cpu" if a.device == "auto" else a.device))


def main(argv=None):
    ap = shared_options(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--regularizer", default="moca")
    ap.add_argument("--images", type=int, default=4096, help="random training images per cell")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", default="none", choices=["none", "default", "max-autotune-no-cudagraphs"])
    a = ap.parse_args(argv)
    dev = device_of(a)
    base = {"arch": a.arch, "regularizer": a.regularizer, "precision": a.precision, "step_mode": a.step_mode,
            "channels_last": a.channels_last, "compile": a.compile, "batch_size": a.batch_size,
            "image_size": a.image_size, "latent_dim": a.latent_dim, "K": a.K}
    result = {**provenance(dev), **base, "rows": []}
    print(f"{a.regularizer} {a.arch} {a.image_size}px batch {a.batch_size} on {dev} ({a.precision}, {a.step_mode}"
          f"{', channels_last' if a.channels_last else ''}, compile {a.compile}); {a.steps} steps per cell")
    return sweep(split_list(a.concurrency), lambda n: measure(n, a, dev), base, result, a.out)


def sweep(concurrency, measure_n, base: dict, result: dict, out: str | None) -> dict:
    """Measure every N (``measure_n(n)`` -> a row), print the table and keep
    ``result["rows"]`` with each row's speed-up over N = 1; an N that fails
    (out of memory) is recorded and the others go on.  ``result`` is written
    to ``out`` after each N.  Shared with ``benchmarks/stacked.py``."""
    print(f"{'N':>3} {'images/s':>10} {'× N=1':>7} {'ms/step/cell':>13} {'GiB/cell':>9} {'setup s':>8}")
    one = None
    for n in map(int, concurrency):
        try:   # N that does not fit (out of memory) must not cost the figures of the others
            row = {**base, **measure_n(n)}
        except Exception as e:  # noqa: BLE001 - reported in the table and the JSON
            row = {**base, "concurrency": n, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
            print(f"{n:>3} FAILED: {row['error']}")
            result["rows"].append(row)
            continue
        one = one or (row["images_per_s"] if n == 1 else None)
        if one:
            row["speedup_vs_1"] = row["images_per_s"] / one
        result["rows"].append(row)
        print(f"{n:>3} {row['images_per_s']:>10,.0f} {row.get('speedup_vs_1', float('nan')):>7.2f} "
              f"{row['ms_per_step_per_cell']:>13.3f} {row.get('memory_per_cell_gib', float('nan')):>9.2f} "
              f"{row['setup_s']:>8.1f}", flush=True)
        if out:
            write_json(out, result)
    if out:
        write_json(out, result)
    return result


if __name__ == "__main__":
    main()
