"""One line per cell of a bench results folder: its scores, reconstruction
error, the last logged training terms (reconstruction, MoCA's ``moca/neg``),
the latent spectrum's effective rank and the training rate, from the cells'
``results.json``, ``metrics.jsonl`` and ``failed.json`` (what the GPU
session's summary shows per λ).  The cells are found in either layout
(:func:`wae_bench.bench.folder.cell_folders`: under ``cells/`` or directly).

    python benchmarks/cells_summary.py RESULTS_DIR [--json OUT]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from wae_bench.atomic import write_text
from wae_bench.bench.folder import cell_folders
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
    out: dict = {"cell": cell.name}
    cfg = json.loads((cell / "config.json").read_text()) if (cell / "config.json").is_file() else {}
    c = cfg.get("config", {})
    out.update(regularizer=c.get("regularizer"), arch=c.get("arch"), reg=c.get("reg"),
               total_steps=cfg.get("total_steps"))
    m = last_metrics(cell)
    out.update(step=m.get("step"), train_rec=m.get("rec"), train_neg=m.get("moca/neg"),
               img_per_s=m.get("img_per_s"))
    res = json.loads((cell / "results.json").read_text()) if (cell / "results.json").is_file() else None
    if res:
        d = res.get("diagnostics", {})
        out.update(scores={k: v.get("fid", v.get("kid_mean")) for k, v in res.get("scores", {}).items()},
                   split=res.get("protocol", {}).get("reference", {}).get("split"),
                   rec_error=d.get("rec_mse_test"), effective_rank=d.get("spectrum_effective_rank"),
                   eval_s=res.get("protocol", {}).get("seconds"))
    fail = cell / "failed.json"
    if fail.is_file():
        out["failed"] = json.loads(fail.read_text()).get("error")
    return out


def fmt(v) -> str:
    return "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    rows = [summarise(p) for p in cell_folders(a.results)]
    if not rows:
        raise WaeError(f"no cells in {a.results!r} (neither under cells/ nor directly); pass a bench results "
                       f"folder (its --out)")
    for r in rows:
        lam = (r.get("reg") or {}).get("lambda")
        scores = ", ".join(f"{k} {fmt(v)}" for k, v in (r.get("scores") or {}).items()) or "not scored"
        print(f"{r['cell']}: λ {fmt(lam)}; step {fmt(r['step'])}/{fmt(r['total_steps'])}; {scores}"
              f"{' (' + r['split'] + ')' if r.get('split') else ''}; rec error {fmt(r.get('rec_error'))}; "
              f"train rec {fmt(r['train_rec'])}, moca/neg {fmt(r['train_neg'])}; effective rank "
              f"{fmt(r.get('effective_rank'))}; {fmt(r['img_per_s'])} img/s"
              + (f"; FAILED: {r['failed']}" if r.get("failed") else ""))
    if a.json:
        write_text(a.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    run_script(main)
