"""Crash-safe files: one dict per checkpoint, written to a temporary file,
fsynced and renamed (timm's saver); loaded with ``weights_only=True`` so a
checkpoint never executes pickled code.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from wae_bench.errors import WaeError

FORMAT = "wae-bench-checkpoint/1"
_CKPT = re.compile(r"step-(\d+)\.pt$")


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write through ``write(fileobj)`` to a temp file beside ``path``, flush,
    fsync, then ``os.replace``: a crash leaves the old version intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise WaeError(f"could not write {str(path)!r} ({e.strerror or e}); free disk space or choose "
                       f"another --out; the previous version of the file is intact") from None
    except BaseException:
        _unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    except OSError:
        pass
    return path


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def write_json(path: str | Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda f: f.write(text), mode="w")


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def save(path: str | Path, state: dict) -> Path:
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def load(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint without executing pickled code (unless ``trust``)."""
    path = Path(path)
    if not path.is_file():
        raise WaeError(f"checkpoint {str(path)!r} not found; pass a run directory that has checkpoints")
    try:
        state = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # unpickling errors come in many types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise WaeError(f"checkpoint {str(path)!r} needs unsafe loading ({msg[:120]}); pass --trust-checkpoint "
                           f"only if you trust its source") from None
        raise WaeError(f"checkpoint {str(path)!r} is unreadable or truncated ({type(e).__name__}); "
                       f"delete it to fall back to an earlier one, or start a new run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WaeError(f"{str(path)!r} is not a wae-bench checkpoint; pass a file written by wae-bench run")
    return state


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    d = Path(run_dir) / "checkpoints"
    found = [(int(m.group(1)), p) for p in d.glob("step-*.pt") if (m := _CKPT.search(p.name))]
    return [p for _, p in sorted(found)]


def latest(run_dir: str | Path, trust: bool = False) -> tuple[Path, dict] | None:
    """The newest loadable checkpoint (a truncated newest one falls back to
    the one before it), or None if the run has none."""
    errors = []
    for p in reversed(checkpoints(run_dir)):
        try:
            return p, load(p, trust)
        except WaeError as e:
            errors.append(str(e))
    if errors:
        raise WaeError(errors[0])
    return None


def prune(run_dir: str | Path, keep: int) -> None:
    for p in checkpoints(run_dir)[:-keep]:
        _unlink(str(p))
