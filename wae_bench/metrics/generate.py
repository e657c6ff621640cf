"""The images that are scored: the columns of RAE's Table 1 (Ghosh et al. 2020),
which MoCA's Table 1 builds on.

- ``samples``: ``Dec(z)``, ``z`` from the prior (MoCA: ``z = e/|e|``, ``e ~ N(0, I)``).
- ``n`` / ``gmm``: ``Dec(constrain(z))``, ``z`` from the ex-post Gaussian / 10-component GMM.
- ``rec``: ``Dec(constrain(Enc(x)))`` for N reference images: all of them, or
  a seeded random subset (:func:`wae_bench.data.subset.random_subset`), never the first N.
- ``interp``: ``Dec(constrain(α z_a + (1 − α) z_b))`` between test images (MoCA
  Sec. 4); α = 0.5 (RAE's midpoints) or a grid.

Sample ``i`` depends on its global index only: noise comes in chunks of
:data:`CHUNK`, chunk ``c`` drawn by a CPU generator seeded by (seed, column, c);
pair ``p`` of ``interp`` is fixed by one seeded permutation (random pairs,
never the first images of a class-sorted set).  So the images do
not depend on the batch size, the device or how samples are split between
processes (:meth:`Column.latents` takes any ``start:stop`` range).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from wae_bench import expost
from wae_bench.config import WHAT
from wae_bench.data.batcher import to_float, to_uint8
from wae_bench.data.subset import name_seed, random_subset
from wae_bench.errors import WaeError

CHUNK = 1000


def chunk_generator(seed: int, column: str, chunk: int) -> torch.Generator:
    return torch.Generator().manual_seed(name_seed(f"{column}/{seed}/{chunk}"))


def chunked_noise(draw: Callable[[int, torch.Generator], Tensor], column: str, seed: int,
                  start: int, stop: int) -> Tensor:
    """Rows ``start..stop-1`` of an endless sequence whose chunk ``c`` is
    ``draw(CHUNK, chunk_generator(seed, column, c))``."""
    parts = []
    for c in range(start // CHUNK, (stop - 1) // CHUNK + 1):
        z = draw(CHUNK, chunk_generator(seed, column, c))
        parts.append(z[max(start - c * CHUNK, 0):min(stop - c * CHUNK, CHUNK)])
    return torch.cat(parts)


@dataclass
class Column:
    """``n`` images to score; ``latents(start, stop)`` gives their decoder
    inputs (on ``device``)."""

    name: str
    n: int
    latents: Callable[[int, int], Tensor]
    info: dict


def columns(what: Sequence[str], ae, reg, densities: dict, test: Tensor, n: int, seed: int,
            device: torch.device, alphas: Sequence[float] = (0.5,)) -> list[Column]:
    """The requested columns, in the order asked."""
    out = []
    for w in what:
        if w == "samples":
            out.append(Column(w, n, lambda a, b: chunked_noise(
                lambda k, g: reg.sample_prior(k, generator=g), "samples", seed, a, b).to(device),
                {"latents": f"prior ({reg.prior})"}))
        elif w in ("n", "gmm"):
            if w not in densities:
                raise WaeError(f"the run has no ex-post {w!r} density to sample from; drop {w} from --what, or "
                               f"train with --set expost=['n','gmm']")
            d = densities[w]
            out.append(Column(w, n, lambda a, b, d=d, w=w: reg.constrain(chunked_noise(
                lambda k, g: expost.sample(d, k, g), w, seed, a, b).to(device)),
                {"latents": f"ex-post {'Gaussian' if w == 'n' else 'GMM (10 components)'}, then constrain"}))
        elif w == "rec":
            idx = random_subset(len(test), n, f"rec/{seed}")
            m = len(idx)
            which = "all" if m == len(test) else f"a seeded random subset ('rec/{seed}')"
            out.append(Column(w, m, lambda a, b: _encode(ae, reg, test[idx[a:b]], device),
                              {"latents": f"Enc of {m} of the {len(test)} reference images ({which})"}))
        elif w == "interp":
            out.append(_interp(ae, reg, test, n, seed, device, alphas))
        else:
            raise WaeError(f"unknown --what {w!r}; choose from {', '.join(WHAT)}")
    return out


def _encode(ae, reg, x: Tensor, device: torch.device) -> Tensor:
    return reg.constrain(ae.encode(to_float(x.to(device))))


def _interp(ae, reg, test: Tensor, n: int, seed: int, device: torch.device, alphas: Sequence[float]) -> Column:
    """Pair ``p = i // len(alphas)``: test images ``perm[j]`` and
    ``perm[(j + N // 2) mod N]`` with ``j = p mod N`` (two different images,
    both at random, so fewer pairs than images are not the first images of
    a class-sorted set); ``α = alphas[i mod len(alphas)]``."""
    N = len(test)
    if N < 2:
        raise WaeError("interpolation needs at least 2 reference images; drop interp from --what")
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise WaeError(f"interpolation alphas must be in [0, 1], got {list(alphas)}")
    perm = torch.randperm(N, generator=chunk_generator(seed, "interp", 0))
    al = torch.tensor(list(alphas), dtype=torch.float32)

    def latents(a: int, b: int) -> Tensor:
        i = torch.arange(a, b)
        p, alpha = i // len(al), al[i % len(al)]
        j = p % N
        ia, ib = perm[j], perm[(j + N // 2) % N]
        za, zb = _encode(ae, reg, test[ia], device), _encode(ae, reg, test[ib], device)
        t = alpha.to(device)[:, None]
        return reg.constrain(t * za + (1 - t) * zb)

    return Column("interp", n, latents, {"latents": "constrain(α Enc(x_a) + (1 − α) Enc(x_b))",
                                         "pairs": "x_a = perm[j], x_b = perm[(j + N/2) mod N], j = pair mod N; perm "
                                                  "seeded per (seed, 'interp')",
                                         "alphas": [float(a) for a in alphas]})


@torch.no_grad()
def images(ae, col: Column, batch_size: int, start: int = 0, stop: int | None = None,
           progress=None, task=None) -> Tensor:
    """uint8 images ``start..stop-1`` of ``col`` (CPU), decoded in batches."""
    stop = col.n if stop is None else stop
    out = []
    for i in range(start, stop, batch_size):
        j = min(i + batch_size, stop)
        out.append(to_uint8(ae.decode(col.latents(i, j))).cpu())
        if progress is not None:
            progress.advance(task, j - i)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.uint8)
