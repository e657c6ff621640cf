"""Whether an exception came from a regularizer or architecture plugin's
own code, and the one line that says so::

    plugin 'NAME' raised TypeError: ... (at file.py:LINE); run wae-bench check-plugin NAME
    architecture plugin 'NAME' (DIST VERSION) raised TypeError: ... (at file.py:LINE); fix it ...

what `wae-bench run` (:mod:`wae_bench.cli`) prints, with exit status 2, and
what a failed ``bench`` or ``compare`` cell records
(:func:`wae_bench.bench.folder.one_line`), instead of calling it an internal
error of wae-bench's to report.

"From the plugin" means: the traceback passes through the module of the
plugin that was running (the innermost frame holding a
:class:`~wae_bench.regularizer.Regularizer`, or a subclass while it is
built, among its locals), or of a plugin class it derives from.  For an
architecture: through the module of its ``build`` function or of a module
class of its net (the innermost frame holding the
:class:`~wae_bench.nets.Autoencoder` built by
:func:`~wae_bench.nets.build_arch`, which names its architecture, or the
``ArchSpec`` being built), for an architecture not wae-bench's own.  Where
both apply (a net's forward called from a plugin's penalty), the innermost
frame decides.  The place named is the innermost frame from there on
outside wae-bench and torch (:func:`wae_bench.plugin_check._where`, as
``check-plugin`` names it).  Importing this module imports neither torch
nor the plugins.

One error of torch's is the plugin's too, though it is raised in the
trainer's ``backward()`` after the plugin's code returned:
``torch.compile`` (its aot_autograd) cannot differentiate a compiled module
twice, so a double backward in the plugin's step (a WGAN-GP gradient penalty
in ``aux_loss``) under ``--compile`` stops with "does not currently support
double backward".  :func:`plugin_fault` names the running plugin and the fix
(:func:`double_backward`).
"""
from __future__ import annotations

import os
import re
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


def _running_arch(frames: list[tuple[FrameType, int]]) -> tuple[str, set[str]] | None:
    """The architecture of the innermost frame holding its net or its spec,
    and the modules its code is in (not wae-bench's or torch's)."""
    base = sys.modules["wae_bench.nets.base"]
    for frame, _ in reversed(frames):
        for v in frame.f_locals.values():
            if isinstance(v, base.Autoencoder) and isinstance(getattr(v, "arch_name", None), str):
                from wae_bench.nets.contract import own_classes
                from wae_bench.registry import ARCHITECTURES

                spec = ARCHITECTURES.get(v.arch_name) if v.arch_name in ARCHITECTURES else None
                return v.arch_name, {c.__module__ for c in own_classes(v)} | _own_module(getattr(spec, "build", None))
            if isinstance(v, base.ArchSpec):
                return v.name, _own_module(v.build)
    return None


def _own_module(fn) -> set[str]:
    """The module of ``fn`` where it is not wae-bench's or torch's."""
    m = getattr(fn, "__module__", None)
    return {m} if m and not m.startswith(("wae_bench.", "torch.")) else set()


def _innermost(frames: list[tuple[FrameType, int]], modules: set[str]) -> int | None:
    return next((i for i in range(len(frames) - 1, -1, -1)
                 if frames[i][0].f_globals.get("__name__") in modules), None)


def _own_place(frames: list[tuple[FrameType, int]], first: int) -> str:
    """Where, from frame ``first`` on, outside wae-bench and torch."""
    from wae_bench.plugin_check import _where

    own = [traceback.FrameSummary(f.f_code.co_filename, line, f.f_code.co_name, lookup_line=False)
           for f, line in frames[first:] if not str(Path(f.f_code.co_filename).resolve()).startswith(PACKAGE)]
    return _where(own)


def import_fix(e: BaseException, target: str | None = None) -> str | None:
    """The fix for an exception a plugin's module raised as it was imported
    (``target``: the entry point's ``module:attribute`` that was loaded),
    where the exception alone does not say it (None elsewhere):

    - Python's dataclass refusal of a field without a default after fields
      with one, which every field of a plugin's Config added without a
      default meets (RegularizerConfig's ``lambda_`` has one);
    - a ``target`` whose module or attribute does not exist (a typo in the
      entry point, or a module renamed since the package was installed);
    - a module the plugin imports that is not installed (a dependency)."""
    module, _, attr = (target or "").partition(":")
    if isinstance(e, ModuleNotFoundError) and e.name:
        if module == e.name or module.startswith(e.name + "."):
            return (f"the entry point {target!r} names module {module}, which is not installed; fix the module "
                    f"path of that module:Class in the plugin's pyproject.toml and reinstall its package, "
                    f"pip install -e DIR")
        if module and e.name.partition(".")[0] == module.partition(".")[0]:
            return f"the plugin imports {e.name}, which its own package does not hold; fix that import"
        return (f"the plugin imports {e.name}, which is not installed here; pip install "
                f"{e.name.partition('.')[0]}, whose distribution name may differ, and list it in the plugin's "
                f"dependencies")
    if (isinstance(e, AttributeError) and attr and getattr(e, "name", None) == attr.split(".")[0]
            and getattr(getattr(e, "obj", None), "__name__", None) == module):
        import difflib

        close = difflib.get_close_matches(e.name, [n for n in dir(e.obj) if not n.startswith("_")], n=1)
        hint = f"did you mean {module}:{close[0]}? " if close else ""
        return (f"{hint}the entry point {target!r} names an attribute {module} does not define; fix it "
                f"as module:Class in the plugin's pyproject.toml and reinstall its package, pip install -e DIR")
    field = re.match(r"non-default argument '(\w+)'", str(e)) if isinstance(e, TypeError) else None
    if field is None:
        return None
    return (f"give {field[1]} a default (its paper's value): every field of a plugin's Config needs one, as "
            f"the fields before it, RegularizerConfig's lambda_ among them, have one")


DOUBLE_BACKWARD = "does not currently support double backward"   # torch.compile's (aot_autograd's) RuntimeError


def double_backward(e: BaseException, cls: type | None) -> str | None:
    """The line for torch.compile's double-backward RuntimeError raised while
    plugin ``cls`` ran (None: no plugin ran, not a plugin's), else None: a
    compiled module's backward cannot itself be differentiated, so the
    module that the plugin's step differentiates twice must stay eager."""
    if cls is None or not (isinstance(e, RuntimeError) and DOUBLE_BACKWARD in str(e)):
        return None
    return (f"plugin {registered_name(cls)!r}: torch.compile cannot differentiate a compiled module twice, and "
            f"a step of the plugin does (a double backward, e.g. a gradient penalty with create_graph=True); "
            f"leave that module out of compile_targets() (return [] to keep every module of the plugin eager, "
            f"the encoder and decoder still compiled), or set compilable = False in the plugin where the "
            f"encoder or decoder is differentiated twice; or train with --compile none")


def plugin_fault(e: BaseException) -> str | None:
    """The line for ``e`` if it was raised from a plugin's code, or is
    torch.compile's double-backward error raised in a plugin's step (see the
    module docstring), else None.  No plugin has run unless
    :mod:`wae_bench.regularizer` or :mod:`wae_bench.nets.base` is loaded."""
    if isinstance(e, WaeError):
        return None
    frames = _frames(e)
    cls = _running_plugin(frames) if "wae_bench.regularizer" in sys.modules else None
    compiled_twice = double_backward(e, cls)
    if compiled_twice is not None:
        return compiled_twice
    modules = _plugin_modules(cls) if cls is not None else set()
    first = next((i for i, (f, _) in enumerate(frames) if f.f_globals.get("__name__") in modules), None)
    arch = _running_arch(frames) if "wae_bench.nets.base" in sys.modules else None
    at = _innermost(frames, arch[1]) if arch is not None else None
    msg = " ".join(str(e).split())[:200]
    if at is not None and (first is None or at > _innermost(frames, modules)):
        from wae_bench.nets.contract import label

        first_arch = next(i for i, (f, _) in enumerate(frames) if f.f_globals.get("__name__") in arch[1])
        return (f"{label(arch[0]).replace('architecture', 'architecture plugin', 1)} raised {type(e).__name__}: "
                f"{msg} (at {_own_place(frames, first_arch)}); fix it, or choose another --arch")
    if first is None:
        return None
    name = registered_name(cls)
    return (f"plugin {name!r} raised {type(e).__name__}: {msg} (at {_own_place(frames, first)}); "
            f"run wae-bench check-plugin {name}")
