"""Finished cells taken over from a sibling results folder: `wae-bench
compare moca ae sinkhorn` after `wae-bench compare moca ae` trains only
sinkhorn.

Each head-to-head has a folder of its own (``runs/compare/digits-moca-ae``,
:func:`~wae_bench.bench.compare.default_out`), and cell ids carry their
regularizer, arch, dataset and seed, so the moca and ae cells of the second
command are the first one's cells if they were trained and scored alike. A
cell is taken over only when, in the sibling folder, it is done for this
spec's evaluation (:meth:`~wae_bench.bench.folder.ResultsDir.state`), scored
under the protocol it asks for, and its
run resolves to exactly the settings the cell resolves to here
(:func:`~wae_bench.bench.tune.changes` is empty: no stale result is ever
presented as current). It is copied, its checkpoints hard-linked where the
file system allows (they are never written in place), into a temporary
folder renamed into place, and it records where it came from
(``reused.json``). A cell already present here is never replaced.

A tuned head-to-head (``--tune``) takes over tuning cells the same way, and a
diverged one too (a result: never chosen, never retrained), then each final
cell whose choice here -- made from the tuning cells now in this folder -- is
the one it was trained at there, with the record of that choice
(``tuning/<final id>.json``): `compare moca ae swae --tune` after `compare
moca ae --tune` tunes and trains swae only.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from wae_bench import atomic, lock
from wae_bench.bench import tune
from wae_bench.bench.folder import ResultsDir, evaluation
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import Spec

RECORD = "reused.json"


@dataclass(frozen=True)
class Reused:
    cell: str
    source: Path      # the sibling results folder


def siblings(folder: ResultsDir, marker: str) -> list[ResultsDir]:
    """The other results folders beside ``folder`` holding a ``marker`` file
    (``compare.toml``: the folders `wae-bench compare` made), by name."""
    parent = folder.path.resolve().parent
    if not parent.is_dir():
        return []
    return [ResultsDir(p) for p in sorted(parent.iterdir())
            if p.is_dir() and p.resolve() != folder.path.resolve() and (p / marker).is_file()]


def take_over(folder: ResultsDir, spec: Spec, cells: list[Cell], sources: list[ResultsDir]) -> list[Reused]:
    """Copy into ``folder`` every cell of ``cells`` that it lacks and a folder
    of ``sources`` holds done with the same settings (the first such): the
    plain and tuning cells first, then the final cells whose choice here is
    the one they trained at there (:func:`_final_alike`)."""
    out = []
    reads = [tune.Tuning(s, spec, cells) for s in sources]   # (each source judged by this spec)
    for cell in (c for c in cells if c.role != "final"):
        out += _take(folder, cell, reads, _done_alike)
    here = tune.Tuning(folder, spec, cells)   # (the choices the tuning cells now here make)
    for cell in (c for c in cells if c.role == "final"):
        out += _take(folder, cell, reads, lambda read, c: _final_alike(read, here, c))
    return out


def _take(folder: ResultsDir, cell: Cell, reads: list[tune.Tuning], alike) -> list[Reused]:
    """``cell`` copied in from the first source ``alike(read, cell)`` accepts
    (``[]``: none, or ``folder`` has the cell already); a final cell with the
    record of the choice it trained with."""
    if folder.cell_dir(cell.id).exists():
        return []
    src = next((r.folder for r in reads if alike(r, cell)), None)
    if src is None or not _copy_cell(src.cell_dir(cell.id), folder.cell_dir(cell.id), src.path):
        return []
    if cell.role == "final" and tune.record_path(src, cell).is_file():
        atomic.write_text(tune.record_path(folder, cell), tune.record_path(src, cell).read_text())
    return [Reused(cell.id, src.path)]


def _done_alike(read: tune.Tuning, cell: Cell) -> bool:
    """``cell`` is done in ``read``'s folder for its spec's evaluation, scored
    under the protocol it asks for (features, split, seed, number of images:
    :func:`~wae_bench.bench.folder.evaluation`), with the same resolved
    settings (not stale: :meth:`~wae_bench.bench.tune.Tuning.state`), and no
    process is working on it there; or, a tuning cell, diverged there with
    those settings."""
    src = read.folder
    if lock.held_elsewhere(src.cell_dir(cell.id)) is not None:
        return False
    try:
        state = read.state(cell)
        if state == "diverged":
            return True
        ev = tune.eval_settings(read.spec, cell)
        res = src.results(cell.id) or {}
        return state == "done" and all(evaluation(ev, res, what, cell.dataset)[1] for what in ev.what)
    except Exception:   # (a sibling folder this code cannot read is simply not a source)
        return False


def _final_alike(read: tune.Tuning, here: tune.Tuning, final: Cell) -> bool:
    """Final cell ``final`` is done alike in ``read``'s folder
    (:func:`_done_alike`: trained at the choice its tuning cells make there)
    and this folder's tuning cells make the same choice (all of its group's
    are here, taken over or trained)."""
    try:
        made = here.chosen(final)
    except Exception:   # (a tuning cell here this code cannot read: the final trains here)
        return False
    return made is not None and _done_alike(read, final) and read.chosen(final) == made


def _copy_cell(src: Path, dst: Path, source: Path) -> bool:
    """``src`` copied to ``dst`` (checkpoints hard-linked where possible)
    through a temporary folder; False if ``dst`` appeared meanwhile."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.reuse-{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(lock.LOCK_NAME, "*.tmp"))
    atomic.write_json(tmp / RECORD, {"from": str(source.resolve()), "cell": dst.name,
                                     "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    with contextlib.suppress(OSError):   # (another process made dst first: its cell stays)
        if not dst.exists():
            os.rename(tmp, dst)
    taken = not tmp.exists()
    shutil.rmtree(tmp, ignore_errors=True)
    return taken


def _link_or_copy(src: str, dst: str) -> None:
    """Checkpoints (never written in place: :mod:`wae_bench.atomic`) are
    hard-linked, everything else copied (logs and results are appended to or
    rewritten in the new folder, never in the sibling's)."""
    if src.endswith(".pt"):
        with contextlib.suppress(OSError):
            os.link(src, dst)
            return
    shutil.copy2(src, dst)
