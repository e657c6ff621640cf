"""Collect the measured rates that ``wae-bench bench --dry-run`` estimates a
grid's time from into ``benchmarks/results/rates.json``, each row citing the
file it was read from (nothing is typed in by hand):

* step times: every ``benchmarks/speed.py`` JSON under ``benchmarks/results/``
  (one cell alone: concurrency 1) and every ``benchmarks/throughput.py`` JSON
  (N cells at once: each cell's wall time per step at concurrency N);
* evaluation: every ``benchmarks/fid_reference.py`` JSON: Inception features
  and the FID of the test split against cached statistics (images/s), and the
  reference statistics of the training split (images/s); and every scored
  cell's ``results.json`` (Inception features, reference cached): its whole
  evaluation's generated images per second.

    python benchmarks/rates.py            # rewrites benchmarks/results/rates.json
    python benchmarks/rates.py --check    # exit 1 if it is not what the measurements give (writes nothing)

A ``--results`` that is not a folder, or one holding none of those files, is
refused in one line and nothing is written (the dry run reads the rates file);
the file is replaced atomically (:mod:`wae_bench.atomic`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))

from wae_bench.atomic import write_text  # noqa: E402
from wae_bench.bench.estimate import FORMAT, KEY  # noqa: E402
from wae_bench.errors import WaeError, run_script  # noqa: E402


def device_kind(doc: dict) -> str:
    """``NVIDIA H200`` for a GPU, ``cpu`` for a CPU (the rates' device names)."""
    dev = str(doc.get("device", ""))
    if dev.startswith("cpu"):
        return "cpu"
    m = re.search(r"\((.+)\)", dev)
    return doc.get("device_name") or (m.group(1) if m else dev)


def speed_rows(doc: dict, source: str) -> list[dict]:
    """A speed.py result: each regularizer's trainer step alone."""
    base = {"device": device_kind(doc), "arch": doc["arch"], "precision": doc["precision"],
            "step_mode": doc["step_mode"], "channels_last": bool(doc["channels_last"]),
            "compile": doc.get("compile", "none"), "batch_size": doc["batch_size"], "image_size": doc["image_size"],
            "latent_dim": doc["latent_dim"], "concurrency": 1}
    return [{**base, "regularizer": r["regularizer"], "ms_per_step": round(r["ms_per_step"], 4),
             "K": doc.get("K") if r["regularizer"] == "moca" else None, "threads": doc.get("threads"),
             "measured": doc["date"], "source": source}
            for r in doc["rows"] if "ms_per_step" in r]


def concurrent_rows(doc: dict, source: str) -> list[dict]:
    """A throughput.py result: per row, N cells at once and each cell's wall ms per step."""
    out = []
    for r in doc["rows"]:
        if "ms_per_step_per_cell" not in r:
            continue
        out.append({"device": device_kind(doc), "arch": r["arch"], "regularizer": r["regularizer"],
                    "precision": r["precision"], "step_mode": r["step_mode"], "channels_last": r["channels_last"],
                    "compile": r["compile"], "batch_size": r["batch_size"], "image_size": r["image_size"],
                    "latent_dim": r["latent_dim"], "concurrency": r["concurrency"],
                    "ms_per_step": round(r["ms_per_step_per_cell"], 4), "K": r.get("K"),
                    "threads": doc.get("threads"), "measured": doc["date"], "source": source})
    return out


def fid_rows(doc: dict, source: str) -> list[dict]:
    res, t = doc["results"], doc["timings"]
    out = [{"device": device_kind(doc), "what": "test_vs_cached", "images_per_s":
            round(doc["n_test"] / res["test_vs_cached"]["seconds"], 1),
            "note": f"Inception features and FID of the {doc['n_test']} test images against cached statistics",
            "measured": doc["date"], "source": source}]
    if not t.get("train_stats_cached") and t.get("train_stats_s"):
        out.append({"device": device_kind(doc), "what": "reference_statistics", "images_per_s":
                    round(doc["n_train"] / t["train_stats_s"], 1),
                    "note": f"Inception statistics of the {doc['n_train']} training images (computed once, then cached)",
                    "measured": doc["date"], "source": source})
    return out


def evaluation_row(doc: dict, source: str) -> dict | None:
    """A scored cell's results.json: its whole evaluation (generation, features, FIDs, diagnostics, pictures)."""
    p = doc.get("protocol") or {}
    generated = sum(int(c.get("n", 0)) for c in (p.get("generated") or {}).values())
    ref = p.get("reference") or {}
    computed = 0 if ref.get("cached", True) else int(ref.get("n", 0))   # reference statistics computed here too
    if not generated or not p.get("seconds") or "standin" in str(p.get("features", "")):
        return None
    return {"device": device_kind(p), "what": "cell_evaluation",
            "images_per_s": round((generated + computed) / p["seconds"], 1),
            "note": f"a whole cell evaluation in {p['seconds']} s: {generated} generated images "
                    f"({', '.join(p['generated'])})" + (f" and the statistics of {computed} reference images"
                                                        if computed else " against cached reference statistics")
                    + ", through the Inception network, with the diagnostics and pictures",
            "measured": p.get("time", ""), "source": source}


def collect(root: Path) -> dict:
    steps, fid = [], []
    for p in sorted(root.rglob("*.json")):
        if p.name == "rates.json":
            continue
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        source = str(p.relative_to(root))
        cmd = str(doc.get("command", ""))
        if "speed.py" in cmd and "rows" in doc:
            steps += speed_rows(doc, source)
        elif "throughput.py" in cmd and "rows" in doc:
            steps += concurrent_rows(doc, source)
        elif "fid_reference.py" in cmd and "results" in doc:
            fid += fid_rows(doc, source)
        elif p.name == "results.json" and (row := evaluation_row(doc, source)):
            fid.append(row)
    return {"format": FORMAT, "written_by": "python benchmarks/rates.py", "key": list(KEY),
            "note": "step rows: a trainer step's wall time of one cell when `concurrency` cells train at once "
                    "(benchmarks/speed.py: alone; benchmarks/throughput.py: N at once); matched on every field "
                    "of `key`; K: MoCA's queue size in the measurement. fid rows: images per second.",
            "steps": steps, "fid": fid}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS), help="folder searched for measurement JSONs")
    ap.add_argument("--out", default=str(RESULTS / "rates.json"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if --out is not what the measurements give; write nothing")
    a = ap.parse_args(argv)
    root = Path(a.results)
    if not root.is_dir():
        raise WaeError(f"{a.results!r} is not a folder, so {a.out!r} was not written; pass --results of a results "
                       f"folder (default {RESULTS})")
    doc = collect(root)
    if not doc["steps"] and not doc["fid"]:
        raise WaeError(f"no speed.py, throughput.py or fid_reference.py JSON and no scored results.json under "
                       f"{a.results!r}, so {a.out!r} was not written; pass --results of a results folder")
    text = json.dumps(doc, indent=1) + "\n"
    if a.check:
        out = Path(a.out)
        if not out.is_file() or out.read_text() != text:
            given = [f"--{k} {v}" for k, v in (("results", a.results), ("out", a.out)) if v != ap.get_default(k)]
            print(f"{a.out} is not current; run python benchmarks/rates.py{''.join(' ' + g for g in given)}",
                  file=sys.stderr)
            return 1
        return 0
    write_text(a.out, text)
    print(f"{len(doc['steps'])} step rates, {len(doc['fid'])} evaluation rates -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
