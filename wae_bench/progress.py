"""Rich progress bar and console output for training and evaluation, and
the plain lines that replace the bars when the output is not a terminal
(a log must not go silent for minutes)."""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

LOG_WIDTH = 160   # the least width of output that is not a terminal (a file, a pipe, a Slurm log)


class LogConsole(Console):
    """The console of output that is not a terminal (a file, a pipe, a Slurm
    log): text is never wrapped (a line of the log is one message), and a
    table wider than the console is printed at its own width, not cut."""

    def print(self, *objects, **kw) -> None:
        wide = [o for o in objects if not isinstance(o, (str, Text))]
        if not wide:
            kw.setdefault("soft_wrap", True)
            return super().print(*objects, **kw)
        natural = max(Measurement.get(self, self.options.update_width(10**6), o).maximum for o in wide)
        saved = self.width
        self.width = max(saved, natural)
        try:
            super().print(*objects, **kw)
        finally:
            self.width = saved


def make_console(**kw) -> Console:
    """A console that prints text as written (``emoji=False``: a plugin's
    error ``mod:X: ...`` never becomes an emoji) and, when its stream is not
    a terminal, a :class:`LogConsole` at least :data:`LOG_WIDTH` wide: rich
    would otherwise wrap a log at 80 columns, breaking cell ids and settings
    mid-name, and cut a wider table at the console's edge."""
    c = Console(emoji=False, **kw)
    return c if c.is_terminal else LogConsole(emoji=False, width=max(c.width, LOG_WIDTH), **kw)


console = make_console(stderr=True)
stdout = make_console()



@contextlib.contextmanager
def plain() -> Iterator[None]:
    """What :data:`console` and :data:`stdout` print in the block has no
    colours or styles (it goes to a file while they were made on a terminal:
    rich fixes a console's colour system when it is made)."""
    saved = [(c, c._color_system) for c in (console, stdout)]
    for c, _ in saved:
        c._color_system = None
    try:
        yield
    finally:
        for c, system in saved:
            c._color_system = system


_LISTENERS: list[Callable[[str, bool], None]] = []


def notice(text: str, markup: bool = True) -> None:
    """A warning, or a one-time event the user must see (bf16 on a CPU, FID
    weights converted, a checkpoint skipped): a line on stderr like any
    other, and also given to whoever listens (:func:`listening`): a bench
    whose cell's output goes to the cell's log shows it on its console too."""
    console.print(text, soft_wrap=True, markup=markup)
    for listener in list(_LISTENERS):
        listener(text, markup)


@contextlib.contextmanager
def listening(listener: Callable[[str, bool], None]) -> Iterator[None]:
    """``listener(text, markup)`` is called with every :func:`notice` of the block."""
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


def phase(text: str, quiet: bool = False) -> None:
    """One line on stderr before a slow step that has no bar (``decoding
    60,000 images from train.zip ...``, the ex-post fit, the pictures)."""
    if not quiet:
        console.print(f"{text} ...", soft_wrap=True, markup=False, highlight=False)


LINE_EVERY_S = 30.0   # without a terminal, a bar's count is printed at most this often


class Lines:
    """What a bar's owner calls on a rich ``Progress`` (``add_task``,
    ``advance``), printed as ``PREFIX: DESCRIPTION done/total`` lines on
    stderr at most every :data:`LINE_EVERY_S` seconds: the bar of a log."""

    def __init__(self, prefix: str):
        self.prefix, self.tasks = prefix, []

    def add_task(self, description: str, total: int) -> int:
        self.tasks.append([description, total, 0, time.monotonic()])
        return len(self.tasks) - 1

    def advance(self, task: int, n: int) -> None:
        t = self.tasks[task]
        t[2] += n
        now = time.monotonic()
        if now - t[3] >= LINE_EVERY_S and t[2] < t[1]:
            t[3] = now
            print(f"{self.prefix}: {t[0]} {t[2]}/{t[1]}", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class TrainProgress:
    """Steps bar with loss, reconstruction, regulariser and images/s."""

    def __init__(self, total: int, start: int, batch: int, quiet: bool = False):
        self.total, self.start, self.batch, self.quiet = total, start, batch, quiet
        self._t0, self._s0 = time.perf_counter(), start
        self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=console, disable=quiet or not console.is_terminal)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.total, completed=self.start, info="")
        return self

    def update(self, step: int, m: dict) -> dict:
        now = time.perf_counter()
        ips = (step - self._s0) * self.batch / max(now - self._t0, 1e-9)
        self._t0, self._s0 = now, step
        info = f"loss {m.get('loss', float('nan')):.4g} rec {m.get('rec', float('nan')):.4g} " \
               f"reg {m.get('reg', float('nan')):.4g} {ips:,.0f} img/s"
        self.bar.update(self.task, completed=step, info=info)
        if not self.quiet and not console.is_terminal:
            print(f"step {step}/{self.total} {info}", file=sys.stderr, flush=True)
        return {"img_per_s": ips}

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)
