"""Rebuild a trained model from its run directory (:mod:`wae_bench.run.directory`):
the resolved config saved in the checkpoint (else ``config.json``) ->
:func:`~wae_bench.run.build.resolve` -> :func:`~wae_bench.run.build.build_model`,
then a strict load of the newest loadable checkpoint's autoencoder and regularizer."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.markup import escape

from wae_bench import progress
from wae_bench.errors import WaeError
from wae_bench.nets import Autoencoder
from wae_bench.regularizer import Regularizer
from wae_bench.run import checkpoint
from wae_bench.run.build import Plan, build_model, pick_device
from wae_bench.run.directory import RunDir, saved_plan
from wae_bench.step.rng import global_generators_kept


@dataclass
class Loaded:
    ae: Autoencoder
    reg: Regularizer
    plan: Plan
    checkpoint: Path
    step: int
    finished: bool
    expost: dict = field(default_factory=dict)   # {"n": density, "gmm": density}
    run_info: dict = field(default_factory=dict)  # config.json without "config"


def load_model(run_dir: str | Path, device: str | torch.device = "auto", trust: bool = False,
               on_skip: Callable[[str], None] | None = None) -> Loaded:
    """The run's model in eval mode on ``device`` ("auto": CUDA if available).
    An unreadable newest checkpoint is skipped for the one before it, and
    ``on_skip(warning)`` is told in one line
    (:func:`~wae_bench.run.checkpoint.skipped_text`; by default a warning on
    stderr from the main process: what is scored is then not the newest step).
    The process-global generators (torch, NumPy, Python's ``random``) are
    left as they were, although building the nets seeds them
    (:func:`~wae_bench.step.rng.global_generators_kept`)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise WaeError(f"run directory {str(run.path)!r} does not exist; pass the --out of a `wae-bench run`")
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
    with global_generators_kept():   # (building seeds the global generators; the caller's are left as they were)
        ae, reg = build_model(plan, _channels(state.get("ae") or {}, plan), T, dev)
    for name, mod, sd in (("autoencoder", ae, state.get("ae")), ("regularizer", reg, state.get("reg"))):
        try:
            mod.load_state_dict(sd, strict=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise WaeError(f"checkpoint {str(path)!r} does not fit the {name} its config builds ({first[:120]}); "
                           f"evaluate it with the wae-bench version that trained it") from None
    ae.eval(), reg.eval()
    return Loaded(ae, reg, plan, path, int(state.get("t", 0)), bool(state.get("finished")),
                  dict(state.get("expost") or {}), info)


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
            f"`wae-bench run --out {path}` (or --resume)")


def _warn(text: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:     # (torchrun: one line, not one per process)
        progress.notice(f"[yellow]warning:[/] {escape(text)}")


def _channels(ae_state: dict, plan: Plan) -> int:
    """Input channels: the first conv of the saved encoder (else the dataset's)."""
    for k, v in ae_state.items():
        if k.startswith("encoder.") and getattr(v, "dim", lambda: 0)() == 4:
            return int(v.shape[1])
    return plan.data.channels or 3
