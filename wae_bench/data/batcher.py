"""Seeded batches from a whole-dataset uint8 tensor (on the GPU when there is one)."""
from __future__ import annotations

import torch
from torch import Tensor

from wae_bench import worded
from wae_bench.errors import WaeError


class Batcher:
    """Epoch ``e``'s order is ``randperm(N)`` from a generator seeded by
    ``(seed, e)``, so the data order and position are a pure function of the
    global step: resuming at step ``s`` needs no saved loader state.

    Under DDP, global batch ``b`` is ``perm[b*B*W : (b+1)*B*W]`` and rank ``r``
    takes the ``r``-th slice of ``B`` of it; the last incomplete batch is
    dropped (static shapes).  Images come out as float in [0, 1].
    """

    def __init__(self, images: Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str | None = None):
        self.images = images if device is None else images.to(device)
        self.B, self.seed, self.rank, self.W = batch_size, seed, rank, world_size
        self.steps_per_epoch = len(images) // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise WaeError(f"the training set has {len(images):,} images, fewer than one batch of "
                           f"{batch_size * world_size:,}; lower {worded.setting('--batch-size', 'train.batch_size')}")
        self._epoch, self._perm = -1, None

    def perm(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.images), generator=g).to(self.images.device)
            self._epoch = epoch
        return self._perm

    def indices(self, step: int) -> Tensor:
        epoch, b = divmod(step, self.steps_per_epoch)
        start = (b * self.W + self.rank) * self.B
        return self.perm(epoch)[start:start + self.B]

    def batch(self, step: int) -> Tensor:
        """Images of global step ``step`` (0-based), float in [0, 1]."""
        return to_float(self.images.index_select(0, self.indices(step)))


def to_float(images: Tensor) -> Tensor:
    return images.float().div_(255.0)


def to_uint8(x: Tensor) -> Tensor:
    """Model output in [0, 1] (clamped) -> uint8 for pictures and FID."""
    return x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
