"""FID between two splits of a dataset through wae-bench's own evaluation
code path (loaders, torch-fidelity extractor, cached reference statistics),
as a check of the FID pipeline.

Reference value for the CIFAR-10 JPEG copy (a plain torch-fidelity call
on an H200; benchmarks/results/h200-2026-11-28/fid-reference.json): FID(train 50k, test 10k) = 3.1177.  The
second timing (``test_vs_cached``: 10k test images against the now cached
train statistics) is the "FID of 10,000 samples against cached statistics"
speed figure.

    python benchmarks/fid_reference.py --dataset cifar10 --data-root DATA \
        --variant cifar10-jpeg-q75 --fid-weights W.pth --out benchmarks/results/h200-DATE/fid-reference.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone

import torch

from wae_bench.data import load_split
from wae_bench.data.subset import random_subset
from wae_bench.evaluate import tf32_state
from wae_bench.metrics import fid as F
from wae_bench.metrics.features import extract, make_extractor
from wae_bench.metrics.reference import make_key, reference
from wae_bench.metrics.weights import resolve
from wae_bench.registry import DATASETS
from wae_bench.run.directory import source_revision


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--variant", help="label of the exact pixels, e.g. cifar10-jpeg-q75")
    ap.add_argument("--fid-weights")
    ap.add_argument("--features", default="inception", choices=["inception", "standin"])
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--limit", type=int, default=0,
                    help="use N images of each split, a seeded random subset (0: all)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    spec = DATASETS.get(a.dataset)
    t0 = time.perf_counter()
    train = load_split(spec, a.data_root, "train", spec.image_size)
    test = load_split(spec, a.data_root, "test", spec.image_size)
    if a.limit:   # a random subset: the folders are read class by class
        train.images = train.images[random_subset(len(train.images), a.limit, "fid-reference/train")]
        test.images = test.images[random_subset(len(test.images), a.limit, "fid-reference/test")]
    t_load = time.perf_counter() - t0
    variant = a.variant or train.variant
    w = resolve(a.fid_weights) if a.features == "inception" else None
    ext = make_extractor(a.features, dev, w.path if w else None)
    sha = w.sha256 if w else "none"
    timings = {"load_s": round(t_load, 2)}

    def feats(x):
        return extract(ext, x, a.batch_size)[ext.layer]

    t0 = time.perf_counter()
    ref_stats, _, cached = reference(make_key(train.images, variant, "train", a.features, sha),
                                     lambda: feats(train.images), False)
    timings["train_stats_s"] = round(time.perf_counter() - t0, 2)
    timings["train_stats_cached"] = cached
    results = {}
    for name in ("test_vs_train", "test_vs_cached"):      # the second reuses the cached train statistics
        t0 = time.perf_counter()
        if name == "test_vs_cached":
            ref_stats, _, cached = reference(make_key(train.images, variant, "train", a.features, sha),
                                             lambda: feats(train.images), False)
            assert cached
        fid = F.frechet_distance(F.statistics(feats(test.images)), ref_stats)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        results[name] = {"fid": fid, "seconds": round(time.perf_counter() - t0, 2)}
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
           "commit": source_revision() or "unknown",       # (as benchmarks/speed.py's provenance)
           "dataset": a.dataset, "variant": variant, "n_train": len(train.images), "n_test": len(test.images),
           "features": ext.label, "weights": w.protocol() if w else None, "device": str(dev)
           + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
           "tf32": tf32_state(dev), "timings": timings, "results": results}
    print(json.dumps(out, indent=2))
    if a.out:
        from wae_bench.atomic import write_json
        write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
