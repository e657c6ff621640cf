"""Scores from features, through torch-fidelity's own functions.

- FID (Heusel et al. 2017, Eq. 6): ``||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½)``
  over Inception pool3 features -- ``torch_fidelity.metric_fid``.
- KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel,
  mean ± std over random subsets -- ``torch_fidelity.metric_kid``.
- Precision / recall (Kynkäänniemi et al. 2019, k = 3 nearest-neighbour
  balls) -- ``torch_fidelity.metric_prc``; generated first, real second.
- Inception Score (Salimans et al. 2016) -- ``torch_fidelity.metric_isc``.

Pure functions of tensors: no model, no cache, no files.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from wae_bench.errors import WaeError

Stats = dict[str, np.ndarray]


def statistics(features: Tensor) -> Stats:
    """``{"mu": mean, "sigma": covariance}`` of N×D features (torch-fidelity)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    if features.dim() != 2 or len(features) < 2:
        raise WaeError(f"FID needs at least 2 samples, got {len(features)}; raise --fid-samples")
    return fid_features_to_statistics(features.detach().cpu().float())


def frechet_distance(s1: Stats, s2: Stats) -> float:
    """Fréchet distance between two Gaussians given as statistics."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def few_images_note(n: int, dim: int) -> str | None:
    """The caution for an FID whose covariance comes from ``n`` images, fewer
    than the ``dim`` feature dimensions (singular, so the FID is biased high);
    None where ``n >= dim``.  `wae-bench eval` prints it, the bench table states it."""
    if n >= dim:
        return None
    return (f"FID from {n} images (fewer than the {dim} feature dimensions: a singular covariance, biased high); "
            f"compare it only with runs scored alike, never with a published FID")


def check_kid_size(n_gen: int, n_real: int, subset_size: int) -> None:
    """KID draws subsets of ``subset_size`` from each side without replacement
    (the reference side first: more samples cannot make up for it)."""
    if subset_size < 2:
        raise WaeError(f"KID subset size must be >= 2, got {subset_size}; pass --kid-subset-size 2 or more")
    if n_real < subset_size:
        raise WaeError(f"KID draws subsets of {subset_size} images from each side, but the reference split has "
                       f"only {n_real}; lower --kid-subset-size to {n_real} or less (more samples cannot help)")
    if n_gen < subset_size:
        raise WaeError(f"KID draws subsets of {subset_size} images from each side, but {n_gen} are generated; "
                       f"raise --fid-samples to {subset_size} or more, or lower --kid-subset-size")


def kid(f_gen: Tensor, f_real: Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 2020) -> dict[str, float]:
    """``{"kid_mean", "kid_std"}``; both sides need ``subset_size`` samples."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    check_kid_size(len(f_gen), len(f_real), subset_size)
    if subsets < 1:
        raise WaeError(f"KID needs at least 1 subset, got {subsets}; pass --kid-subsets 1 or more")
    out = kid_features_to_metric(f_gen.cpu(), f_real.cpu(), kid_subsets=subsets, kid_subset_size=subset_size,
                                 rng_seed=seed, verbose=False)
    return {"kid_mean": float(out[KEY_METRIC_KID_MEAN]), "kid_std": float(out[KEY_METRIC_KID_STD])}


def precision_recall(f_gen: Tensor, f_real: Tensor, k: int = 3) -> dict[str, float]:
    """``{"precision", "recall", "f_score"}`` with k-NN balls (k = 3)."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    if min(len(f_gen), len(f_real)) <= k:
        raise WaeError(f"precision/recall needs more than k={k} samples per side, got {len(f_gen)} generated and "
                       f"{len(f_real)} reference; raise --fid-samples")
    out = prc_features_to_metric(f_gen.cpu(), f_real.cpu(), prc_neighborhood=k, save_cpu_ram=True, verbose=False)
    return {"precision": float(out["precision"]), "recall": float(out["recall"]), "f_score": float(out["f_score"])}


def inception_score(logits: Tensor, splits: int = 10, seed: int = 2020) -> dict[str, float]:
    """``{"is_mean", "is_std"}`` from Inception logits."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    if len(logits) < splits:
        raise WaeError(f"the Inception Score needs at least {splits} samples, got {len(logits)}; raise --fid-samples")
    out = isc_features_to_metric(logits.cpu(), splits=splits, shuffle=True, rng_seed=seed)
    return {"is_mean": float(out[KEY_METRIC_ISC_MEAN]), "is_std": float(out[KEY_METRIC_ISC_STD])}


def stats_to_tensors(s: Stats) -> dict[str, Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in s.items()}


def stats_from_tensors(d: dict[str, Tensor]) -> Stats:
    return {"mu": d["mu"].numpy(), "sigma": d["sigma"].numpy()}
