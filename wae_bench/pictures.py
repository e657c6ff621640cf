"""Picture grids of a trained model (torchvision ``make_grid``/``save_image``):
prior samples, test reconstructions beside their inputs, latent
interpolations ``x_α = Dec(constrain(α z + (1 − α) z'))`` (MoCA Sec. 4), and
samples of the ex-post densities (RAE Sec. 4, columns "N" and "GMM").

Small images are upscaled, nearest neighbour, by the smallest integer factor
that makes a tile at least :data:`MIN_TILE` pixels (8-px digits: 8×), so a
grid is viewable as it is; the pixels themselves are unchanged.
"""
from __future__ import annotations

import contextlib
import math
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


MIN_TILE = 64   # px: the smallest side of a tile in a model's picture grids
GRID_NAMES = ("samples", "reconstructions", "interpolations")   # grids(): written as NAME.png
GRID_COLUMNS = {"reconstructions": 16, "interpolations": 12}     # grids(): at most, a row


def upscale(images: Tensor, min_side: int = MIN_TILE) -> Tensor:
    """N×C×H×W images repeated ``f``×``f`` (nearest neighbour), ``f`` the
    smallest integer with ``f · min(H, W) >= min_side`` (1: unchanged)."""
    f = max(1, math.ceil(min_side / min(images.shape[-2:])))
    return images if f == 1 else images.repeat_interleave(f, -2).repeat_interleave(f, -1)


def grid(images: Tensor, nrow: int) -> Tensor:
    """uint8 or [0, 1] float N×C×H×W -> one uint8 C×H×W grid (2-px white gaps;
    one channel stays one: ``make_grid`` repeats it to three)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float().clamp(0, 1)
    g = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    return g[: images.shape[1]].mul(255).round().to(torch.uint8).cpu()


def save_png(image: Tensor, path: Path) -> Path:
    """A uint8 C×H×W image -> PNG (grey for one channel), written atomically."""
    from PIL import Image

    arr = image.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    return atomic_write(path, lambda f: img.save(f, format="PNG", optimize=True))


def save_grid(images: Tensor, path: Path, nrow: int) -> Path:
    """uint8 or [0, 1] float N×C×H×W -> PNG grid, written atomically."""
    return save_png(grid(images, nrow), path)


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
def grids(ae, reg, test_x: Tensor, n: int = 64, seed: int = 0) -> dict[str, Tensor]:
    """:data:`GRID_NAMES` -> uint8 C×H×W grid:
    ``n`` prior samples; 32 test images evenly spaced through ``test_x``, each
    beside its reconstruction; 8 pairs of test images x_a, α from 1 to 0 in
    10 steps, x_b (as MoCA Fig. 2).
    Drawn in eval mode, from a generator seeded by ``seed`` (the global RNGs
    are not touched)."""
    with eval_mode(ae, reg):
        return _grids(ae, reg, test_x, n, seed)


def _grids(ae, reg, test_x: Tensor, n: int, seed: int) -> dict[str, Tensor]:
    dev = next(ae.parameters()).device
    g = torch.Generator().manual_seed(seed)
    z = reg.sample_prior(n, generator=g).to(dev)
    out = {"samples": grid(upscale(ae.decode(z)), nrow=8)}
    x = spread(test_x, 32).to(dev)
    rec = ae.decode(reg.constrain(ae.encode(x)))
    rows = torch.stack([x.float(), rec.float().clamp(0, 1)], 1)        # pairs side by side
    out["reconstructions"] = grid(upscale(rows.view(-1, *x.shape[1:])), nrow=GRID_COLUMNS["reconstructions"])
    m = min(8, len(test_x) // 2)
    if m:
        ends = spread(test_x, 2 * m).to(dev)                           # x_a from the first half, x_b the second
        xa, xb = ends[:m], ends[m:]
        alphas = torch.linspace(1, 0, GRID_COLUMNS["interpolations"] - 2)
        inter = interpolate(ae, reg.constrain, xa, xb, alphas).float().clamp(0, 1)
        inter = inter.view(m, len(alphas), *xa.shape[1:])
        rows = torch.cat([xa.float()[:, None], inter, xb.float()[:, None]], 1)   # originals at both ends
        out["interpolations"] = grid(upscale(rows.flatten(0, 1)), nrow=GRID_COLUMNS["interpolations"])
    return out


LABEL_BAND = 16   # px: the white band above a grid that names its columns


def label_columns(image: Tensor, labels: list[str]) -> Tensor:
    """A uint8 C×H×W grid of ``len(labels)`` equal columns (:func:`grid`'s
    2-px gaps) with a white band on top naming each column, the text
    centred over it; the grid's pixels are kept below the band."""
    from PIL import Image, ImageDraw

    C, H, W = image.shape
    band = Image.new("L", (W, LABEL_BAND), 255)
    draw, font = ImageDraw.Draw(band), _label_font()
    step = (W - 2) / len(labels)
    for i, text in enumerate(labels):
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        draw.text((2 + step * (i + 0.5) - (right - left) / 2, 2), text, fill=0, font=font)
    top = torch.frombuffer(bytearray(band.tobytes()), dtype=torch.uint8).view(1, LABEL_BAND, W).expand(C, -1, -1)
    return torch.cat([top, image], 1)


def _label_font():
    """DejaVu Sans (matplotlib's own font, which has α), else PIL's default."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 10)
    except (ImportError, OSError):
        return ImageFont.load_default()


def column_labels(name: str, columns: int) -> list[str] | None:
    """What each column of grid ``name`` shows: input and output in turn
    (reconstructions), x_a, the weight α of x_a from 1 to 0, x_b
    (interpolations: Dec(constrain(α Enc(x_a) + (1 − α) Enc(x_b)))); None: unlabelled."""
    if name == "reconstructions":
        return ["input", "output"] * (columns // 2)
    if name == "interpolations":
        return ["x_a", *(f"α={a:.2f}" for a in torch.linspace(1, 0, columns - 2).tolist()), "x_b"]
    return None



def labelled_grids(ae, reg, test_x: Tensor, n: int = 64, seed: int = 0) -> dict[str, Tensor]:
    """:func:`grids`, the columns of reconstructions and interpolations named
    in a band on top (:func:`label_columns`): the pictures a run saves and logs."""
    out, tile = {}, upscale(test_x[:1]).shape[-1]
    for name, image in grids(ae, reg, test_x, n, seed).items():
        labels = column_labels(name, (image.shape[-1] - 2) // (tile + 2))
        out[name] = label_columns(image, labels) if labels else image
    return out


def write_grids(ae, reg, test_x: Tensor, out: Path, n: int = 64, seed: int = 0) -> list[Path]:
    """samples.png, reconstructions.png and interpolations.png (:func:`labelled_grids`)."""
    return [save_png(image, out / f"{name}.png") for name, image in labelled_grids(ae, reg, test_x, n, seed).items()]


@torch.no_grad()
def write_expost_grids(ae, reg, densities: dict, out: Path, n: int = 64, seed: int = 0) -> list[Path]:
    """samples-n.png / samples-gmm.png: ``Dec(constrain(z))``, ``z`` from each
    fitted ex-post density (:func:`wae_bench.expost.sample`)."""
    dev = next(ae.parameters()).device
    paths = []
    with eval_mode(ae, reg):
        for kind, density in sorted(densities.items()):
            z = sample(density, n, generator=torch.Generator().manual_seed(seed)).to(dev)
            paths.append(save_grid(upscale(ae.decode(reg.constrain(z))), out / f"samples-{kind}.png", nrow=8))
    return paths
