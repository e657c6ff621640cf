"""Who a message's fix is worded for: a ``wae-bench run`` (the default), a
cell of a ``wae-bench bench``, whose user has none of a run's flags
(``--batch-size``, ``--resume``, ``--out RUN_DIR``, ``--trust-checkpoint``,
``--force``) but the spec's keys (``--set train.KEY=V``), the same bench
command to rerun, and the cell's folder (``RESULTS_DIR/cells/ID``) to remove
so that the next bench run retrains the cell; or a caller of the Python API
(docs/python-api.md), who has no flags either but the arguments of
``train_run(overrides, out, resume=..., force=..., trust=...)``,
``evaluate_run`` and ``load_model``: ``out``, ``resume=True``,
``force=True``, ``trust=True``, the overrides' keys (``{"lr": ...}``,
``{"reg": {"lambda": ...}}``) and ``train_run({}, out, resume=True)`` to
continue.

The Python API's entry points enter :func:`python` (its words, unless their
caller has said whose: the CLI's commands that call them, ``wae-bench run``
and ``wae-bench eval``, enter :func:`cli` first; a bench, :func:`bench`);
code that raises without any of these (a unit test of a module) gets the
run's words.

The bench says so for the block that runs its grid (:func:`bench`, in
``wae-bench bench`` and ``wae-bench compare``) and for each cell's work
(:func:`cell`, :func:`wae_bench.bench.runner.attempt`); the code that raises
asks, for its fix, :func:`setting`, :func:`drop`, :func:`go_on`,
:func:`start_again` or :func:`lower_lr_or_lambda`, which give the run's
words outside a bench, and, for a message no bench cell meets, :func:`flag`
(``--out`` or ``out``) or :func:`flag_or_arg` (the two wordings of a
phrase); in a call of the Python API these give its words
(:func:`overrides`: a key as the overrides dict sets it; :func:`resume_call`:
the call that continues a run).  A context variable: each thread and task
has its own, and a bench's cells running side by side in one process
(``--concurrent``) each set it around their own work.
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
    python: bool = False             # a call of the Python API (its arguments, no flags)


# None: no one has said (the run's words; the Python API's entry points then say theirs)
_NOW: contextvars.ContextVar[Audience | None] = contextvars.ContextVar("worded_for", default=None)
_RUN = Audience()


def now() -> Audience:
    """The audience of the messages raised here (a run's, unless a block said otherwise)."""
    return _NOW.get() or _RUN


@contextlib.contextmanager
def _worded(audience: Audience) -> Iterator[None]:
    token = _NOW.set(audience)
    try:
        yield
    finally:
        _NOW.reset(token)


def python() -> contextlib.AbstractContextManager:
    """The block is a call of the Python API (``train_run``, ``evaluate_run``,
    ``load_model``): its messages name the Python arguments, unless the
    caller has already said whose they are (:func:`cli`, :func:`bench`,
    :func:`cell`: the entry point is then the command's work)."""
    return _worded(dataclasses.replace(_RUN, python=True)) if _NOW.get() is None else contextlib.nullcontext()


def cli() -> contextlib.AbstractContextManager:
    """The block is a command of the command line (``wae-bench run``,
    ``wae-bench eval``): the Python API it calls words its messages for the
    command's flags, a run's."""
    return _worded(now())


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


def _python() -> bool:
    """A call of the Python API, not the work of a bench in it."""
    a = now()
    return a.python and not a.bench


def overrides(key: str, value: str = "...") -> str:
    """A config key as the overrides of ``train_run`` give it: ``lr`` ->
    ``{"lr": ...}``, ``reg.lambda`` -> ``{"reg": {"lambda": ...}}``."""
    *tables, name = key.split(".")
    out = f'{{"{name}": {value}}}'
    for t in reversed(tables):
        out = f'{{"{t}": {out}}}'
    return out


#: The Python argument of each of a run's flags that ``train_run``,
#: ``evaluate_run`` and ``load_model`` take (docs/python-api.md).
ARGUMENTS = {"--out": "out", "--resume": "resume=True", "--force": "force=True", "--trust-checkpoint": "trust=True"}


def download_flag() -> str:
    """How to ask for a dataset's download: a run's ``--download``; in a
    bench or a head-to-head, whose commands have no such flag,
    ``--set train.download=true``."""
    return "--set train.download=true" if now().bench else "--download"


def flag(name: str) -> str:
    """A run's flag ``name`` (``--resume``), or its Python argument
    (:data:`ARGUMENTS`: ``resume=True``) in a call of the Python API."""
    return ARGUMENTS[name] if _python() else name


def flag_or_arg(run_words: str, python_words: str) -> str:
    """``run_words`` (a run's flags, ``--out``), or ``python_words`` (the
    Python arguments, ``out``) in a call of the Python API; a bench's cell
    gets the run's (a message no bench cell meets)."""
    return python_words if _python() else run_words


def resume_call(path) -> str:
    """The Python call that continues the run in ``path``: ``train_run({}, 'P', resume=True)``."""
    return f"train_run({{}}, {str(path)!r}, resume=True)"


def setting(flag: str, key: str) -> str:
    """The setting to change: a run's ``flag`` (``--batch-size``); in a
    bench, the spec key ``key`` and how to set it
    (``train.batch_size (--set train.batch_size=N)``); in a call of the
    Python API, the overrides' key (``batch_size ({"batch_size": N})``)."""
    if now().bench:
        return f"{key} (--set {key}=N)"
    name = key.split(".", 1)[-1] if key.startswith("train.") else key
    return f"{name} ({overrides(name, 'N')})" if _python() else flag


def drop(flag: str, key: str, regularizer: str) -> str:
    """The fix of a setting ``regularizer`` refuses: ``drop --lambda`` in a
    run; in a bench, the places of the spec that set it (``key``,
    ``reg.lambda``: the ``[reg.NAME]`` table, a grid axis, ``--set``); in a
    call of the Python API, the overrides' key (``{"reg": {"lambda": ...}}``)."""
    name = key.split(".", 1)[-1]
    if _python():
        return f"drop {name} from the overrides ({overrides(key)})"
    if not now().bench:
        return f"drop {flag}"
    return (f"drop {name} for {regularizer} from the spec (its [reg.{regularizer}] {name}, a {key!r} grid axis, "
            f"--set reg.{regularizer}.{name}=...)")


def lower_lr_or_lambda() -> str:
    """The fix of a diverged training: ``lower --lr or --lambda`` in a run;
    in a bench, the spec's keys (a tuning cell's divergence is a result of
    its value, which the choice passes over); in a call of the Python API,
    the overrides' keys."""
    if now().bench:
        return "lower train.lr or the regularizer's lambda (in the spec: [train] lr, [reg.NAME] lambda or its values)"
    if _python():
        return f"lower lr or the regularizer's lambda ({overrides('lr')}, {overrides('reg.lambda')})"
    return "lower --lr or --lambda"


def go_on(run_words: str, python_words: str | None = None) -> str:
    """How to continue after fixing the cause: ``run_words`` in a run
    (``continue with: wae-bench run --resume --out P``); ``python_words``
    (where given) in a call of the Python API (``continue with:
    train_run({}, 'P', resume=True)``); in a bench, its own command, which
    resumes the cell from its checkpoint."""
    if now().bench:
        return f"{rerun()} (the cell resumes from its checkpoint)"
    return python_words if python_words is not None and _python() else run_words


def start_again(run_words: str, python_words: str | None = None) -> str:
    """How to give up a run's state and train afresh: ``run_words`` in a run
    (``start a new run``); ``python_words`` (where given) in a call of the
    Python API; in a bench, remove the cell's folder so that the next bench
    run retrains it."""
    a = now()
    if not a.bench:
        return python_words if python_words is not None and _python() else run_words
    where = f" ({a.cell_dir})" if a.cell_dir is not None else " (RESULTS_DIR/cells/ID)"
    return f"remove the cell's folder{where} so that the next {a.command} run retrains it"
