"""wae-bench: Wasserstein-autoencoder latent regularizers as plugins, compared by FID.

The plugin contract lives in :mod:`wae_bench.regularizer`; the registries in
:mod:`wae_bench.registry`; one training step in :mod:`wae_bench.trainer`.
"""
__version__ = "0.1.0"

from wae_bench.errors import WaeError  # noqa: F401
