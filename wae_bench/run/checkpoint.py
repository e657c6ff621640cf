"""A run's checkpoints: one dict per file (timm's saver), written atomically
(:mod:`wae_bench.atomic`) and loaded without executing pickled code.

* :func:`save` writes ``checkpoints/step-N.pt`` through
  :func:`wae_bench.atomic.atomic_write`.
* :func:`load_torch` uses ``torch.load(weights_only=True)``; a file that would
  need unsafe unpickling is refused (:class:`UnsafeFile`) unless the caller
  passes ``trust=True`` (the CLI's ``--trust-checkpoint``).
* :func:`latest` falls back past an unreadable (e.g. truncated) newest
  checkpoint to the one before it; :func:`prune` keeps the last ``keep``.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from wae_bench import atomic
from wae_bench.errors import WaeError

FORMAT = "wae-bench-checkpoint/1"
_CKPT = re.compile(r"^step-(\d+)\.pt$")
# Extra (non-tensor, non-builtin) types a wae-bench file may hold, allowed by
# the weights-only unpickler.  Everything wae-bench itself saves is tensors and
# plain Python values (RNG states are stored as tensors/lists), so none is
# needed today; add a type here, never switch to unsafe loading.
SAFE_GLOBALS: list[Any] = []


class UnsafeFile(WaeError):
    """A file that only unsafe (code-executing) unpickling could load."""


def save(path: str | Path, state: dict) -> Path:
    return atomic.atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def _first_line_of_interest(msg: str) -> str:
    for line in msg.splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip()
    return msg.splitlines()[0] if msg else ""


def load_torch(path: str | Path, trust: bool = False, what: str = "file") -> Any:
    """``torch.load`` without executing pickled code (unless ``trust``); any
    failure is one line: :class:`UnsafeFile` for code the safe unpickler
    refused, :class:`WaeError` for a missing, unreadable or truncated file."""
    path = Path(path)
    if not path.is_file():
        raise WaeError(f"{what} {str(path)!r} not found; check the path")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(SAFE_GLOBALS):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # unpickling errors come in many types
        msg = str(e)
        if not trust and ("Weights only load failed" in msg or "Unsupported global" in msg
                          or "weights_only" in msg):
            raise UnsafeFile(f"{what} {str(path)!r} would run pickled code to load "
                             f"({_first_line_of_interest(msg)[:160]}); refused: pass --trust-checkpoint only "
                             f"if you trust its source") from None
        raise WaeError(f"{what} {str(path)!r} is unreadable or truncated ({type(e).__name__}); delete it "
                       f"to fall back to an earlier one, or start a new run") from None


def load(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint without executing pickled code (unless ``trust``)."""
    path = Path(path)
    if not path.is_file():
        raise WaeError(f"checkpoint {str(path)!r} not found; pass a run directory that has checkpoints")
    state = load_torch(path, trust, what="checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WaeError(f"{str(path)!r} is not a wae-bench checkpoint; pass a file written by wae-bench run")
    return state


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    d = Path(run_dir) / "checkpoints"
    found = [(int(m.group(1)), p) for p in d.glob("step-*.pt") if (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_step(run_dir: str | Path) -> int | None:
    """The step of the run's newest checkpoint, from its file name (nothing
    is loaded); None without one.  What a resume of the run starts from,
    unless that file is unreadable (:func:`latest` then falls back, and says so)."""
    found = checkpoints(run_dir)
    return int(_CKPT.match(found[-1].name).group(1)) if found else None


def latest(run_dir: str | Path, trust: bool = False,
           on_skip: Callable[[Path, str], None] | None = None) -> tuple[Path, dict] | None:
    """The newest loadable checkpoint, or None if the run has none.

    An unreadable newest checkpoint (truncated, corrupt) falls back to the one
    before it, reported through ``on_skip(path, why)``; one that needs unsafe
    loading is refused (no silent fall-back to older state)."""
    errors = []
    for p in reversed(checkpoints(run_dir)):
        try:
            return p, load(p, trust)
        except UnsafeFile:
            raise
        except WaeError as e:
            errors.append(str(e))
            if on_skip is not None:
                on_skip(p, str(e))
    if errors:
        raise WaeError(f"no loadable checkpoint in {str(Path(run_dir) / 'checkpoints')!r} "
                       f"({len(errors)} unreadable, newest: {errors[0]})")
    return None


def prune(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for p in checkpoints(run_dir)[:-keep]:
        atomic.unlink(p)
