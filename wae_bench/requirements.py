"""Which of wae-bench's declared requirements a module that cannot be
imported belongs to, and the one line that says so: ``wae-bench needs
scikit-learn (module 'sklearn' is not installed in this environment); pip
install scikit-learn`` instead of an internal error.  Used by the CLI's
last-resort handler and by a bench cell's failure record."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re


# Import names that are not their distribution's name (the rest match once normalised: torch_fidelity).
DISTRIBUTION_OF = {"sklearn": "scikit-learn", "PIL": "pillow", "ot": "pot"}


def _normalised(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Torch_Fidelity`` -> ``torch-fidelity``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_requirements() -> dict[str, str]:
    """wae-bench's declared requirements, extras included, as {normalised name:
    requirement} (``{"torch-fidelity": "torch-fidelity>=0.4"}``), read from the
    installed distribution's metadata; empty where wae-bench is not installed."""
    try:
        lines = importlib.metadata.requires("wae-bench") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    out = {}
    for line in lines:
        req = line.split(";")[0].strip()
        name = re.match(r"[A-Za-z0-9._-]+", req)
        if name:
            out.setdefault(_normalised(name.group()), req)
    return out


def _importing_requirement(e: BaseException, declared: dict[str, str]) -> str | None:
    """The declared requirement (normalised name) whose own module was
    importing when ``e`` was raised: the innermost frame of ``e``'s traceback
    that belongs to one (torch-fidelity's ``utils`` importing ``tqdm``)."""
    tb, found = e.__traceback__, None
    while tb is not None:
        top = str(tb.tb_frame.f_globals.get("__name__") or "").partition(".")[0]
        dist = _normalised(DISTRIBUTION_OF.get(top, top)) if top else ""
        if dist in declared and dist != "wae-bench":
            found = dist
        tb = tb.tb_next
    return found


def missing_requirement(e: ModuleNotFoundError) -> str | None:
    """The one line for a module of a declared requirement that cannot be
    imported: the package is not installed, or (a submodule missing from an
    installed package) it is older than the requirement's floor, or it is
    installed without a dependency of its own (installed with ``--no-deps``:
    torch-fidelity without ``tqdm``).  None for any other module (a plugin's
    own import, a bug)."""
    top = (e.name or "").partition(".")[0]
    if not top:
        return None
    dist = _normalised(DISTRIBUTION_OF.get(top, top))
    declared = declared_requirements()
    req = declared.get(dist)
    if req is None:
        owner = _importing_requirement(e, declared)
        if owner is None:
            return None
        return (f"wae-bench needs {owner}, which is installed but does not import: it needs {dist} (module "
                f"{top!r} is not installed in this environment); pip install {dist} (or reinstall {owner} with "
                f"its dependencies: pip install --force-reinstall {owner})")
    if top != e.name and importlib.util.find_spec(top) is not None:
        try:
            have = f" {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            have = ""
        return (f"wae-bench needs a newer {dist} (its module {e.name!r} is missing from the installed{have}; "
                f"wae-bench requires {req}); pip install -U '{req}'")
    return f"wae-bench needs {dist} (module {top!r} is not installed in this environment); pip install {dist}"


def not_installed(module: str) -> str | None:
    """The missing-package line (:func:`missing_requirement`'s) for the
    top-level ``module`` (an import name: ``sklearn``) where no finder finds
    it here, or where its distribution lacks a dependency of its own
    (:func:`unmet_dependency`), else None; looked up without importing it,
    so that a command can say it before the work that imports it (the
    ex-post fit after training, the scoring after a bench's cells)."""
    if importlib.util.find_spec(module) is not None:
        return unmet_dependency(_normalised(DISTRIBUTION_OF.get(module, module)))
    line = missing_requirement(ModuleNotFoundError(f"No module named {module!r}", name=module))
    dist = _normalised(DISTRIBUTION_OF.get(module, module))
    return line or f"module {module!r} is not installed in this environment; pip install {dist}"


def unmet_dependency(dist: str) -> str | None:
    """The line for an installed distribution ``dist`` one of whose own
    unconditional requirements is not installed (a wheel installed with
    ``--no-deps``: torch-fidelity without ``tqdm``, which fails its import),
    read from the installed metadata; None where they all are, or where
    ``dist`` has no metadata here (nothing to read)."""
    try:
        lines = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in lines:
        if ";" in line:          # (an extra's, or a platform's: not every install needs it)
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line.strip())
        if name is None:
            continue
        try:
            importlib.metadata.distribution(name.group())
        except importlib.metadata.PackageNotFoundError:
            need = _normalised(name.group())
            return (f"wae-bench needs {dist}, which is installed without its dependency {need} (it would not "
                    f"import); pip install {need} (or reinstall {dist} with its dependencies: pip install "
                    f"--force-reinstall {dist})")
    return None
