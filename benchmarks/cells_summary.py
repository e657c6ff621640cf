"""One line per cell of a bench results folder: its scores (marked NOT FID
on stand-in features), reconstruction error, the last logged training terms
(reconstruction, MoCA's ``moca/neg``), the latent spectrum's effective rank
and the training rate, from the cells' ``results.json``, ``metrics.jsonl``
and ``failed.json`` (what the GPU session's summary shows per λ; the cell's
record itself is :func:`wae_bench.bench.export.cell_row`'s).  The cells are found in either layout
(:func:`wae_bench.bench.folder.cell_folders`: under ``cells/`` or directly).

    python benchmarks/cells_summary.py RESULTS_DIR [--json OUT]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from wae_bench import results
from wae_bench.atomic import write_text
from wae_bench.bench.export import cell_row
from wae_bench.bench.folder import cell_folders, json_object
from wae_bench.errors import WaeError, run_script


def last_metrics(cell: Path) -> dict:
    p = cell / "metrics.jsonl"
    lines = p.read_text().splitlines() if p.is_file() else []
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def summarise(cell: Path) -> dict:
    """The cell's record (:func:`wae_bench.bench.export.cell_row`: settings,
    scores, protocol, error) plus what the GPU summary adds: the training
    terms last logged, the training rate and the evaluation's diagnostics."""
    row = cell_row(cell)
    cfg = json_object(cell / "config.json") or {}
    out: dict = {"cell": cell.name, "regularizer": row["regularizer"], "arch": row["arch"], "reg": row["settings"],
                 "total_steps": cfg.get("total_steps")}
    m = last_metrics(cell)
    out.update(step=m.get("step"), train_rec=m.get("rec"), train_neg=m.get("moca/neg"),
               img_per_s=m.get("img_per_s"))
    if "scores" in row:
        res = json_object(cell / "results.json") or {}
        d, p = res.get("diagnostics") or {}, row["protocol"]
        out.update(scores={k: v.get("fid", v.get("kid_mean")) for k, v in row["scores"].items()},
                   features=p["features"], split=p["reference"].get("split"),
                   rec_error=d.get("rec_mse_test"), effective_rank=d.get("spectrum_effective_rank"),
                   eval_s=(res.get("protocol") or {}).get("seconds"))
    if "error" in row:
        out["failed"] = row["error"]
    return out


def standin(r: dict) -> str:
    """`` on standin features (NOT FID)`` where the scores' features are recorded and are a stand-in."""
    f = r.get("features")
    return f" on {f} features (NOT FID)" if f and not results.inception({"features": f}) else ""


def fmt(v) -> str:
    return "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def order(r: dict) -> tuple:
    """Cells by regularizer, arch, then λ as a number (10 before 100 before 1000, not as text), then name."""
    lam = (r.get("reg") or {}).get("lambda")
    return (r["regularizer"] or "", r["arch"] or "", lam if isinstance(lam, (int, float)) else float("inf"), r["cell"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    rows = sorted((summarise(p) for p in cell_folders(a.results)), key=order)
    if not rows:
        raise WaeError(f"no cells in {a.results!r} (neither under cells/ nor directly); pass a bench results "
                       f"folder (its --out)")
    for r in rows:
        lam = (r.get("reg") or {}).get("lambda")
        scores = ", ".join(f"{k} {fmt(v)}" for k, v in (r.get("scores") or {}).items()) or "not scored"
        print(f"{r['cell']}: λ {fmt(lam)}; step {fmt(r['step'])}/{fmt(r['total_steps'])}; {scores}"
              f"{' (' + r['split'] + ')' if r.get('split') else ''}{standin(r)}; rec error {fmt(r.get('rec_error'))}; "
              f"train rec {fmt(r['train_rec'])}, moca/neg {fmt(r['train_neg'])}; effective rank "
              f"{fmt(r.get('effective_rank'))}; {fmt(r['img_per_s'])} img/s"
              + (f"; FAILED: {r['failed']}" if r.get("failed") else ""))
    if a.json:
        write_text(a.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    run_script(main)
