"""Pure loss functions of tensors (no state): the two terms of the WAE
objective, the reconstruction cost plus λ times a latent penalty (WAE Eq. 4,
MoCA Eq. 5), one function per paper equation.

The reconstruction term lives here beside the penalties rather than in the
step: both are pure maths, tested against independent references in one
place, and the step (:mod:`wae_bench.step.trainer`) only adds them up.

- :func:`reconstruction` — ``(1/B) Σ_i ||x_i − x̂_i||²`` (MoCA Eq. 5, first term),
  the mean of :func:`reconstruction_per_image` (``||x_i − x̂_i||²`` of each image,
  also the test-set error of :mod:`wae_bench.metrics.diagnostics`).
- :func:`moca_loss` — MoCA's L_MoCo against a queue of keys (Sec. 3, Eq. 5).
- :func:`mmd` — the unbiased MMD estimate of WAE-MMD (Tolstikhin et al. 2018,
  Algorithm 2), with the inverse multiquadratics kernel
  ``k(x, y) = C / (C + ||x − y||²)`` (:func:`imq_kernel`) or the Gaussian
  kernel ``exp(−||x − y||² / C)`` (:func:`rbf_kernel`), summed over the
  scales ``C = 2·d·σ_z²·s`` (the WAE code's ``s ∈ {.1, .2, .5, 1, 2, 5, 10}``).
- :func:`sliced_w2` — SW₂², the squared sliced 2-Wasserstein distance of SWAE
  (Kolouri et al. 2019): the 1-D optimal transport along each of L
  unit directions θ_l is the matching of sorted projections.
- :func:`sinkhorn` — the debiased Sinkhorn divergence
  ``S_ε(α, β) = OT_ε(α, β) − ½OT_ε(α, α) − ½OT_ε(β, β)`` (Feydy et al. 2019)
  through geomloss's ``SamplesLoss`` (cost ``|x − y|²/2`` for p = 2).
- :func:`decoder_gradient` — the gradient ``∇_z`` of the decoder output used by
  RAE-GP (Ghosh et al. 2020), in three variants (see its docstring).
- Their helpers: :func:`sq_dists`, :func:`wae_scales`, :func:`unit_directions`,
  :func:`sinkhorn_blur`, :func:`sinkhorn_diameter`.

(tests/test_module_maps.py checks that this list names every function here.)

Everything here is capture-safe when its Python arguments are fixed: static
shapes, no ``.item()``, no branching on tensor values.
"""
from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import torch
from torch import Tensor

def reconstruction_per_image(x_hat: Tensor, x: Tensor) -> Tensor:
    """``||x_i − Dec(Enc(x_i))||²₂`` of each image ``i``, summed over pixels and
    channels, in fp32: a vector of B."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).sum(1)


def reconstruction(x_hat: Tensor, x: Tensor) -> Tensor:
    """``(1/B) Σ_i ||x_i − Dec(Enc(x_i))||²₂`` summed over pixels and channels
    (MoCA Eq. 5, first term), in fp32: the batch mean of
    :func:`reconstruction_per_image`.  Every λ of the project is set in these
    units (a sum over the pixels, not a per-pixel mean)."""
    return reconstruction_per_image(x_hat, x).mean()


def moca_loss(q: Tensor, k: Tensor, queue: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """MoCA's L_MoCo (paper Sec. 3, Eq. 5's second term), as (neg, pos):

    ``neg = (1/B) Σ_i log( (1/K) Σ_j exp(q_iᵀ q_j / τ) )`` over the K queue
    entries (the entropy / "negative samples" term, *including* the constant
    ``log(1/K)``), and ``pos = (1/B) Σ_i q_iᵀ k_i / τ``; L_MoCo = neg − pos.
    ``q``: B×d (unit norm, with grad), ``k``: B×d keys, ``queue``: K×d.
    """
    logits = q.float() @ queue.float().t() / tau          # B×K
    neg = (torch.logsumexp(logits, dim=1) - math.log(queue.shape[0])).mean()
    pos = (q.float() * k.float()).sum(1).mean() / tau
    return neg, pos


# The WAE code's kernel scales (tolstikhin/wae, wae.py ``mmd_penalty``).
WAE_SCALES: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def sq_dists(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``||x_i − y_j||²``: N×M (clamped at 0;
    differentiable at 0, unlike ``cdist``)."""
    d = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None, :] - 2.0 * x @ y.t()
    return d.clamp_min(0.0)


def imq_kernel(d2: Tensor, C: float) -> Tensor:
    """Inverse multiquadratics ``C / (C + ||x − y||²)`` of squared distances."""
    return C / (C + d2)


def rbf_kernel(d2: Tensor, C: float) -> Tensor:
    """Gaussian ``exp(−||x − y||² / C)`` of squared distances."""
    return torch.exp(-d2 / C)


KERNELS: dict[str, Callable[[Tensor, float], Tensor]] = {"imq": imq_kernel, "rbf": rbf_kernel}


def mmd(z: Tensor, p: Tensor, Cs: Sequence[float], kernel: Literal["imq", "rbf"] = "imq") -> Tensor:
    """Unbiased MMD² between samples ``z`` (n×d) and ``p`` (m×d), WAE Alg. 2::

        1/(n(n−1)) Σ_{i≠j} k(z_i, z_j) + 1/(m(m−1)) Σ_{i≠j} k(p_i, p_j) − 2/(nm) Σ_{i,j} k(z_i, p_j)

    summed over the kernel constants ``Cs``.  n, m >= 2.
    """
    k = KERNELS[kernel]
    z, p = z.float(), p.float()
    n, m = len(z), len(p)
    dzz, dpp, dzp = sq_dists(z, z), sq_dists(p, p), sq_dists(z, p)
    off_z = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    off_p = 1.0 - torch.eye(m, device=p.device, dtype=p.dtype)
    total = z.new_zeros(())
    for C in Cs:
        total = total + (k(dzz, C) * off_z).sum() / (n * (n - 1)) \
                      + (k(dpp, C) * off_p).sum() / (m * (m - 1)) \
                      - 2.0 * k(dzp, C).mean()
    return total


def wae_scales(d: int, sigma_z: float, scales: Sequence[float] = WAE_SCALES) -> list[float]:
    """Kernel constants ``C = 2·d·σ_z²·s`` (the WAE paper's C = 2·d·σ_z², at each scale s)."""
    return [2.0 * d * sigma_z ** 2 * s for s in scales]


def unit_directions(L: int, d: int, device: torch.device | str = "cpu",
                    generator: torch.Generator | None = None) -> Tensor:
    """L directions uniform on the unit sphere S^{d−1} (normalised Gaussians): L×d."""
    theta = torch.randn(L, d, device=device, generator=generator)
    return theta / theta.norm(dim=1, keepdim=True)


def sliced_w2(z: Tensor, p: Tensor, theta: Tensor) -> Tensor:
    """SW₂² between equal-sized samples ``z`` and ``p`` (n×d) along the unit
    directions ``theta`` (L×d): ``(1/L) Σ_l (1/n) Σ_i (sort(z θ_l)_i − sort(p θ_l)_i)²``
    (SWAE, Kolouri et al. 2019; the 1-D W₂ coupling of two empirical measures of equal size
    matches sorted values)."""
    if z.shape != p.shape:
        raise ValueError(f"sliced_w2 needs samples of equal shape, got {tuple(z.shape)} and {tuple(p.shape)}")
    zt = torch.sort(z.float() @ theta.float().t(), dim=0).values       # n×L
    pt = torch.sort(p.float() @ theta.float().t(), dim=0).values       # n×L
    return (zt - pt).pow(2).mean()


def sinkhorn_blur(d: int, sigma_z: float, rel: float = 0.05) -> float:
    """Default blur (length scale √ε) for latents in R^d against N(0, σ_z² I):
    ``rel`` times the typical distance between two prior samples, σ_z·√(2d)."""
    return rel * sigma_z * math.sqrt(2.0 * d)


def sinkhorn_diameter(d: int, sigma_z: float) -> float:
    """A fixed upper scale for geomloss's ε-annealing: 4·σ_z·√d, about twice the
    largest distance between prior samples (passing it avoids geomloss's
    data-dependent ``.item()``; latents farther apart only start the annealing
    at a smaller ε)."""
    return 4.0 * sigma_z * math.sqrt(d)


def sinkhorn(z: Tensor, p: Tensor, blur: float, scaling: float = 0.9, diameter: float | None = None,
             p_exp: int = 2, debias: bool = True) -> Tensor:
    """Sinkhorn divergence between the uniform empirical measures on ``z`` and ``p``
    (geomloss ``SamplesLoss("sinkhorn")``, tensorized backend, cost ``|x−y|^p / p``,
    ``ε = blur^p``).  With ``debias`` it is S_ε (≥ 0, = 0 iff equal measures);
    as blur → 0 it tends to OT with cost |x−y|²/2, i.e. W₂²/2 for p = 2.
    geomloss is imported here, not with the module: only the Sinkhorn penalty needs it."""
    from geomloss import SamplesLoss

    loss = SamplesLoss("sinkhorn", p=p_exp, blur=blur, scaling=scaling, diameter=diameter,
                       debias=debias, backend="tensorized")
    z, p = z.float().contiguous(), p.float().contiguous()
    # Uniform weights made on the device: geomloss's own default builds them on the host and
    # copies them over, which a CUDA graph cannot capture.
    a = torch.full((len(z),), 1.0 / len(z), device=z.device)
    b = torch.full((len(p),), 1.0 / len(p), device=p.device)
    return loss(a, z, b, p)


GradMode = Literal["code", "sum", "frobenius"]


def decoder_gradient(decode: Callable[[Tensor], Tensor], z: Tensor, mode: GradMode = "code",
                     v: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Per-example gradients ``g_i`` (B×d) of the decoder output w.r.t. ``z`` for
    RAE-GP's penalty ``||∇_z Dec(z)||²`` (Ghosh et al. 2020), with the
    graph kept (``create_graph``) so the penalty can be trained through:

    - ``"code"``: ``g = ∇_z Σ Dec(z)²`` — what the RAE authors' code computes
      (``K.gradients(K.square(y_pred), embedding)``); the default, since the
      paper's weights were tuned with it;
    - ``"sum"``: ``g_i = ∇_{z_i} Σ_pixels Dec(z_i) = J_iᵀ 1`` — the gradient of
      the summed output (``tf.gradients(Dec(z), z)``);
    - ``"frobenius"``: ``g_i = J_iᵀ v_i`` with ``v ~ N(0, I)`` over the output,
      so ``E||g_i||² = ||J_i||_F²``, the squared Frobenius norm of the Jacobian
      (one-probe Hutchinson estimate).  ``v`` may be given (same shape as the
      output); else it is drawn from ``generator`` (in a step: ``ctx.generator``).

    ``J_i = ∂Dec(z)_i / ∂z_i``.  With a decoder whose examples do not interact
    (eval-mode batch norm) these are exact per-example quantities; with
    train-mode batch norm they include the batch coupling, as in the authors' code.
    """
    if not z.requires_grad:
        z = z.detach().requires_grad_(True)
    out = decode(z)
    if mode == "code":
        s = out.float().pow(2).sum()
    elif mode == "sum":
        s = out.float().sum()
    elif mode == "frobenius":
        if v is None:
            v = torch.randn(out.shape, dtype=torch.float32, device=out.device, generator=generator)
        s = (out.float() * v).sum()
    else:
        raise ValueError(f"unknown gradient mode {mode!r}; choose code, sum or frobenius")
    (g,) = torch.autograd.grad(s, z, create_graph=True)
    return g
