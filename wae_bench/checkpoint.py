"""Crash-safe files: one dict per checkpoint (DESIGN.md "Checkpoint = one
dict ... written to a temp file and ``os.replace``d", timm's saver), loaded
without executing pickled code.

* :func:`atomic_write` writes to a temporary file beside the target, flushes,
  fsyncs, renames and fsyncs the folder: a kill at any instant (``kill -9``
  included) leaves either the previous version or the new one, never a torn
  file; a full disk is a one-line :class:`WaeError` and the previous version
  stays intact.
* :func:`load_torch` uses ``torch.load(weights_only=True)``; a file that would
  need unsafe unpickling is refused (:class:`UnsafeFile`) unless the caller
  passes ``trust=True`` (the CLI's ``--trust-checkpoint``).
* :func:`latest` falls back past an unreadable (e.g. truncated) newest
  checkpoint to the one before it; :func:`prune` keeps the last ``keep``.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Callable

import torch

from wae_bench.errors import WaeError

FORMAT = "wae-bench-checkpoint/1"
_CKPT = re.compile(r"^step-(\d+)\.pt$")
_TMP_SUFFIX = ".tmp"
# Extra (non-tensor, non-builtin) types a wae-bench file may hold, allowed by
# the weights-only unpickler.  Everything wae-bench itself saves is tensors and
# plain Python values (RNG states are stored as tensors/lists), so none is
# needed today; add a type here, never switch to unsafe loading.
SAFE_GLOBALS: list[Any] = []

_UMASK = os.umask(0)
os.umask(_UMASK)


class UnsafeFile(WaeError):
    """A file that only unsafe (code-executing) unpickling could load."""


def _open_temp(path: Path) -> tuple[IO, str]:
    """A new temporary file beside ``path`` (same filesystem, so the rename is
    atomic), with the permissions a plain ``open`` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return os.fdopen(fd, "wb"), tmp


def _os_error(e: BaseException) -> OSError | None:
    """The OSError behind ``e`` (torch.save reports a failed write as a
    RuntimeError whose context is the OSError)."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, OSError):
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def atomic_write(path: str | Path, write: Callable[[IO], None], mode: str = "wb") -> Path:
    """Write through ``write(fileobj)`` to a temp file beside ``path``, flush,
    fsync, then ``os.replace``: a crash leaves the old version intact.
    ``mode`` "w" hands ``write`` a UTF-8 text wrapper."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f, tmp = _open_temp(path)
    except OSError as e:
        raise WaeError(f"could not write {str(path)!r} ({e.strerror or e}); free disk space or choose "
                       f"another --out") from None
    try:
        with f:
            if "b" in mode:
                write(f)
            else:
                text = io.TextIOWrapper(f, encoding="utf-8", newline="\n")
                write(text)
                text.flush()
                text.detach()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _unlink(tmp)
        err = _os_error(e) if isinstance(e, Exception) else None
        if err is None:
            raise
        raise WaeError(f"could not write {str(path)!r} ({err.strerror or err}); free disk space or choose "
                       f"another --out; the previous version of the file is intact") from None
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def _unlink(p: str | Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def clean_temp(folder: str | Path) -> list[Path]:
    """Remove temporary files a killed writer left in ``folder``; returns them."""
    d = Path(folder)
    found = [p for p in d.glob(f".*{_TMP_SUFFIX}") if p.is_file()] if d.is_dir() else []
    for p in found:
        _unlink(p)
    return found


def write_json(path: str | Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda f: f.write(text), mode="w")


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def save(path: str | Path, state: dict) -> Path:
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


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
        _unlink(p)
