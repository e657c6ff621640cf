"""Format versions of the files wae-bench writes and reads back.

Each such file names its format, ``FAMILY/VERSION``: a checkpoint
``wae-bench-checkpoint/1`` (:data:`wae_bench.run.checkpoint.FORMAT`), a run's
``results.json`` and a results folder's ``spec.json`` ``wae-bench-results/1``
(:data:`wae_bench.results.FORMAT`), a run's ``config.json``
``wae-bench-run/1`` (:data:`wae_bench.run.directory.FORMAT`).  A file of the same family in another
version was written by another wae-bench: :func:`check` refuses it in one line
that names both versions and what to do (:class:`OtherVersion`), so that it
is never taken for a damaged file (a resume would fall back past it to older
state).  A missing or foreign ``format`` is the reader's to judge.
"""
from __future__ import annotations

from typing import Any

from wae_bench import __version__
from wae_bench.errors import WaeError


class OtherVersion(WaeError):
    """A wae-bench file in a format version this wae-bench does not read."""


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def written_by(record: Any) -> str | None:
    """The wae-bench version a record (a checkpoint, a results protocol)
    names under ``versions``; None if it names none."""
    versions = record.get("versions") if isinstance(record, dict) else None
    v = versions.get("wae_bench") if isinstance(versions, dict) else None
    return v if isinstance(v, str) and v else None


def check(found: Any, ours: str, what: str, version: str | None = None) -> None:
    """Refuse (:class:`OtherVersion`) a ``format`` value ``found`` of the
    family of ``ours`` in another version.  ``what`` names the file
    (``checkpoint 'run/checkpoints/step-00000004.pt'``), ``version`` the
    wae-bench version the file records (:func:`written_by`), if it does."""
    family, _, mine = ours.rpartition("/")
    if not isinstance(found, str) or found == ours or not found.startswith(f"{family}/"):
        return
    theirs = found[len(family) + 1:]
    old, new = _number(theirs), _number(mine)
    older = old is not None and new is not None and old < new
    if older:
        by = f"an older wae-bench{f' {version}' if version else ''}"
        fix = f"read it with the wae-bench that wrote it{f' ({version})' if version else ''}"
    else:
        by, fix = f"wae-bench {version}" if version else "a newer wae-bench", "upgrade wae-bench"
    raise OtherVersion(f"{what} has format {theirs} (written by {by}); this wae-bench {__version__} reads "
                       f"format {mine}: {fix}")
