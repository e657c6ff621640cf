"""Train one run in its directory: a new run, or the resumption of a killed
or stopped one, then the work after training (ex-post densities, the final
checkpoint, picture grids).  What `wae-bench run` and each bench cell call."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as td
from rich.markup import escape

from wae_bench import atomic, expost, lock, pictures
from wae_bench.atomic import WriteFailed
from wae_bench.data import holdout
from wae_bench.config import to_dict
from wae_bench.data.batcher import to_float
from wae_bench.errors import WaeError, is_out_of_memory
from wae_bench.interrupt import Stopped, stop_at_once
from wae_bench.nets import count_params
from wae_bench.progress import TrainProgress, console, stdout
from wae_bench.run import checkpoint, memory
from wae_bench.run.build import Plan, Run, batches, build_run, load_data, pick_device, total_steps
from wae_bench.run.directory import RunDir, default_out, output_dir, plan_for, versions
from wae_bench.step.compile import eager
from wae_bench.step.distributed import Dist
from wae_bench.step.loop import fit
from wae_bench.step.trainer import NonFinite


def train_run(overrides: dict, out: str | Path | None = None, *, resume: bool = False, force: bool = False,
              quiet: bool = False, trust: bool = False, notice: str | None = None) -> Path:
    """Train (or resume) one run; returns its directory.  ``notice`` is printed
    after the run's header line, once its settings and data have been checked
    (so a bad input is answered by its error alone).

    The run folder is locked for the whole call (:mod:`wae_bench.lock`); a
    new run that fails before its first checkpoint takes back what it wrote
    (:meth:`~wae_bench.run.directory.RunDir.discard_unstarted`), so the same
    command can be run again."""
    dist = Dist.from_env()
    if resume and out is None:
        raise WaeError("--resume needs --out RUN_DIR (the run directory to continue)")
    plan = None if resume else plan_for(overrides, None, False, force, dist.world_size)
    run = RunDir(out if out is not None else default_out(plan.cfg))
    with output_dir(run.path, dist.is_main), _locked(run.path, dist):
        if resume:
            plan = plan_for(overrides, run, True, force, dist.world_size)
        elif run.contents():
            if run.holds_run():
                raise WaeError(f"output directory {str(run.path)!r} holds a run; pass --resume to continue it, "
                               f"or choose another --out")
            raise WaeError(f"output directory {str(run.path)!r} is not empty and is not a run folder; choose "
                           f"another --out (or an empty folder)")
        dist.barrier()   # every rank has checked the folder before rank 0 writes into it
        try:
            return _train(plan, run, dist, resume=resume, quiet=quiet, trust=trust, notice=notice)
        except BaseException as e:
            if dist.is_main and not resume and not checkpoint.checkpoints(run.path):
                run.discard_unstarted()
            if isinstance(e, WriteFailed):
                raise WriteFailed(f"{e}; {_then_resume(run.path)}") from None
            if isinstance(e, Exception) and not isinstance(e, WaeError) and is_out_of_memory(e):
                raise WaeError(f"out of memory ({_first_line(e)}); lower --batch-size, or choose a smaller --arch "
                               f"or latent_dim, {_then_resume(run.path)}") from None
            raise


def _locked(path: Path, dist: Dist):
    """The run folder's lock (held by the main process of a torchrun job)."""
    if not dist.is_main:
        return contextlib.nullcontext()
    return lock.hold(path, "wae-bench run", what="run directory",
                     fix="wait for it to finish (or stop it), or choose another --out")


def _train(plan: Plan, run: RunDir, dist: Dist, *, resume: bool, quiet: bool, trust: bool,
           notice: str | None) -> Path:
    cfg = plan.cfg
    device = pick_device(cfg.device, dist)
    train, test = load_data(plan)
    batcher, batch = batches(plan, train.images, device, dist)
    spe, T = batcher.steps_per_epoch, total_steps(cfg, batcher)
    memory.check(plan, train.images.shape[1], T, device,
                 train.images.numel() * train.images.element_size() if cfg.data_on_device else 0)
    try:
        built = build_run(plan, channels=train.images.shape[1], total_steps=T, device=device, dist=dist)
    except Exception as e:
        if is_out_of_memory(e):
            raise WaeError(f"out of memory building the model ({_first_line(e)}); lower the settings that size "
                           f"it (--arch, latent_dim, the regularizer's; `wae-bench list`)") from None
        raise
    trainer = built.trainer
    start, finished = 0, False
    if resume:
        start, finished = _resume(trainer, run, cfg, trust, dist)
        finished = finished and start >= T      # --force with a larger max_steps/epochs trains on
    variant = cfg.data_variant or train.variant
    held = f" (+{cfg.holdout} held out)" if cfg.holdout else ""
    if dist.is_main:
        params = count_params(built.ae)
        run.write_config(cfg, {"total_steps": T, "steps_per_epoch": spe, "n_train": len(train.images),
                               "n_test": len(test.images), "data_variant": variant, "world_size": dist.world_size,
                               "global_batch_size": cfg.batch_size * dist.world_size, "params": params,
                               **({"holdout": holdout.record(len(train.images), cfg.holdout, cfg.dataset)}
                                  if cfg.holdout else {}),
                               **({"expost_fit": expost.fit_record(len(train.images), cfg.seed)}
                                  if cfg.expost else {})})
        stdout.print(f"[bold]{cfg.regularizer}[/] · {cfg.arch} ({params / 1e6:.2f}M params) · "
                     f"{cfg.dataset} \\[{variant}] {len(train.images)} train{held} / {len(test.images)} test · "
                     f"batch {cfg.batch_size} per process × {dist.world_size} = "
                     f"{cfg.batch_size * dist.world_size} · {T} steps ({_epochs_text(T, spe, cfg.epochs)}) · "
                     f"{device} · {escape(str(run.path))}", soft_wrap=True)
        if notice:
            console.print(notice, soft_wrap=True)

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
    try:
        if not finished and start < T:
            built.capture(batch(start))
            with TrainProgress(T, start, cfg.batch_size * dist.world_size, quiet or not dist.is_main) as bar:
                stopped = fit(trainer, batch, start=start, total=T, steps_per_epoch=spe,
                              lr_halve_every=cfg.lr_halve_every, log_every=cfg.log_every,
                              ckpt_every=cfg.ckpt_every, ckpt_minutes=cfg.ckpt_minutes,
                              on_log=log, on_ckpt=save, agree=_any_rank(dist) if dist.enabled else None)
        if stopped:
            raise Stopped(stopped, f"at step {int(trainer.t)}; checkpoint saved in {str(run.path)!r}; "
                                   f"continue with: wae-bench run --resume --out {run.path}")
        with stop_at_once(f"after training (step {T}), before the run was finished (ex-post fit, final "
                          f"checkpoint, pictures); finish it with: wae-bench run --resume --out {run.path}"):
            _finish(built, T, train.images, test.images, run.path, finished, save)
    except NonFinite as e:
        raise NonFinite(f"{e} ({_kept(run.path)})") from None
    dist.barrier()   # the final checkpoint exists before any rank evaluates it
    return run.path


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:160]


def _kept(path: Path) -> str:
    last = checkpoint.checkpoints(path)
    return f"the last good checkpoint, {str(last[-1])!r}, is kept" if last else "no checkpoint was written"


def _then_resume(path: Path) -> str:
    """How to go on after fixing the cause: resume, if a checkpoint exists."""
    if checkpoint.checkpoints(path):
        return f"then continue with: wae-bench run --resume --out {path}"
    return "then rerun the same command (no checkpoint had been written)"


def _finish(built: Run, T: int, train_x: torch.Tensor, test_x: torch.Tensor, out: Path, finished: bool,
            save: Callable[..., None]) -> None:
    """The work after training: forward-only, new batch sizes, so eager (see
    :func:`~wae_bench.step.compile.eager`): the ex-post densities of the
    training latents in the final checkpoint, then the picture grids."""
    cfg, dist, ae, reg = built.plan.cfg, built.dist, built.ae, built.reg
    with eager(ae, reg):
        if not finished:
            dens = {}
            if cfg.expost and dist.is_main:
                idx = expost.fit_indices(len(train_x), cfg.seed)
                lat = expost.encode_all(ae, reg, train_x[idx], limit=len(idx))
                dens = {k: expost.fit(lat, k, seed=cfg.seed) for k in cfg.expost}
            save(T, finished=True, expost=dens)
        if dist.is_main:
            pictures.write_grids(ae, reg, to_float(pictures.spread(test_x)), out, seed=cfg.seed)


def _any_rank(dist: Dist):
    """``flags -> for each flag, whether any rank raised it`` (one all-reduce; DDP only)."""
    def agree(*flags: bool) -> tuple[bool, ...]:
        t = torch.tensor([int(f) for f in flags], device=dist.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())
    return agree


def _resume(trainer, run, cfg, trust: bool, dist: Dist) -> tuple[int, bool]:
    """Load the newest good checkpoint of ``run`` into ``trainer``; returns
    (step, finished).  Metric lines after that step are dropped, temp files of
    a killed write removed; an unreadable newest checkpoint is skipped with a
    warning.  No checkpoint yet (killed before the first): start at step 0.
    Under DDP each rank takes back its own random state."""
    main = dist.is_main
    if main:
        atomic.clean_temp(run.path / "checkpoints")
        atomic.clean_temp(run.path)

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
