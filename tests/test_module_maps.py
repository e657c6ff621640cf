"""The maps a maintainer reads first stay complete: every package's
docstring names each of its modules and sub-packages by dotted name (so
``wae_bench/__init__.py`` answers "where is X"), and :mod:`wae_bench.losses`'
docstring names each of its functions."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import wae_bench

PACKAGES = ["wae_bench", *sorted(m.name for m in pkgutil.walk_packages(wae_bench.__path__, "wae_bench.") if m.ispkg)]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_docstring_names_every_module(package):
    pkg = importlib.import_module(package)
    doc = pkg.__doc__ or ""
    modules = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    missing = [m for m in modules if not re.search(rf"{re.escape(f'{package}.{m}')}(?![\w.])", doc)]
    assert modules and not missing, f"name {missing} in {package}'s docstring (its module map), e.g. " \
                                    f":mod:`~{package}.{(missing or modules)[0]}`  what it does"


def test_losses_docstring_names_every_function():
    from wae_bench import losses

    funcs = [n for n, f in inspect.getmembers(losses, inspect.isfunction)
             if f.__module__ == losses.__name__ and not n.startswith("_")]
    missing = [n for n in funcs if f":func:`{n}`" not in losses.__doc__]
    assert funcs and not missing, f"list {missing} in wae_bench/losses.py's module docstring"
