"""Run the cells of a grid: train (:func:`wae_bench.run.train.train_run`) then
evaluate (:func:`wae_bench.evaluate.evaluate_run`) each, one run directory
per cell, so that every cell gets the same budget and protocol (MoCA paper,
Table 1: all models trained and scored alike).

- A done cell (its ``results.json`` holds the scores the spec asks for) is skipped.
- A cell with a ``config.json`` but no scores resumes from its last checkpoint
  (a finished training goes straight to evaluation).
- A failing cell writes ``failed.json`` with its one-line error; the grid goes
  on.  A rerun retries failed cells (unless ``retry_failed`` is off), except
  tuning cells that diverged (a non-finite loss: a result, never retried) and
  failed tuning cells excluded from the choice (``exclude_failed``:
  :meth:`~wae_bench.bench.tune.Tuning.exclude_failed`).
- Ctrl-C / SIGTERM stops the grid after the running cell has saved a
  checkpoint; rerunning the same command continues.  A second signal waits
  for a checkpoint being written (:func:`wae_bench.interrupt.repeat_waits`),
  else stops the grid at once, as a Ctrl-C before training began does,
  keeping the cell's last checkpoint (:func:`stopped_at_once`).
- Each cell trains and is scored under its folder's lock; a cell another
  process holds is left to it ("busy"), and one it finished meanwhile is
  not run again.
- Each cell prints a start and a finished line with its headline scores; its
  full output goes to ``RESULTS_DIR/logs/<cell-id>.log`` (and the console with
  ``--verbose``; :mod:`wae_bench.bench.output`).
- ``devices``: one cell per device at a time, each in its own subprocess
  (``python -m wae_bench bench SPEC --only ID --device DEV``), never threads.
- ``--concurrent N`` (:mod:`wae_bench.bench.concurrent`): N cells at once in
  this process on one device, each on its own CUDA stream.
- With ``[tune]`` (:mod:`wae_bench.bench.tune`): a tuning cell is scored on the
  validation split; a final cell trains with its group's best tuned value, or
  *waits* (not an error) while a tuning cell of its group is not yet done or
  diverged -- on another shard, or failed and to be retried (or excluded,
  ``bench --exclude-failed-tuning``) -- and runs on a later run.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

from wae_bench import interrupt, requirements, worded
from wae_bench.bench import grid, tune
from wae_bench.bench.folder import WORKER_ENV, ResultsDir, has_scores
from wae_bench.bench.grid import Cell
from wae_bench.bench.output import CellOutput, Output, open_log
from wae_bench.bench.spec import Spec
from wae_bench.config import EvalSettings, to_dict
from wae_bench.data.holdout import HoldoutSize
from wae_bench.errors import WaeError
from wae_bench.interrupt import Stopped
from wae_bench.lock import Busy
from wae_bench.progress import console
from wae_bench.run import checkpoint, train
from wae_bench.run.build import optional_modules
from wae_bench.run.directory import output_dir
from wae_bench.step.trainer import NonFinite


class BenchInterrupted(Stopped):
    """A bench stopped by ``signame``: ``line`` says which cells and what
    they keep (``cell ID stopped by SIG...``, ``stopped by SIG... with N
    cell(s) running``) and how to go on.  A :class:`~wae_bench.interrupt.Stopped`,
    so a ``KeyboardInterrupt``: a Python caller's ``except Exception`` around
    a bench does not swallow a Ctrl-C (the module docstring of
    :mod:`wae_bench.interrupt`); the command line says ``line`` and exits
    128 + the signal, as for any stop."""

    def __init__(self, line: str, signame: str):
        KeyboardInterrupt.__init__(self, line)      # (the line is whole: not Stopped's "stopped by ..." words)
        self.kept, self.signame = line, signame
        self.exit_code = 128 + int(signal.Signals[signame])


def grid_stopped(signame: str, ids: list[str], how: str, go_on: str) -> BenchInterrupted:
    """A grid with the cells ``ids`` running, stopped by ``signame``
    (``bench --concurrent``, ``bench --devices``): one line in the words of
    :class:`~wae_bench.interrupt.Stopped`, ``stopped by SIG... with N cell(s)
    running{how} (IDs); rerun the same command to continue ({go_on})``, as a
    sequential bench's ``cell ID stopped by SIG...``, so that a batch script
    finds a ``stopped by`` line in every mode; exit status 128 + the signal."""
    shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
    stop = Stopped(signame, f"with {len(ids)} cell(s) running{how}" + (f" ({shown})" if ids else ""),
                   f"rerun the same command to continue ({go_on})")
    return BenchInterrupted(str(stop), signame)


@dataclass
class Outcome:
    cell: Cell
    state: str   # a folder State; "diverged" (a tuning cell); "waiting" (a final cell whose tuning is
    #              incomplete); "busy" (another process holds the cell's lock)
    seconds: float = 0.0
    error: str = ""
    ran: bool = True


def evaluate_cell(run_dir: Path, ev: EvalSettings, device: str | None, quiet: bool) -> None:
    from wae_bench import evaluate   # (imports torch-fidelity: check_requirements says first when it is missing)

    evaluate.evaluate_run(run_dir, **to_dict(ev), device=device or "auto", quiet=quiet)


def cell_overrides(tuning: tune.Tuning, cell: Cell, device: str | None) -> dict:
    """What ``cell`` trains with: its overrides, a final cell's tuned values
    (:class:`~wae_bench.bench.tune.Waiting` while its group is incomplete), the device."""
    overrides = tuning.overrides(cell)
    return dict(overrides, **({"device": device} if device else {}))


def score_cell(folder: ResultsDir, spec: Spec, cell: Cell, device: str | None, quiet: bool) -> None:
    """Evaluate a trained cell as the spec asks; an evaluation that wrote no
    score for every column asked for is an error."""
    run_dir, ev = folder.cell_dir(cell.id), tune.eval_settings(spec, cell)
    evaluate_cell(run_dir, ev, device, quiet)
    res = folder.results(cell.id)
    if res is None or not has_scores(res, ev):
        raise WaeError(f"the evaluation wrote no {'/'.join(ev.metrics)} score for every one of "
                       f"{', '.join(ev.what)} in {str(run_dir / 'results.json')!r}")


def attempt(folder: ResultsDir, cell: Cell, t0: float, work: Callable[[], object]) -> Outcome | None:
    """Run ``work()`` for ``cell``: None when it succeeded, else the cell's
    :class:`Outcome` (a failure is recorded in ``failed.json``, never raised,
    so the grid goes on).  A training stopped by a signal raises
    :class:`BenchInterrupted`; a signal that stops the work at once (a
    second one: ``KeyboardInterrupt``) passes through, to be said by the
    caller, which knows the cells running (:func:`run_cell`, ``bench
    --concurrent``); a hold-out that fits no cell of the dataset stops the grid.
    The work's messages are worded for a bench cell (:func:`wae_bench.worded.cell`:
    its fixes name the cell's folder and the spec's keys, not a run's flags)."""
    try:
        with worded.cell(folder.cell_dir(cell.id)):
            result = work()
    except tune.Waiting as e:
        return Outcome(cell, "waiting", error=str(e), ran=False)
    except Busy as e:           # another process runs this cell: its work, not a failure
        return Outcome(cell, "busy", error=str(e), ran=False)
    except HoldoutSize as e:
        if not own_batch(cell):   # the spec's hold-out, wrong for every cell of the dataset: stop here
            raise WaeError(f"cell {cell.id}: {e}") from None
        error = WaeError(f"{str(e).split('; ')[0]}, this tuning cell's batch_size: a failure of this value "
                         f"({tune.EXCLUDE_FLAG} excludes it from the choice)")   # (not the fix of a spec's hold-out)
        folder.mark_failed(cell, error)   # (its tuned batch only: a failure of this value, the grid goes on)
        return Outcome(cell, "failed", time.perf_counter() - t0, str(error))
    except BenchInterrupted:
        raise
    except Stopped as e:        # a checkpoint was saved (or training was over) when SIGINT/SIGTERM came
        raise BenchInterrupted(f"cell {cell.id} {e.kept}; {worded.rerun()} to continue",
                               e.signame) from None
    except WaeError as e:
        diverged = isinstance(e, NonFinite)
        folder.mark_failed(cell, e, **({"diverged": True} if diverged else {}))
        return Outcome(cell, "diverged" if diverged and cell.role == "tune" else "failed",
                       time.perf_counter() - t0, str(e))
    except Exception as e:  # noqa: BLE001 - one failing cell must not stop the grid
        folder.mark_failed(cell, e)
        return Outcome(cell, "failed", time.perf_counter() - t0, folder.failure(cell.id)["error"])
    return result if isinstance(result, Outcome) else None


def own_batch(cell: Cell) -> bool:
    """A tuning cell whose batch size is one of its tuned values: a hold-out
    that leaves less than that batch is this value's failure (recorded, the
    grid goes on: :data:`~wae_bench.bench.tune.EXCLUDE_FLAG` excludes it),
    not the spec's."""
    return cell.role == "tune" and "batch_size" in cell.tuned


@contextlib.contextmanager
def held(tuning: tune.Tuning, cell: Cell) -> Iterator[Outcome | None]:
    """The cell's folder, made and locked for the block (a cell that fails
    before writing leaves no folder; a cell another process holds raises
    :class:`~wae_bench.lock.Busy`); yields the cell's outcome when another
    process finished it meanwhile, else None (its failure record cleared)."""
    folder = tuning.folder
    with output_dir(folder.cell_dir(cell.id)), folder.cell_lock(cell):
        state = tuning.state(cell)
        if state in SETTLED:
            yield Outcome(cell, state, ran=False)
            return
        folder.clear_failure(cell)
        yield None


def run_cell(tuning: tune.Tuning, cell: Cell, device: str | None = None, quiet: bool = False) -> Outcome:
    """Train (or resume) and evaluate one cell of ``tuning``'s folder; a
    failure is recorded, not raised."""
    t0 = time.perf_counter()
    folder = tuning.folder
    run_dir = folder.cell_dir(cell.id)

    def work() -> Outcome | None:
        overrides = cell_overrides(tuning, cell, device)
        with held(tuning, cell) as other:
            if other is not None:
                return other
            train.train_run(overrides, run_dir, resume=(run_dir / "config.json").is_file(), quiet=quiet)
            # (SIGTERM too: after training no handler of the run's is left, and the default one kills at once)
            with interrupt.stop_at_once("while scoring (its training is kept; the rerun scores it)"):
                score_cell(folder, tuning.spec, cell, device, quiet)
        return None

    before = len(interrupt.received())
    try:
        return attempt(folder, cell, t0, work) or Outcome(cell, "done", time.perf_counter() - t0)
    except BenchInterrupted:    # (the cell's own stop, said: not a stop "at once")
        raise
    except KeyboardInterrupt as e:
        raise stopped_at_once(cell, run_dir, interrupt.received()[before:], e) from None


def stopped_at_once(cell: Cell, run_dir: Path, noted: list[str], e: KeyboardInterrupt) -> BenchInterrupted:
    """A sequential bench's ``cell`` stopped at once: by a repeated signal
    while the first one's stop (the step, its checkpoint) was under way (the
    second, or the third while the checkpoint was being written), or by a
    Ctrl-C before its training began (nothing to checkpoint yet).  ``noted``:
    the signals :func:`wae_bench.interrupt.note` recorded during the cell.
    One line in the words of :class:`~wae_bench.interrupt.Stopped`, exit
    status 128 + N, saying what is kept as it is on disk: the cell's last
    checkpoint (a checkpoint write cut short leaves the one before it, files
    are written atomically), or none, and then the cell starts again."""
    # (a KeyboardInterrupt no handler noted came from Python's default one, which raises for SIGINT only)
    signame = getattr(e, "signame", None) or (noted[-1] if len(noted) > 1 else "SIGINT")
    step = checkpoint.latest_step(run_dir)
    kept = (f"its checkpoint of step {step} is kept" if step is not None else
            "it had no checkpoint yet and starts again")
    stop = Stopped(signame, f"at once{' (a repeated signal)' if noted else ''}; {kept}")
    return BenchInterrupted(f"cell {cell.id} {stop.kept}; {worded.rerun()} to continue", signame)


SETTLED = tune.SETTLED

# The spec's setting behind each key of :func:`~wae_bench.run.build.optional_modules` (and the scoring of
# every cell, "eval"), and the --set that does without it (None: no way round the package).
SPEC_NEEDS = {"dataset": ("bench.datasets' digits (scikit-learn's embedded images)", None),
              "expost": ("train.expost (the ex-post fit after training)", "--set train.expost=[]"),
              "log": ('train.log = "tensorboard"', "--set train.log=jsonl"),
              "eval": ("scoring (every cell is scored: [eval])", None)}


def check_requirements(folder: ResultsDir, spec: Spec, cells: list[Cell], configs: dict[str, dict],
                       retry_failed: bool = True) -> None:
    """Refuse the bench in one line, before its first cell and before anything
    is written, where the cells it would run (``cells`` not yet done,
    :func:`to_run`; ``configs``: their resolved configs) need a package that
    is not installed, rather than failing every cell with the same line: the
    missing-package line (:func:`wae_bench.requirements.not_installed`), the
    ``--set`` that does without it where there is one, and the spec's
    settings that need it, with their cells."""
    todo = to_run(tune.Tuning(folder, spec, grid.expand(spec)), cells, retry_failed)
    asked: dict[str, dict[str, list[str]]] = {}    # module -> key -> the cells whose key needs it
    for c in todo:
        for module, key in [*optional_modules(configs[c.id]), ("torch_fidelity", "eval")]:
            asked.setdefault(module, {}).setdefault(key, []).append(c.id)
    for module, keys in asked.items():
        line = requirements.not_installed(module)
        if line is None:
            continue
        ways = [SPEC_NEEDS[k][1] for k in keys]
        needs = "; ".join(f"{SPEC_NEEDS[k][0]} needs it in {len(ids)} cell(s): {', '.join(ids[:3])}"
                          f"{', ...' if len(ids) > 3 else ''}" for k, ids in keys.items())
        command = worded.now().command   # (bench; compare for `wae-bench compare`, whose spec it writes)
        raise WaeError(f"{line}{', or ' + ' and '.join(ways) if all(ways) else ''} "
                       f"({'the bench' if command == 'bench' else f'wae-bench {command}'} did not start: "
                       f"the spec's {needs})")


def to_run(tuning: tune.Tuning, cells: list[Cell], retry_failed: bool) -> list[Cell]:
    states = {c.id: tuning.state(c) for c in cells}
    return [c for c in cells if states[c.id] not in SETTLED and (retry_failed or states[c.id] != "failed")]


def split_todo(tuning: tune.Tuning, cells: list[Cell], retry_failed: bool,
               exclude_failed: bool = False) -> tuple[list[Cell], list[Outcome]]:
    """(the cells to run, the others as not-run outcomes), said in one line;
    a stale cell among them is refused (:meth:`~wae_bench.bench.tune.Tuning.refuse_stale`).
    ``exclude_failed``: first exclude the failed tuning cells of their groups
    from the choice (:meth:`~wae_bench.bench.tune.Tuning.exclude_failed`), said in one line."""
    tuning.refuse_stale(cells)
    excluded = tuning.exclude_failed(cells) if exclude_failed else []
    if excluded:
        console.print(f"excluding {len(excluded)} failed tuning cell(s) from the choice ({', '.join(excluded[:3])}"
                      f"{', ...' if len(excluded) > 3 else ''}; {tune.EXCLUDE_FLAG}): recorded in their "
                      f"failed.json, never retried; remove a cell's folder to tune its value again", soft_wrap=True)
    todo = to_run(tuning, cells, retry_failed)
    skipped = [Outcome(c, tuning.state(c), ran=False) for c in cells if c not in todo]
    if skipped:
        console.print(f"skipping {len(skipped)} cell(s) already done"
                      + (" or diverged" if any(o.state == "diverged" for o in skipped) else "")
                      + (" or excluded" if any(o.state == "excluded" for o in skipped) else "")
                      + ("" if retry_failed else " or failed (--skip-failed)"))
    return todo, skipped


def run_serial(folder: ResultsDir, spec: Spec, cells: list[Cell], *, device: str | None = None,
               quiet: bool = False, retry_failed: bool = True, exclude_failed: bool = False,
               output: Output | None = None) -> list[Outcome]:
    """Every cell not yet done, one after the other, in this process; each
    cell's output goes to its log (:mod:`wae_bench.bench.output`; ``output``
    default: a start and a finished line a cell on the console;
    ``exclude_failed``: :func:`split_todo`)."""
    output = output or Output(folder, spec, quiet=quiet)
    tuning = tune.Tuning(folder, spec, grid.expand(spec))
    todo, skipped = split_todo(tuning, cells, retry_failed, exclude_failed)
    out = []
    for i, cell in enumerate(todo, 1):
        tuning.forget()   # (a cell ended since the choices were read: the last one, or another process's)
        output.started(i, len(todo), cell)
        with output.running(cell, i, len(todo)):
            o = run_cell(tuning, cell, device, quiet)
        output.finished(i, len(todo), o)
        out.append(o)
    return skipped + out


@dataclass
class Worker:
    """A cell running in a subprocess: its output goes to ``log`` (the cell's log) from offset ``start``."""

    proc: subprocess.Popen
    cell: Cell
    log: IO[str]
    start: int
    shown: CellOutput
    t0: float = field(default_factory=time.perf_counter)


def run_parallel(folder: ResultsDir, spec: Spec, cells: list[Cell], devices: list[str],
                 command: Callable[[Cell, str], list[str]], *, retry_failed: bool = True,
                 exclude_failed: bool = False, output: Output | None = None) -> list[Outcome]:
    """One subprocess per device slot (a device listed twice gets two), each
    running one cell, its output into the cell's log; ``command(cell, device)``
    is its argv.  A final cell is started once its tuning group is complete
    (none queued or running; ``exclude_failed``: :func:`split_todo`)."""
    output = output or Output(folder, spec)
    tuning = tune.Tuning(folder, spec, grid.expand(spec))
    todo, skipped = split_todo(tuning, cells, retry_failed, exclude_failed)
    queue, running, out = list(todo), {}, []
    env = {**child_env(devices), WORKER_ENV: str(folder.path.resolve())}   # (the workers share this lock)
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)

    def runnable() -> int | None:
        """Index in the queue of the first cell that may start now (the choices read afresh: a cell may
        have ended since, here or in another process)."""
        tuning.forget()
        busy = {c.id for c in queue} | {w.cell.id for w in running.values()}
        return next((i for i, c in enumerate(queue) if tuning.ready(c, busy)), None)

    def start(cell: Cell, dev: str) -> Worker:
        log = open_log(folder, cell)
        proc = subprocess.Popen(command(cell, dev), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env)
        i = len(out) + len(running) + 1
        output.started(i, len(todo), cell, f"on {dev} (pid {proc.pid})")
        return Worker(proc, cell, log, log.tell(), output.cell(cell, i, len(todo), log=False))

    def end(w: Worker) -> None:
        w.log.close()
        if output.verbose:   # (its whole output at once: the cells running beside it do not interleave)
            output.say(read_from(folder.log_path(w.cell.id), w.start).rstrip("\n"), markup=False)
        tuning.forget()   # (its worker wrote the cell's outcome)
        out.append(_finished(tuning, w.cell, w.proc.returncode, time.perf_counter() - w.t0))
        output.finished(len(out), len(todo), out[-1])

    blocked = -1   # len(out) when no queued cell could start: none can until another cell ends
    try:
        while queue or running:
            for slot, dev in enumerate(devices):
                if slot in running or not queue or blocked == len(out):
                    continue
                i = runnable()
                if i is None:
                    blocked = len(out)
                else:
                    running[slot] = start(queue.pop(i), dev)
            for slot, w in list(running.items()):
                if w.proc.poll() is None:
                    w.shown.tick(lambda: last_line(folder.log_path(w.cell.id)))
                else:
                    del running[slot]
                    end(w)
            if queue and not running and runnable() is None:   # the rest wait for other shards' tuning cells
                for c in queue:
                    out.append(Outcome(c, "waiting", error=tune.TUNING_NOT_RUN, ran=False))
                    output.finished(len(out), len(todo), out[-1])
                queue.clear()
            time.sleep(0.2)
    except BenchInterrupted:
        raise
    except KeyboardInterrupt as e:   # (SIGTERM: _raise_interrupt, which names it; a plain Ctrl-C: SIGINT)
        output.clear()
        for w in running.values():
            w.proc.send_signal(signal.SIGINT)  # the child saves a checkpoint and stops
        for w in running.values():
            try:
                w.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                w.proc.kill()
            w.log.close()
        raise grid_stopped(e.args[0] if e.args else "SIGINT", [w.cell.id for w in running.values()], "",
                           "they resume from their checkpoints") from None
    finally:
        signal.signal(signal.SIGTERM, old_term)
    return skipped + out


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def child_env(devices: list[str]) -> dict[str, str]:
    """Workers' environment: CPU workers share the cores (``cores // CPU slots``
    threads each; oversubscribed OpenMP threads are many times slower), unless
    the user set the thread variables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cpu_slots = sum(d.split(":")[0] == "cpu" for d in devices)
    if cpu_slots > 1:
        threads = str(max(1, (os.cpu_count() or 1) // cpu_slots))
        env.update({k: threads for k in THREAD_VARS if k not in os.environ})
    return env


def _raise_interrupt(signum, frame):
    interrupt.note(signal.Signals(signum).name)   # (the exit status is 128 + N of the signal received)
    raise KeyboardInterrupt(signal.Signals(signum).name)   # (named: the stop line says which signal)


def _finished(tuning: tune.Tuning, cell: Cell, rc: int, seconds: float) -> Outcome:
    folder = tuning.folder
    state = tuning.state(cell)
    if state in SETTLED:
        return Outcome(cell, state, seconds, (folder.failure(cell.id) or {}).get("error", ""))
    fail = folder.failure(cell.id)
    if fail is None and rc == 0:   # the worker left the cell alone: another process runs it
        return Outcome(cell, "busy", seconds, f"{cell.id} is in use by another process (see {folder.log_path(cell.id)})",
                       ran=False)
    if fail is None:  # the worker died without recording why (killed, crashed)
        log = folder.log_path(cell.id)
        msg = f"worker exited with code {rc} ({last_line(log)[:200] or 'no output'}); see {log}"
        folder.mark_failed(cell, msg, returncode=rc)
        fail = {"error": msg}
    return Outcome(cell, "failed", seconds, fail["error"])


def read_from(path: Path, offset: int) -> str:
    """A log's text from ``offset`` on."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def last_line(path: Path) -> str:
    """The last line of text of a log ("" when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 4096, 0))
            tail = f.read().decode(errors="replace").replace("\r", "\n").strip().splitlines()
    except OSError:
        return ""
    return tail[-1].strip() if tail else ""


def child_command(spec_path: str, out: Path, passthrough: list[str]) -> Callable[[Cell, str], list[str]]:
    """The argv of a worker: the same bench command for one cell on one device,
    its full output (``--verbose``) written to the cell's log by its parent."""
    def command(cell: Cell, device: str) -> list[str]:
        return [sys.executable, "-m", "wae_bench", "bench", spec_path, "--out", str(out), *passthrough,
                "--only", cell.id, "--device", device, "--no-table", "--verbose"]
    return command
