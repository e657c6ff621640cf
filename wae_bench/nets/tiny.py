"""tiny: a two-layer conv autoencoder with batch norm, for tests and the
embedded default dataset; any image size that is a multiple of 4."""
from __future__ import annotations

from torch import nn

from wae_bench.nets.base import ArchSpec, Autoencoder


def build_tiny(image_size: int, channels: int, d: int) -> Autoencoder:
    s = image_size // 4
    encoder = nn.Sequential(
        nn.Conv2d(channels, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(32 * s * s, d))
    decoder = nn.Sequential(
        nn.Linear(d, 32 * s * s, bias=False), nn.Unflatten(1, (32, s, s)), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(16, channels, 4, 2, 1))
    return Autoencoder(encoder, decoder, d, image_size, channels)


TINY = ArchSpec("tiny", "two-layer conv AE for tests (not from a paper)", build_tiny, multiple=4)
