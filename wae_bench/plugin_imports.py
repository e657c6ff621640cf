"""The plugins a command imports before it runs, without packaging them:
``wae-bench --plugin VALUE COMMAND ...`` (repeatable) and
``$WAE_BENCH_PLUGINS`` (VALUEs separated by ``os.pathsep``), as pytest's
``-p`` and ``PYTEST_PLUGINS``.  A VALUE is

- a ``.py`` file (a VALUE ending in ``.py`` or holding a path separator),
  imported by path as module ``wae_bench_plugin_STEM`` (the same name in
  every process, so a bench worker's and a torchrun rank's classes are the
  parent's), its folder added at the end of ``sys.path`` so that the
  modules beside it import as a script's do, or
- a module name, imported with ``importlib.import_module`` (from
  ``sys.path``: ``PYTHONPATH``, the current folder under ``python -m``).

The module registers its classes when imported, as an in-process plugin
does (``@REGULARIZERS.register("NAME")``, docs/plugins.md).  Each is
imported once: the environment variable's VALUEs first, then the flags'; a
file given twice, by both, or as a file and as the module name of that file,
is one module and so one registration.  The installed entry points are
loaded first, so that a name a plugin registers that is a built-in's or an
installed plugin's is refused when it registers (the registry's one line),
not resolved by which came first.  :func:`import_plugins` returns the
VALUEs as the environment variable is then set to for the processes the
command starts (absolute paths for files): ``bench --devices`` workers
inherit ``os.environ``, and import the same plugins.

Bad input is one line (a :class:`WaeError`): a missing file or module; a
plugin that raises on import (named with the file and line, as
:mod:`wae_bench.plugin_fault` names a plugin's fault); a registration the
registry refuses (with the line that made it); and a plugin that registers
nothing, an error: a plugin's only use here is to register, so a module
that registers nothing (the decorator forgotten, or under ``if __name__ ==
"__main__":``) is a wrong VALUE, which the run would otherwise report later
as an unknown name.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from wae_bench.errors import WaeError
from wae_bench.plugin_fault import import_fix

ENV = "WAE_BENCH_PLUGINS"
FLAG = "--plugin"
PREFIX = "wae_bench_plugin_"   # + the file's stem: the module name of a plugin file

_files: dict[str, Path] = {}   # module name -> the resolved plugin file it was imported from (by path)


def plugin_file(module: str) -> Path | None:
    """The file a plugin module was imported from by path (``--plugin
    FILE.py``), else None: what a run records beside its module name."""
    return _files.get(module)


def is_file_value(value: str) -> bool:
    """Whether VALUE names a file (ends in ``.py`` or holds a path separator), not a module."""
    return value.endswith(".py") or os.sep in value or bool(os.altsep and os.altsep in value)


def env_values(text: str | None) -> list[str]:
    """The VALUEs of ``$WAE_BENCH_PLUGINS`` (empty parts skipped)."""
    return [v.strip() for v in (text or "").split(os.pathsep) if v.strip()]


def import_plugins(flags: list[str] | tuple[str, ...], env: str | None) -> list[str]:
    """Import the plugins of ``$WAE_BENCH_PLUGINS`` (``env``), then of the
    ``--plugin`` flags, each once; return their VALUEs, files as absolute
    paths, in that order without repeats (what the environment variable is
    set to for the processes a command starts)."""
    given = [(v, ENV) for v in env_values(env)] + [(v, FLAG) for v in flags]
    if not given:
        return []
    from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS

    for registry in (REGULARIZERS, ARCHITECTURES, DATASETS):
        registry.load_entry_points()   # first: a plugin's name that an installed one has is refused at registration
    out: list[str] = []
    for value, origin in given:
        done = _import_file(value, origin) if is_file_value(value) else _import_module(value, origin)
        if done not in out:
            out.append(done)
    return out


def _import_file(value: str, origin: str) -> str:
    """Import the plugin file VALUE (once); its absolute path."""
    path = Path(value).expanduser()
    what = f"plugin file {value} (given by {origin})"
    if path.is_dir():
        raise WaeError(f"{what} is a folder; give its .py file, or the package's module name")
    if not path.is_file():
        raise WaeError(f"{what} not found; give the path of a .py file, or an importable module name")
    path = path.resolve()
    if _loaded_from(path) is not None:
        return str(path)
    stem = re.sub(r"\W", "_", path.stem)
    name = PREFIX + stem
    if name in sys.modules:
        raise WaeError(f"{what}: another plugin file named {path.name}, {_files.get(name, '?')}, is imported; "
                       f"rename one of them")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WaeError(f"{what} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:   # its own modules beside it import, as a script's do (at the end:
        sys.path.append(str(path.parent))  # nothing installed is shadowed)
    sys.modules[name] = module
    _files[name] = path
    try:
        _registering(what, lambda: spec.loader.exec_module(module), {path})
    except BaseException:
        sys.modules.pop(name, None)
        _files.pop(name, None)
        raise
    return str(path)


def _import_module(value: str, origin: str) -> str:
    """Import the plugin module VALUE (once); VALUE."""
    what = f"plugin module {value} (given by {origin})"
    if not re.fullmatch(r"[^\W\d]\w*(\.[^\W\d]\w*)*", value):
        raise WaeError(f"{what} is neither a module name nor a .py file; give a path ending in .py, or a "
                       f"module name (my_pkg.plugin)")
    if value in sys.modules:
        return value
    try:
        spec = importlib.util.find_spec(value)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        if Path(value).is_dir():
            raise WaeError(f"{what}: no module named {value!r} on sys.path (the folder {value} here is not on it); "
                           f"give the path of a .py file in it, or add the folder that holds {value} to PYTHONPATH")
        raise WaeError(f"{what}: no module named {value!r} on sys.path; give the path of its .py file, or add "
                       f"its folder to PYTHONPATH")
    origin_file = Path(spec.origin).resolve() if spec.origin and Path(spec.origin).is_file() else None
    same = _loaded_from(origin_file) if origin_file is not None else None
    if same is not None:   # the file a --plugin FILE.py imported already: that module, not a second one
        sys.modules[value] = same
        return value
    own = {origin_file} if origin_file is not None else set()
    _registering(what, lambda: importlib.import_module(value), own,
                 package=origin_file.parent if spec.submodule_search_locations and origin_file else None)
    return value


def _loaded_from(path: Path) -> ModuleType | None:
    """The module already imported from the file ``path`` (by path or by name), if any."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.endswith(".py"):
            try:
                if Path(file).resolve() == path:
                    return module
            except OSError:
                continue
    return None


def _registering(what: str, run, own: set[Path], package: Path | None = None) -> None:
    """Run the import ``run()``: an exception it raises, or its registering
    nothing, is one line (a WaeError) saying what and where (the innermost
    line of the plugin's own files ``own``, or of its ``package`` folder)."""
    from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS

    registries = (REGULARIZERS, ARCHITECTURES, DATASETS)
    before = [(dict(r._items), dict(r._dists)) for r in registries]
    try:
        try:
            run()
        except BaseException:   # what it registered before it raised is undone: the command stops anyway
            for r, saved in zip(registries, before):
                for now, was in zip((r._items, r._dists), saved):
                    now.clear()
                    now.update(was)
            raise
    except WaeError as e:   # a registration refused (a taken name, a bad prior): the registry's line, and where
        raise WaeError(f"{what}, at {_where(e, own, package)}: {e}") from e
    except Exception as e:  # noqa: BLE001 - the plugin's bug: one line naming it and where
        msg = " ".join(str(e.msg if isinstance(e, SyntaxError) else e).split())[:200]   # (the place: _where)
        fix = import_fix(e) or "fix it"
        raise WaeError(f"{what} raised {type(e).__name__}: {msg} (at {_where(e, own, package)}); {fix}") from e
    if all(r._items == items for r, (items, _) in zip(registries, before)):
        raise WaeError(f"{what} registered nothing: no regularizer, architecture or dataset; register its classes "
                       f"when it is imported, e.g. with wae_bench.registry's @REGULARIZERS.register(\"NAME\")")


def _where(e: BaseException, own: set[Path], package: Path | None) -> str:
    """``file.py:LINE``: where the plugin's own code raised ``e`` (a syntax
    error: its line), else the innermost frame outside wae-bench."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{Path(e.filename).name}:{e.lineno}"

    def mine(filename: str) -> bool:
        p = Path(filename).resolve()
        return p in own or (package is not None and package in p.parents)

    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<")]
    for f in reversed(frames):
        if mine(f.filename):
            return f"{Path(f.filename).name}:{f.lineno}"
    package_dir = str(Path(__file__).resolve().parent) + os.sep
    outside = [f for f in frames if not str(Path(f.filename).resolve()).startswith(package_dir)]
    return f"{Path(outside[-1].filename).name}:{outside[-1].lineno}" if outside else "?"
