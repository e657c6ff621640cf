"""Name -> object registries for regularizers, architectures and datasets.

Built-in and third-party plugins arrive the same way: through the Python
entry-point groups ``wae_bench.regularizers``, ``wae_bench.architectures`` and
``wae_bench.datasets`` (the mechanism pytest and Lightning use).  In-process
code (a script, a notebook, a file that ``wae-bench --plugin FILE.py``
imports: :mod:`wae_bench.plugin_imports`) may also use the
:meth:`Registry.register` decorator (or :meth:`Registry.add`): registering the same plugin again (the
same object, or a class or function of the same module and qualified name,
as a notebook cell run twice makes) replaces it quietly; another plugin under
a taken name is refused unless ``replace=True`` is passed, and a built-in's
name is never taken in-process.  A name that the entry points of two
installed distributions give is ambiguous: neither is loaded, and using it is
refused in one line naming both and the fix (uninstall one), rather than
resolved by the order in which the distributions are found (a newly
installed fork would otherwise take over a name silently, also inside an
existing results folder).  A plugin that fails to import, or that a registry's ``check`` refuses
(a regularizer's ``prior`` or ``sampler`` outside what the framework knows,
an architecture or dataset entry point that is not an ``ArchSpec`` /
``DatasetSpec`` or whose ``name`` is not the entry point's), is recorded in
:attr:`Registry.broken` and reported, not fatal.

wae-bench's own entry points load first, and a third-party entry point that
takes a built-in's name is refused (broken), whatever the order in which
``importlib.metadata`` finds the distributions (``sys.path`` order): a plugin
on ``PYTHONPATH`` never replaces ``a1`` silently, and a run, a bench cell
or ``check-plugin`` of that name says that the entry point was refused
(:meth:`Registry.shadowed`).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path
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
        self._broken_by: dict[str, str] = {}   # name -> "DIST VERSION" of the entry point in _broken
        self._ambiguous: set[str] = set()   # names two installed distributions give (_ambiguity)
        self._loaded = False
        self._own: set[str] | None = None   # wae-bench's own entry points' names (_own_names)

    def add(self, name: str, obj: Any, *, replace: bool = False) -> Any:
        """Register ``obj`` as ``name`` in-process; returns ``obj``.  The
        same plugin again (:func:`same_plugin`: a notebook cell re-run makes
        a new class of the same module and qualified name) replaces the one
        registered, quietly; another plugin under a taken name is refused in
        one line unless ``replace=True``.  A name of wae-bench's own entry
        points is refused either way: the built-in keeps it."""
        self._check_name(name)
        old = self._items.get(name)
        if old is obj:
            return obj
        if name in self._own_names():
            raise WaeError(f"{self.kind} name {name!r} is wae-bench's built-in; choose another name")
        same = name in self._items and same_plugin(old, obj)
        if name in self._items and not same and not replace:
            raise WaeError(f"duplicate {self.kind} name {name!r}: already registered by "
                           f"{self._provider(name)}; choose another name (or pass replace=True to replace it)")
        if self.check is not None:
            self.check(name, obj)
        if not same:
            self._dists.pop(name, None)   # (another plugin: not the distribution's any more)
        self._items[name] = obj
        return obj

    def register(self, name: str, *, replace: bool = False) -> Callable[[Any], Any]:
        """Decorator: ``@REGULARIZERS.register("mine")`` (:meth:`add`)."""
        return lambda obj: self.add(name, obj, replace=replace)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise WaeError(f"bad {self.kind} name {name!r}: names a run folder and a bench cell, so it must be "
                           f"at most 64 letters, digits, '-', '_' or '.', starting with a letter or digit")

    def _add_entry_point(self, name: str, obj: Any) -> None:
        """Register what an entry point gave: a taken name (by a plugin added
        in-process before the entry points loaded) is refused, its plugin
        kept; a name two distributions give never gets here
        (:meth:`load_entry_points` refuses it as ambiguous)."""
        self._check_name(name)
        if name in self._items and self._items[name] is not obj:
            raise WaeError(f"duplicate {self.kind} name {name!r}: already registered by "
                           f"{self._provider(name)}; choose another name")
        if self.check is not None:
            self.check(name, obj)
        self._items[name] = obj

    def _own_names(self) -> set[str]:
        """The names of wae-bench's own entry points in this group (read
        from the installed metadata, nothing imported)."""
        if self._own is None:
            self._own = {e.name for e in entry_points(group=self.group) if _dist(e) == OWN}
        return self._own

    def load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        # wae-bench's own first, then by name and distribution: the built-ins always win their names
        eps = sorted(entry_points(group=self.group), key=lambda e: (_dist(e) != OWN, e.name, _dist(e) or ""))
        own = {e.name for e in eps if _dist(e) == OWN}
        givers: dict[str, list[str]] = {}   # a third-party name -> the providers of its entry points
        for ep in eps:
            if ep.name not in own:
                givers.setdefault(ep.name, []).append(_by(ep) or ep.value)
        for ep in eps:
            by = _by(ep)
            if ep.name in own and _dist(ep) != OWN:
                self._refuse(ep.name, by, f"{ep.value}: {self.kind} {ep.name!r} from {by}: the name is "
                                          f"wae-bench's built-in; choose another name")
                continue
            if len(givers.get(ep.name, ())) > 1:
                self._ambiguous.add(ep.name)
                self._broken[ep.name] = _ambiguity(givers[ep.name])
                continue
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin is reported, not fatal
                from wae_bench.plugin_fault import import_fix

                fix = import_fix(e, ep.value)
                self._refuse(ep.name, by, f"{ep.value}: {type(e).__name__}: {e}".splitlines()[0]
                             + (f" ({fix})" if fix else ""))
                continue
            try:
                self._add_entry_point(ep.name, obj)
            except WaeError as e:
                self._refuse(ep.name, by, f"{ep.value}: {e}")
                continue
            if by is not None and self._items[ep.name] is obj:
                self._dists.setdefault(ep.name, by)

    def _refuse(self, name: str, by: str | None, why: str) -> None:
        """Record the entry point ``name`` of provider ``by`` as broken, ``why``."""
        self._broken[name] = why
        if by is not None:
            self._broken_by[name] = by

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
        if name in self.ambiguous:
            raise WaeError(f"{self.kind} {name!r} is {self.broken[name]}")
        if name in self.broken:
            raise WaeError(f"{self.kind} {name!r}{self._from(name)} failed to load ({self.broken[name]}); "
                           f"fix or uninstall the plugin that provides it")
        if name in source_entry_points(self.group):
            raise WaeError(f"{self.kind} {name!r} is in pyproject.toml's {self.group} entry points but not "
                           f"installed; run `pip install -e .` in the source tree")
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise WaeError(f"unknown {self.kind} {name!r}; {hint}choose one of: "
                       f"{', '.join(self.names())} (see `wae-bench list`)")

    @property
    def ambiguous(self) -> set[str]:
        """The names that the entry points of two (or more) installed
        distributions give: none of them is loaded, and :meth:`get` refuses
        the name in one line naming them all."""
        self.load_entry_points()
        return self._ambiguous

    def broken_by(self, name: str) -> str | None:
        """``"DIST VERSION"``: who gave the broken entry point ``name`` (None if unknown)."""
        self.load_entry_points()
        return self._broken_by.get(name)

    def _from(self, name: str) -> str:
        """`` from DIST VERSION`` of the broken entry point ``name``, where known."""
        by = self.broken_by(name)
        return f" from {by}" if by else ""

    def trouble(self, name: str) -> str:
        """What is wrong with the broken entry point ``name``, as `wae-bench
        list` shows it: ``ambiguous: given by ...``, ``refused: ...`` (it
        takes a built-in's name), or ``failed to load (DIST VERSION): ...``."""
        why, by = self.broken[name], self.broken_by(name)
        if name in self.ambiguous:
            return f"ambiguous: {why}"
        return f"refused: {why}" if self.shadowed(name) else f"failed to load{f' ({by})' if by else ''}: {why}"

    def shadowed(self, name: str) -> str | None:
        """Where ``name`` is a built-in's and an installed entry point of that
        name was refused for it: one line saying so, which check-plugin, a
        run and a bench cell show (the built-in is what they use); else None."""
        if not (self.builtin(name) and name in self.broken):
            return None
        return (f"an installed {self.kind} entry point {name!r}{self._from(name)} was refused (the name is "
                f"wae-bench's built-in, used here instead); give the plugin another name")

    def source_sha256(self, name: str) -> str | None:
        """The sha256 of the source file that defines ``name``'s code (a
        class's, a function's, a spec's ``build`` / ``load`` function's:
        :func:`inspect.getsourcefile`), recorded with a run: an edit to an
        editable-installed plugin changes it while its version stays the
        same.  None where the code has no file (defined in a notebook, a
        ``python -c``) or it cannot be read."""
        try:
            path = inspect.getsourcefile(_code_of(self.get(name)))
            return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
        except (TypeError, OSError):
            return None

    def provider(self, name: str) -> str:
        """Who provides ``name``: the distribution and version of the package
        whose entry point registered it (``"my-pkg 0.1"``; the built-ins:
        wae-bench's own), else the module of an object registered another way
        (``"module my_mod"``), with its file where ``--plugin FILE.py``
        imported it by path (``"module wae_bench_plugin_pull from
        /abs/pull.py"``: the module name alone says nothing of which file,
        :mod:`wae_bench.plugin_imports`).  Recorded with every run (its
        ``versions``)."""
        self.get(name)
        return self._provider(name)

    def _provider(self, name: str) -> str:
        from wae_bench.plugin_imports import plugin_file

        module = _module_of(self._items[name])
        file = plugin_file(module)
        return self._dists.get(name) or f"module {module}" + (f" from {file}" if file else "")

    def builtin(self, name: str) -> bool:
        """Whether ``name`` came from wae-bench's own entry points."""
        self.load_entry_points()
        return self._dists.get(name, "").partition(" ")[0] == OWN

    def label(self, name: str) -> str:
        """``architecture 'NAME' (PROVIDER)`` where ``name`` is registered
        (:meth:`provider`), else ``architecture 'NAME'``: how a message names it."""
        who = f" ({self._provider(name)})" if name in self else ""
        return f"{self.kind} {name!r}{who}"

    def __contains__(self, name: str) -> bool:
        self.load_entry_points()
        return name in self._items


def source_entry_points(group: str) -> dict[str, str]:
    """``group``'s entry points in the pyproject.toml beside this package,
    where wae-bench runs from a source tree (an editable install); ``{}``
    elsewhere.  Read only to explain an unknown name: an entry point added
    there takes effect only after ``pip install -e .``."""
    import tomllib

    try:
        project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
        return dict(project["entry-points"][group])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


OWN = "wae-bench"   # this distribution: its entry points are the built-ins


def _dist(ep) -> str | None:
    """The distribution name of entry point ``ep`` (None if unknown)."""
    dist = getattr(ep, "dist", None)
    return None if dist is None else (dist.metadata["Name"] or dist.name)


def _by(ep) -> str | None:
    """``"DIST VERSION"`` of the distribution of entry point ``ep`` (None if unknown)."""
    dist = getattr(ep, "dist", None)
    return f"{_dist(ep)} {dist.version}" if dist is not None else None


NUMBERS = {2: "two", 3: "three", 4: "four"}


def _ambiguity(givers: list[str]) -> str:
    """``given by two installed distributions, aamom 0.1 and momreg 0.2;
    uninstall one``: why a name several distributions give is refused."""
    n, listed = len(givers), ", ".join(givers[:-1]) + f" and {givers[-1]}"
    return (f"given by {NUMBERS.get(n, n)} installed distributions, {listed}; "
            f"uninstall {'one' if n == 2 else 'all but one'}")


def same_plugin(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one plugin defined again: the same object;
    classes or functions of the same module and qualified name (what a
    notebook cell run twice, or ``importlib.reload``, makes); or spec
    dataclasses (an ``ArchSpec``, a ``DatasetSpec``) of one type whose
    fields are equal, their functions compared so."""
    if a is b:
        return True
    if _code_named(a) and _code_named(b):
        return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)
    if type(a) is not type(b) or not dataclasses.is_dataclass(a) or isinstance(a, type):
        return False
    return all(same_plugin(x, y) if _code_named(x) else x == y
               for x, y in ((getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)))


def _code_named(obj: Any) -> bool:
    """A class or function: named by its module and qualified name."""
    return (isinstance(obj, type) or callable(obj)) and isinstance(getattr(obj, "__qualname__", None), str) \
        and isinstance(getattr(obj, "__module__", None), str)


def _code_of(obj: Any) -> Any:
    """The code of a registered ``obj``: a class or function itself, a
    spec's ``build`` / ``load`` function (an ArchSpec, a DatasetSpec: the
    spec's class is wae-bench's); else ``obj``'s class."""
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        return obj
    return getattr(obj, "build", None) or getattr(obj, "load", None) or type(obj)


def _module_of(obj: Any) -> str:
    """The module that defines ``obj``'s code (:func:`_code_of`)."""
    return getattr(_code_of(obj), "__module__", None) or type(obj).__module__


def _check_regularizer(name: str, obj: Any) -> None:
    """A Regularizer subclass that declares a known ``prior`` and ``sampler``
    (:func:`wae_bench.regularizer.check_declared`); another object (an entry
    point at the Config class, a module, a function) is refused as not a
    subclass, so that `wae-bench list` lists it as broken instead of failing
    on its missing ``paper``."""
    from wae_bench.regularizer import check_declared   # (torch: imported by the plugin anyway)

    check_declared(name, obj)


def _check_spec(kind: str, spec_path: str):
    """The ``check`` of the architecture or dataset registry: the object is a
    ``spec_path`` (``wae_bench.nets.ArchSpec``) whose ``name`` is the name it
    is registered under (a run's config records the spec's name, so any other
    would not load again)."""
    def check(name: str, obj: Any) -> None:
        import importlib   # (torch: the specs' modules import it, as the entry points do anyway)

        module, _, cls_name = spec_path.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        if not isinstance(obj, cls):
            what = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
            raise WaeError(f"{kind} {name!r} is {what}, not a {spec_path}; point the entry point at the "
                           f"{cls_name} object")
        if obj.name != name:
            raise WaeError(f"{kind} entry point {name!r} gives {cls_name} {obj.name!r}; make the two names equal")
    return check


REGULARIZERS = Registry("regularizer", "wae_bench.regularizers", check=_check_regularizer)
ARCHITECTURES = Registry("architecture", "wae_bench.architectures",
                         check=_check_spec("architecture", "wae_bench.nets.ArchSpec"))
DATASETS = Registry("dataset", "wae_bench.datasets", check=_check_spec("dataset", "wae_bench.data.DatasetSpec"))
