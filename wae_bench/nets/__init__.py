"""Architectures: the autoencoder type and the built-in nets (a1, a2, tiny).

Registered through the ``wae_bench.architectures`` entry points like any
third-party architecture; each entry is an :class:`ArchSpec`.

- :mod:`~wae_bench.nets.base`  the :class:`Autoencoder` container and the :class:`ArchSpec` that builds one
- :mod:`~wae_bench.nets.contract`  the probe forward that checks a built net's shapes against the contract
- :mod:`~wae_bench.nets.a1`    A1, the WAE CNN with batch norm (MoCA App. A)
- :mod:`~wae_bench.nets.a2`    A2, the ResNet-18 autoencoder (MoCA App. A)
- :mod:`~wae_bench.nets.tiny`  a two-layer conv autoencoder for tests and the embedded digits
"""
from wae_bench.nets.base import ArchSpec, Autoencoder, build_arch, count_params  # noqa: F401
