"""Latent diagnostics.

- Spectrum (MoCA Sec. 5.6, Fig. 5): singular values of the N×d matrix of
  latents of (up to) 10,000 randomly drawn training images, uncentred as in
  the paper.  Normalised by √N, so that Σ s_i² / N is the mean squared latent
  norm (1 on the sphere) and a uniform latent on S^{d-1} gives s_i/√N ≈ 1/√d
  for every i; a flatter spectrum means a more isotropic latent.  Its
  effective rank is ``exp(−Σ p_i log p_i)`` with ``p_i = s_i² / Σ_j s_j²``:
  Roy & Vetterli's effective rank (EUSIPCO 2007) of the second-moment matrix
  ZᵀZ (eigenvalues s_i²), not of Z (their ``p_i = s_i / Σ_j s_j``); d for a
  flat spectrum, 1 for latents on one line (docs/evaluation.md).
- Mean resultant length ``R = ||(1/N) Σ z_i||`` of unit latents: 0 for a
  distribution symmetric on the sphere; for N uniform samples E[R²] = 1/N.
- Reconstruction error on the test set, as the training loss measures it
  (squared error summed over pixels, averaged over images; MoCA Fig. 3 stops
  at 50) and per pixel.

The spectrum's numbers (``latent_spectrum.json``) are written with the scores;
its plot (``latent_spectrum.png``, matplotlib) after them, and only where
matplotlib is installed (:func:`plot_unavailable`): a missing plot never
costs a score.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from wae_bench.atomic import atomic_write, write_json
from wae_bench.data.batcher import to_float
from wae_bench.losses import reconstruction_per_image


def spectrum(z: Tensor) -> dict:
    """Singular values ``s`` of ``z`` (N×d) and summaries of their flatness:
    ``effective_rank`` = ``exp(H(p))``, ``p_i = s_i² / Σ_j s_j²`` (the energy
    shares; Roy & Vetterli 2007 applied to ZᵀZ, see the module docstring), and
    ``min_over_max`` = ``s_d / s_1``."""
    z = z.double()
    s = torch.linalg.svdvals(z)
    p = s.pow(2) / s.pow(2).sum()
    return {"n": len(z), "d": z.shape[1], "centred": False,
            "singular_values": s.tolist(),
            "normalised": (s / math.sqrt(len(z))).tolist(),
            "relative": (s / s[0]).tolist(),
            "isotropic_reference": 1 / math.sqrt(z.shape[1]),
            "effective_rank": float(torch.exp(-(p * p.clamp_min(1e-300).log()).sum())),
            "min_over_max": float(s[-1] / s[0])}


def mean_resultant_length(z: Tensor) -> dict:
    """``R`` of unit-norm latents and its value expected under uniformity."""
    R = float(z.double().mean(0).norm())
    return {"mean_resultant_length": R, "mean_resultant_length_uniform": 1 / math.sqrt(len(z))}


@torch.no_grad()
def reconstruction_error(ae, reg, images: Tensor, batch_size: int, device: torch.device) -> dict:
    """Sum over pixels of (x − Dec(constrain(Enc(x))))², averaged over images
    (model output unclamped, as in training: :func:`~wae_bench.losses.reconstruction_per_image`,
    the training loss's per-image term), and that divided by the pixel count."""
    total, n = 0.0, len(images)
    for i in range(0, n, batch_size):
        x = to_float(images[i:i + batch_size].to(device))
        x_hat = ae.decode(reg.constrain(ae.encode(x)))
        total += float(reconstruction_per_image(x_hat, x).double().sum())
    per_image = total / n
    return {"rec_mse_test": per_image, "rec_mse_test_per_pixel": per_image / images[0].numel(), "rec_n": n}


def plot_unavailable() -> str | None:
    """Why :func:`plot_spectrum` cannot draw here (matplotlib is not
    installed: the note a run prints instead), else None."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "matplotlib":
            raise
        return ("latent_spectrum.png not drawn: matplotlib is not installed (pip install matplotlib; "
                "the spectrum's numbers are in latent_spectrum.json)")
    return None


def plot_spectrum(spec: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(range(1, len(spec["normalised"]) + 1), spec["normalised"], lw=1.5, label="latents")
    ax.axhline(spec["isotropic_reference"], color="gray", ls="--", lw=1, label="isotropic (1/√d)")
    ax.set_yscale("log")
    ax.set_xlabel("index")
    ax.set_ylabel("singular value / √N")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def write_spectrum(spec: dict, run_dir: Path) -> Path:
    """``RUN_DIR/latent_spectrum.json``: the numbers, without the plot."""
    return write_json(run_dir / "latent_spectrum.json", spec)
