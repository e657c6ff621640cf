"""The results folder of one spec::

    RESULTS_DIR/spec.json              the spec (TOML text, parsed data) and its hash
    RESULTS_DIR/cells/<cell-id>/       one run directory per cell (wae-bench run layout)
        results.json                   scores + protocol (wae_bench.evaluate)
        failed.json                    the error of a failed cell (the grid goes on)
    RESULTS_DIR/logs/<cell-id>.log     output of a cell run in a subprocess (--devices)
    RESULTS_DIR/tuning/<cell-id>.json  a final cell's tuned values, grid, budget and
                                       validation scores ([tune]; wae_bench.bench.tune)
    RESULTS_DIR/table.md  table.csv  tuning.csv  plots/*.png    (wae-bench table)

A folder belongs to one spec: a run with a spec of another hash is refused
before anything runs (several machines with the same spec may share it).
"""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any, Literal

from wae_bench import atomic
from wae_bench.bench import spec as specs
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import EvalSettings, Spec
from wae_bench.errors import WaeError

FORMAT = "wae-bench-results/1"
State = Literal["done", "failed", "partial", "pending"]


class ResultsDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.spec_path = self.path / "spec.json"
        self.cells_path = self.path / "cells"
        self.logs_path = self.path / "logs"

    # -- the spec ---------------------------------------------------------------
    def record(self) -> dict[str, Any] | None:
        if not self.spec_path.is_file():
            return None
        try:
            rec = json.loads(self.spec_path.read_text())
            if rec.get("format") != FORMAT:
                raise ValueError("not a wae-bench results record")
            return rec
        except (OSError, ValueError) as e:
            raise WaeError(f"{str(self.spec_path)!r} is unreadable ({e}); restore it or use another --out") from None

    def check(self, spec: Spec) -> dict[str, Any] | None:
        """Refuse (one line) if the folder holds another spec's results; the record."""
        rec = self.record()
        if rec is None and self.cells_path.is_dir() and any(self.cells_path.iterdir()):
            raise WaeError(f"{str(self.path)!r} holds cells but no spec.json; use another --out")
        if rec is not None and rec["hash"] != spec.hash():
            changed = specs.differences(rec["spec"], spec.raw)
            shown = ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")
            raise WaeError(f"results folder {str(self.path)!r} was made by a different spec "
                           f"({rec['name']!r}, hash {rec['hash']}; differs in {shown or 'its grid'}); "
                           f"use another --out, or rerun with the spec that made it")
        return rec

    def claim(self, spec: Spec) -> None:
        """Record ``spec`` here, or refuse if the folder holds another spec's results."""
        rec = self.check(spec)
        source = Path(spec.source)
        new = {"format": FORMAT, "name": spec.name, "hash": spec.hash(), "source": spec.source,
               "toml": source.read_text() if source.is_file() else "", "spec": spec.raw}
        if rec is None or {k: rec.get(k) for k in new} != new:
            atomic.write_json(self.spec_path, {**new, "written": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def spec(self) -> Spec:
        rec = self.record()
        if rec is None:
            raise WaeError(f"{str(self.path)!r} is not a benchmark results folder (no spec.json); "
                           f"pass the --out of a `wae-bench bench` run")
        return specs.parse(rec["spec"], rec.get("source", ""))

    # -- cells -------------------------------------------------------------------
    def cell_dir(self, cell_id: str) -> Path:
        return self.cells_path / cell_id

    def log_path(self, cell_id: str) -> Path:
        return self.logs_path / f"{cell_id}.log"

    def results(self, cell_id: str) -> dict[str, Any] | None:
        p = self.cell_dir(cell_id) / "results.json"
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except (OSError, ValueError):
            return None

    def failure(self, cell_id: str) -> dict[str, Any] | None:
        p = self.cell_dir(cell_id) / "failed.json"
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except (OSError, ValueError):
            return {"error": f"{p} is unreadable"}

    def config(self, cell_id: str) -> dict[str, Any] | None:
        p = self.cell_dir(cell_id) / "config.json"
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except (OSError, ValueError):
            return None

    def state(self, cell: Cell, ev: EvalSettings) -> State:
        res = self.results(cell.id)
        if res is not None and has_scores(res, ev):
            return "done"
        if self.failure(cell.id) is not None:
            return "failed"
        if (self.cell_dir(cell.id) / "config.json").is_file():
            return "partial"
        return "pending"

    def mark_failed(self, cell: Cell, error: BaseException | str, **extra: Any) -> None:
        line = error if isinstance(error, str) else one_line(error)
        tb = "" if isinstance(error, str) else "".join(traceback.format_exception(error))
        atomic.write_json(self.cell_dir(cell.id) / "failed.json",
                              {"cell": cell.id, "error": line, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               **extra, "traceback": tb})

    def clear_failure(self, cell: Cell) -> None:
        (self.cell_dir(cell.id) / "failed.json").unlink(missing_ok=True)


def one_line(e: BaseException) -> str:
    if isinstance(e, WaeError):
        return str(e)
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}"


def score(res: dict[str, Any], what: str, metric: str) -> float | None:
    """``scores[what][metric]`` (or ``metric_mean``, e.g. kid -> kid_mean)."""
    block = (res.get("scores") or {}).get(what) or {}
    for key in (metric, f"{metric}_mean"):
        v = block.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def has_scores(res: dict[str, Any], ev: EvalSettings) -> bool:
    """The evaluation the spec asks for is all there."""
    return all(score(res, w, m) is not None for w in ev.what for m in ev.metrics)
