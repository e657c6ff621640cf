"""A1: the WAE CNN (Tolstikhin et al. 2018, App. C) with batch norm in every
layer as in RAE (Ghosh et al. 2020); MoCA paper App. A.

Encoder: four 4×4 stride-2 convs (128, 256, 512, 1024 channels) + BN + ReLU,
then a linear map to d.  Decoder: linear d -> 8×8×1024, then 4×4 stride-2
transposed convs (512, 256 for 32×32; 512, 256, 128 for 64×64), then a conv to
the image channels.
"""
from __future__ import annotations

from torch import nn

from wae_bench.nets.base import ArchSpec, Autoencoder


def _down(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def build_a1(image_size: int, channels: int, d: int) -> Autoencoder:
    widths = [128, 256, 512, 1024]
    enc: list[nn.Module] = []
    cin = channels
    for w in widths:
        enc += _down(cin, w)
        cin = w
    s = image_size // 16
    encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(1024 * s * s, d))
    ups = [512, 256] if image_size == 32 else [512, 256, 128]
    dec: list[nn.Module] = [nn.Linear(d, 8 * 8 * 1024, bias=False), nn.Unflatten(1, (1024, 8, 8)),
                            nn.BatchNorm2d(1024), nn.ReLU(inplace=True)]
    cin = 1024
    for w in ups:
        dec += _up(cin, w)
        cin = w
    dec.append(nn.Conv2d(cin, channels, 3, 1, 1))
    return Autoencoder(encoder, nn.Sequential(*dec), d, image_size, channels)


A1 = ArchSpec("a1", "WAE CNN + batch norm (Tolstikhin et al. 2018; Ghosh et al. 2020)", build_a1, sizes=(32, 64))
