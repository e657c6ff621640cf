"""Rebuild a trained model from its run directory (:mod:`wae_bench.run.directory`):
the resolved config saved in the checkpoint (else ``config.json``) ->
:func:`~wae_bench.run.build.resolve` -> :func:`~wae_bench.run.build.build_model`,
then a strict load of the newest loadable checkpoint's autoencoder and regularizer.
:class:`Loaded` holds them, with the run's latents, decoded images and samples
one call each (:meth:`Loaded.encode`, :meth:`Loaded.decode`, :meth:`Loaded.sample`:
the columns of :mod:`wae_bench.metrics.generate`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.markup import escape
from torch import Tensor

from wae_bench import expost, progress, worded
from wae_bench.data.batcher import to_float
from wae_bench.errors import WaeError
from wae_bench.launch import is_rank0
from wae_bench.metrics import generate
from wae_bench.nets import Autoencoder
from wae_bench.regularizer import Regularizer
from wae_bench.run import checkpoint
from wae_bench.run.build import Plan, build_model, pick_device
from wae_bench.run.directory import RunDir, saved_plan
from wae_bench.step.rng import global_generators_kept


@dataclass
class Loaded:
    """A run's model, in eval mode (:func:`load_model`): ``ae`` the
    autoencoder, ``reg`` the regularizer (its latent constraint and prior),
    ``plan.cfg`` the run's resolved settings, ``expost`` its fitted ex-post
    densities; :meth:`encode`, :meth:`decode` and :meth:`sample` the run's
    latents, images and samples one call each."""

    ae: Autoencoder
    reg: Regularizer
    plan: Plan
    checkpoint: Path
    step: int
    finished: bool
    expost: dict = field(default_factory=dict)   # {"n": density, "gmm": density}
    run_info: dict = field(default_factory=dict)  # config.json without "config"
    channels: int = 3                             # input channels of the encoder

    @property
    def device(self) -> torch.device:
        return next(self.ae.parameters()).device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C, H, W of the images the run encodes and decodes."""
        return self.channels, self.plan.cfg.image_size, self.plan.cfg.image_size

    def encode(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """The run's latents ``constrain(Enc(x))`` (N×d, float32, CPU) of
        ``images``, N×C×H×W of :attr:`image_shape`, uint8 in 0..255 or float
        in [0, 1]: what the ex-post densities are fitted to
        (:func:`wae_bench.expost.encode_all`; eval mode, no gradients)."""
        x = self._images(images)
        return expost.encode_all(self.ae, self.reg, x, limit=len(x), batch=_positive(batch_size, "batch_size"))

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Images ``Dec(constrain(z))`` clamped to [0, 1] (N×C×H×W, float32,
        CPU) of N×d latents, as the pictures and the FID take them."""
        d = self.plan.cfg.latent_dim
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != d or not z.is_floating_point():
            got = f"shape {tuple(z.shape)} {z.dtype}" if isinstance(z, Tensor) else f"a {type(z).__name__}"
            raise WaeError(f"decode takes float N×{d} latents (the run's latent_dim is {d}), got {got}")
        return self.ae.decode(self.reg.constrain(z.to(self.device, torch.float32))).clamp(0, 1).cpu()

    def sample(self, n: int, what: str = "samples", seed: int = 0, batch_size: int = 500) -> Tensor:
        """``n`` generated images, float in [0, 1] (N×C×H×W, CPU): the first
        ``n`` of column ``what`` as ``evaluate_run(seed=seed)`` scores them
        (:func:`wae_bench.metrics.generate.columns`, quantised to 1/255 as
        those are): ``"samples"`` from the prior, ``"n"`` / ``"gmm"`` from the
        ex-post Gaussian / GMM (``Dec(constrain(z))``, RAE Sec. 4), which a
        run fitted unless trained with ``"expost": []``."""
        n = _positive(n, "n")
        if what not in ("samples", *expost.COMPONENTS):
            raise WaeError(f"sample draws what='samples' (the prior), 'n' or 'gmm' (the ex-post densities), not "
                           f"{what!r}; reconstructions are decode(encode(images))")
        if what != "samples" and what not in self.expost:
            raise WaeError(f"the run {str(self.checkpoint.parent.parent)!r} has no ex-post {what!r} density (it "
                           f"was trained with expost={list(self.plan.cfg.expost)}); sample what='samples', or "
                           f"train with \"expost\": [\"n\", \"gmm\"]")
        (col,) = generate.columns([what], self.ae, self.reg, self.expost, None, n, seed, self.device)
        return to_float(generate.images(self.ae, col, _positive(batch_size, "batch_size")))

    def _images(self, images) -> Tensor:
        """``images`` if they are images of this run (:attr:`image_shape`,
        uint8 or float in [0, 1]), else one line naming what they are."""
        want = "×".join(map(str, self.image_shape))
        expected = f"pass N×{want} images (uint8 in 0..255 or float in [0, 1])"
        if not isinstance(images, Tensor):
            raise WaeError(f"images are a {type(images).__name__}, not a torch.Tensor; {expected}")
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise WaeError(f"images have shape {tuple(images.shape)} but the run takes N×{want}; {expected}"
                           + (" (N×H×W×C: x.permute(0, 3, 1, 2))" if images.dim() == 4
                              and images.shape[-1] == self.channels else ""))
        if images.dtype == torch.uint8:
            return images
        if not images.is_floating_point():
            raise WaeError(f"images are {images.dtype}; {expected}")
        lo, hi = float(images.min()), float(images.max())      # (NaN fails both comparisons: refused too)
        if not (0 <= lo and hi <= 1):
            raise WaeError(f"images are {images.dtype} with values in [{lo:.4g}, {hi:.4g}]; {expected} "
                           f"(0..255 floats: .div(255))")
        return images


def _positive(v, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise WaeError(f"{name} must be a whole number >= 1, got {v!r}")
    return v


def load_model(run_dir: str | Path, device: str | torch.device = "auto", trust: bool = False,
               on_skip: Callable[[str], None] | None = None) -> Loaded:
    """The run's model in eval mode on ``device`` ("auto": CUDA if available).
    An unreadable newest checkpoint is skipped for the one before it, and
    ``on_skip(warning)`` is told in one line
    (:func:`~wae_bench.run.checkpoint.skipped_text`; by default a warning on
    stderr from the main process: what is scored is then not the newest step).
    The process-global generators (torch, NumPy, Python's ``random``) are
    left as they were, although building the nets seeds them
    (:func:`~wae_bench.step.rng.global_generators_kept`).  Its refusals name
    the ``trust`` argument and ``train_run`` (:func:`wae_bench.worded.python`),
    not `wae-bench eval`'s flags."""
    with worded.python():
        return _load_model(run_dir, device, trust, on_skip)


def _load_model(run_dir, device, trust: bool, on_skip: Callable[[str], None] | None) -> Loaded:
    run = RunDir(run_path(run_dir))
    skipped: list[tuple[Path, str]] = []
    found = checkpoint.latest(run.path, trust, on_skip=lambda p, why: skipped.append((p, why)))
    if found is None:
        raise WaeError(_no_checkpoint(run))
    path, state = found
    for p, why in skipped:
        (on_skip or _warn)(checkpoint.skipped_text(p, why, "scoring", path, int(state.get("t", 0))))
    if isinstance(state.get("config"), dict):
        saved, source, version = state["config"], path, (state.get("versions") or {}).get("wae_bench")
    else:
        saved, source, version = run.saved_config(), run.config_path, run.written_by()
    if not saved:
        raise WaeError(f"checkpoint {str(path)!r} carries no config and config.json is missing; it cannot be "
                       f"rebuilt: re-run training")
    info = run.info()
    plan = saved_plan(saved, source, version, recorded=(state if source == path else info).get("versions"),
                      commit=info.get("source"))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    T = int(info.get("total_steps") or state.get("t") or 1)
    channels = _channels(state.get("ae") or {}, plan)
    with global_generators_kept():   # (building seeds the global generators; the caller's are left as they were)
        ae, reg = build_model(plan, channels, T, dev)
    for name, mod, sd in (("autoencoder", ae, state.get("ae")), ("regularizer", reg, state.get("reg"))):
        try:
            mod.load_state_dict(sd, strict=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise WaeError(f"checkpoint {str(path)!r} does not fit the {name} its config builds ({first[:120]}); "
                           f"evaluate it with the wae-bench version that trained it") from None
    ae.eval(), reg.eval()
    return Loaded(ae, reg, plan, path, int(state.get("t", 0)), bool(state.get("finished")),
                  dict(state.get("expost") or {}), info, channels)


def run_path(run_dir) -> Path:
    """``run_dir`` as a path, refused in one line unless it is an existing
    folder: a value that is no path, a file of a run (a checkpoint, its
    ``config.json``: the run's folder is named instead), a missing folder."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise WaeError(f"a run directory is a str or pathlib.Path, got {type(run_dir).__name__} {run_dir!r:.40}; pass "
                       f"the folder train_run returned (the --out of a `wae-bench run`)")
    path = Path(run_dir)
    if path.is_dir():
        return path
    if path.exists():
        owner = next((p for p in (path.parent, path.parent.parent) if RunDir(p).config_path.is_file()), None)
        if owner is not None:
            raise WaeError(f"{str(path)!r} is a file of the run {str(owner)!r}; pass the run directory: {owner}")
        lone = " (a checkpoint on its own loads from DIR/checkpoints/step-N.pt)" if path.suffix == ".pt" else ""
        raise WaeError(f"{str(path)!r} is a file, not a run directory; pass the --out of a `wae-bench run`{lone}")
    raise WaeError(f"run directory {str(path)!r} does not exist; pass the --out of a `wae-bench run`")


def _no_checkpoint(run: RunDir) -> str:
    """Why ``run`` has nothing to score, and what to pass instead: the run a
    checkpoints folder belongs to, a cell of a benchmark results folder, one
    of the runs a folder holds; a run with no checkpoint yet is to be trained."""
    path = str(run.path)
    if run.path.name == "checkpoints" and RunDir(run.path.parent).config_path.is_file():
        return (f"{path!r} is the checkpoints folder of the run {str(run.path.parent)!r}; pass the run directory: "
                f"wae-bench eval {run.path.parent}")
    if (run.path / "spec.json").is_file():
        return (f"{path!r} is a benchmark results folder, not a run; score one of its cells with "
                f"`wae-bench eval {run.path / 'cells' / 'CELL'}`, or show its table with `wae-bench table {path}`")
    if not run.config_path.is_file():
        runs = sorted(p.name for p in run.path.iterdir() if p.is_dir() and RunDir(p).config_path.is_file())
        if runs:
            shown = ", ".join(runs[:3]) + (f", ... ({len(runs)} in all)" if len(runs) > 3 else "")
            return (f"{path!r} is not a run but holds runs ({shown}); pass one of them, e.g. "
                    f"wae-bench eval {run.path / runs[0]}")
        return f"{path!r} is not a run directory (no config.json); pass the --out of a `wae-bench run`"
    return (f"run directory {path!r} has no checkpoint (checkpoints/step-N.pt); train it first with "
            + worded.flag_or_arg(f"`wae-bench run --out {path}` (or --resume)",
                                 f"train_run(overrides, {path!r}) (or {worded.resume_call(path)})"))


def _warn(text: str) -> None:
    if is_rank0():     # (torchrun: one line, not one per process)
        progress.notice(f"[yellow]warning:[/] {escape(text)}")


def _channels(ae_state: dict, plan: Plan) -> int:
    """Input channels: the first conv of the saved encoder (else the dataset's)."""
    for k, v in ae_state.items():
        if k.startswith("encoder.") and getattr(v, "dim", lambda: 0)() == 4:
            return int(v.shape[1])
    return plan.data.channels or 3
