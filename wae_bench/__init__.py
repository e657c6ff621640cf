"""wae-bench: Wasserstein-autoencoder latent regularizers as plugins, compared by FID.

Where things are:

- :mod:`wae_bench.regularizer`  the plugin contract; :mod:`wae_bench.registry` the registries
- :mod:`wae_bench.config`       every option, declared once (types, defaults, help)
- :mod:`wae_bench.losses`       the pure loss maths; :mod:`wae_bench.momentum` EMA helpers for plugins
- :mod:`wae_bench.run`          one run: built from its config, trained, its directory and checkpoints
- :mod:`wae_bench.step`         the training step, its loop and its speed-ups (CUDA graph, compile, DDP)
- :mod:`wae_bench.evaluate`     scoring a run (with :mod:`wae_bench.metrics`)
- :mod:`wae_bench.bench`        benchmark grids; :mod:`wae_bench.cli` the command line
"""
__version__ = "0.1.0"

from wae_bench.errors import WaeError  # noqa: F401
