"""wae-bench: Wasserstein-autoencoder latent regularizers as plugins, compared by FID.

Where things are (the shape and the step order: docs/architecture.md; driving it
from Python, a notebook: docs/python-api.md -- :func:`wae_bench.run.train.train_run`,
:func:`wae_bench.evaluate.evaluate_run`, :func:`wae_bench.evaluate.load_results`,
:func:`wae_bench.run.reload.load_model`, :func:`wae_bench.run.directory.read_metrics`,
:func:`wae_bench.metrics.fid_of`, each also importable from here: ``from wae_bench
import train_run``):

- :mod:`wae_bench.regularizer`  the plugin contract; :mod:`wae_bench.registry` the registries
- :mod:`wae_bench.plugin_check` the contract's checks (``wae-bench check-plugin``, tests/test_contract.py);
  :mod:`wae_bench.plugin_fault` whether an error came from a plugin's own code (the line that says so);
  :mod:`wae_bench.plugin_imports` the plugin files and modules a command imports first (``--plugin``, ``$WAE_BENCH_PLUGINS``)
- :mod:`wae_bench.config`       every option, declared once (types, defaults, help)
- :mod:`wae_bench.losses`       the pure loss maths; :mod:`wae_bench.momentum` EMA helpers for plugins;
  :mod:`wae_bench.priors` the Gaussian prior's Config and the WAE paper's σ_z and λ, for plugins
- :mod:`wae_bench.nets`         the autoencoder type and the built-in architectures (a1, a2, tiny)
- :mod:`wae_bench.data`         datasets as whole tensors, the seeded batcher, the hold-out
- :mod:`wae_bench.run`          one run: built from its config, trained, its directory and checkpoints
- :mod:`wae_bench.step`         the training step, its loop and its speed-ups (CUDA graph, compile, DDP)
- scoring a finished run: :mod:`wae_bench.evaluate` (what is scored, its protocol), with
  :mod:`wae_bench.metrics` (generation, features, FID/KID/PR, reference statistics, diagnostics),
  :mod:`wae_bench.expost` (RAE's ex-post densities, fitted after training),
  :mod:`wae_bench.results` (``results.json``, merged, never losing a score) and
  :mod:`wae_bench.pictures` (sample, reconstruction and interpolation grids)
- :mod:`wae_bench.bench`        benchmark grids; :mod:`wae_bench.cli` the command line;
  :mod:`wae_bench.progress` progress bars and plain progress lines
- plumbing: :mod:`wae_bench.errors` (:class:`WaeError`, one-line errors), :mod:`wae_bench.atomic`
  (crash-safe writes), :mod:`wae_bench.lock` (one process per folder), :mod:`wae_bench.interrupt`
  (stopping on SIGINT/SIGTERM with the command that continues), :mod:`wae_bench.launch` (a torchrun
  launch as the environment says it: which process speaks, commands that are none), :mod:`wae_bench.formats` (the format
  versions files name: a newer wae-bench's file is refused in one line, never taken for a damaged one),
  :mod:`wae_bench.requirements` (a declared package not installed: the one line naming it),
  :mod:`wae_bench.worded` (who an error's fix is worded for: a run, a bench cell and its folder, or a
  caller of the Python API)
"""
# The one source of the version: pyproject.toml reads it ([tool.setuptools.dynamic]); a bump is
# docs/maintaining.md's "Releasing".
__version__ = "0.1.0"

from wae_bench.errors import WaeError  # noqa: F401

# The Python API's entry points (docs/python-api.md), imported on first use: `import wae_bench` stays light.
_API = {"train_run": "wae_bench.run.train", "evaluate_run": "wae_bench.evaluate",
       "load_results": "wae_bench.evaluate", "load_model": "wae_bench.run.reload",
       "read_metrics": "wae_bench.run.directory", "fid_of": "wae_bench.metrics.tensor_fid"}
__all__ = ["WaeError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
