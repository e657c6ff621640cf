"""Command-line flags and the docs' option table, derived from the option
declarations in :mod:`wae_bench.config` (a field declared with
``flag=...`` is a flag; every field is a ``--set`` key or a spec key).

Regenerate ``docs/options.md`` with ``wae-bench options-table > docs/options.md``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

import click

from wae_bench.config import EvalSettings, RegularizerConfig, TrainConfig, flag_of, key_of


@dataclass(frozen=True)
class Flag:
    """One declared option as a command-line flag."""

    path: tuple[str, ...]          # where its value goes: ("epochs",), ("reg", "lambda")
    name: str                      # --epochs, --reg, --lambda
    hint: Any
    field: dataclasses.Field

    @property
    def dest(self) -> str:
        return "_".join(self.path)

    @property
    def is_bool(self) -> bool:
        """A switch, ``--name/--no-name`` (a ``bool | None`` one: not given, the default decides)."""
        return self.hint is bool or set(typing.get_args(self.hint)) == {bool, type(None)}

    def click_option(self) -> Callable:
        decls = [f"{self.name}/--no-{self.name[2:]}" if self.is_bool else self.name, self.dest]
        kw = {} if self.is_bool else {"metavar": metavar(self.hint), "type": click_type(self.hint)}
        return click.option(*decls, default=None, help=help_text(self.field), **kw)


def declared(cls: type, prefix: tuple[str, ...] = (), *, run: bool = False) -> list[Flag]:
    """The flags of ``cls``'s fields (with ``run``: only those `wae-bench run` takes)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        name = f.metadata.get("flag")
        if not name or (run and not f.metadata.get("run", True)):
            continue
        out.append(Flag((*prefix, key_of(f.name)), name if isinstance(name, str) else flag_of(f.name),
                        hints[f.name], f))
    return out


TRAIN_FLAGS = declared(TrainConfig) + declared(RegularizerConfig, ("reg",))
EVAL_FLAGS = declared(EvalSettings)
RUN_EVAL_FLAGS = declared(EvalSettings, run=True)


def add(flags: list[Flag]) -> Callable:
    """Decorator: the click options of ``flags``, in declaration order."""
    def deco(fn):
        for fl in reversed(flags):
            fn = fl.click_option()(fn)
        return fn
    return deco


def given(flags: list[Flag], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The flags the user gave, popped from click's ``kwargs``, as a nested
    settings table (``{"epochs": "3", "reg": {"lambda": "10"}}``); their text
    is typed by :func:`wae_bench.config.from_dict`."""
    out: dict[str, Any] = {}
    for fl in flags:
        value = kwargs.pop(fl.dest)
        if value is None:
            continue
        node = out
        for p in fl.path[:-1]:
            node = node.setdefault(p, {})
        node[fl.path[-1]] = value
    return out


# -- descriptions -------------------------------------------------------------------
def type_text(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if not dataclasses.is_dataclass(a)]   # (reg: resolved later)
        return " or ".join(type_text(a) if a is not type(None) else "none" for a in args)
    if origin is typing.Literal:
        return " \\| ".join(map(str, typing.get_args(hint)))
    if origin in (list, tuple):
        return f"list of {type_text(typing.get_args(hint)[0])}"
    if origin is dict:
        return "table"
    return getattr(hint, "__name__", str(hint))


def click_type(hint: Any) -> Any:
    """Numbers are checked by click (``--epochs abc``: a usage error naming
    the flag); every other value is typed by :func:`wae_bench.config.from_dict`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return {int: click.INT, float: click.FLOAT}.get(hint, click.STRING)


def metavar(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "[" + "|".join(map(str, typing.get_args(hint))) + "]"
    if origin in (list, tuple):
        return "A,B,..."
    if origin in (typing.Union, types.UnionType):
        return metavar(next(a for a in typing.get_args(hint) if a is not type(None)))
    return {int: "INT", float: "NUMBER", str: "TEXT"}.get(hint, "VALUE")


def default_text(f: dataclasses.Field) -> str:
    if f.metadata.get("default_text"):
        return f.metadata["default_text"]
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(empty)"
    return "{}" if value == {} else str(value)


def help_text(f: dataclasses.Field) -> str:
    return f"{f.metadata['help']} Default: {default_text(f)}."


SECTIONS = [
    ("Training", "`wae-bench run` flags; `--set KEY=VALUE`, a `--config` TOML file and a bench spec's "
                 "`[train]` take every key", TrainConfig, "", TRAIN_FLAGS),
    ("Regularizer", "`--set reg.KEY=VALUE`, a bench spec's `[reg.NAME]`; each plugin adds its own keys "
                    "(`wae-bench list`)", RegularizerConfig, "reg.", TRAIN_FLAGS),
    ("Evaluation", "`wae-bench eval` flags (`wae-bench run` takes those marked run) and a bench spec's "
                   "`[eval]`", EvalSettings, "", EVAL_FLAGS),
]


def markdown() -> str:
    """``docs/options.md``: every declared option, its flag, type, default and meaning."""
    out = ["# Options", "",
           "Generated from the declarations in `wae_bench/config.py`; regenerate with",
           "`wae-bench options-table > docs/options.md` (a test checks it is current).", ""]
    for title, where, cls, prefix, flags in SECTIONS:
        names = {fl.field.name: fl.name for fl in flags}
        hints = typing.get_type_hints(cls)
        out += [f"## {title}", "", f"{where}.", "", "| key | flag | type | default | meaning |",
                "|---|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            flag = f"`{names[f.name]}`" if f.name in names else ""
            if flag and cls is EvalSettings:
                flag += " (eval)" if f.metadata.get("run") is False else " (eval, run)"
            cells = [f"`{prefix}{key_of(f.name)}`", flag, type_text(hints[f.name]), default_text(f),
                     f.metadata.get("help", "")]
            out.append("| " + " | ".join(c if i == 2 else c.replace("|", "\\|") for i, c in enumerate(cells)) + " |")
        out.append("")
    return "\n".join(out)


@click.command("options-table")
def options_table_cmd():
    """Print the table of every declared option (docs/options.md) as Markdown."""
    click.echo(markdown(), nl=False)


COMMANDS = [options_table_cmd]


def eval_command(path, given: dict[str, Any], flags: list[Flag]) -> str:
    """The `wae-bench eval` command that scores ``path`` with the evaluation
    flags the user gave (``given``, as :func:`given` read them from
    ``flags``), quoted for the shell: what a stop while scoring says to run."""
    import shlex

    args = [(fl.name if given[fl.dest] else f"--no-{fl.name[2:]}") if fl.is_bool
            else f"{fl.name} {shlex.quote(str(given[fl.dest]))}" for fl in flags if fl.dest in given]
    return " ".join(["wae-bench eval", shlex.quote(str(path)), *args])
