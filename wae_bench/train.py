"""`wae-bench run`: train one model in a run directory, resumable."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from wae_bench import checkpoint, expost
from wae_bench.data import Batcher
from wae_bench.data.batcher import to_float
from wae_bench.distributed import Dist
from wae_bench.errors import WaeError
from wae_bench.nets import count_params
from wae_bench.pictures import write_grids
from wae_bench.progress import TrainProgress, console
from wae_bench.run import (RunDir, build, check_writable, config_for, default_out, load_data, pick_device,
                           resolve, total_steps, versions)
from wae_bench.trainer import Trainer, fit


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
              quiet: bool = False, trust: bool = False) -> Path:
    """Train (or resume) one run; returns its directory."""
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
    if dist.is_main:
        check_writable(run.path)
    device = dist.device if dist.enabled else pick_device(cfg.device)
    train, test = load_data(plan)
    spe, T = total_steps(cfg, len(train.images), dist.world_size)
    channels = train.images.shape[1]
    ae, reg = build(plan, channels, T, device, dist.world_size, sync_bn=cfg.sync_bn and dist.enabled)
    trainer = Trainer(ae, reg, lr=cfg.lr, total_steps=T, precision=cfg.precision,
                      model=dist.wrap(ae), ctx=dist.context(T))
    start, finished = 0, False
    if resume:
        found = checkpoint.latest(run.path, trust)
        if found is not None:
            path, state = found
            _check_same(state, cfg, path)
            trainer.load_state_dict(state)
            start, finished = int(state["t"]), bool(state.get("finished"))
            if dist.is_main:
                run.truncate_metrics(start)
    variant = cfg.data_variant or train.variant
    if dist.is_main:
        run.write_config(cfg, {"total_steps": T, "steps_per_epoch": spe, "n_train": len(train.images),
                               "n_test": len(test.images), "data_variant": variant, "world_size": dist.world_size,
                               "global_batch_size": cfg.batch_size * dist.world_size,
                               "params": count_params(ae)})
        console.print(f"[bold]{cfg.regularizer}[/] · {cfg.arch} ({count_params(ae) / 1e6:.2f}M params) · "
                      f"{cfg.dataset} [{variant}] {len(train.images)} train / {len(test.images)} test · "
                      f"batch {cfg.batch_size} per process × {dist.world_size} = {cfg.batch_size * dist.world_size} · "
                      f"{T} steps ({cfg.epochs} epochs) · {device} · {run.path}")
    batcher = Batcher(train.images, cfg.batch_size, cfg.seed, dist.rank, dist.world_size,
                      device if cfg.data_on_device else None)
    batch = batcher.batch if cfg.data_on_device else (lambda s: batcher.batch(s).to(device, non_blocking=True))

    def save(step: int, **extra) -> None:
        if dist.is_main:
            state = {**trainer.state_dict(), "config": json.loads(json.dumps(_cfg_dict(cfg))),
                     "versions": versions(), **extra}
            checkpoint.save(run.path / "checkpoints" / f"step-{step:08d}.pt", state)
            checkpoint.prune(run.path, cfg.keep_checkpoints)

    def log(step: int, m: dict) -> None:
        speed = bar.update(step, m)
        if dist.is_main:
            run.append_metrics({"step": step, **m, **speed, "time": time.time()})

    stopped = None
    if not finished and start < T:
        with TrainProgress(T, start, cfg.batch_size * dist.world_size, quiet or not dist.is_main) as bar:
            stopped = fit(trainer, batch, start=start, total=T, steps_per_epoch=spe,
                          lr_halve_every=cfg.lr_halve_every, log_every=cfg.log_every, ckpt_every=cfg.ckpt_every,
                          on_log=log, on_ckpt=save)
    if stopped:
        raise WaeError(f"stopped by {stopped} at step {int(trainer.t)}; checkpoint saved in {str(run.path)!r}; "
                       f"continue with: wae-bench run --resume --out {run.path}")
    if not finished:
        dens = {}
        if cfg.expost and dist.is_main:
            lat = encode_all(ae, reg, train.images)
            dens = {k: expost.fit(lat, k, seed=cfg.seed) for k in cfg.expost}
        save(T, finished=True, expost=dens)
    if dist.is_main:
        write_grids(ae, reg, to_float(test.images[:64]), run.path, seed=cfg.seed)
    return run.path


def _cfg_dict(cfg) -> dict:
    from wae_bench.config import to_dict

    return to_dict(cfg)


def _check_same(state: dict, cfg, path: Path) -> None:
    saved = state.get("config", {})
    for key in ("regularizer", "arch", "latent_dim", "image_size"):
        if key in saved and saved[key] != getattr(cfg, key):
            raise WaeError(f"checkpoint {str(path)!r} is of {key} {saved[key]!r}, not {getattr(cfg, key)!r}; "
                           f"resume with the run's own settings or start a new --out")
