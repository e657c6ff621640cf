"""The results folder of one spec::

    RESULTS_DIR/spec.json              the spec (file text, resolved data, --set overrides) and its hash
    RESULTS_DIR/cells/<cell-id>/       one run directory per cell (wae-bench run layout)
        results.json                   scores + protocol (wae_bench.evaluate)
        failed.json                    the error of a failed cell (the grid goes on)
    RESULTS_DIR/logs/<cell-id>.log     a cell's full output (wae_bench.bench.output; --devices workers')
    RESULTS_DIR/tuning/<cell-id>.json  a final cell's tuned values, grid, budget and
                                       validation scores ([tune]; wae_bench.bench.tune)
    RESULTS_DIR/table.md  table.csv  tuning.csv  plots/*.png    (wae-bench table)

A folder belongs to one spec: a run with a spec that differs for any cell
the folder holds is refused before anything runs (several machines with the
same spec may share it). A spec run again with more seeds, regularizers,
archs or datasets adds their cells here (every cell id names them); spec.json
then lists every member asked for, and every ``--set`` override given.
One `wae-bench bench` of the whole grid works in a folder at a time; shards
and ``--only`` runs may work side by side, every cell under its own lock
(:meth:`ResultsDir.lock`, :meth:`ResultsDir.cell_lock`).
spec.json and every cell's results.json name one format,
``wae-bench-results/1`` (:data:`FORMAT`); either in another version (a newer
wae-bench's) is refused in one line (:mod:`wae_bench.formats`).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any, Literal

from wae_bench import __version__, atomic, formats, lock, results as run_results, worded
from wae_bench.bench import spec as specs
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import EvalSettings, Spec
from wae_bench.errors import WaeError
from wae_bench.plugin_fault import plugin_fault
from wae_bench.registry import DATASETS
from wae_bench.requirements import missing_requirement

FORMAT = run_results.FORMAT   # spec.json's, as every cell's results.json
WORKER_ENV = "WAE_BENCH_WORKER_OF"   # set for a --devices worker: the results folder its parent has locked
RECORD_FIELDS = {"name": str, "hash": str, "spec": dict}   # what spec.json must hold
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
            if isinstance(rec, dict):
                formats.check(rec.get("format"), FORMAT, f"results folder record {str(self.spec_path)!r}",
                              formats.written_by(rec))
            if not isinstance(rec, dict) or rec.get("format") != FORMAT:
                raise ValueError("not a wae-bench results record")
            missing = [k for k, t in RECORD_FIELDS.items() if not isinstance(rec.get(k), t)]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            return rec
        except (OSError, ValueError) as e:
            raise WaeError(f"{str(self.spec_path)!r} is unreadable ({e}); restore it, or rerun the spec into this "
                           f"folder after moving spec.json aside, or use another --out") from None

    def check(self, spec: Spec, fix: str = "use another --out, or rerun with the spec that made it"
              ) -> dict[str, Any] | None:
        """Refuse (one line, ending in ``fix``) if the folder holds another
        spec's results; the record.  A spec that only adds (or leaves out)
        regularizers, archs, datasets or seeds is this folder's
        (:func:`~wae_bench.bench.spec.grow`)."""
        rec = self.record()
        if rec is None and self.cells_path.is_dir() and any(self.cells_path.iterdir()):
            raise WaeError(f"{str(self.path)!r} holds cells but no spec.json; use another --out")
        # (the recorded spec compared as what the hash covers now: a folder
        # written before a change of what the hash covers stays its spec's)
        if rec is not None:
            changed = specs.grow(rec["spec"], spec.raw)[2]
            if changed:
                shown = ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")
                grids = [k for k in changed if k.split(".")[2:3] == ["tune"] and k.startswith("reg.")]
                hint = (f"; a tuning grid may only grow in place (every value the folder tuned still listed, in "
                        f"the same order: {', '.join(grids[:2])} drops or reorders one)" if grids else "")
                if "tune.seeds" in changed:
                    hint += (f"; tune.seeds may only grow in place (the folder's {specs.tuning_seeds(rec['spec'])} "
                             f"first, in order, new seeds after them; left out, it is the first of bench.seeds)")
                raise WaeError(f"results folder {str(self.path)!r} was made by a different spec "
                               f"({rec['name']!r}, hash {rec['hash']}; differs in {shown}){hint}; {fix}")
        return rec

    def describe(self) -> str:
        """``results folder: /abs/path (new)``, or ``(holds 25 cells)``: the
        line a bench starts with, so that a run from another working directory
        (``--out`` and the default ``runs/bench/<name>`` are relative to it)
        is seen before it trains a grid again into a new folder."""
        n = sum(1 for d in (self.cells_path.iterdir() if self.cells_path.is_dir() else ())
                if (d / "config.json").is_file() or (d / "failed.json").is_file())
        state = f"holds {n} cell{'s' if n != 1 else ''}" if n or self.spec_path.is_file() else "new"
        return f"results folder: {self.path.resolve()} ({state})"

    # -- who works here ---------------------------------------------------------------
    def lock(self, shard: tuple[int, int] | None = None, only: str | None = None) -> contextlib.AbstractContextManager:
        """The folder's lock for one `wae-bench bench` (:mod:`wae_bench.lock`):
        a run of the whole grid holds it alone; ``--shard`` and ``--only`` runs
        share it (several may work here side by side, each cell under its own
        lock), a shard also holding its own; a ``--devices`` worker relies on
        its parent's (:data:`WORKER_ENV`)."""
        if os.environ.get(WORKER_ENV) == str(self.path.resolve()):
            return contextlib.nullcontext()
        what = "results folder"
        if shard is None and not only:
            return lock.hold(self.path, "wae-bench bench", what=what,
                             fix="wait for it to finish, or choose another --out")
        stack = contextlib.ExitStack()
        command = "wae-bench bench " + (f"--shard {shard[0]}/{shard[1]}" if shard else f"--only {only}")
        stack.enter_context(lock.hold(self.path, command, what=what, shared=True,
                                      fix="wait for it to finish, or choose another --out"))
        if shard is not None:
            stack.enter_context(lock.hold(self.path, command, what=f"shard {shard[0]}/{shard[1]} of results folder",
                                          name=f"{lock.LOCK_NAME}-shard-{shard[0]}-of-{shard[1]}",
                                          fix="wait for it to finish, or run another --shard"))
        return stack

    def cell_lock(self, cell: Cell) -> contextlib.AbstractContextManager:
        """A cell's run folder, held while it trains and is scored."""
        command = f"wae-bench {worded.now().command}"   # (bench; compare for a head-to-head's cells)
        return lock.hold(self.cell_dir(cell.id), f"{command} (cell {cell.id})", what=f"cell {cell.id}",
                         fix="it runs in that process; rerun this command after it to pick up what is left")

    def claim(self, spec: Spec) -> dict[str, list]:
        """Record ``spec`` here, or refuse if the folder holds another spec's
        results (one process at a time: two specs cannot both claim it).
        Returns the members ``spec`` adds to the recorded grid (``{"seeds":
        [2], "regularizers": ["sinkhorn"]}``); the record keeps every member
        asked for so far (:func:`~wae_bench.bench.spec.grow`) and every
        ``--set`` override given so far (``overrides``, in the order first given)."""
        with lock.hold(self.path, "wae-bench bench (claiming the folder)", name=f"{lock.LOCK_NAME}-spec", wait=True):
            return self._claim(spec)

    def _claim(self, spec: Spec) -> dict[str, list]:
        rec = self.check(spec)
        added, raw = ({}, spec.raw) if rec is None else specs.grow(rec["spec"], spec.raw)[:2]
        source = Path(spec.source)
        before = list((rec or {}).get("overrides", []))
        new = {"format": FORMAT, "name": spec.name, "hash": specs.spec_hash(raw), "source": spec.source,
               "toml": source.read_text() if source.is_file() else "", "spec": raw,
               "overrides": before + [o for o in spec.overrides if o not in before]}
        if rec is None or {k: rec.get(k) for k in new} != new:
            atomic.write_json(self.spec_path, {**new, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                               "versions": {"wae_bench": __version__}})
        return added

    def spec(self) -> Spec:
        rec = self.record()
        if rec is None:
            raise WaeError(f"{str(self.path)!r} is not a benchmark results folder (no spec.json); "
                           f"{self._pass_instead()}")
        return specs.parse(rec["spec"], rec.get("source", ""))

    def _pass_instead(self) -> str:
        """The fix of a folder that is not a results folder: the results
        folders it holds (``runs/compare`` holds one per head-to-head), else
        the --out of a bench or a head-to-head."""
        inside = sorted(p.parent for p in self.path.glob("*/spec.json"))
        if not inside:
            return "pass the --out of a `wae-bench bench` or `wae-bench compare` run"
        shown = ", ".join(str(p) for p in inside[:3]) + (f", ... ({len(inside)} in all)" if len(inside) > 3 else "")
        return f"it holds {len(inside)} results folder(s), one per bench or head-to-head: pass one of them ({shown})"

    # -- cells -------------------------------------------------------------------
    def cell_dir(self, cell_id: str) -> Path:
        return self.cells_path / cell_id

    def log_path(self, cell_id: str) -> Path:
        return self.logs_path / f"{cell_id}.log"

    def results(self, cell_id: str) -> dict[str, Any] | None:
        """A cell's results.json; None if missing or unreadable; refused if
        of another format version (:func:`wae_bench.results.check_format`)."""
        p = self.cell_dir(cell_id) / run_results.NAME
        res = json_object(p)
        return None if res is None else run_results.check_format(res, p)

    def failure(self, cell_id: str) -> dict[str, Any] | None:
        p = self.cell_dir(cell_id) / "failed.json"
        if not p.is_file():
            return None
        return json_object(p) or {"error": f"{p} is unreadable"}

    def config(self, cell_id: str) -> dict[str, Any] | None:
        return json_object(self.cell_dir(cell_id) / "config.json")

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


def cell_folders(source: str | Path) -> list[Path]:
    """The cell folders of a results folder in either layout: under its
    ``cells/`` (what ``wae-bench bench`` writes) or directly in it (a
    committed copy, e.g. ``benchmarks/results/h200-2026-11-28/table1-cifar10``).
    A cell folder holds a ``config.json`` (a run started) or a
    ``failed.json``."""
    source = Path(source)
    if not source.is_dir():
        raise WaeError(f"{str(source)!r} is not a folder; pass a bench results folder (its --out)")
    return [d for base in (source, source / "cells") if base.is_dir() for d in sorted(base.iterdir())
            if (d / "config.json").is_file() or (d / "failed.json").is_file()]


def json_object(p: Path) -> dict[str, Any] | None:
    """The JSON object in ``p``; None if missing, unreadable or not an object."""
    try:
        data = json.loads(p.read_text()) if p.is_file() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def one_line(e: BaseException) -> str:
    """A cell's failure in one line: a WaeError's message, a declared package
    not installed (:func:`~wae_bench.requirements.missing_requirement`), a
    plugin's bug as :func:`~wae_bench.plugin_fault.plugin_fault` words it,
    else ``Type: message``."""
    if isinstance(e, WaeError):
        return str(e)
    missing = missing_requirement(e) if isinstance(e, ModuleNotFoundError) else None
    if missing is not None:    # (a declared package not installed: the line the CLI gives, not a bug)
        return missing
    fault = plugin_fault(e)
    if fault is not None:
        return fault
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}"


# The scores each --metrics entry gives, by the names a table takes (kid, is: their mean), the first its own.
METRIC_SCORES = {"fid": ("fid",), "kid": ("kid", "kid_std"), "pr": ("precision", "recall", "f_score"),
                 "is": ("is", "is_std")}
SCORE_NAMES = tuple(n for names in METRIC_SCORES.values() for n in names)
# Which way a score is better: FID and KID are distances between the generated and the reference features
# (lower); precision, recall, their F score (Kynkäänniemi et al. 2019) and the Inception Score (Salimans et al.
# 2016) grow with quality (higher); a std (kid_std, is_std) has no direction.
HIGHER_IS_BETTER = frozenset({"precision", "recall", "f_score", "is"})
LOWER_IS_BETTER = frozenset({"fid", "kid"})


def better(metric: str) -> str | None:
    """``"lower"`` or ``"higher"``: which values of score ``metric`` are better; None where it has no
    direction (a std)."""
    return "higher" if metric in HIGHER_IS_BETTER else "lower" if metric in LOWER_IS_BETTER else None


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


def asked(ev: EvalSettings, p: dict[str, Any], what: str, dataset: str) -> bool:
    """Whether a recorded protocol is the evaluation ``ev`` asks for: its
    features, reference split, seed and number of generated images of column
    ``what`` (the dataset's default where ``ev`` names none; reconstructions:
    at most the reference images).  What the protocol does not record does
    not count against it."""
    if "features" in p and not str(p["features"]).startswith(ev.features):
        return False
    ref = p.get("reference") or {}
    if ref.get("split", ev.split) != ev.split or p.get("seed", ev.seed) != ev.seed:
        return False
    n = ((p.get("generated") or {}).get(what) or {}).get("n")
    want = ev.fid_samples or getattr(DATASETS.get(dataset), "fid_samples", None)
    if n is None or want is None:
        return True
    if what == "rec" and isinstance(ref.get("n"), int):
        want = min(want, ref["n"])
    return n == want


def evaluation(ev: EvalSettings, res: dict[str, Any], what: str, dataset: str) -> tuple[dict[str, Any], bool]:
    """The evaluation of a cell's results.json (the top, else the newest of
    its ``history`` holding column ``what``) whose protocol the spec asks
    for (:func:`asked`), and True; else the top, and False."""
    tops = [res, *reversed([h for h in res.get("history") or [] if isinstance(h, dict)])]
    for e in tops:
        p = e.get("protocol")
        if isinstance(p, dict) and isinstance((e.get("scores") or {}).get(what), dict) and asked(ev, p, what, dataset):
            return e, True
    return res, not isinstance(res.get("protocol"), dict)
