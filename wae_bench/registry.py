"""Name -> object registries for regularizers, architectures and datasets.

Built-in and third-party plugins arrive the same way: through the Python
entry-point groups ``wae_bench.regularizers``, ``wae_bench.architectures`` and
``wae_bench.datasets`` (the mechanism pytest and Lightning use).  In-process
code may also use the :meth:`Registry.register` decorator.  Duplicate names
raise; a plugin that fails to import, or that a registry's ``check`` refuses
(a regularizer's ``prior`` or ``sampler`` outside what the framework knows),
is recorded in :attr:`Registry.broken` and reported, not fatal.
"""
from __future__ import annotations

import difflib
import re
from importlib.metadata import entry_points
from typing import Any, Callable

from wae_bench.errors import WaeError


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")   # a plain folder-name part: never a path


class Registry:
    """``check(name, obj)``, if given, refuses (a WaeError) an object unfit to register."""

    def __init__(self, kind: str, group: str, check: Callable[[str, Any], None] | None = None):
        self.kind, self.group, self.check = kind, group, check
        self._items: dict[str, Any] = {}
        self._broken: dict[str, str] = {}
        self._dists: dict[str, str] = {}   # name -> "DIST VERSION" of the package whose entry point gave it
        self._loaded = False

    def add(self, name: str, obj: Any) -> Any:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise WaeError(f"bad {self.kind} name {name!r}: names a run folder and a bench cell, so it must be "
                           f"at most 64 letters, digits, '-', '_' or '.', starting with a letter or digit")
        if name in self._items and self._items[name] is not obj:
            raise WaeError(f"duplicate {self.kind} name {name!r}: already registered by "
                           f"{_where(self._items[name])}; choose another name")
        if self.check is not None:
            self.check(name, obj)
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: ``@REGULARIZERS.register("mine")``."""
        return lambda obj: self.add(name, obj)

    def load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin is reported, not fatal
                self._broken[ep.name] = f"{ep.value}: {type(e).__name__}: {e}".splitlines()[0]
                continue
            try:
                self.add(ep.name, obj)
            except WaeError as e:
                self._broken[ep.name] = f"{ep.value}: {e}"
                continue
            dist = getattr(ep, "dist", None)
            if dist is not None and self._items[ep.name] is obj:
                self._dists[ep.name] = f"{dist.metadata['Name'] or dist.name} {dist.version}"

    @property
    def broken(self) -> dict[str, str]:
        """``{name: why}`` of each entry point that failed to load or was refused."""
        self.load_entry_points()
        return self._broken

    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._items)

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self._items[n]) for n in self.names()]

    def get(self, name: str) -> Any:
        self.load_entry_points()
        if name in self._items:
            return self._items[name]
        if name in self.broken:
            raise WaeError(f"{self.kind} {name!r} failed to load ({self.broken[name]}); "
                           f"fix or uninstall the plugin that provides it")
        if name in source_entry_points(self.group):
            raise WaeError(f"{self.kind} {name!r} is in pyproject.toml's {self.group} entry points but not "
                           f"installed; run `pip install -e .` in the source tree")
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise WaeError(f"unknown {self.kind} {name!r}; {hint}choose one of: "
                       f"{', '.join(self.names())} (see `wae-bench list`)")

    def provider(self, name: str) -> str:
        """Who provides ``name``: the distribution and version of the package
        whose entry point registered it (``"my-pkg 0.1"``; the built-ins:
        wae-bench's own), else the module of an object registered another way
        (``"module my_mod"``).  Recorded with every run (its ``versions``)."""
        obj = self.get(name)
        return self._dists.get(name) or f"module {getattr(obj, '__module__', '?')}"

    def __contains__(self, name: str) -> bool:
        self.load_entry_points()
        return name in self._items


def source_entry_points(group: str) -> dict[str, str]:
    """``group``'s entry points in the pyproject.toml beside this package,
    where wae-bench runs from a source tree (an editable install); ``{}``
    elsewhere.  Read only to explain an unknown name: an entry point added
    there takes effect only after ``pip install -e .``."""
    import tomllib
    from pathlib import Path

    try:
        project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
        return dict(project["entry-points"][group])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"


def _check_regularizer(name: str, obj: Any) -> None:
    """A Regularizer subclass declares a known ``prior`` and ``sampler``
    (:func:`wae_bench.regularizer.check_declared`); another object is refused
    when a run is built from it."""
    from wae_bench.regularizer import Regularizer, check_declared   # (torch: imported by the plugin anyway)

    if isinstance(obj, type) and issubclass(obj, Regularizer):
        check_declared(name, obj)


REGULARIZERS = Registry("regularizer", "wae_bench.regularizers", check=_check_regularizer)
ARCHITECTURES = Registry("architecture", "wae_bench.architectures")
DATASETS = Registry("dataset", "wae_bench.datasets")
