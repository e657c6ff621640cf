"""Image features through torch-fidelity's feature-extractor interface.

``inception``: torch-fidelity's ``FeatureExtractorInceptionV3``
('inception-v3-compat', TF-Inception 2015-12-05, 2048-d pool3; FID as in
Heusel et al. 2017 and as MoCA/RAE report it).  ``standin``: a small random
conv net with fixed weights (seed 0), registered with torch-fidelity's
registry as ``standin-randconv`` -- fast enough for tests and the CI smoke
benchmark on CPU, always labelled "(not FID)" in the protocol.

Images are uint8 N×C×H×W; grayscale is repeated to 3 channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from wae_bench.errors import WaeError
from wae_bench.metrics.weights import build_extractor

STANDIN = "standin-randconv"
FEATURES = ("inception", "standin")


class StandInFeatures(FeatureExtractorBase):
    """Random conv features (NOT Inception): resize to 32×32, two random 3×3
    convs with ReLU, global mean and max pooling -> 128-d.  Weights come from
    ``torch.Generator().manual_seed(0)``, so every instance is identical."""

    SIZE = 32

    def __init__(self, name: str = STANDIN, features_list: Sequence[str] = ("128",), **kwargs):
        super().__init__(name, list(features_list))
        g = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(32, 3, 3, 3, generator=g) / (27 ** 0.5), requires_grad=False)
        self.w2 = nn.Parameter(torch.randn(64, 32, 3, 3, generator=g) / (288 ** 0.5), requires_grad=False)
        self.eval()

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3, "expecting uint8 Bx3xHxW"
        h = F.interpolate(x.float(), size=(self.SIZE, self.SIZE), mode="bilinear", align_corners=False)
        h = F.relu(F.conv2d((h - 128) / 128, self.w1, stride=2, padding=1))
        h = F.relu(F.conv2d(h, self.w2, stride=2, padding=1))
        return (torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1),)

    @staticmethod
    def get_provided_features_list():
        return ("128",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "128"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)


def _register_standin() -> None:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if FEATURE_EXTRACTORS_REGISTRY.get(STANDIN) is not StandInFeatures:
        register_feature_extractor(STANDIN, StandInFeatures)


_register_standin()


@dataclass
class Extractor:
    """A torch-fidelity feature extractor plus what the protocol says about it."""

    net: nn.Module
    label: str             # protocol "features"
    layer: str             # feature used for FID/KID/PR
    logits: str | None     # feature used for the Inception Score, if any
    device: torch.device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        x = images.to(self.device, non_blocking=True)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out = self.net(x.contiguous())
        names = [self.layer] + ([self.logits] if self.logits else [])
        return {n: t.float().cpu() for n, t in zip(names, out)}


def make_extractor(features: str, device: torch.device, weights_path: str | None = None,
                   logits: bool = False) -> Extractor:
    """``features`` "inception" (needs ``weights_path``) or "standin"."""
    from torch_fidelity.utils import create_feature_extractor

    if features == "standin":
        if logits:
            raise WaeError("the Inception Score needs Inception logits; it is not available with --features standin")
        net = create_feature_extractor(STANDIN, ["128"], cuda=False, verbose=False).to(device)
        return Extractor(net, f"{STANDIN} (not FID)", "128", None, device)
    if features != "inception":
        raise WaeError(f"unknown --features {features!r}; choose one of: {', '.join(FEATURES)}")
    names = ("2048", "logits_unbiased") if logits else ("2048",)
    net = build_extractor(weights_path, names).to(device)
    return Extractor(net, "inception-v3-compat (TF-Inception 2015-12-05, pool3 2048-d)", "2048",
                     "logits_unbiased" if logits else None, device)


def extract(ext: Extractor, images: Tensor, batch_size: int, progress=None, task=None) -> dict[str, Tensor]:
    """Features of all ``images`` (uint8 N×C×H×W, any device) in batches;
    advances ``progress``'s ``task`` by the batch size."""
    parts: dict[str, list[Tensor]] = {}
    for i in range(0, len(images), batch_size):
        for k, v in ext(images[i:i + batch_size]).items():
            parts.setdefault(k, []).append(v)
        if progress is not None:
            progress.advance(task, min(batch_size, len(images) - i))
    return {k: torch.cat(v) for k, v in parts.items()}
