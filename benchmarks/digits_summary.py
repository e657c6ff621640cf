"""Per-cell diagnostics beside the FID of one or more bench results folders
(benchmarks/results/digits-d-lambda/README.md): the scores, the test
reconstruction error, the last logged training terms (rec, and for MoCA
moca/neg, moca/pos) and, for MoCA, the value moca/neg takes when the latents
are exactly uniform on the sphere and K → ∞: log E_u exp(qᵀu/τ) for u uniform
on S^{d-1}, which is log(Γ(ν+1) (2τ)^ν I_ν(1/τ)) with ν = d/2 − 1 (von
Mises-Fisher normaliser; ≈ 1/(2dτ²) for large d).

Checks that need the cells' checkpoints (``--checks`` computes them once and
writes ``checks.json`` into each cell; the table reads that file when
present):

- the reconstruction error of the *training* images with the encoder and
  decoder in eval mode (as ``rec test`` is measured): beside ``rec test`` it
  is the generalisation gap; beside the logged training ``rec`` (train-mode
  batch norm) it is the batch-norm-mode gap;
- the test reconstruction error with train-mode batch norm (batches of 64,
  as in training; running statistics left untouched);
- coverage of the sphere (prior = "sphere" cells): the median, over 500
  prior samples, of the cosine to the nearest of the 1,500 training latents,
  beside the median over training latents of the cosine to their nearest
  *other* training latent.  Equal: prior samples land as close to the data's
  codes as the codes are to each other; prior far below train: the prior's
  samples fall in holes between codes.

    python benchmarks/digits_summary.py [--checks] RESULTS_DIR [RESULTS_DIR ...]

prints one markdown table (cells with no results.json are left out).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.special import gammaln, logsumexp

from wae_bench.atomic import write_text
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import expand
from wae_bench.errors import run_script

COLUMNS = ("folder", "cell", "FID", "rec test", "rec train (eval BN)", "rec test (train BN)", "rec train (last log)",
           "moca/neg", "moca/neg if uniform", "moca/pos", "mean resultant length", "spectrum effective rank",
           "NN cos prior→train", "NN cos train→train")


def uniform_neg(d: int, tau: float) -> float:
    """log E_u exp(qᵀu/τ), u uniform on S^{d-1}: with κ = 1/τ, Γ(ν+1)(2/κ)^ν I_ν(κ)
    is the series Σ_k (κ²/4)^k / (k! (ν+1)_k), summed in log space (no
    under- or overflow at any d; its terms fall fast after k ≈ κ/2)."""
    nu, kappa = d / 2 - 1, 1 / tau
    k = np.arange(int(10 * kappa) + 100)
    return float(logsumexp(k * math.log(kappa ** 2 / 4) - gammaln(k + 1) - gammaln(nu + 1 + k) + gammaln(nu + 1)))


def last_log(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
    return json.loads(lines[-1]) if lines else {}


def checks(run_dir: Path, n_prior: int = 500) -> dict:
    """The checkpoint checks of the module docstring, as one dict."""
    import copy

    import torch
    import torch.nn.functional as F

    from wae_bench.data.batcher import to_float
    from wae_bench.data.spec import load_split
    from wae_bench.metrics.diagnostics import reconstruction_error
    from wae_bench.run.reload import load_model

    m = load_model(run_dir, device="cpu")
    cfg, cpu = m.plan.cfg, torch.device("cpu")
    x = {s: load_split(m.plan.data, cfg.data_root, s, cfg.image_size).images for s in ("train", "test")}
    out = {"rec_train_eval_bn": reconstruction_error(m.ae.eval(), m.reg, x["train"], 500, cpu)["rec_mse_test"]}
    train_bn = copy.deepcopy(m.ae).train()  # batch statistics of training-size batches; the model's own untouched
    out["rec_test_train_bn"] = reconstruction_error(train_bn, m.reg, x["test"], cfg.batch_size, cpu)["rec_mse_test"]
    if m.reg.prior == "sphere":
        with torch.no_grad():
            z = F.normalize(torch.cat([m.ae.encode(to_float(b)) for b in x["train"].split(500)]), dim=1)
            s = m.reg.sample_prior(n_prior, generator=torch.Generator().manual_seed(0))
            zz = z @ z.T
            zz.fill_diagonal_(-2.0)
        out |= {"prior_to_train": float((s @ z.T).max(1).values.median()),
                "train_to_train": float(zz.max(1).values.median()), "n_prior": n_prior, "n_train": len(z)}
    return out


def write_checks(folder: ResultsDir, cell_id: str) -> None:
    write_text(folder.cell_dir(cell_id) / "checks.json", json.dumps(checks(folder.cell_dir(cell_id)), indent=1) + "\n")


def row(folder: ResultsDir, cell_id: str) -> list[str] | None:
    res = folder.results(cell_id)
    if res is None:
        return None
    run, diag, log = res["run"], res.get("diagnostics", {}), last_log(folder.cell_dir(cell_id))
    scores = ", ".join(f"{what} {s['fid']:.1f}" for what, s in res["scores"].items() if "fid" in s)
    tau = run.get("reg", {}).get("tau")
    uniform = f"{uniform_neg(run['latent_dim'], tau):.2f}" if tau else ""
    chk_path = folder.cell_dir(cell_id) / "checks.json"
    chk = json.loads(chk_path.read_text()) if chk_path.is_file() else {}
    num = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    return [folder.path.name, cell_id, scores, num(diag.get("rec_mse_test")), num(chk.get("rec_train_eval_bn")),
            num(chk.get("rec_test_train_bn")), num(log.get("rec")), num(log.get("moca/neg")), uniform,
            num(log.get("moca/pos")), num(diag.get("mean_resultant_length")),
            f"{diag['spectrum_effective_rank']:.1f}" if "spectrum_effective_rank" in diag else "",
            num(chk.get("prior_to_train")), num(chk.get("train_to_train"))]


def main(paths: list[str], with_checks: bool = False) -> str:
    rows = []
    for p in paths:
        folder = ResultsDir(p)
        for c in expand(folder.spec()):
            if with_checks and folder.results(c.id) is not None:
                write_checks(folder, c.id)
            if (r := row(folder, c.id)) is not None:
                rows.append(r)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="a bench results folder (its --out)")
    ap.add_argument("--checks", action="store_true",
                    help="compute the checkpoint checks once and write checks.json into each scored cell")
    a = ap.parse_args(argv)
    print(main(a.results, a.checks))


if __name__ == "__main__":
    run_script(cli)
