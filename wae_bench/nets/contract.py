"""The architecture contract, checked when a net is built: ``build(image_size,
channels, latent_dim)`` returns an :class:`~wae_bench.nets.base.Autoencoder`
whose ``Enc: (B, C, H, W) -> (B, d)`` and ``Dec: (B, d) -> (B, C, H, W)``.

:func:`probe` runs one forward of 2 zero images, so that a net with wrong
shapes is refused in one line naming the architecture, its provider, the
shape it gave and the contract, before a run trains (a decoder's wrong
channel count otherwise broadcasts through the reconstruction loss and
fails only at the picture grids, after training).  The forward runs in eval
mode (batch norm reads its running statistics and updates none, dropout is
off) under ``no_grad``, with every process-global generator restored
afterwards and each module's train/eval mode put back: the module's state
and the run's random streams are as without it.  Shapes are host-side
facts; the probe runs before any DDP wrap or CUDA-graph capture.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from wae_bench.errors import WaeError

PROBE_BATCH = 2


def contract(channels: int, image_size: int, latent_dim: int) -> str:
    """The contract sentence, for these sizes."""
    x = f"(B, {channels}, {image_size}, {image_size})"
    return (f"build(image_size, channels, latent_dim) must give Enc: {x} -> (B, {latent_dim}) "
            f"and Dec: (B, {latent_dim}) -> {x}")


def label(name: str) -> str:
    """``architecture 'NAME' (PROVIDER)``: how a message names it."""
    from wae_bench.registry import ARCHITECTURES

    return ARCHITECTURES.label(name)


def own_classes(ae: nn.Module) -> set[type]:
    """The module classes of net ``ae`` defined outside wae-bench and torch:
    an architecture plugin's own code (none for a built-in net)."""
    return {type(m) for m in ae.modules() if not type(m).__module__.startswith(("wae_bench.", "torch."))}


def probe(name: str, ae: object, image_size: int, channels: int, latent_dim: int) -> None:
    """Refuse (a WaeError) a built net ``ae`` of architecture ``name`` that is
    not an Autoencoder or whose encoder or decoder gives another shape than
    the contract's on 2 zero images; nothing is left changed (module docstring).
    Skipped for a net on the meta device (a memory estimate: shapes only, and
    a plugin's op may lack a meta kernel); the run's own build probes it."""
    from wae_bench.nets.base import Autoencoder

    if not isinstance(ae, Autoencoder):
        raise WaeError(f"{label(name)}: build() returned {_kind(ae)}, not a wae_bench.nets.Autoencoder; return "
                       f"Autoencoder(encoder, decoder, latent_dim, image_size, channels)")
    first = next(iter(ae.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    if device.type == "meta":
        return
    x = torch.zeros(PROBE_BATCH, channels, image_size, image_size, device=device)
    with _untouched(ae, device):
        z = ae.encode(x)
        _expect(name, "encoder", z, (PROBE_BATCH, latent_dim), image_size, channels, latent_dim)
        x_hat = ae.decode(z)
        _expect(name, "decoder", x_hat, tuple(x.shape), image_size, channels, latent_dim)


def _expect(name: str, part: str, out: object, want: tuple[int, ...], image_size: int, channels: int,
            latent_dim: int) -> None:
    got = tuple(out.shape) if isinstance(out, Tensor) else None
    if got == want and out.is_floating_point():
        return
    gives = f"gives {got}" if got is not None else f"returns {_kind(out)}"
    if got is not None and got == want:
        gives = f"gives {out.dtype} values"
    raise WaeError(f"{label(name)}: its {part} {gives} for {channels}×{image_size}×{image_size} images with "
                   f"d = {latent_dim}; {contract(channels, image_size, latent_dim)} (float tensors)")


def _kind(obj: object) -> str:
    return f"a {type(obj).__module__}.{type(obj).__qualname__}".replace("a builtins.", "a ")


@contextlib.contextmanager
def _untouched(module: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode and no_grad in the block; afterwards each sub-module's mode
    and the process-global generators (torch's CPU one, the CUDA one of
    ``device``, NumPy's, Python's) are as before.  Only ``device``'s CUDA
    generator: touching another GPU's would open a context on it (each
    process of a torchrun on every GPU)."""
    modes = [(m, m.training) for m in module.modules()]
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            module.eval()
            yield
    finally:
        for m, training in modes:
            m.training = training
        np.random.set_state(np_state)
        random.setstate(py_state)
