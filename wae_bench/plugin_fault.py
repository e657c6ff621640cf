"""Whether an exception came from a regularizer plugin's own code, and the
one line that says so::

    plugin 'NAME' raised TypeError: ... (at file.py:LINE); run wae-bench check-plugin NAME

what `wae-bench run` (:mod:`wae_bench.cli`) prints, with exit status 2, and
what a failed ``bench`` or ``compare`` cell records
(:func:`wae_bench.bench.folder.one_line`), instead of calling it an internal
error of wae-bench's to report.

"From the plugin" means: the traceback passes through the module of the
plugin that was running (the innermost frame holding a
:class:`~wae_bench.regularizer.Regularizer`, or a subclass while it is
built, among its locals), or of a plugin class it derives from.  The place
named is the innermost frame from there on outside wae-bench and torch
(:func:`wae_bench.plugin_check._where`, as ``check-plugin`` names it).
Importing this module imports neither torch nor the plugins.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from types import FrameType

from wae_bench.errors import WaeError

PACKAGE = str(Path(__file__).resolve().parent) + os.sep   # wae-bench's own files: never the plugin's


def _frames(e: BaseException) -> list[tuple[FrameType, int]]:
    return list(traceback.walk_tb(e.__traceback__))


def _running_plugin(frames: list[tuple[FrameType, int]]) -> type | None:
    """The plugin class of the innermost frame that holds one (an instance, or the class itself)."""
    base = sys.modules["wae_bench.regularizer"].Regularizer
    for frame, _ in reversed(frames):
        for v in frame.f_locals.values():
            if isinstance(v, base):
                return type(v)
            if isinstance(v, type) and issubclass(v, base) and v is not base:
                return v
    return None


def _plugin_modules(cls: type) -> set[str]:
    """The modules of ``cls`` and of the plugin classes it derives from (not wae-bench's base)."""
    base = sys.modules["wae_bench.regularizer"].Regularizer
    return {c.__module__ for c in cls.__mro__ if isinstance(c, type) and issubclass(c, base) and c is not base
            and not c.__module__.startswith("wae_bench.")}


def registered_name(cls: type) -> str:
    """The name ``cls`` is registered under (what --reg and check-plugin take)."""
    from wae_bench.registry import REGULARIZERS

    return next((n for n, c in REGULARIZERS.items() if c is cls), None) or cls.name or cls.__qualname__


def plugin_fault(e: BaseException) -> str | None:
    """The line for ``e`` if it was raised from a plugin's code (see the
    module docstring), else None.  No plugin has run unless
    :mod:`wae_bench.regularizer` is loaded."""
    if "wae_bench.regularizer" not in sys.modules or isinstance(e, WaeError):
        return None
    frames = _frames(e)
    cls = _running_plugin(frames)
    if cls is None:
        return None
    modules = _plugin_modules(cls)
    first = next((i for i, (f, _) in enumerate(frames) if f.f_globals.get("__name__") in modules), None)
    if first is None:
        return None
    from wae_bench.plugin_check import _where

    own = [traceback.FrameSummary(f.f_code.co_filename, line, f.f_code.co_name, lookup_line=False)
           for f, line in frames[first:] if not str(Path(f.f_code.co_filename).resolve()).startswith(PACKAGE)]
    name = registered_name(cls)
    msg = " ".join(str(e).split())[:200]
    return (f"plugin {name!r} raised {type(e).__name__}: {msg} (at {_where(own)}); "
            f"run wae-bench check-plugin {name}")
