"""Picture grids of a trained model (torchvision ``make_grid``/``save_image``):
prior samples, test reconstructions beside their inputs, latent
interpolations ``x_α = Dec(constrain(α z + (1 − α) z'))`` (MoCA Sec. 4), and
samples of the ex-post densities (RAE Sec. 4, columns "N" and "GMM")."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid

from wae_bench.atomic import atomic_write
from wae_bench.expost import sample


def spread(images: Tensor, n: int = 64) -> Tensor:
    """``n`` images evenly spaced through the set (every class of a
    class-sorted folder, not the first class only)."""
    idx = torch.linspace(0, len(images) - 1, min(n, len(images))).round().long()
    return images[idx]


def save_grid(images: Tensor, path: Path, nrow: int) -> Path:
    """uint8 or [0, 1] float N×C×H×W -> PNG, written atomically."""
    from PIL import Image

    x = images.float() / 255 if images.dtype == torch.uint8 else images.float().clamp(0, 1)
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    arr = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


@torch.no_grad()
def interpolate(ae, constrain, xa: Tensor, xb: Tensor, alphas: Tensor) -> Tensor:
    """Decoded ``constrain(α z_a + (1 − α) z_b)`` for each pair and α:
    (pairs·len(alphas))×C×H×W, row-major by pair."""
    za, zb = constrain(ae.encode(xa)), constrain(ae.encode(xb))
    a = alphas.to(za)[None, :, None]
    z = a * za[:, None] + (1 - a) * zb[:, None]             # P×A×d
    return ae.decode(constrain(z.flatten(0, 1)))


@contextlib.contextmanager
def eval_mode(*modules):
    """Batch norm with running statistics while drawing; modes restored after."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)


@torch.no_grad()
def write_grids(ae, reg, test_x: Tensor, out: Path, n: int = 64, seed: int = 0) -> list[Path]:
    """samples.png, reconstructions.png (32 test images evenly spaced through
    ``test_x``, each beside its reconstruction) and interpolations.png (8
    pairs of test images: x_a, α from 1 to 0 in 10 steps, x_b; as MoCA
    Fig. 2), drawn in eval mode."""
    with eval_mode(ae, reg):
        return _write_grids(ae, reg, test_x, out, n, seed)


def _write_grids(ae, reg, test_x: Tensor, out: Path, n: int, seed: int) -> list[Path]:
    dev = next(ae.parameters()).device
    g = torch.Generator().manual_seed(seed)
    z = reg.sample_prior(n, generator=g).to(dev)
    paths = [save_grid(ae.decode(z), out / "samples.png", nrow=8)]
    x = spread(test_x, 32).to(dev)
    rec = ae.decode(reg.constrain(ae.encode(x)))
    rows = torch.stack([x.float(), rec.float().clamp(0, 1)], 1)        # pairs side by side
    paths.append(save_grid(rows.view(-1, *x.shape[1:]), out / "reconstructions.png", nrow=16))
    m = min(8, len(test_x) // 2)
    if m:
        ends = spread(test_x, 2 * m).to(dev)                           # x_a from the first half, x_b the second
        xa, xb = ends[:m], ends[m:]
        alphas = torch.linspace(1, 0, 10)
        inter = interpolate(ae, reg.constrain, xa, xb, alphas).float().clamp(0, 1)
        inter = inter.view(m, len(alphas), *xa.shape[1:])
        rows = torch.cat([xa.float()[:, None], inter, xb.float()[:, None]], 1)   # originals at both ends
        paths.append(save_grid(rows.flatten(0, 1), out / "interpolations.png", nrow=len(alphas) + 2))
    return paths


@torch.no_grad()
def write_expost_grids(ae, reg, densities: dict, out: Path, n: int = 64, seed: int = 0) -> list[Path]:
    """samples-n.png / samples-gmm.png: ``Dec(constrain(z))``, ``z`` from each
    fitted ex-post density (:func:`wae_bench.expost.sample`)."""
    dev = next(ae.parameters()).device
    paths = []
    with eval_mode(ae, reg):
        for kind, density in sorted(densities.items()):
            z = sample(density, n, generator=torch.Generator().manual_seed(seed)).to(dev)
            paths.append(save_grid(ae.decode(reg.constrain(z)), out / f"samples-{kind}.png", nrow=8))
    return paths
