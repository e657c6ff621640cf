"""A run's checkpoints: one dict per file (timm's saver), written atomically
(:mod:`wae_bench.atomic`) and loaded without executing pickled code.

* :func:`save` writes ``checkpoints/step-N.pt`` through
  :func:`wae_bench.atomic.atomic_write`.
* :func:`load_torch` uses ``torch.load(weights_only=True)``; a file that would
  need unsafe unpickling is refused (:class:`UnsafeFile`) unless the caller
  passes ``trust=True`` (the CLI's ``--trust-checkpoint``; the refusal names
  the one its reader has, :func:`wae_bench.worded.flag`).
* :func:`load` refuses a checkpoint of another format version (a newer
  wae-bench's, :class:`~wae_bench.formats.OtherVersion`: upgrade wae-bench).
* :func:`latest` falls back past an unreadable (truncated or corrupt) newest
  checkpoint to the one before it, never past one of another format version
  or one that needs unsafe loading; :func:`prune` keeps the last ``keep``.

The safe unpickler refuses a damaged stream too ("Unsupported operand 103"),
and refusing it is safe either way; only a refusal that names a global (a
class or function the file asks to import: ``GLOBAL``) is a file that needs
unsafe loading (:class:`UnsafeFile`), where ``--trust-checkpoint`` is the
choice to offer.  Anything else is an unreadable file.
"""
from __future__ import annotations

import re
import sys
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from wae_bench import atomic, formats, worded
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


class Unreadable(WaeError):
    """A file that is truncated or corrupt; :attr:`reason` says how it failed
    (``truncated or corrupt: UnpicklingError: Unsupported operand 103``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def save(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically, its strings interned
    (:func:`_interned`): the same state gives the same bytes, so a resumed
    run's final checkpoint is byte-identical (``cmp``) to an uninterrupted
    run's, not only equal once loaded."""
    return atomic.atomic_write(path, lambda f: torch.save(_interned({"format": FORMAT, **state}), f))


def _interned(value: Any) -> Any:
    """``value`` with every string in its dicts, lists and tuples interned.
    Pickle writes a string a second time as a reference to its first copy
    only when the two are one object; a state built afresh and one loaded
    from a checkpoint (a resume) hold equal strings as different objects, so
    their files differed in those references alone."""
    if isinstance(value, str):
        return sys.intern(value)
    if type(value) in (dict, OrderedDict):
        out = type(value)((_interned(k), _interned(v)) for k, v in value.items())
        if type(value) is OrderedDict:     # (a state_dict's attributes: its _metadata)
            vars(out).update({k: _interned(v) for k, v in vars(value).items()})
        return out
    if type(value) in (list, tuple):
        return type(value)(_interned(v) for v in value)
    return value


def _first_line_of_interest(msg: str) -> str:
    for line in msg.splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip()
    return msg.splitlines()[0] if msg else ""


def _names_global(msg: str) -> bool:
    """Whether torch's weights-only refusal names a global to import (the
    file needs unsafe unpickling), not a stream it cannot parse (a damaged file)."""
    return "GLOBAL" in msg


def _plain_pickle_global(path: Path) -> str | None:
    """The first global a plain pickle (not torch's zip format, whose pickle
    the weights-only unpickler reads in full) would import, read op by op
    without running it (:mod:`pickletools`); None for a zip, a pickle
    without one, or bytes that are no pickle.  (The weights-only unpickler
    stops at a newer protocol's first opcode, before it meets a global.)"""
    import pickletools
    import zipfile

    if zipfile.is_zipfile(path):
        return None
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(path.read_bytes()):
            if op.name in ("GLOBAL", "INST"):
                return f"GLOBAL {str(arg).replace(' ', '.')}"
            if op.name == "STACK_GLOBAL":
                return f"GLOBAL {'.'.join(strings[-2:])}"
            if isinstance(arg, str):
                strings.append(arg)
    except (ValueError, EOFError, OSError):
        return None
    return None


def load_torch(path: str | Path, trust: bool = False, what: str = "file") -> Any:
    """``torch.load`` without executing pickled code (unless ``trust``); any
    failure is one line: :class:`UnsafeFile` for a global the safe unpickler
    refused to import, :class:`WaeError` for a missing, truncated or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise WaeError(f"{what} {str(path)!r} not found; check the path")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(SAFE_GLOBALS):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # unpickling errors come in many types
        msg = str(e)
        unsafe = None if trust else _first_line_of_interest(msg) if _names_global(msg) else _plain_pickle_global(path)
        if unsafe:
            trust_it = f"pass {worded.flag('--trust-checkpoint')} only if you trust its source"
            raise UnsafeFile(f"{what} {str(path)!r} would run pickled code to load ({unsafe[:160]}); refused: "
                             f"{worded.start_again(trust_it)}") from None
        why = _first_line_of_interest(msg)[:80]
        reason = f"truncated or corrupt: {type(e).__name__}{': ' + why if why and 'Weights only' not in why else ''}"
        raise Unreadable(f"{what} {str(path)!r} is unreadable ({reason})", reason) from None


def load(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint without executing pickled code (unless ``trust``);
    one of another format version is refused (:func:`wae_bench.formats.check`)."""
    path = Path(path)
    if not path.is_file():
        raise WaeError(f"checkpoint {str(path)!r} not found; pass a run directory that has checkpoints")
    state = load_torch(path, trust, what="checkpoint")
    if isinstance(state, dict):
        formats.check(state.get("format"), FORMAT, f"checkpoint {str(path)!r}", formats.written_by(state))
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
    before it, reported through ``on_skip(path, reason)`` (:func:`skipped_text`
    words it); one that needs unsafe loading, or of another format version
    (a newer wae-bench's), is refused (no silent fall-back to older state)."""
    errors = []
    for p in reversed(checkpoints(run_dir)):
        try:
            return p, load(p, trust)
        except (UnsafeFile, formats.OtherVersion):
            raise
        except WaeError as e:
            errors.append(str(e))
            if on_skip is not None:
                on_skip(p, getattr(e, "reason", str(e)))
    if errors:
        raise WaeError(f"no loadable checkpoint in {str(Path(run_dir) / 'checkpoints')!r} "
                       f"({len(errors)} unreadable, newest: {errors[0]}); restore the run from a copy, or "
                       f"{worded.start_again('start a new run')}")
    return None


def skipped_text(path: Path, reason: str, doing: str, used: Path, step: int) -> str:
    """The warning for a checkpoint :func:`latest` skipped (``reason``: why it
    did not load) and what the command goes on with (``doing``: "resuming
    from", "scoring"): ``skipped unreadable checkpoint .../step-00000099.pt
    (truncated or corrupt: ...); resuming from step 23 (.../step-00000023.pt)``."""
    return f"skipped unreadable checkpoint {path} ({reason}); {doing} step {step} ({used})"


def prune(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for p in checkpoints(run_dir)[:-keep]:
        atomic.unlink(p)
