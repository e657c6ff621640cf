"""A2: ResNet-18 autoencoder (MoCA paper App. A; He et al. 2016).

Encoder: ResNet-18 with a 3×3 stride-1 stem and no max-pool, four stages of
two basic blocks (64, 128, 256, 512; stride 1, 2, 2, 2), global average pool,
linear to d.  Decoder: the mirror, linear d -> 512×4×4, stages with nearest
×2 upsampling instead of stride-2 downsampling, and a last 3×3 conv that
upsamples ×1 for 32×32 (CIFAR-10) and ×2 for 64×64 (CelebA).
"""
from __future__ import annotations

from torch import Tensor, nn

from wae_bench.nets.base import ArchSpec, Autoencoder


def _bn_conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]


class Block(nn.Module):
    """Basic residual block; ``scale`` 0.5 downsamples (stride 2), 2 upsamples."""

    def __init__(self, cin: int, cout: int, scale: float = 1.0):
        super().__init__()
        stride = 2 if scale < 1 else 1
        up = [nn.Upsample(scale_factor=2, mode="nearest")] if scale > 1 else []
        self.body = nn.Sequential(*up, *_bn_conv(cin, cout, stride), nn.ReLU(inplace=True), *_bn_conv(cout, cout))
        self.skip = nn.Identity() if (cin == cout and scale == 1) else nn.Sequential(
            *up, nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.skip(x))


def _stages(widths: list[int], scales: list[float], cin: int) -> list[nn.Module]:
    out: list[nn.Module] = []
    for w, s in zip(widths, scales):
        out += [Block(cin, w, s), Block(w, w)]
        cin = w
    return out


def build_a2(image_size: int, channels: int, d: int) -> Autoencoder:
    widths = [64, 128, 256, 512]
    encoder = nn.Sequential(*_bn_conv(channels, 64), nn.ReLU(inplace=True),
                            *_stages(widths, [1, 0.5, 0.5, 0.5], 64),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, d))
    base = image_size // 8 if image_size == 32 else image_size // 16
    last_up = [] if image_size == 32 else [nn.Upsample(scale_factor=2, mode="nearest")]
    decoder = nn.Sequential(nn.Linear(d, 512 * base * base), nn.Unflatten(1, (512, base, base)),
                            *_stages([512, 256, 128, 64], [1, 2, 2, 2], 512),
                            *last_up, nn.Conv2d(64, channels, 3, 1, 1))
    return Autoencoder(encoder, decoder, d, image_size, channels)


A2 = ArchSpec("a2", "ResNet-18 autoencoder (MoCA App. A; He et al. 2016)", build_a2, sizes=(32, 64))
