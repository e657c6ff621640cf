"""Rich progress bar and console output for training and evaluation."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

LOG_WIDTH = 160   # the least width of output that is not a terminal (a file, a pipe, a Slurm log)


def _console(**kw) -> Console:
    """A console that prints text as written (``emoji=False``: a plugin's
    error ``mod:X: ...`` never becomes an emoji) and, when its stream is not
    a terminal, is at least :data:`LOG_WIDTH` wide: rich would otherwise wrap
    a log at 80 columns, breaking cell ids and settings mid-name."""
    c = Console(emoji=False, **kw)
    return c if c.is_terminal else Console(emoji=False, width=max(c.width, LOG_WIDTH), **kw)


console = _console(stderr=True)
stdout = _console()


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
