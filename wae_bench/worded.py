"""Who a message's fix is worded for: a ``wae-bench run`` (the default), or a
cell of a ``wae-bench bench``, whose user has none of a run's flags
(``--batch-size``, ``--resume``, ``--out RUN_DIR``, ``--trust-checkpoint``,
``--force``) but the spec's keys (``--set train.KEY=V``), the same bench
command to rerun, and the cell's folder (``RESULTS_DIR/cells/ID``) to remove
so that the next bench run retrains the cell.

The bench says so for the block that runs its grid (:func:`bench`, in
``wae-bench bench`` and ``wae-bench compare``) and for each cell's work
(:func:`cell`, :func:`wae_bench.bench.runner.attempt`); the code that raises
asks, for its fix, :func:`setting`, :func:`drop`, :func:`go_on`,
:func:`start_again` or :func:`lower_lr_or_lambda`,
which give the run's words outside a bench.  A context variable: each
thread and task has its own, and a bench's cells running side by side in one
process (``--concurrent``) each set it around their own work.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class Audience:
    """What the messages of a block are worded for."""

    holdout_key: str = "holdout"     # the setting that sizes the hold-out: a run's; a bench's tune./train.holdout
    bench: bool = False              # a bench's cell (no run flags)
    cell_dir: Path | None = None     # that cell's folder, where known
    command: str = "bench"           # the command a bench's user reruns: ``bench``, or ``compare`` (its cells too)


_NOW = contextvars.ContextVar("worded_for", default=Audience())


def now() -> Audience:
    """The audience of the messages raised here."""
    return _NOW.get()


@contextlib.contextmanager
def _worded(audience: Audience) -> Iterator[None]:
    token = _NOW.set(audience)
    try:
        yield
    finally:
        _NOW.reset(token)


def bench(holdout_key: str, command: str = "bench") -> contextlib.AbstractContextManager:
    """The block runs a bench whose hold-out is sized by ``holdout_key``
    (``tune.holdout``, ``train.holdout``): its messages name the spec's keys
    and ``command`` (``bench``; ``compare`` for `wae-bench compare`'s cells)
    as the one to rerun."""
    return _worded(dataclasses.replace(now(), holdout_key=holdout_key, bench=True, command=command))


def rerun() -> str:
    """``rerun the same bench command`` (``compare`` in `wae-bench compare`)."""
    return f"rerun the same {now().command} command"


def cell(cell_dir: str | Path) -> contextlib.AbstractContextManager:
    """The block is the work of the bench cell in ``cell_dir``."""
    return _worded(dataclasses.replace(now(), bench=True, cell_dir=Path(cell_dir)))


def setting(flag: str, key: str) -> str:
    """The setting to change: a run's ``flag`` (``--batch-size``); in a
    bench, the spec key ``key`` and how to set it
    (``train.batch_size (--set train.batch_size=N)``)."""
    return f"{key} (--set {key}=N)" if now().bench else flag


def drop(flag: str, key: str, regularizer: str) -> str:
    """The fix of a setting ``regularizer`` refuses: ``drop --lambda`` in a
    run; in a bench, the places of the spec that set it (``key``,
    ``reg.lambda``: the ``[reg.NAME]`` table, a grid axis, ``--set``)."""
    if not now().bench:
        return f"drop {flag}"
    name = key.split(".", 1)[-1]
    return (f"drop {name} for {regularizer} from the spec (its [reg.{regularizer}] {name}, a {key!r} grid axis, "
            f"--set reg.{regularizer}.{name}=...)")


def lower_lr_or_lambda() -> str:
    """The fix of a diverged training: ``lower --lr or --lambda`` in a run;
    in a bench, the spec's keys (a tuning cell's divergence is a result of
    its value, which the choice passes over)."""
    if now().bench:
        return "lower train.lr or the regularizer's lambda (in the spec: [train] lr, [reg.NAME] lambda or its values)"
    return "lower --lr or --lambda"


def go_on(run_words: str) -> str:
    """How to continue after fixing the cause: ``run_words`` in a run
    (``continue with: wae-bench run --resume --out P``); in a bench, its own
    command, which resumes the cell from its checkpoint."""
    return f"{rerun()} (the cell resumes from its checkpoint)" if now().bench else run_words


def start_again(run_words: str) -> str:
    """How to give up a run's state and train afresh: ``run_words`` in a run
    (``start a new run``); in a bench, remove the cell's folder so that the
    next bench run retrains it."""
    a = now()
    if not a.bench:
        return run_words
    where = f" ({a.cell_dir})" if a.cell_dir is not None else " (RESULTS_DIR/cells/ID)"
    return f"remove the cell's folder{where} so that the next {a.command} run retrains it"
