"""The autoencoder container and the architecture spec that builds one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from wae_bench import worded
from wae_bench.errors import WaeError


class Autoencoder(nn.Module):
    """``Enc: X -> R^d`` and ``Dec: Z -> X``.

    ``forward(x, constrain)`` returns ``(z, x_hat)`` with
    ``z = constrain(Enc(x))`` and ``x_hat = Dec(z)``: one call, so that
    DistributedDataParallel sees the whole autoencoder in its forward.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int,
                 image_size: int, channels: int):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels

    def encode(self, x: Tensor) -> Tensor:
        """``Enc(x)``: float images (B, C, S, S) in [0, 1] (uint8 ones
        through :func:`~wae_bench.data.batcher.to_float`; C = ``channels``,
        S = ``image_size``) -> the raw codes (B, d), d = ``latent_dim``.

        Not yet the run's latents: those are ``reg.constrain(ae.encode(x))``
        (:meth:`wae_bench.regularizer.Regularizer.constrain`), which for a
        plugin with ``prior = "sphere"`` (MoCA) puts each row on the unit
        sphere (``z / |z|``) and leaves the codes as they are for a Gaussian
        prior.  Batch norm makes the codes depend on the batch in train
        mode; call ``ae.eval()`` first (a loaded model is in eval mode)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """``Dec(z)``: latents (B, d) -- ``reg.constrain(ae.encode(x))``, or
        prior samples ``reg.sample_prior(n)`` (on the unit sphere for MoCA) --
        -> float images (B, C, S, S) meant to lie in [0, 1].  The decoder's
        last layer is linear by default (``decoder_output = "linear"``, the
        WAE and MoCA nets), so values may fall a little outside: clamp them
        (``.clamp(0, 1)``, as the pictures and the FID do,
        :func:`~wae_bench.data.batcher.to_uint8`); with ``decoder_output =
        "sigmoid"`` they lie in (0, 1)."""
        return self.decoder(z)

    def forward(self, x: Tensor, constrain: Callable[[Tensor], Tensor] | None = None):
        f = self.encoder(x)
        z = constrain(f) if constrain is not None else f
        return z, self.decoder(z)


@dataclass(frozen=True)
class ArchSpec:
    """An architecture: ``build(image_size, channels, latent_dim)``; ``sizes``
    lists the image sizes it takes (None: any multiple of ``multiple``)."""

    name: str
    paper: str
    build: Callable[[int, int, int], Autoencoder]
    sizes: tuple[int, ...] | None = None
    multiple: int = 4

    def check_size(self, image_size: int) -> None:
        ok = image_size in self.sizes if self.sizes else image_size % self.multiple == 0
        if not ok:
            takes = ", ".join(map(str, self.sizes)) if self.sizes else f"multiples of {self.multiple}"
            fix = ("pass --set train.image_size=N or another --set train.arch=NAME" if worded.now().bench
                   else "pass --set image_size=N or choose another --arch")   # (a bench has no --arch)
            raise WaeError(f"architecture {self.name!r} cannot take {image_size}x{image_size} "
                           f"images (it takes {takes}); {fix}")


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build_arch(spec: ArchSpec, image_size: int, channels: int, latent_dim: int, *,
               check: bool = True) -> Autoencoder:
    """``spec``'s net, checked against the contract by one probe forward
    (:func:`~wae_bench.nets.contract.probe`, which leaves it as built;
    ``check=False``: not run, for `wae-bench list`'s count of a built-in's parameters) and
    tagged with the architecture's name (``arch_name``: whose net a fault or
    a global draw in its forward is, :mod:`wae_bench.plugin_fault`)."""
    from wae_bench.nets.contract import probe

    spec.check_size(image_size)
    ae = spec.build(image_size, channels, latent_dim)
    if isinstance(ae, Autoencoder):
        ae.arch_name = spec.name
    if check or not isinstance(ae, Autoencoder):
        probe(spec.name, ae, image_size, channels, latent_dim)
    return ae
