"""Ex-post densities (RAE's "N" and "GMM" columns): recovery of a known
mixture, the sampler's moments against the mixture's closed-form moments and
each component's full, anisotropic covariance, and the density saved with a
run and reloaded from its checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.test_missing_deps import needs_test_extra
from wae_bench import expost
from wae_bench.run import checkpoint
from wae_bench.errors import WaeError


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def known_mixture(n: int, seed: int = 0):
    """10 well-separated 2-D Gaussians with unequal weights and covariances."""
    rng = np.random.default_rng(seed)
    angles = np.arange(10) * 2 * np.pi / 10
    means = np.stack([8 * np.cos(angles), 8 * np.sin(angles)], 1)
    weights = np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum()
    scales = np.linspace(0.3, 0.7, 10)
    comp = rng.choice(10, size=n, p=weights)
    x = means[comp] + rng.standard_normal((n, 2)) * scales[comp, None]
    return torch.from_numpy(x), means, weights, scales


def test_gmm_recovers_the_means_and_weights_of_a_known_mixture():
    x, means, weights, scales = known_mixture(6000)
    dens = expost.fit(x, "gmm", seed=0)
    assert dens["means"].shape == (10, 2) and dens["chol"].shape == (10, 2, 2)
    dist = np.linalg.norm(dens["means"].numpy()[:, None] - means[None], axis=2)
    rows, cols = needs_test_extra("scipy.optimize").linear_sum_assignment(dist)
    assert dist[rows, cols].max() < 0.1            # standard errors are ~0.02-0.03; the means are 5 apart
    assert np.abs(dens["weights"].numpy()[rows] - weights[cols]).max() < 0.02
    cov = (dens["chol"] @ dens["chol"].transpose(1, 2)).numpy()[rows]
    assert np.allclose(cov[:, 0, 0], scales[cols] ** 2, rtol=0.15)


def test_single_gaussian_is_the_sample_mean_and_covariance():
    A = torch.tensor([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.3, 0.2, 0.4]], dtype=torch.float64)
    x = torch.randn(3000, 3, generator=g(1), dtype=torch.float64) @ A.T + torch.tensor([1.0, -2.0, 0.5])
    dens = expost.fit(x, "n")
    xn = x.numpy()
    assert np.allclose(dens["means"][0].numpy(), xn.mean(0), atol=1e-8)
    cov = (dens["chol"][0] @ dens["chol"][0].T).numpy()
    assert np.allclose(cov, np.cov(xn, rowvar=False, bias=True), atol=1e-5)     # MLE (+ reg_covar 1e-6)
    assert dens["weights"].tolist() == [1.0]


def test_samples_have_the_mixture_moments():
    """Law of total expectation / covariance of the fitted mixture, against the
    empirical moments of many samples (independent of how sample() draws)."""
    x, *_ = known_mixture(3000, seed=1)
    dens = expost.fit(x, "gmm", seed=0)
    w, mu = dens["weights"], dens["means"]
    cov = dens["chol"] @ dens["chol"].transpose(1, 2)
    mean = (w[:, None] * mu).sum(0)
    total = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0) - mean[:, None] * mean[None]
    s = expost.sample(dens, 200_000, generator=g(2)).double()
    assert s.dtype == torch.float64 and torch.allclose(s.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(s.T), total, rtol=0.02, atol=0.05)
    # component frequencies: nearest fitted mean of each sample
    nearest = torch.cdist(s[:20000], mu).argmin(1)
    freq = torch.bincount(nearest, minlength=10).double() / 20000
    assert torch.allclose(freq, w, atol=0.015)


def rotated_covariance(seed: int, variances: tuple[float, float, float]) -> torch.Tensor:
    """``Q diag(variances) Qᵀ`` with Q a random orthogonal matrix (QR of a Gaussian one)."""
    Q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g(seed), dtype=torch.float64))
    return Q @ torch.diag(torch.tensor(variances, dtype=torch.float64)) @ Q.T


def test_samples_follow_each_components_full_covariance():
    """``μ_c + L_c ε`` has covariance ``L_c L_cᵀ = Σ_c``: two far-apart 3-D
    components with correlated, anisotropic covariances (for which ``L_cᵀ L_c``,
    what ``L_cᵀ ε`` would give, is far from ``Σ_c``), the samples of each
    told apart by their nearest mean."""
    covs = torch.stack([rotated_covariance(7, (9.0, 1.0, 0.25)), rotated_covariance(8, (4.0, 0.5, 2.0))])
    L = torch.linalg.cholesky(covs)
    assert not torch.allclose(L[0].T @ L[0], covs[0], atol=0.5)           # the test can tell Lε from Lᵀε
    dens = {"weights": torch.tensor([0.3, 0.7], dtype=torch.float64),
            "means": torch.tensor([[0.0, 0.0, 0.0], [100.0, -50.0, 20.0]], dtype=torch.float64), "chol": L}
    expost.check(dens)
    s = expost.sample(dens, 200_000, generator=g(6)).double()
    comp = torch.cdist(s, dens["means"]).argmin(1)
    assert (comp == 1).double().mean() == pytest.approx(0.7, abs=0.005)
    for c in range(2):
        mine = s[comp == c]
        assert torch.allclose(mine.mean(0), dens["means"][c], atol=0.03), c
        assert torch.allclose(torch.cov(mine.T), covs[c], rtol=0.02, atol=0.03), c


def test_sampling_is_reproducible_and_float32():
    dens = expost.fit(torch.randn(500, 4, generator=g(3)), "gmm")
    a, b = expost.sample(dens, 50, g(4)), expost.sample(dens, 50, g(4))
    assert a.dtype == torch.float32 and a.shape == (50, 4) and torch.equal(a, b)


@pytest.mark.parametrize("latents, kind, needle", [
    (torch.randn(50, 3), "kde", "unknown ex-post density 'kde'"),
    (torch.randn(15, 3), "gmm", "too few to fit a 10-component"),
    (torch.full((50, 3), float("nan")), "n", "NaN or inf"),
    (torch.randn(50), "n", "N×d matrix"),
])
def test_fit_errors_are_one_line(latents, kind, needle):
    with pytest.raises(WaeError, match=needle) as e:
        expost.fit(latents, kind)
    assert "\n" not in str(e.value)


def test_check_refuses_a_malformed_density():
    dens = expost.fit(torch.randn(100, 3, generator=g(5)), "n")
    expost.check(dens)
    with pytest.raises(WaeError, match="malformed"):
        expost.check({**dens, "weights": torch.tensor([0.5])})
    with pytest.raises(WaeError, match="malformed"):
        expost.check({"means": dens["means"]})


def test_density_is_saved_with_the_run_and_reloaded(tmp_path):
    """A short run on the embedded digits: the final checkpoint holds "n" and
    "gmm" fitted on the training latents; loaded without pickle it is the
    same fit as one recomputed from the reloaded model, and it samples."""
    from wae_bench.config import TrainConfig, from_dict
    from wae_bench.expost import encode_all
    from wae_bench.run.build import build_model, load_data, resolve
    from wae_bench.run.train import train_run

    out = train_run({"regularizer": "rae-l2", "image_size": 8, "latent_dim": 4, "max_steps": 4,
                     "log_every": 2, "ckpt_every": 4}, tmp_path / "run", quiet=True)
    path = checkpoint.checkpoints(out)[-1]
    state = checkpoint.load(path)                                   # weights_only
    assert state["finished"] and set(state["expost"]) == {"n", "gmm"}
    for kind, k in (("n", 1), ("gmm", 10)):
        expost.check(state["expost"][kind])
        assert state["expost"][kind]["means"].shape == (k, 4)
    cfg = json.loads((out / "config.json").read_text())["config"]
    plan = resolve(from_dict(TrainConfig, cfg))
    train, _ = load_data(plan)
    ae, reg = build_model(plan, train.images.shape[1], 4, torch.device("cpu"))
    ae.load_state_dict(state["ae"])
    lat = encode_all(ae, reg, train.images)
    assert len(lat) == len(train.images)
    refit = expost.fit(lat, "gmm", seed=plan.cfg.seed)
    assert torch.allclose(refit["means"], state["expost"]["gmm"]["means"], atol=1e-5)
    s = expost.sample(state["expost"]["gmm"], 16, g(0))
    assert torch.isfinite(s).all()
