"""Ex-post density estimation of the latent distribution (Ghosh et al. 2020,
"From Variational to Deterministic Autoencoders": ex-post density estimation,
Table 1 columns "N" and "GMM"): after training, fit a single full-covariance Gaussian ("n") or
a 10-component full-covariance Gaussian mixture ("gmm") to the latents of the
training images (at most :data:`FIT_IMAGES` of them, a seeded random subset:
:func:`fit_indices`) with scikit-learn's ``GaussianMixture`` (EM, k-means
initialisation, seeded), and sample new latents from it.

The fitted density is kept as plain tensors (float64 weights, means and
Cholesky factors of the covariances) so it is saved in the run's final
checkpoint (``state["expost"][kind]``, written by :func:`wae_bench.run.train.train_run`
for every regularizer) and loaded with ``weights_only=True``, without pickled
code.  :func:`sample` draws from it; evaluation and pictures use it for the
"n" / "gmm" columns of any run.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from wae_bench import worded
from wae_bench.data.batcher import to_float
from wae_bench.data.subset import random_subset
from wae_bench.errors import WaeError

COMPONENTS = {"n": 1, "gmm": 10}
FIT_IMAGES = 10000   # training images whose latents a density is fitted on


def fit_indices(n: int, seed: int) -> Tensor:
    """Which of ``n`` training images the densities are fitted on: all, or
    :data:`FIT_IMAGES` drawn at random with the run's seed (never the first
    ones: a class-sorted folder would give a few classes)."""
    return random_subset(n, FIT_IMAGES, f"expost/{seed}")


def fit_record(n: int, seed: int) -> dict:
    """What a run records about its fit (``config.json``; the N / GMM protocol)."""
    return {"images": min(n, FIT_IMAGES), "of": n,
            "subset": "all" if n <= FIT_IMAGES else f"seeded random subset (wae_bench.data.subset, 'expost/{seed}')"}


@torch.no_grad()
def encode_all(ae, reg, images: Tensor, limit: int = 10000, batch: int = 500) -> Tensor:
    """Latents ``constrain(Enc(x))`` of the first ``limit`` images (uint8 in
    0..255, or float in [0, 1]; eval mode, on the CPU): what the densities
    are fitted to."""
    dev = next(ae.parameters()).device
    was = ae.training
    ae.eval()
    out = [reg.constrain(ae.encode(_unit(images[i:i + batch].to(dev)))).float().cpu()
           for i in range(0, min(limit, len(images)), batch)]
    ae.train(was)
    return torch.cat(out)


def _unit(x: Tensor) -> Tensor:
    return to_float(x) if x.dtype == torch.uint8 else x.float()


def fit(latents: Tensor, kind: str, seed: int = 0, reg_covar: float = 1e-6) -> dict[str, Tensor]:
    """Fit density ``kind`` ("n" or "gmm") to ``latents`` (N×d) by maximum
    likelihood (EM); returns ``{"weights": k, "means": k×d, "chol": k×d×d}``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    if kind not in COMPONENTS:
        raise WaeError(f"unknown ex-post density {kind!r}; choose from {', '.join(COMPONENTS)}")
    k = COMPONENTS[kind]
    if latents.dim() != 2:
        raise WaeError(f"ex-post fit needs an N×d matrix of latents, got shape {tuple(latents.shape)}")
    x = latents.detach().double().cpu()
    if not torch.isfinite(x).all():
        raise WaeError("the training latents hold NaN or inf values, so no ex-post density can be fitted; "
                       f"the run diverged: retrain it ({worded.lower_lr_or_lambda()})")
    if len(x) < k * 2:
        raise WaeError(f"{len(x)} latents are too few to fit a {k}-component density; use more training images")
    gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=reg_covar,
                         max_iter=200)
    # Single-threaded BLAS/OpenMP: EM's many small solves oversubscribe the cores next to torch's OpenMP
    # pool (10k×128 latents, 10 components on 2 cores: 17 s with 1 thread, 104 s with 2); it also
    # keeps the fit bitwise reproducible.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # EM not converged in max_iter: still usable
        gm.fit(x.numpy())
    return {"weights": torch.from_numpy(gm.weights_.astype(np.float64)),
            "means": torch.from_numpy(gm.means_.astype(np.float64)),
            "chol": torch.linalg.cholesky(torch.from_numpy(gm.covariances_.astype(np.float64)))}


def check(density: dict[str, Tensor], where: str = "ex-post density") -> None:
    """Raise a one-line :class:`WaeError` unless ``density`` is a well-formed fit."""
    try:
        w, mu, L = density["weights"], density["means"], density["chol"]
        k, d = mu.shape
        ok = w.shape == (k,) and L.shape == (k, d, d) and bool(torch.isfinite(mu).all()) \
            and bool((w >= 0).all()) and abs(float(w.sum()) - 1.0) < 1e-6
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise WaeError(f"{where} is malformed (expected weights k, means k×d, chol k×d×d); the checkpoint "
                       f"holding it is damaged: retrain the run")


def sample(density: dict[str, Tensor], n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` samples (float32, CPU) from a fitted density: a component drawn by
    weight, then ``μ_c + L_c ε`` with ``ε ~ N(0, I)`` (``generator`` on the CPU)."""
    w, mu, L = density["weights"], density["means"], density["chol"]
    comp = torch.multinomial(w.float(), n, replacement=True, generator=generator)
    eps = torch.randn(n, mu.shape[1], generator=generator, dtype=torch.float64)
    return (mu[comp] + torch.einsum("nij,nj->ni", L[comp], eps)).float()

