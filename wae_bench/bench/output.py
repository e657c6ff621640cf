"""What `wae-bench bench` prints about its cells (docs/cli.md, "bench output"),
so that a grid of hundreds of cells logs a few lines a cell:

- a start line and one finished line per cell, the finished line with the
  outcome, the wall time and the cell's headline scores, named as its
  results name them (``stand-in FID (NOT FID)`` is never shown as FID);
- each in-process cell's full output (its header, steps, phases, score table,
  protocol and diagnostics) goes to ``RESULTS_DIR/logs/<cell-id>.log``
  (:meth:`~wae_bench.bench.folder.ResultsDir.log_path`, where a ``--devices``
  worker's output goes too), and with ``--verbose`` to the console as well;
- while a cell runs, its latest line as a transient line on a terminal, or,
  when the console is a file or a pipe, one short line every
  :data:`PROGRESS_EVERY_S` seconds at most;
- a :func:`~wae_bench.progress.notice` (a warning, the FID weights being
  converted) or a Python warning of a cell still reaches the console, once
  for the grid.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, TextIO

from rich.markup import escape

from wae_bench import lock, progress, results
from wae_bench.bench.aggregate import number
from wae_bench.bench.folder import ResultsDir, score
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import WHAT_LABELS, Spec
from wae_bench.config import EvalSettings
from wae_bench.run import checkpoint

PROGRESS_EVERY_S = 60.0    # without a terminal: a running cell's progress line at most this often
TRANSIENT_EVERY_S = 0.2    # on a terminal: the transient line redrawn at most this often
PROGRESS_CHARS = 100       # a progress line shows this much of the cell's latest line


def duration(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def metric_name(res: dict, metric: str) -> str:
    """``FID``; ``stand-in FID (NOT FID)`` when the results' protocol says the features are a stand-in."""
    name = metric.upper()
    return name if results.inception(res.get("protocol") or {}) else f"stand-in {name} (NOT {name})"


def headline(res: dict | None, ev: EvalSettings) -> str:
    """``stand-in FID (NOT FID) prior samples 12.42 · REC 12.40``: the first
    metric the cell is scored by, of each column it is scored on (``val``
    when scored on the validation split, as a tuning cell)."""
    if not res:
        return ""
    metric = ev.metrics[0]
    scores = [(w, score(res, w, metric)) for w in ev.what]
    shown = " · ".join(f"{WHAT_LABELS.get(w, w)} {number(v)}" for w, v in scores if v is not None)   # as the table
    split = f" on {ev.split}" if ev.split != "test" else ""
    return f"{metric_name(res, metric)}{split}: {shown}" if shown else ""


def open_log(folder: ResultsDir, cell: Cell) -> TextIO:
    """The cell's log, opened to append (a rerun's output follows the earlier
    runs'), after a line naming the cell and the time."""
    path = folder.log_path(cell.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a", encoding="utf-8", buffering=1)
    f.write(f"--- wae-bench bench, cell {cell.id}, {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    f.flush()
    return f


class Output:
    """The console of one grid: its permanent lines, the progress of its
    running cells, and each in-process cell's log (:meth:`running`).

    ``verbose``: each cell's full output on the console too; ``quiet``: no
    progress lines; ``worker``: a ``--devices`` worker, whose output already
    is its cell's log (none written, nothing announced)."""

    def __init__(self, folder: ResultsDir, spec: Spec, *, verbose: bool = False, quiet: bool = False,
                 worker: bool = False, clock: Callable[[], float] = time.monotonic):
        self.folder, self.spec, self.verbose, self.quiet, self.worker = folder, spec, verbose, quiet, worker
        self.clock = clock
        self.stream = sys.stderr   # the console's stream, before any cell's output is captured
        self.console = progress.make_console(file=self.stream)
        self.terminal = self.console.is_terminal
        self.said: set[str] = set()          # the notices shown
        self.announced = False
        self.transient = ""                  # the transient line on screen (a terminal)
        self.drawn = 0.0

    # -- permanent lines ---------------------------------------------------------
    def say(self, text: str, markup: bool = True) -> None:
        """A line on the console (the transient line, if any, cleared first)."""
        self.clear()
        self.console.print(text, soft_wrap=True, markup=markup, highlight=False)

    def started(self, i: int, n: int, cell: Cell, where: str = "", start: int | None = None) -> None:
        """A cell's start line (``where`` it runs: a slot, a device), saying
        where a cell that resumes starts from (docs/resume.md; also with
        ``--quiet``): ``start``, the step its training began at, or for a
        cell that has not begun (None) its newest checkpoint's; not for a
        cell another process holds (it is left to that one).  Before the
        first, where each cell's full output goes."""
        if not (self.announced or self.worker):
            self.announced = True
            self.say(f"full output of each cell: {self.folder.logs_path.resolve()}/<cell-id>.log"
                     + ("" if self.verbose else " (--verbose: on the console too)"), markup=False)
        d = self.folder.cell_dir(cell.id)
        step = checkpoint.latest_step(d) if start is None else start
        # (a cell another process holds is not resumed here: its `busy` line follows)
        resumed = f" (resumed from step {step})" if step and lock.held_elsewhere(d) is None else ""
        self.say(f"[{i}/{n}] {cell.id}" + (f" {where}{resumed}" if where else f"{resumed} ..."), markup=False)

    def finished(self, i: int, n: int, o) -> None:
        """The one line of a cell that ended (an :class:`~wae_bench.bench.runner.Outcome`)."""
        from wae_bench.bench import tune

        if o.state == "done":
            scores = headline(self.folder.results(o.cell.id), tune.eval_settings(self.spec, o.cell))
            self.say(f"[{i}/{n}] [green]done[/] {o.cell.id} ({duration(o.seconds)})"
                     + (f" · {escape(scores)}" if scores else ""))
        elif o.state == "waiting":
            self.say(f"[{i}/{n}] [yellow]waiting[/] {o.cell.id}: {escape(o.error)}")
        elif o.state == "busy":
            self.say(f"[{i}/{n}] [yellow]busy[/] {o.cell.id}: {escape(o.error)}")
        elif o.state == "diverged":
            self.say(f"[{i}/{n}] [yellow]diverged[/] {o.cell.id} (a result: this value is never chosen): "
                     f"{escape(o.error)}")
        else:
            self.say(f"[{i}/{n}] [red]failed[/] {o.cell.id}: {escape(o.error)}")

    def notice(self, text: str, markup: bool = True) -> None:
        """A cell's warning on the console, the first time it is given."""
        if text not in self.said:
            self.said.add(text)
            self.say(text, markup)

    # -- the transient line (a terminal) -----------------------------------------
    def clear(self) -> None:
        if self.transient:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.transient = ""

    def show(self, text: str) -> None:
        self.drawn = self.clock()
        self.stream.write("\r\x1b[2K" + text[:max(self.console.width - 1, 20)])
        self.stream.flush()
        self.transient = text

    # -- cells -------------------------------------------------------------------
    def cell(self, cell: Cell, i: int, n: int, log: bool = True) -> CellOutput:
        """``cell``'s output (``log``: written by this process to the cell's log)."""
        return CellOutput(self, cell, f"[{i}/{n}] {cell.id}", log and not self.worker)

    @contextlib.contextmanager
    def running(self, cell: Cell, i: int, n: int) -> Iterator[CellOutput]:
        """What the block prints is ``cell``'s output (:class:`CellOutput`)."""
        c = self.cell(cell, i, n)
        try:
            with c:
                yield c
        finally:
            c.close()


class CellOutput:
    """One running cell's output: inside ``with`` (entered once, or around
    each of its steps under ``--concurrent``) what the process prints goes to
    the cell's log (and the console with ``--verbose``), its latest line
    shown as progress; :meth:`close` when the cell ended."""

    def __init__(self, out: Output, cell: Cell, label: str, log: bool):
        self.out, self.cell, self.label = out, cell, label
        self.t0 = self.shown = out.clock()    # shown: when the last progress line was printed (piped)
        self.latest = ""                      # the cell's latest line of text
        self.partial = ""
        self.file = open_log(out.folder, cell) if log else None
        self.stream = _Stream(self)
        self._entered: list[contextlib.ExitStack] = []

    def write(self, s: str) -> None:
        if self.file is not None:
            self.file.write(s)
        if self.out.verbose:
            self.out.stream.write(s)
            return
        *lines, self.partial = (self.partial + s).split("\n")
        for line in lines:
            self.see(line)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
        if self.out.verbose:
            self.out.stream.flush()

    def see(self, line: str) -> None:
        """A line of the cell's output: the progress it shows (a line of words, not a table's border)."""
        line = line.replace("\r", "").strip()
        if line and line[0].isalnum():
            self.latest = line
            self.tick()

    def tick(self, latest: Callable[[], str] | None = None) -> None:
        """Show the cell's progress if it is time: on a terminal the transient
        line; else a line, at most every :data:`PROGRESS_EVERY_S`.  ``latest``:
        reads the cell's latest line (e.g. of a worker's log), called only then."""
        out = self.out
        now = out.clock()
        due = now - out.drawn >= TRANSIENT_EVERY_S if out.terminal else now - self.shown >= PROGRESS_EVERY_S
        if out.quiet or not due:
            return
        self.latest = latest() if latest else self.latest
        if not self.latest:
            return
        text = f"{self.label} · {duration(now - self.t0)} · {self.latest[:PROGRESS_CHARS]}"
        if out.terminal:
            out.show(text)
        else:
            self.shown = now
            out.say(text, markup=False)

    def __enter__(self) -> CellOutput:
        stack = contextlib.ExitStack()
        stack.enter_context(contextlib.redirect_stdout(self.stream))
        stack.enter_context(contextlib.redirect_stderr(self.stream))
        stack.enter_context(progress.plain())
        if not self.out.verbose:   # (verbose: the notices reach the console with the rest)
            stack.enter_context(progress.listening(self.out.notice))
            stack.enter_context(_warnings_to(self.out.notice))
        self._entered.append(stack)
        return self

    def __exit__(self, *exc) -> None:
        self._entered.pop().close()

    def close(self) -> None:
        if self.partial:
            self.see(self.partial)
            self.partial = ""
        self.out.clear()   # (an error line may follow: not after a transient line)
        if self.file is not None:
            self.file.close()
            self.file = None


class _Stream:
    """The file a cell's ``sys.stdout`` / ``sys.stderr`` are while it runs (never a terminal)."""

    encoding = "utf-8"

    def __init__(self, cell: CellOutput):
        self.cell = cell

    def write(self, s: str) -> int:
        self.cell.write(s)
        return len(s)

    def flush(self) -> None:
        self.cell.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _warnings_to(say: Callable[[str, bool], None]) -> Iterator[None]:
    """Python warnings of the block: written as Python writes them to ``sys.stderr`` (the cell's log), and
    one line of each given to ``say``."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        say(f"warning: {category.__name__}: {message} ({Path(filename).name}:{lineno})", False)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
