"""Per-cell diagnostics beside the FID of one or more bench results folders
(benchmarks/results/digits-d-lambda/README.md): the scores, the test
reconstruction error, the last logged training terms (rec, and for MoCA
moca/neg, moca/pos) and, for MoCA, the value moca/neg takes when the latents
are exactly uniform on the sphere and K → ∞: log E_u exp(qᵀu/τ) for u uniform
on S^{d-1}, which is log(Γ(ν+1) (2τ)^ν I_ν(1/τ)) with ν = d/2 − 1 (von
Mises-Fisher normaliser; ≈ 1/(2dτ²) for large d).

Coverage of the sphere (prior = "sphere" cells): the median, over 500 prior
samples, of the cosine to the nearest of the 1,500 training latents, beside
the median over training latents of the cosine to their nearest *other*
training latent.  Equal: prior samples land as close to the data's codes as
the codes are to each other (the latents are as uniform as 1,500 points can
be); prior far below train: the prior's samples fall in holes between codes.
It needs the cells' checkpoints, so ``--coverage`` computes it once and writes
``coverage.json`` into each cell; the table reads that file when present.

    python benchmarks/digits_summary.py [--coverage] RESULTS_DIR [RESULTS_DIR ...]

prints one markdown table (cells with no results.json are left out).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from scipy.special import gammaln, ive

from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import expand

COLUMNS = ("cell", "FID", "rec test", "rec train (last log)", "moca/neg", "moca/neg if uniform", "moca/pos",
           "mean resultant length", "NN cos prior→train", "NN cos train→train")


def uniform_neg(d: int, tau: float) -> float:
    """log E_u exp(qᵀu/τ), u uniform on S^{d-1} (I_ν = ive · e^κ, κ = 1/τ)."""
    nu, kappa = d / 2 - 1, 1 / tau
    return float(gammaln(nu + 1) + nu * math.log(2 / kappa) + math.log(ive(nu, kappa)) + kappa)


def last_log(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
    return json.loads(lines[-1]) if lines else {}


def coverage(run_dir: Path, n_prior: int = 500) -> dict | None:
    """Nearest-neighbour cosines of prior samples and of training latents
    (eval-mode encoder, as the evaluation uses it); None for a non-sphere prior."""
    import torch
    import torch.nn.functional as F

    from wae_bench.data.spec import load_split
    from wae_bench.model_io import load_model

    m = load_model(run_dir, device="cpu")
    if m.reg.prior != "sphere":
        return None
    cfg = m.plan.cfg
    x = load_split(m.plan.data, cfg.data_root, "train", cfg.image_size).images.float() / 255
    with torch.no_grad():
        z = F.normalize(torch.cat([m.ae.encode(b) for b in x.split(500)]), dim=1)
        s = m.reg.sample_prior(n_prior, generator=torch.Generator().manual_seed(0))
        zz = z @ z.T
        zz.fill_diagonal_(-2.0)
        return {"prior_to_train": float((s @ z.T).max(1).values.median()),
                "train_to_train": float(zz.max(1).values.median()), "n_prior": n_prior, "n_train": len(z)}


def write_coverage(folder: ResultsDir, cell_id: str) -> None:
    cov = coverage(folder.cell_dir(cell_id))
    if cov is not None:
        (folder.cell_dir(cell_id) / "coverage.json").write_text(json.dumps(cov, indent=1) + "\n")


def row(folder: ResultsDir, cell_id: str) -> list[str] | None:
    res = folder.results(cell_id)
    if res is None:
        return None
    run, diag, log = res["run"], res.get("diagnostics", {}), last_log(folder.cell_dir(cell_id))
    scores = ", ".join(f"{what} {s['fid']:.1f}" for what, s in res["scores"].items() if "fid" in s)
    tau = run.get("reg", {}).get("tau")
    uniform = f"{uniform_neg(run['latent_dim'], tau):.2f}" if tau else ""
    cov_path = folder.cell_dir(cell_id) / "coverage.json"
    cov = json.loads(cov_path.read_text()) if cov_path.is_file() else {}
    num = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    return [cell_id, scores, num(diag.get("rec_mse_test")), num(log.get("rec")), num(log.get("moca/neg")), uniform,
            num(log.get("moca/pos")), num(diag.get("mean_resultant_length")), num(cov.get("prior_to_train")),
            num(cov.get("train_to_train"))]


def main(paths: list[str], with_coverage: bool = False) -> str:
    rows = []
    for p in paths:
        folder = ResultsDir(p)
        for c in expand(folder.spec()):
            if with_coverage and folder.results(c.id) is not None:
                write_coverage(folder, c.id)
            if (r := row(folder, c.id)) is not None:
                rows.append(r)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


if __name__ == "__main__":
    args = sys.argv[1:]
    flag = "--coverage" in args
    paths = [a for a in args if a != "--coverage"]
    if not paths:
        sys.exit("usage: python benchmarks/digits_summary.py [--coverage] RESULTS_DIR [RESULTS_DIR ...]")
    print(main(paths, flag))
