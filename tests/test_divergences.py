"""wae_bench.losses against independent references: the reconstruction
term against a plain loop (and the value a training step logs), MMD against a
brute-force double loop, SW₂² against POT, the Sinkhorn divergence against
POT's Sinkhorn solver, POT's exact OT and the closed form of two Gaussians'
W₂, and RAE-GP's decoder gradient against torch.autograd.functional.jacobian."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.test_missing_deps import needs_test_extra
from wae_bench.losses import (WAE_SCALES, decoder_gradient, mmd, reconstruction, reconstruction_per_image,
                              sinkhorn, sliced_w2, sq_dists, unit_directions, wae_scales)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- reconstruction (MoCA Eq. 5, first term) ---------------------------------------

def reconstruction_loop(x_hat, x) -> float:
    """``(1/B) Σ_i Σ_{c,h,w} (x̂ − x)²`` as plain loops over Python floats."""
    B, C, H, W = x.shape
    per_image = [sum((float(x_hat[i, c, h, w]) - float(x[i, c, h, w])) ** 2
                     for c in range(C) for h in range(H) for w in range(W)) for i in range(B)]
    return sum(per_image) / B


def test_reconstruction_sums_over_pixels_and_averages_over_the_batch():
    x = torch.rand(2, 3, 4, 4, generator=g(0))
    x_hat = torch.rand(2, 3, 4, 4, generator=g(1)) * 1.4 - 0.2
    assert float(reconstruction(x_hat, x)) == pytest.approx(reconstruction_loop(x_hat, x), rel=1e-6)
    per_image = reconstruction_per_image(x_hat, x)
    assert per_image.shape == (2,)
    for i in range(2):
        assert float(per_image[i]) == pytest.approx(reconstruction_loop(x_hat[i:i + 1], x[i:i + 1]), rel=1e-6)


def test_a_training_step_logs_the_reconstruction_term():
    """The ``rec`` the meter holds after one :meth:`Trainer.step` is the plain
    loop's value on that step's batch and decoder output (read from the model's
    forward pass), so the λ's units are those of the sum over pixels."""
    from tests.helpers import batch, make_trainer

    tr = make_trainer("moca", B=4, size=4, d=3)
    x = batch(B=4, size=4, seed=2)
    seen = []
    hook = tr.model.register_forward_hook(lambda mod, args, out: seen.append(out[1].detach().clone()))
    tr.step(x)
    hook.remove()
    (x_hat,) = seen
    means, _ = tr.meter.read()
    assert x_hat.shape == x.shape
    assert means["rec"] == pytest.approx(reconstruction_loop(x_hat, x), rel=1e-5)


# -- MMD ------------------------------------------------------------------------

def mmd_brute(z, p, Cs, kernel):
    """WAE Algorithm 2's estimator written as three plain double loops."""
    def k(a, b, C):
        r = sum((float(ai) - float(bi)) ** 2 for ai, bi in zip(a, b))
        return C / (C + r) if kernel == "imq" else math.exp(-r / C)
    n, m = len(z), len(p)
    total = 0.0
    for C in Cs:
        zz = sum(k(z[i], z[j], C) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        pp = sum(k(p[i], p[j], C) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        zp = sum(k(z[i], p[j], C) for i in range(n) for j in range(m)) / (n * m)
        total += zz + pp - 2 * zp
    return total


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("n, m", [(7, 7), (6, 9)])
def test_mmd_matches_brute_force_double_loop(kernel, n, m):
    d = 3
    z = torch.randn(n, d, generator=g(0), dtype=torch.float64) * 1.3 + 0.4
    p = torch.randn(m, d, generator=g(1), dtype=torch.float64)
    Cs = wae_scales(d, sigma_z=1.2)
    got = float(mmd(z, p, Cs, kernel))
    want = mmd_brute(z.tolist(), p.tolist(), Cs, kernel)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_wae_kernel_constants_are_2_d_sigma2_times_scales():
    assert wae_scales(64, math.sqrt(2.0)) == pytest.approx([2 * 64 * 2 * s for s in WAE_SCALES])


def test_mmd_is_about_zero_for_one_distribution_and_positive_for_shifted():
    d, n = 16, 64
    Cs = wae_scales(d, 1.0)
    same = torch.stack([mmd(torch.randn(n, d, generator=g(2 * i)), torch.randn(n, d, generator=g(2 * i + 1)), Cs)
                        for i in range(40)])
    # unbiased: the mean over draws is 0 within its standard error
    assert abs(float(same.mean())) < 3 * float(same.std()) / math.sqrt(len(same)) + 1e-4
    shifted = mmd(torch.randn(n, d, generator=g(100)) + 0.5, torch.randn(n, d, generator=g(101)), Cs)
    assert float(shifted) > 10 * float(same.std())
    # identical samples: per kernel the estimate is (2/n)(mean off-diagonal k − 1), in [−2/n, 0]: ≈ 0
    x = torch.randn(n, d, generator=g(7))
    assert -2 * len(Cs) / n <= float(mmd(x, x, Cs)) <= 0.0 < float(shifted)


def test_sq_dists_is_differentiable_at_zero():
    x = torch.randn(5, 3, generator=g(3), requires_grad=True)
    sq_dists(x, x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(sq_dists(x, x).detach(), torch.cdist(x, x).detach() ** 2, atol=1e-5)


# -- sliced W2 ----------------------------------------------------------------------

@pytest.mark.parametrize("n, d, L", [(20, 5, 7), (64, 16, 50)])
def test_sliced_w2_matches_pot(n, d, L):
    z = torch.randn(n, d, generator=g(4), dtype=torch.float64) * 0.7 + 0.3
    p = torch.randn(n, d, generator=g(5), dtype=torch.float64)
    theta = unit_directions(L, d, generator=g(6)).double()
    assert torch.allclose(theta.norm(dim=1), torch.ones(L, dtype=torch.float64))
    got = float(sliced_w2(z, p, theta))
    sw = needs_test_extra("ot").sliced_wasserstein_distance(z.numpy(), p.numpy(), projections=theta.numpy().T, p=2)
    assert got == pytest.approx(float(sw) ** 2, rel=1e-5)
    assert float(sliced_w2(z, z, theta)) == 0.0


def test_sliced_w2_refuses_unequal_sizes():
    with pytest.raises(ValueError, match="equal shape"):
        sliced_w2(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(1, 2))


# -- Sinkhorn -------------------------------------------------------------------------

def entropic_ot(x: np.ndarray, y: np.ndarray, eps: float, p: int) -> float:
    """OT_ε(α, β) = min_π <π, C> + ε KL(π | α⊗β), C = |x−y|^p / p, uniform weights,
    solved by POT's log-domain Sinkhorn to convergence (an independent solver)."""
    ot = needs_test_extra("ot")
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    C = ot.dist(x, y, metric="sqeuclidean") / 2 if p == 2 else ot.dist(x, y, metric="euclidean")
    P = ot.sinkhorn(a, b, C, eps, method="sinkhorn_log", numItermax=20000, stopThr=1e-12)
    ab = np.outer(a, b)
    kl = np.sum(np.where(P > 0, P * np.log(np.where(P > 0, P, 1) / ab), 0.0)) - P.sum() + ab.sum()
    return float(np.sum(P * C) + eps * kl)


@pytest.mark.parametrize("p", [1, 2])
def test_sinkhorn_matches_pot_debiased_entropic_ot(p):
    n, d, blur = 40, 3, 0.7
    x = torch.randn(n, d, generator=g(8), dtype=torch.float64) * 0.8 + 0.5
    y = torch.randn(n + 5, d, generator=g(9), dtype=torch.float64)
    eps = blur ** p
    X, Y = x.numpy(), y.numpy()
    want = entropic_ot(X, Y, eps, p) - 0.5 * entropic_ot(X, X, eps, p) - 0.5 * entropic_ot(Y, Y, eps, p)
    got = float(sinkhorn(x, y, blur=blur, scaling=0.99, diameter=20.0, p_exp=p))
    assert got == pytest.approx(want, rel=2e-3)


def test_sinkhorn_passes_its_parameters_to_geomloss():
    from geomloss import SamplesLoss

    x, y = torch.randn(30, 4, generator=g(10)), torch.randn(25, 4, generator=g(11)) + 1
    for p, blur, scaling in [(2, 0.3, 0.5), (1, 1.0, 0.9)]:
        ref = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=scaling, diameter=12.0, debias=True)(x, y)
        assert float(sinkhorn(x, y, blur, scaling, 12.0, p_exp=p)) == pytest.approx(float(ref), rel=1e-6)


def test_sinkhorn_tends_to_w2_of_two_gaussians_as_blur_goes_to_zero():
    """S_ε → OT with cost |x−y|²/2 as ε → 0: half the squared W₂.  Against the
    exact OT of the same samples (POT's network simplex) and, loosely, the
    closed form W₂² = |m1 − m2|² + Σ (σ1_i − σ2_i)² of two diagonal Gaussians."""
    n = 1000
    m = torch.tensor([1.0, -0.5], dtype=torch.float64)
    x = torch.randn(n, 2, generator=g(12), dtype=torch.float64)                                 # N(0, I)
    y = m + torch.randn(n, 2, generator=g(13), dtype=torch.float64) * torch.tensor([2.0, 0.5], dtype=torch.float64)
    w2_closed = float(m.pow(2).sum()) + (1 - 2.0) ** 2 + (1 - 0.5) ** 2                        # 2.5
    a, ot = np.full(n, 1 / n), needs_test_extra("ot")
    w2_exact = float(ot.emd2(a, a, ot.dist(x.numpy(), y.numpy(), metric="sqeuclidean"), numItermax=10 ** 7))
    s = 2 * float(sinkhorn(x, y, blur=0.02, scaling=0.7, diameter=20.0, p_exp=2))
    assert s == pytest.approx(w2_exact, rel=0.02)
    assert s == pytest.approx(w2_closed, rel=0.1)


def test_sinkhorn_gradient_is_finite_for_p1():
    z = torch.randn(16, 8, generator=g(14), requires_grad=True)
    sinkhorn(z, torch.randn(16, 8, generator=g(15)), blur=4.0, scaling=0.9, diameter=20.0, p_exp=1).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


# -- RAE-GP's decoder gradient ------------------------------------------------------------

def tiny_decoder(d: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 12), nn.Tanh(), nn.Linear(12, 2 * 3 * 3), nn.Unflatten(1, (2, 3, 3))).double()


def per_example_jacobians(dec: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """J_i = ∂Dec(z)_i/∂z_i: B×(outputs)×d, from the full jacobian; also checks
    that examples do not interact (the off-diagonal blocks are 0)."""
    J = torch.autograd.functional.jacobian(dec, z)            # B×2×3×3×B×d
    B, d = z.shape
    J = J.reshape(B, -1, B, d)
    eye = torch.eye(B, dtype=torch.bool)
    assert J.permute(0, 2, 1, 3)[~eye].abs().max() == 0
    return torch.stack([J[i, :, i] for i in range(B)])


@pytest.mark.parametrize("mode", ["sum", "code", "frobenius"])
def test_decoder_gradient_matches_the_jacobian(mode):
    dec = tiny_decoder()
    z = torch.randn(3, 4, generator=g(16), dtype=torch.float64)
    Ji = per_example_jacobians(dec, z)                                     # B×O×d
    out = dec(z).reshape(3, -1).detach()
    v = torch.randn(3, 2, 3, 3, generator=g(17), dtype=torch.float64)
    weights = {"sum": torch.ones_like(out), "code": 2 * out, "frobenius": v.reshape(3, -1)}[mode]
    want = torch.einsum("bo,bod->bd", weights, Ji)
    got = decoder_gradient(dec, z, mode, v=v if mode == "frobenius" else None)
    assert torch.allclose(got, want, atol=1e-10)


def test_frobenius_probe_estimates_the_squared_jacobian_norm():
    dec = tiny_decoder()
    z = torch.randn(2, 4, generator=g(18), dtype=torch.float64)
    fro = per_example_jacobians(dec, z).pow(2).sum((1, 2))                 # ||J_i||_F²
    K = 4000                                                               # probes, as one batch of K copies
    torch.manual_seed(1)
    est = decoder_gradient(dec, z.repeat(K, 1), "frobenius").pow(2).sum(1).reshape(K, 2).mean(0)
    assert torch.allclose(est, fro, rtol=0.1)


def test_gradient_penalty_trains_the_decoder_through_create_graph():
    """d/dθ of Σ_i ||J_iᵀ1||² by double backward equals a finite difference of
    the jacobian-based penalty."""
    dec = tiny_decoder()
    z = torch.randn(3, 4, generator=g(19), dtype=torch.float64)

    def ref_penalty() -> float:
        return float(per_example_jacobians(dec, z).sum(1).pow(2).sum())

    decoder_gradient(dec, z, "sum").pow(2).sum().backward()
    w = dec[0].weight
    analytic = float(w.grad[2, 1])
    h = 1e-6
    with torch.no_grad():
        w[2, 1] += h
        up = ref_penalty()
        w[2, 1] -= 2 * h
        down = ref_penalty()
        w[2, 1] += h
    assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_default_sinkhorn_annealing_is_converged():
    """The sinkhorn plugin's default ε-scaling 0.5 (4 ε values from the
    diameter down to the blur, against 12 at 0.9: fewer kernels per step) gives, at its default p = 1 and
    blur σ_z·√(2d) with d = 128 and B = 64, the divergence and gradient of a
    near-continuous annealing (scaling 0.99)."""
    from wae_bench_regularizers.sinkhorn import SinkhornConfig
    from wae_bench.losses import sinkhorn_blur, sinkhorn_diameter

    cfg = SinkhornConfig()
    d = 128
    blur = sinkhorn_blur(d, cfg.sigma_z, cfg.blur_rel)
    diam = max(sinkhorn_diameter(d, cfg.sigma_z), 2 * blur)
    for c in (0.5, 1.0, 1.2):                     # latents too narrow, matched, too wide
        out = {}
        for scaling in (cfg.scaling, 0.99):
            z = (c * torch.randn(64, d, generator=g(21))).requires_grad_(True)
            v = sinkhorn(z, torch.randn(64, d, generator=g(22)), blur, scaling, diam, p_exp=cfg.p)
            v.backward()
            out[scaling] = (v.item(), z.grad)
        (v, gr), (v_ref, gr_ref) = out[cfg.scaling], out[0.99]
        assert v == pytest.approx(v_ref, rel=1e-4)
        assert float((gr - gr_ref).norm() / gr_ref.norm()) < 1e-3
