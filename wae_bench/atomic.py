"""Crash-safe file writes: a temporary file beside the target, flushed,
fsynced, then ``os.replace``d, and the folder fsynced (timm's saver).

A kill at any instant (``kill -9`` included) leaves either the previous
version of the file or the new one, never a torn file; a full disk is a
one-line :class:`WriteFailed` and the previous version stays intact.
:func:`clean_temp` removes what a killed writer left behind.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from wae_bench.errors import WaeError, os_fix

TMP_SUFFIX = ".tmp"


class WriteFailed(WaeError):
    """A file could not be written (full disk, permissions, ...); its previous version is intact."""

_UMASK = os.umask(0)
os.umask(_UMASK)


def _open_temp(path: Path) -> tuple[IO, str]:
    """A new temporary file beside ``path`` (same filesystem, so the rename is
    atomic), with the permissions a plain ``open`` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return os.fdopen(fd, "wb"), tmp


def _behind(e: BaseException, kind: type) -> BaseException | None:
    """The exception of ``kind`` behind ``e`` (``e`` itself, or its cause or
    context, a few links deep): torch.save reports a failed write as a
    RuntimeError whose context is the OSError, and a Ctrl-C inside it (a
    signal handler's ``KeyboardInterrupt``) as the RuntimeError of its zip
    writer that then fails to close (``[enforce fail at
    inline_container.cc:672] ... unexpected pos``)."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, kind):
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
        raise WriteFailed(f"could not write {str(path)!r} ({e.strerror or e}); {os_fix(e)}") from None
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
        unlink(tmp)
        stop = _behind(e, KeyboardInterrupt)
        if stop is not None and stop is not e:   # (a Ctrl-C stays one: the caller says what it kept)
            raise stop from None
        err = _behind(e, OSError) if isinstance(e, Exception) else None
        if err is None:
            raise
        raise WriteFailed(f"could not write {str(path)!r} ({err.strerror or err}); {os_fix(err)}; the previous "
                          f"version of the file is intact") from None
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def unlink(p: str | Path) -> None:
    """Remove ``p`` if it is there."""
    try:
        os.unlink(p)
    except OSError:
        pass


def clean_temp(folder: str | Path) -> list[Path]:
    """Remove temporary files a killed writer left in ``folder``; returns them."""
    d = Path(folder)
    found = [p for p in d.glob(f".*{TMP_SUFFIX}") if p.is_file()] if d.is_dir() else []
    for p in found:
        unlink(p)
    return found


def write_json(path: str | Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda f: f.write(text), mode="w")


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")
