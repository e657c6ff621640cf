"""Architectures: the autoencoder type and the built-in nets (a1, a2, tiny).

Registered through the ``wae_bench.architectures`` entry points like any
third-party architecture; each entry is an :class:`ArchSpec`.
"""
from wae_bench.nets.base import ArchSpec, Autoencoder, build_arch, count_params  # noqa: F401
