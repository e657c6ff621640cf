"""Train one run in its directory: a new run, or the resumption of a killed
or stopped one, then the work after training (ex-post densities, the final
checkpoint, picture grids).  What `wae-bench run` and each bench cell call."""
from __future__ import annotations

import contextlib
import json
import shlex
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as td
from rich.markup import escape

from wae_bench import atomic, expost, lock, pictures, progress, requirements, worded
from wae_bench.atomic import WriteFailed
from wae_bench.data import holdout
from wae_bench.config import TrainConfig, key_of, to_dict
from wae_bench.data.batcher import to_float
from wae_bench.errors import WaeError, is_out_of_memory
from wae_bench.interrupt import Stopped, at_once, finishing, stop_at_once
from wae_bench.nets import count_params
from wae_bench.progress import TrainProgress, phase, stdout
from wae_bench.run import checkpoint, fingerprint, memory, tensorboard
from wae_bench.run.build import Plan, Run, batches, build_run, load_data, optional_modules, pick_device, total_steps
from wae_bench.run.directory import (RunDir, changes, check_outside_runs, mixed_settings, output_dir, run_folder,
                                     plan_for, refused_entry_points, resolved, run_versions, saved_resolved)
from wae_bench.step.compile import eager
from wae_bench.step.distributed import Dist
from wae_bench.step.loop import StopFlag, Stepper
from wae_bench.step.rng import global_generators_kept
from wae_bench.step.trainer import NonFinite, cudnn_benchmark_kept


def train_run(overrides: dict | TrainConfig, out: str | Path | None = None, *, resume: bool = False,
              force: bool = False, quiet: bool = False, trust: bool = False,
              before: Callable[[Plan], str | None] | None = None) -> Path:
    """Train (or resume) one run; returns its directory.  ``overrides``: the
    config keys set on the defaults, a dict as a TOML config or ``--set``
    gives them (``{"max_steps": 100, "reg": {"lambda": 10}}``), or a whole
    :class:`~wae_bench.config.TrainConfig` (every field of it; on
    ``resume``, a field that differs from the run's is refused unless
    ``force``, as an override is).  ``before(plan)``
    (the check of the evaluation settings, given the run's resolved
    :class:`~wae_bench.run.build.Plan`) is called once the run's settings
    and data have been checked, before training (so a bad input is answered
    by its error alone); the notice it returns is printed after the run's
    header line.

    The run folder is locked for the whole call (:mod:`wae_bench.lock`); a
    new run that fails before its first checkpoint takes back what it wrote
    (:meth:`~wae_bench.run.directory.RunDir.discard_unstarted`), so the same
    command can be run again.  SIGINT or SIGTERM stops the run after its
    current step, with a checkpoint, and raises
    :class:`~wae_bench.interrupt.Stopped`, a ``KeyboardInterrupt`` (a
    caller's ``except Exception`` lets it through); a repeated signal stops
    it at once, a ``Stopped`` that says what is kept (:func:`_stopped_at_once`).  The caller's global
    state is left as it was, after a failure or a stop too: the global random
    generators the build seeds (:func:`~wae_bench.step.rng.global_generators_kept`)
    and ``torch.backends.cudnn.benchmark``, which a CUDA run turns on
    (:func:`~wae_bench.step.trainer.cudnn_benchmark_kept`).  Its refusals name
    these arguments (``out``, ``resume=True``, ``force=True``, ``trust=True``,
    the overrides' keys; :func:`wae_bench.worded.python`), not the flags of
    `wae-bench run`, which calls it inside :func:`wae_bench.worded.cli`."""
    with worded.python(), global_generators_kept(), cudnn_benchmark_kept():
        t = Training(overrides, out, resume=resume, force=force, quiet=quiet, trust=trust, before=before)
        with StopFlag() as stop:
            try:
                t.begin(stop)
                while not t.over:
                    t.advance()
            except KeyboardInterrupt as e:   # (a bench says a cell's repeated signal in its own words)
                if isinstance(e, Stopped) or not stop.raised or worded.now().bench:
                    raise
                raise _stopped_at_once(t.run.path, t.dist.world_size) from None
        return t.finish()


def check_expost_installed(cfg: TrainConfig) -> None:
    """The ex-post fit after training (``expost``) imports scikit-learn: a
    run without it is refused before its first step (not after its last), in
    the missing-package line with the other way out, fitting none (unless the
    dataset needs the package too: the embedded digits)."""
    needs = optional_modules(to_dict(cfg))
    for module, key in needs:
        line = requirements.not_installed(module) if key == "expost" else None
        if line:
            raise WaeError(line if (module, "dataset") in needs else
                           f"{line}, or leave out the ex-post fit after training with {_no_expost()}")


def _no_expost() -> str:
    """``--set expost=[]``, in the words of a bench's spec or a call of the Python API."""
    if worded.now().bench:
        return "--set train.expost=[]"
    return worded.flag_or_arg("--set expost=[]", f"the overrides' {worded.overrides('expost', '[]')}")


class Training:
    """One run's training in phases, so that one process can interleave
    several (``bench --concurrent``) as :func:`train_run` loops over one:

    - construction: the checks on the settings and ``out``, the run folder's
      lock, the data, the memory check, the build, ``before`` (the
      evaluation settings' check), the resume of a checkpoint,
      ``config.json``, the header line and the TensorBoard log
      (``log = "tensorboard"``);
    - :meth:`begin`: the step captured as a CUDA graph if asked, the progress bar;
    - :meth:`advance`: one step (logs and checkpoints when due);
    - :meth:`finish`: the work after training (or :class:`Stopped` after a
      stop); then the folder is released.

    A phase that fails releases the folder (a new run without a checkpoint
    takes back what it wrote) and raises the failure, worded for the user
    (out of memory, a failed write: how to go on); :meth:`release` lets go of
    a run that is left as it is (a stopped grid)."""

    def __init__(self, overrides: dict | TrainConfig, out: str | Path | None = None, *, resume: bool = False,
                 force: bool = False, quiet: bool = False, trust: bool = False,
                 before: Callable[[Plan], str | None] | None = None):
        overrides = _config_keys(overrides)
        self.dist = dist = Dist.from_env()
        if resume and out is None:
            raise WaeError(f"{worded.flag_or_arg('--resume needs --out RUN_DIR', 'resume=True needs out')} (the run "
                           f"directory to continue)")
        if force and not resume:   # (a new run has no config of its own to differ from; it never replaces one)
            raise WaeError(worded.flag_or_arg(
                "--force goes with --resume: it continues a run with a changed config; add --resume, or drop --force "
                "(a new run needs an empty or new --out)",
                "force=True goes with resume=True: it continues a run with a changed config; add resume=True, or "
                "drop force=True (a new run needs an empty or new out folder)"))
        plan = None if resume else plan_for(overrides, None, False, force, dist.world_size)
        self.run = run = RunDir(run_folder(out, plan))
        if not resume:
            check_outside_runs(run.path)
        self.resume, self.quiet, self.force = resume, quiet, force
        self.stepper: Stepper | None = None
        self.bar: TrainProgress | None = None
        self.signal: StopFlag | None = None
        self._armed = False            # set once the folder is ours: a failure then takes back an unstarted run
        self._held = contextlib.ExitStack()
        self._held.enter_context(output_dir(run.path, dist.is_main, resume))
        with self._phase():            # (the lock and the checks: a refusal leaves the folder as it is)
            self._held.enter_context(_locked(run.path, dist))
            if resume:
                plan = plan_for(overrides, run, True, force, dist.world_size)
            elif run.contents():
                if run.holds_run():
                    raise WaeError(_holds_run(run, plan, dist.world_size))
                raise WaeError(f"output directory {str(run.path)!r} is not empty and is not a run folder; choose "
                               f"{_another_out()} (or an empty folder)")
            dist.barrier()   # every rank has checked the folder before rank 0 writes into it
        self._armed = True
        with self._phase():
            self._open(plan, trust, before)

    def _open(self, plan: Plan, trust: bool, before: Callable[[Plan], str | None] | None) -> None:
        self.cfg = cfg = plan.cfg
        dist, run = self.dist, self.run
        self.tb: tensorboard.TrainingLog | None = None
        if cfg.log == "tensorboard":
            tensorboard.check_installed()
        check_expost_installed(cfg)
        self.device = device = pick_device(cfg.device, dist)
        self.train, self.test = train, test = load_data(plan)
        # a resume continues on the data the run started on (one with no checkpoint yet starts afresh)
        continues = self.resume and bool(checkpoint.checkpoints(run.path))
        data = fingerprint.of(train.images, test.images, cfg.holdout) if continues or dist.is_main else None
        data_warning = fingerprint.check(run.info(), data, _data_place(cfg), self.force) if continues else None
        self.batcher, self.batch = batches(plan, train.images, device, dist)
        self.spe, self.T = spe, T = self.batcher.steps_per_epoch, total_steps(cfg, self.batcher)
        memory.check(plan, train.images.shape[1], T, device,
                     train.images.numel() * train.images.element_size() if cfg.data_on_device else 0)
        try:
            self.built = build_run(plan, channels=train.images.shape[1], total_steps=T, device=device, dist=dist)
        except Exception as e:
            if is_out_of_memory(e):
                sizes = worded.flag_or_arg("--arch, latent_dim, the regularizer's",
                                           "arch, latent_dim, the regularizer's under \"reg\"")
                raise WaeError(f"out of memory building the model ({_first_line(e)}); lower the settings that "
                               f"size it ({sizes}; `wae-bench list`)") from None
            raise
        notice = before(plan) if before else None
        self.trainer = trainer = self.built.trainer
        self.start, self.finished = 0, False
        resumed = resumed_from = None
        if self.resume:
            self.start, finished, resumed_from = _resume(trainer, run, cfg, trust, dist)
            self.finished = finished and self.start >= T   # --force with a larger max_steps/epochs trains on
            resumed = _resumed_text(self.start, resumed_from, run.path)
        if not dist.is_main:
            return
        variant = cfg.data_variant or train.variant
        held = f" (+{cfg.holdout:,} held out)" if cfg.holdout else ""
        params = count_params(self.built.ae)
        rec = run.write_config(cfg, {"aux_steps": self.trainer.aux_steps, "total_steps": T, "steps_per_epoch": spe,
                                     "n_train": len(train.images), "n_test": len(test.images),
                                     "data_variant": variant, "world_size": dist.world_size,
                                     "global_batch_size": cfg.batch_size * dist.world_size, "params": params,
                                     **({"holdout": holdout.record(len(train.images), cfg.holdout, cfg.dataset)}
                                        if cfg.holdout else {}),
                                     **({"expost_fit": expost.fit_record(len(train.images), cfg.seed)}
                                        if cfg.expost else {}),
                                     fingerprint.KEY: data},
                               resumed_at=self.start if resumed_from else None)
        stdout.print(f"[bold]{cfg.regularizer}[/] · {cfg.arch} ({params / 1e6:.2f}M params) · "
                     f"{cfg.dataset} \\[{variant}] {cfg.image_size}×{cfg.image_size}, "
                     f"{len(train.images):,} train{held} / {len(test.images):,} test · "
                     f"batch {cfg.batch_size} per process × {dist.world_size} = "
                     f"{cfg.batch_size * dist.world_size} · {T:,} steps ({_epochs_text(T, spe, cfg.epochs)}) · "
                     f"{device} ({self.built.fast.describe()}) · {_precision_text(cfg.precision)} · "
                     f"{escape(str(run.path))}", soft_wrap=True)
        if resumed:
            stdout.print(escape(resumed), soft_wrap=True)
        if data_warning:
            progress.notice(f"[yellow]warning:[/] {escape(data_warning)}")
        mixed = mixed_settings(rec["starts"])
        for note in ([mixed] if mixed else []) + refused_entry_points(cfg):
            progress.notice(f"[yellow]note:[/] {escape(note)}")
        if notice:
            progress.notice(notice)
        if device.type == "cuda" and cfg.precision == "fp32":
            _suggest_bf16()
        if device.type == "cpu" and cfg.precision == "bf16":
            _warn_bf16_on_cpu()
        for key, why in plan.provisional.items():
            _note_provisional(cfg, key, why)
        _note_queue(cfg, len(train.images), plan.provisional)
        if cfg.log == "tensorboard":
            self.tb = tensorboard.TrainingLog(run.path, self.start)
            self._shown = to_float(pictures.spread(test.images))    # the test images of the grids
            self._drawn: set[int] = set()   # steps whose grids are logged (the last is saved twice: last, finished)

    @contextlib.contextmanager
    def _phase(self) -> Iterator[None]:
        """A failure in the block: close the bar, take back an unstarted new
        run (once the folder is ours), release the folder, and raise the
        failure as the user reads it."""
        try:
            yield
        except BaseException as e:
            self.close()
            run = self.run
            if self._armed and self.dist.is_main and not self.resume and not checkpoint.checkpoints(run.path):
                run.discard_unstarted()
            if isinstance(e, WriteFailed):
                new = WriteFailed(f"{e}; {_then_resume(run.path, self.dist.world_size)}")
            elif isinstance(e, NonFinite):
                new = type(e)(f"{e} ({_kept(run.path)})")
            elif isinstance(e, Exception) and not isinstance(e, WaeError) and is_out_of_memory(e):
                new = WaeError(f"out of memory ({_first_line(e)}); {_smaller()}, "
                               f"{_then_resume(run.path, self.dist.world_size)}")
            else:
                new = e
            self._held.__exit__(type(new), new, new.__traceback__)
            if new is e:
                raise
            raise new from None

    @property
    def over(self) -> bool:
        """No training step left (done, stopped, or a finished run resumed)."""
        return self.stepper is None or self.stepper.over

    def begin(self, stop: StopFlag | None = None) -> None:
        """Capture the step on the first batch (where
        :meth:`~wae_bench.run.build.Plan.fast` says graph) and open the
        progress bar; nothing to do for a finished run.  ``stop``: the signal
        flag whose raising ends the run after the current step, with a
        checkpoint."""
        self.signal = stop
        if self.finished or self.start >= self.T:
            return
        cfg, dist = self.cfg, self.dist
        with self._phase():
            self.built.capture(self.batch(self.start))
            self.bar = TrainProgress(self.T, self.start, cfg.batch_size * dist.world_size,
                                     self.quiet or not dist.is_main).__enter__()
            self.stepper = Stepper(self.trainer, self.batch, start=self.start, total=self.T,
                                   steps_per_epoch=self.spe, lr_halve_every=cfg.lr_halve_every,
                                   log_every=cfg.log_every, ckpt_every=cfg.ckpt_every,
                                   ckpt_minutes=cfg.ckpt_minutes, diverge_factor=cfg.diverge_factor,
                                   on_log=self._log, on_ckpt=self.save,
                                   agree=_any_rank(dist) if dist.enabled else None,
                                   stop=stop.is_set if stop is not None else (lambda: False))

    def advance(self) -> bool:
        """One step (see :class:`~wae_bench.step.loop.Stepper`); returns :attr:`over`."""
        with self._phase():
            over = self.stepper.advance()
        if over:
            self.close()
        return over

    def close(self) -> None:
        """Close the progress bar (after the last step, or a failure)."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def finish(self) -> Path:
        """The work after training, then the folder is released; returns the
        run directory.  After a stop: :class:`Stopped` (the checkpoint is written)."""
        T, run = self.T, self.run
        with self._phase():
            if self.stepper is not None and self.stepper.stopped:
                signame = getattr(self.signal, "raised", None) or "SIGTERM"   # (SIGTERM: another rank's signal)
                raise Stopped(signame, f"at step {int(self.trainer.t)}; checkpoint saved in {str(run.path)!r}",
                              _go_on("continue", run.path, self.dist.world_size))
            with stop_at_once(f"after training (step {T}), before the run was finished (ex-post fit, final "
                              f"checkpoint, pictures)", _go_on("finish it", run.path, self.dist.world_size)):
                _finish(self.built, T, self.train.images, self.test.images, run.path, self.finished, self.save,
                        quiet=self.quiet)
            if self.tb:
                self.tb.close()   # (a run that stops or fails early has flushed every event it logged)
        self.release()
        self.dist.barrier()   # the final checkpoint exists before any rank evaluates it
        return run.path

    def release(self) -> None:
        """Let go of the run folder as it is (its lock; nothing is taken back)."""
        self.close()
        self._held.close()

    def save(self, step: int, **extra) -> None:
        """A checkpoint of the run at ``step`` (rank 0 writes; under DDP with every rank's random state)."""
        dist, trainer, cfg = self.dist, self.trainer, self.cfg
        with finishing(f"writing the checkpoint of step {step} in {str(self.run.path)!r}"):   # (a 2nd Ctrl-C waits)
            ranks = dist.gather_objects(trainer.rng_dict()) if dist.enabled else None   # (collective)
            if dist.is_main:
                state = {**trainer.state_dict(), "config": to_dict(cfg),
                         "versions": run_versions(cfg), "world_size": dist.world_size, **extra}
                if ranks is not None:
                    state["rng_ranks"] = ranks
                checkpoint.save(self.run.path / "checkpoints" / f"step-{step:08d}.pt", state)
                checkpoint.prune(self.run.path, cfg.keep_checkpoints)
        if self.tb and step not in self._drawn:
            self._drawn.add(step)
            ae, reg = self.built.ae, self.built.reg
            with eager(ae, reg):
                self.tb.grids(step, pictures.labelled_grids(ae, reg, self._shown, seed=cfg.seed))

    def _log(self, step: int, m: dict) -> None:
        speed = self.bar.update(step, m)
        if self.dist.is_main:
            self.run.append_metrics({"step": step, **m, **speed, "time": time.time()})
        if self.tb:
            self.tb.scalars(step, {**m, **speed})


def _config_keys(overrides: dict | TrainConfig) -> dict:
    """The config keys a run is given: a dict of them, or every field of a
    :class:`~wae_bench.config.TrainConfig`; anything else is refused in one line."""
    if isinstance(overrides, TrainConfig):
        return to_dict(overrides)
    if isinstance(overrides, dict):
        return overrides
    raise WaeError(f"train_run takes a dict of config keys (e.g. {{'max_steps': 100, 'reg': {{'lambda': 10}}}}) "
                   f"or a wae_bench.config.TrainConfig, not a {type(overrides).__name__}")


def _holds_run(run: RunDir, plan: Plan, world_size: int) -> str:
    """Why a new run may not start in ``run``'s folder, which holds a run:
    with the same settings, --resume continues it; with other settings (which
    --resume would refuse) the message names them and asks for another --out."""
    try:
        changed = changes(saved_resolved(run, world_size), resolved(plan))
    except WaeError:            # a config.json this version cannot load: no comparison
        changed = []
    where = f"output directory {str(run.path)!r} holds a run"
    if not changed:
        return f"{where}; pass {worded.flag('--resume')} to continue it, or choose {_another_out()}"
    shown = changed[:3]
    more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
    return (f"{where} with other settings: that run has {', '.join(f'{k}={_shown(a)}' for k, a, _ in shown)}, this "
            f"one {', '.join(f'{k}={_shown(b)}' for k, _, b in shown)}{more}; choose {_another_out()} (not "
            f"{worded.flag('--resume')}: it continues a run only with its own settings)")


def _another_out() -> str:
    """``another --out`` (a run); ``another out`` (a call of the Python API)."""
    return f"another {worded.flag('--out')}"


def _shown(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _locked(path: Path, dist: Dist):
    """The run folder's lock (held by the main process of a torchrun job)."""
    if not dist.is_main:
        return contextlib.nullcontext()
    return lock.hold(path, "wae-bench run", what="run directory",
                     fix=f"wait for it to finish (or stop it), or choose {_another_out()}")


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:160]


def _kept(path: Path) -> str:
    last = checkpoint.checkpoints(path)
    return f"the last good checkpoint, {str(last[-1])!r}, is kept" if last else "no checkpoint was written"


def _go_on(verb: str, path: Path, world_size: int) -> str:
    """How to resume the run in ``path`` (``verb``: "continue", "finish it"):
    ``continue with: wae-bench run --resume --out P``; under torchrun the
    same launch with --resume (as many processes resume exactly; one would
    not, docs/multi-gpu.md); in a bench cell, its bench command; in a call of
    the Python API, ``train_run({}, 'P', resume=True)`` (:func:`wae_bench.worded.go_on`)."""
    if world_size > 1:
        return (f"{verb} by rerunning your torchrun command ({world_size} processes) with --resume --out "
                f"{shlex.quote(str(path))}")
    return worded.go_on(f"{verb} with: wae-bench run --resume --out {shlex.quote(str(path))}",
                        f"{verb} with: {worded.resume_call(path)}")


def _stopped_at_once(path: Path, world_size: int) -> Stopped:
    """The run in ``path`` stopped by a repeated signal (:func:`wae_bench.interrupt.at_once`),
    after a failed phase took back a new run without a checkpoint: its last
    checkpoint is kept, or a resumed run with none starts from step 0, or
    nothing is kept and the same command starts it again."""
    step = checkpoint.latest_step(path)
    if step is not None:
        return at_once(f"its checkpoint of step {step} is kept", _go_on("continue", path, world_size))
    if (path / "config.json").is_file():
        return at_once("it had no checkpoint yet", _go_on("start it again", path, world_size))
    return at_once("the run had no checkpoint yet, so nothing is kept", worded.flag_or_arg(
        "rerun the same command to start it again", "call train_run again to start it again"))


def _then_resume(path: Path, world_size: int = 1) -> str:
    """How to go on after fixing the cause: resume, if a checkpoint exists."""
    if checkpoint.checkpoints(path):
        return f"then {_go_on('continue', path, world_size)}"
    again = worded.rerun() if worded.now().bench else worded.flag_or_arg("rerun the same command",
                                                                          "call train_run again")
    return f"then {again} (no checkpoint had been written)"


def _smaller() -> str:
    """The fix of an out-of-memory error: a smaller batch or model (in a
    bench, the spec's keys, part of its folder's spec: a new --out; or fewer
    cells at once)."""
    if worded.now().bench:
        return ("run fewer cells at once (--concurrent, --devices), or lower train.batch_size or choose a smaller "
                "arch or latent_dim (--set train.KEY=V, in a new --out: they are part of the folder's spec)")
    return worded.flag_or_arg("lower --batch-size, or choose a smaller --arch or latent_dim",
                              "lower batch_size, or choose a smaller arch or latent_dim (the overrides' keys)")


def _finish(built: Run, T: int, train_x: torch.Tensor, test_x: torch.Tensor, out: Path, finished: bool,
            save: Callable[..., None], quiet: bool = False) -> None:
    """The work after training: forward-only, new batch sizes, so eager (see
    :func:`~wae_bench.step.compile.eager`): the ex-post densities of the
    training latents in the final checkpoint, then the picture grids (each
    announced by a line unless ``quiet``: they take seconds to minutes)."""
    cfg, dist, ae, reg = built.plan.cfg, built.dist, built.ae, built.reg
    quiet = quiet or not dist.is_main
    with eager(ae, reg):
        if not finished:
            dens = {}
            if cfg.expost and dist.is_main:
                idx = expost.fit_indices(len(train_x), cfg.seed)
                phase(f"fitting ex-post {' / '.join(k.upper() for k in cfg.expost)} on {len(idx):,} latents", quiet)
                lat = expost.encode_all(ae, reg, train_x[idx], limit=len(idx))
                dens = {k: expost.fit(lat, k, seed=cfg.seed) for k in cfg.expost}
            save(T, finished=True, expost=dens)
        if dist.is_main:
            phase("writing pictures (samples, reconstructions, interpolations)", quiet)
            pictures.write_grids(ae, reg, to_float(pictures.spread(test_x)), out, seed=cfg.seed)


_SAID: set[str] = set()


def _once(text: str) -> None:
    """Print a tip or warning about the settings once per process (not once
    per bench cell): bf16 is the faster path on a GPU (and stays opt-in), and
    the much slower one on a CPU."""
    if text not in _SAID:
        _SAID.add(text)
        progress.notice(text)


def _suggest_bf16() -> None:
    _once("tip: --precision bf16 trains faster on a GPU (opt-in: bfloat16 autocast changes the numbers)")


def _warn_bf16_on_cpu() -> None:
    _once("[yellow]warning:[/] --precision bf16 on a CPU trains much slower than fp32 (bfloat16 autocast has no "
          "fast kernels on most CPUs); use fp32 here, bf16 on a GPU")


def _note_provisional(cfg: TrainConfig, key: str, why: str) -> None:
    """Once per process: a default the run uses that measurement has not settled
    (:meth:`~wae_bench.regularizer.Regularizer.provisional`)."""
    value = to_dict(cfg.reg).get(key_of(key))
    shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    _once(f"[yellow]note:[/] {cfg.regularizer}'s {key_of(key)} = {shown} on {cfg.arch}/{cfg.dataset} is "
          f"provisional: {escape(why)}")


def _note_queue(cfg: TrainConfig, n_train: int, provisional: dict[str, str]) -> None:
    """Once per process: a queue ``reg.K`` (MoCA's) longer than the training
    images loaded holds random vectors for its first K/B steps and each
    image many times after; its default is sized by the dataset's declared
    size (CelebA's 60,000), not by a subset of it.  The config is not changed."""
    K = getattr(cfg.reg, "K", None)
    if isinstance(K, int) and not isinstance(K, bool) and K > n_train and "K" not in provisional:
        _once(f"[yellow]note:[/] {cfg.regularizer}'s K = {K} is larger than the {n_train} training images loaded; "
              f"pass --set reg.K=N (in a bench --set reg.{cfg.regularizer}.K=N; about 0.6 × the images, as the "
              f"paper's 30,000 of CIFAR-10's 50,000)")


def _precision_text(precision: str) -> str:
    """The header's precision: ``fp32``, or ``bf16 autocast``."""
    return "bf16 autocast" if precision == "bf16" else precision


def _any_rank(dist: Dist):
    """``flags -> for each flag, whether any rank raised it`` (one all-reduce; DDP only)."""
    def agree(*flags: bool) -> tuple[bool, ...]:
        t = torch.tensor([int(f) for f in flags], device=dist.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())
    return agree


def _resumed_text(step: int, found: Path | None, path: Path) -> str:
    """The line a resume prints: where it starts from (docs/resume.md)."""
    if found is None:
        return f"no checkpoint in {path}: starting from step 0"
    return f"resuming from step {step} (checkpoint {found})"


def _resume(trainer, run, cfg, trust: bool, dist: Dist) -> tuple[int, bool, Path | None]:
    """Load the newest good checkpoint of ``run`` into ``trainer``; returns
    (step, finished, the checkpoint's path or None).  Metric lines after that step are dropped, temp files of
    a killed write removed; an unreadable newest checkpoint is skipped with a
    warning.  No checkpoint yet (killed before the first): start at step 0.
    Under DDP each rank takes back its own random state."""
    main = dist.is_main
    if main:
        atomic.clean_temp(run.path / "checkpoints")
        atomic.clean_temp(run.path)

    skipped: list[tuple[Path, str]] = []
    found = checkpoint.latest(run.path, trust, on_skip=lambda p, why: skipped.append((p, why)))
    if found is None:
        if main:
            run.truncate_metrics(0)
        return 0, False, None
    path, state = found
    for p, why in skipped if main else []:
        progress.notice(f"[yellow]warning:[/] "
                        f"{escape(checkpoint.skipped_text(p, why, 'resuming from', path, int(state['t'])))}")
    _check_same(state, cfg, path)
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise WaeError(f"checkpoint {str(path)!r} does not fit this model ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:120]}); "
                       f"{_resume_own()}") from None
    ranks = state.get("rng_ranks")
    if dist.enabled and ranks and len(ranks) == dist.world_size:
        trainer.load_rng(ranks[dist.rank])
    saved_ws = int(state.get("world_size", 1))
    if saved_ws != dist.world_size and main:
        progress.notice(f"[yellow]warning:[/] resuming a run of {saved_ws} process(es) on {dist.world_size}: the "
                        f"global batch and random streams change, so the result will differ")
    now = run_versions(cfg)
    old = {k: v for k, v in (state.get("versions") or {}).items() if now.get(k) != v}
    if old and main:
        progress.notice(f"[yellow]warning:[/] resuming a checkpoint written with "
                        f"{', '.join(f'{k} {v} (now {now.get(k)})' for k, v in old.items())}; the result may "
                        f"differ from an uninterrupted run")
    step = int(state["t"])
    if main:
        run.truncate_metrics(step)
    return step, bool(state.get("finished")), path


# How to go on from a checkpoint that does not fit the run's settings (:func:`wae_bench.worded.start_again`
# words it for a bench cell; RESUME_OWN_PYTHON for a call of the Python API).
RESUME_OWN = "resume with the run's own settings or start a new --out"
RESUME_OWN_PYTHON = "resume with the run's own settings or start a new out"


def _resume_own() -> str:
    return worded.start_again(RESUME_OWN, RESUME_OWN_PYTHON)


def _check_same(state: dict, cfg, path: Path) -> None:
    saved = state.get("config", {})
    for key in ("regularizer", "arch", "latent_dim", "image_size"):
        if key in saved and saved[key] != getattr(cfg, key):
            raise WaeError(f"checkpoint {str(path)!r} is of {key} {saved[key]!r}, not {getattr(cfg, key)!r}; "
                           f"{_resume_own()}")


def _data_place(cfg: TrainConfig) -> str:
    """The run's data, for a message: ``the data in 'dcopy'``, or ``the digits data`` (its default place)."""
    return f"the data in {str(cfg.data_root)!r}" if cfg.data_root else f"the {cfg.dataset} data"


def _epochs_text(T: int, spe: int, epochs: int) -> str:
    """``30 epochs``, or ``max_steps: 1.3 of 30 epochs`` when max_steps cuts the run short."""
    total = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    return total if T >= epochs * spe else f"max_steps: {T / spe:.3g} of {total}"
