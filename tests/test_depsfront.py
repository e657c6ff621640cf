"""A missing package said up front, in words the shell and Rich keep: the
test suite without the test extra's references skips the tests that
need them, with the install command.  The packages are hidden as in
tests/test_missing_deps.py (every finder answers "not found")."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_missing_deps import HIDE

REPO = Path(__file__).resolve().parents[1]


def _pytest_hiding(module: str, *args: str) -> subprocess.CompletedProcess:
    """pytest on ``args`` in a fresh interpreter where ``module`` cannot be found."""
    script = HIDE + "\nhidden = sys.argv[1]\nimport pytest\nsys.exit(pytest.main(sys.argv[2:]))\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script, module, "-q", "-rs", "-p", "no:cacheprovider", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("module, package, tests, skipped", [
    ("ot", "pot", ["tests/test_divergences.py", "tests/test_baselines.py::test_swae_penalty_is_lambda_times_pot_sliced_w2"],
     6),
    ("scipy", "scipy", ["tests/test_fid.py::test_frechet_distance_matches_a_direct_scipy_computation",
                        "tests/test_fid.py::test_frechet_distance_matches_the_closed_form_for_two_gaussians"], 1),
])
def test_without_the_test_extra_only_the_tests_that_need_it_skip(module, package, tests, skipped):
    """Not a collection error at the first file that imports pot or scipy."""
    res = _pytest_hiding(module, *tests)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert re.fullmatch(rf"\d+ passed, {skipped} skipped in .*", res.stdout.splitlines()[-1]), out[-3000:]
    assert f"{package} (the test extra) is not installed: pip install -e '.[test]'" in out, out[-3000:]


def test_without_scipy_the_files_that_use_it_are_collected():
    res = _pytest_hiding("scipy", "--collect-only", "tests/test_eval.py", "tests/test_expost.py", "tests/test_fid.py")
    out = res.stdout + res.stderr
    assert res.returncode == 0 and re.fullmatch(r"\d+ tests collected in .*", res.stdout.splitlines()[-1]), out[-3000:]
