"""Ex-post density estimation of the latent distribution (Ghosh et al. 2020,
RAE Sec. 4 / Table 1 columns "N" and "GMM"): after training, fit a single
full-covariance Gaussian or a 10-component full-covariance GMM to the
training latents with scikit-learn's ``GaussianMixture``, and sample from it.

The fitted density is kept as plain tensors (weights, means, Cholesky factors
of the covariances) so it is saved in the checkpoint and loaded without
pickled code.  Usable with any regularizer.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from wae_bench.errors import WaeError

COMPONENTS = {"n": 1, "gmm": 10}


def fit(latents: Tensor, kind: str, seed: int = 0, reg_covar: float = 1e-6) -> dict[str, Tensor]:
    """Fit density ``kind`` ("n" or "gmm") to ``latents`` (N×d)."""
    from sklearn.mixture import GaussianMixture

    if kind not in COMPONENTS:
        raise WaeError(f"unknown ex-post density {kind!r}; choose from {', '.join(COMPONENTS)}")
    k = COMPONENTS[kind]
    x = latents.detach().double().cpu().numpy()
    if len(x) < k * 2:
        raise WaeError(f"{len(x)} latents are too few to fit a {k}-component density; use more training images")
    gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=reg_covar,
                         max_iter=200).fit(x)
    return {"weights": torch.from_numpy(gm.weights_.astype(np.float64)),
            "means": torch.from_numpy(gm.means_),
            "chol": torch.linalg.cholesky(torch.from_numpy(gm.covariances_))}


def sample(density: dict[str, Tensor], n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` samples (float32, CPU) from a fitted density."""
    w, mu, L = density["weights"], density["means"], density["chol"]
    comp = torch.multinomial(w.float(), n, replacement=True, generator=generator)
    eps = torch.randn(n, mu.shape[1], generator=generator, dtype=torch.float64)
    return (mu[comp] + torch.einsum("nij,nj->ni", L[comp], eps)).float()
