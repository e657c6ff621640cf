"""`wae-bench run`: train one model in a run directory, resumable."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from rich.markup import escape

from wae_bench import checkpoint, expost
from wae_bench.compile import compile_nets, eager
from wae_bench.data import Batcher, holdout
from wae_bench.data.batcher import to_float
from wae_bench.distributed import Dist
from wae_bench.config import to_dict
from wae_bench.errors import WaeError
from wae_bench.nets import count_params
from wae_bench.progress import TrainProgress, console, stdout
from wae_bench.run import (RunDir, build, config_for, default_out, load_data, output_dir, pick_device, resolve,
                           total_steps, versions)
from wae_bench.trainer import NonFinite, Trainer, fit


@torch.no_grad()
def encode_all(ae, reg, images: torch.Tensor, limit: int = 10000, batch: int = 500) -> torch.Tensor:
    """Latents ``constrain(Enc(x))`` of the first ``limit`` images (eval mode)."""
    dev = next(ae.parameters()).device
    was = ae.training
    ae.eval()
    out = [reg.constrain(ae.encode(to_float(images[i:i + batch].to(dev)))).float().cpu()
           for i in range(0, min(limit, len(images)), batch)]
    ae.train(was)
    return torch.cat(out)


def train_run(overrides: dict, out: str | Path | None = None, *, resume: bool = False, force: bool = False,
              quiet: bool = False, trust: bool = False, notice: str | None = None) -> Path:
    """Train (or resume) one run; returns its directory.  ``notice`` is printed
    after the run's header line, once its settings and data have been checked
    (so a bad input is answered by its error alone)."""
    dist = Dist.from_env()
    run = RunDir(out) if out is not None else None
    if resume and run is None:
        raise WaeError("--resume needs --out RUN_DIR (the run directory to continue)")
    cfg = config_for(overrides, run, resume, force)
    plan = resolve(cfg, dist.world_size)
    cfg = plan.cfg
    run = run or RunDir(default_out(cfg))
    if not resume and run.path.exists() and any(run.path.iterdir()):
        what = "holds a run" if run.saved_config() is not None else "is not empty"
        raise WaeError(f"output directory {str(run.path)!r} {what}; pass --resume to continue it, "
                       f"or choose another --out")
    dist.barrier()   # every rank has checked the folder before rank 0 writes into it
    with output_dir(run.path, dist.is_main):
        device = dist.device if dist.enabled else pick_device(cfg.device)
        train, test = load_data(plan)
        spe, T = total_steps(cfg, len(train.images), dist.world_size)
        channels = train.images.shape[1]
        ae, reg = build(plan, channels, T, device, dist.world_size, sync_bn=cfg.sync_bn and dist.enabled)
        if cfg.channels_last:   # NHWC convolutions (tensor cores like them); same maths
            ae, reg = ae.to(memory_format=torch.channels_last), reg.to(memory_format=torch.channels_last)
        compile_nets(ae, reg, cfg.compile)
        trainer = Trainer(ae, reg, lr=cfg.lr, total_steps=T, precision=cfg.precision,
                          model=dist.wrap(ae), ctx=dist.context(T))
        dist.seed_rank(cfg.seed)   # equal initial weights; own prior samples / directions per rank
        start, finished = 0, False
        if resume:
            start, finished = _resume(trainer, run, cfg, trust, dist)
            finished = finished and start >= T      # --force with a larger max_steps/epochs trains on
        variant = cfg.data_variant or train.variant
        held = f" (+{cfg.holdout} held out)" if cfg.holdout else ""
        if dist.is_main:
            run.write_config(cfg, {"total_steps": T, "steps_per_epoch": spe, "n_train": len(train.images),
                                   "n_test": len(test.images), "data_variant": variant, "world_size": dist.world_size,
                                   "global_batch_size": cfg.batch_size * dist.world_size,
                                   "params": count_params(ae),
                                   **({"holdout": holdout.record(len(train.images), cfg.holdout, cfg.dataset)}
                                      if cfg.holdout else {}),
                                   **({"expost_fit": expost.fit_record(len(train.images), cfg.seed)}
                                      if cfg.expost else {})})
            stdout.print(f"[bold]{cfg.regularizer}[/] · {cfg.arch} ({count_params(ae) / 1e6:.2f}M params) · "
                         f"{cfg.dataset} \\[{variant}] {len(train.images)} train{held} / {len(test.images)} test · "
                         f"batch {cfg.batch_size} per process × {dist.world_size} = "
                         f"{cfg.batch_size * dist.world_size} · {T} steps ({_epochs_text(T, spe, cfg.epochs)}) · "
                         f"{device} · {escape(str(run.path))}", soft_wrap=True)
            if notice:
                console.print(notice, soft_wrap=True)
    batcher = Batcher(train.images, cfg.batch_size, cfg.seed, dist.rank, dist.world_size,
                      device if cfg.data_on_device else None)
    batch = batcher.batch if cfg.data_on_device else (lambda s: batcher.batch(s).to(device, non_blocking=True))
    if cfg.channels_last:
        fetch = batch
        batch = lambda s: fetch(s).contiguous(memory_format=torch.channels_last)  # noqa: E731

    def save(step: int, **extra) -> None:
        ranks = dist.gather_objects(trainer.rng_dict()) if dist.enabled else None   # (collective)
        if dist.is_main:
            state = {**trainer.state_dict(), "config": to_dict(cfg),
                     "versions": versions(), "world_size": dist.world_size, **extra}
            if ranks is not None:
                state["rng_ranks"] = ranks
            checkpoint.save(run.path / "checkpoints" / f"step-{step:08d}.pt", state)
            checkpoint.prune(run.path, cfg.keep_checkpoints)

    def log(step: int, m: dict) -> None:
        speed = bar.update(step, m)
        if dist.is_main:
            run.append_metrics({"step": step, **m, **speed, "time": time.time()})

    stopped = None
    if not finished and start < T and cfg.step_mode == "graph":
        from wae_bench.graph import capture_step

        trainer.step = capture_step(trainer, batch(start), world_size=dist.world_size)
    if not finished and start < T:
        with TrainProgress(T, start, cfg.batch_size * dist.world_size, quiet or not dist.is_main) as bar:
            try:
                stopped = fit(trainer, batch, start=start, total=T, steps_per_epoch=spe,
                              lr_halve_every=cfg.lr_halve_every, log_every=cfg.log_every, ckpt_every=cfg.ckpt_every,
                              ckpt_minutes=cfg.ckpt_minutes,
                              on_log=log, on_ckpt=save, agree=_any_rank(dist) if dist.enabled else None)
            except NonFinite as e:
                last = checkpoint.checkpoints(run.path)
                kept = f"the last good checkpoint, {str(last[-1])!r}, is kept" if last else "no checkpoint was written"
                raise NonFinite(f"{e} ({kept})") from None
    if stopped:
        raise Stopped(stopped, int(trainer.t), run.path)
    with eager(ae, reg):   # the work after training: forward-only, new batch sizes (see compile.eager)
        if not finished:
            dens = {}
            if cfg.expost and dist.is_main:
                idx = expost.fit_indices(len(train.images), cfg.seed)
                lat = encode_all(ae, reg, train.images[idx], limit=len(idx))
                dens = {k: expost.fit(lat, k, seed=cfg.seed) for k in cfg.expost}
            save(T, finished=True, expost=dens)
        if dist.is_main:
            from wae_bench.pictures import spread, write_grids  # (imports torchvision: only when needed)

            write_grids(ae, reg, to_float(spread(test.images)), run.path, seed=cfg.seed)
    dist.barrier()   # the final checkpoint exists before any rank evaluates it
    return run.path


def _any_rank(dist: Dist):
    """``flags -> for each flag, whether any rank raised it`` (one all-reduce; DDP only)."""
    import torch.distributed as td

    def agree(*flags: bool) -> tuple[bool, ...]:
        t = torch.tensor([int(f) for f in flags], device=dist.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())
    return agree


class Stopped(WaeError):
    """SIGINT/SIGTERM stopped training between two steps, after a checkpoint;
    exit status 128 + the signal number, as the shell reports a killed job."""

    def __init__(self, signame: str, step: int, path: Path):
        super().__init__(f"stopped by {signame} at step {step}; checkpoint saved in {str(path)!r}; "
                         f"continue with: wae-bench run --resume --out {path}")
        self.exit_code = 128 + int(signal.Signals[signame])


def _resume(trainer, run, cfg, trust: bool, dist: Dist) -> tuple[int, bool]:
    """Load the newest good checkpoint of ``run`` into ``trainer``; returns
    (step, finished).  Metric lines after that step are dropped, temp files of
    a killed write removed; an unreadable newest checkpoint is skipped with a
    warning.  No checkpoint yet (killed before the first): start at step 0.
    Under DDP each rank takes back its own random state."""
    main = dist.is_main
    if main:
        checkpoint.clean_temp(run.path / "checkpoints")
        checkpoint.clean_temp(run.path)

    skipped: list[str] = []
    found = checkpoint.latest(run.path, trust, on_skip=lambda p, why: skipped.append(why))
    if found is None:
        if main:
            run.truncate_metrics(0)
        return 0, False
    path, state = found
    for why in skipped if main else []:
        console.print(f"[yellow]warning:[/] skipping {escape(why)}; resuming from {escape(str(path))}",
                      soft_wrap=True)
    _check_same(state, cfg, path)
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise WaeError(f"checkpoint {str(path)!r} does not fit this model ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:120]}); resume with the run's own settings or start a new --out") \
            from None
    ranks = state.get("rng_ranks")
    if dist.enabled and ranks and len(ranks) == dist.world_size:
        trainer.load_rng(ranks[dist.rank])
    saved_ws = int(state.get("world_size", 1))
    if saved_ws != dist.world_size and main:
        console.print(f"[yellow]warning:[/] resuming a run of {saved_ws} process(es) on {dist.world_size}: the "
                      f"global batch and random streams change, so the result will differ", soft_wrap=True)
    now = versions()
    old = {k: v for k, v in (state.get("versions") or {}).items() if now.get(k) != v}
    if old and main:
        console.print(f"[yellow]warning:[/] resuming a checkpoint written with "
                      f"{', '.join(f'{k} {v} (now {now.get(k)})' for k, v in old.items())}; the result may "
                      f"differ from an uninterrupted run", soft_wrap=True)
    step = int(state["t"])
    if main:
        run.truncate_metrics(step)
    return step, bool(state.get("finished"))


def _check_same(state: dict, cfg, path: Path) -> None:
    saved = state.get("config", {})
    for key in ("regularizer", "arch", "latent_dim", "image_size"):
        if key in saved and saved[key] != getattr(cfg, key):
            raise WaeError(f"checkpoint {str(path)!r} is of {key} {saved[key]!r}, not {getattr(cfg, key)!r}; "
                           f"resume with the run's own settings or start a new --out")


def _epochs_text(T: int, spe: int, epochs: int) -> str:
    """``30 epochs``, or ``max_steps: 1.3 of 30 epochs`` when max_steps cuts the run short."""
    total = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    return total if T >= epochs * spe else f"max_steps: {T / spe:.3g} of {total}"
