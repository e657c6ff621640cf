"""docs/install.md as a new user reads it: the extras it names are
pyproject's, each with what it adds; the cache variables it lists move what
it says; and the missing-package cases it adds to tests/test_missing_deps.py's
(scikit-learn on a dataset of one's own, torch-fidelity with ``--no-eval``,
matplotlib under ``wae-bench table``) behave as it says, in the same harness
(every finder answers "not found" for the hidden package)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.test_missing_deps import HARNESS, RC, one_error_line, worked
from wae_bench.run import checkpoint

REPO = Path(__file__).resolve().parents[1]
INSTALL = (REPO / "docs" / "install.md").read_text()
EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group()


def _install_section() -> str:
    return INSTALL.split("## Install", 1)[1].split("\n## ", 1)[0]


def test_the_install_section_names_every_extra_and_what_it_adds():
    """Each extra of pyproject.toml has its `pip install -e '.[NAME]'` line and
    its packages named there (the test extra's pot and the celeba extra were not)."""
    text = " ".join(_install_section().split())
    for extra, requirements in EXTRAS.items():
        if extra != "test":
            assert f"pip install -e '.[{extra}]'" in text, extra
        for package in map(_name, requirements):
            assert package in text, f"{package} ({extra} extra) is not named in docs/install.md's Install section"


def test_every_extra_a_message_or_a_page_asks_for_is_declared():
    """`wae-bench[NAME]` in the code's messages and the docs is an extra pip can install."""
    asked = set()
    for path in [*REPO.joinpath("wae_bench").rglob("*.py"), *REPO.joinpath("docs").glob("*.md"), REPO / "README.md"]:
        asked |= {(m, path.name) for m in re.findall(r"wae-bench\[([\w-]+)\]", path.read_text())}
    assert asked and {(m, f) for m, f in asked if m not in EXTRAS} == set()


def test_the_cache_variables_move_what_the_page_says(monkeypatch, tmp_path):
    from wae_bench.metrics import cache, weights

    table = INSTALL.split("### Where files are kept", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `(\w+)`", table, re.M))
    assert listed == {cache.ENV_CACHE, "TORCH_HOME", weights.ENV_WEIGHTS, weights.ENV_OFFLINE}
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "w"
    assert weights.hub_path().parent == tmp_path / "t" / "hub" / "checkpoints"
    monkeypatch.delenv("WAE_BENCH_CACHE")
    assert cache.cache_root() == Path.home() / ".cache" / "wae-bench"    # (not $XDG_CACHE_HOME, as it says)


def hidden_runs(cwd: Path, *cases: tuple[str, str]) -> list[tuple[int, list[str]]]:
    """Each (hidden module, command) in one fresh interpreter, in turn, by
    tests/test_missing_deps.py's harness: (exit status, stderr lines) each."""
    (cwd / "hide.py").write_text(HARNESS)
    env = {k: v for k, v in os.environ.items() if k != "WAE_BENCH_DEBUG"} | {"OMP_NUM_THREADS": "1",
                                                                            "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "hide.py", *map(":".join, cases)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    parts = re.split(rf"^{re.escape(RC)}(\d+)\n", res.stderr, flags=re.M)   # [text, status, text, status, ..., rest]
    assert res.returncode == 0 and len(parts) == 2 * len(cases) + 1, res.stderr[-3000:]
    return [(int(status), text.splitlines()) for text, status in zip(parts[0::2], parts[1::2])]


def _image_folder(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 16)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / split / f"{i}.png")
    return root


TINY = "--arch tiny --set max_steps=2 --set latent_dim=8 --set image_size=8 --quiet"


def test_without_scikit_learn_a_run_that_fits_expost_densities_is_refused_before_training(tmp_path, capsys):
    """depsfront: not at the ex-post fit after the last step (the run trained for nothing)."""
    images = _image_folder(tmp_path / "imgs")
    run = f"run --reg moca --dataset folder --data-root {images} {TINY} --set reg.K=64 --lambda 10 --no-eval"
    code, _, err = run_cli([*f"{run} --set max_steps=4 --set ckpt_every=2".split(), "--out", str(tmp_path / "part")],
                           capsys)
    assert code == 0, err
    checkpoint.checkpoints(tmp_path / "part")[-1].unlink()       # (as a run stopped at its step-2 checkpoint)
    sk_expost, sk_resume, sk_plain, tf_list, tf_run = hidden_runs(   # (in this order: the ex-post fit imports sklearn)
        tmp_path, ("sklearn", f"{run} --out sk"), ("sklearn", "run --resume --out part --no-eval --quiet"),
        ("sklearn", f"{run} --set expost=[] --out plain"),
        ("torch_fidelity", "list"), ("torch_fidelity", f"run --reg swae {TINY} --no-eval --out tf"))
    assert worked(tf_list) and worked(tf_run) and (tmp_path / "tf" / "samples.png").is_file()
    line = ("error: wae-bench needs scikit-learn (module 'sklearn' is not installed in this environment); pip "
            "install scikit-learn, or leave out the ex-post fit after training with --set expost=[]")
    assert one_error_line(sk_expost) == line and one_error_line(sk_resume) == line
    assert not (tmp_path / "sk").exists()                       # (nothing trained, nothing left)
    assert checkpoint.latest_step(tmp_path / "part") == 2
    assert worked(sk_plain) and (tmp_path / "plain" / "samples.png").is_file()


def test_without_matplotlib_table_writes_the_table_then_names_the_package(tmp_path, capsys):
    spec = REPO / "benchmarks" / "smoke.toml"
    bench = tmp_path / "b"
    code, _, err = run_cli(["bench", str(spec), "--only", "moca-*-s0", "--out", str(bench), "--quiet"], capsys)
    assert code == 0, err
    for name in ("table.md", "table.csv"):
        (bench / name).unlink()
    (case,) = hidden_runs(tmp_path, ("matplotlib", f"table {bench}"))
    assert one_error_line(case) == ("error: wae-bench needs matplotlib (module 'matplotlib' is not installed in "
                                    "this environment); pip install matplotlib")
    assert (bench / "table.md").is_file() and (bench / "table.csv").is_file()


@pytest.mark.parametrize("claim", [
    "`--set expost=[]` leaves them out",
    "a `wae-bench run --resume --out RUN_DIR` is refused alike, before its first step",
    "`wae-bench table`\nwrites `table.md` and `table.csv`",
])
def test_the_page_says_what_these_tests_check(claim):
    assert " ".join(claim.split()) in " ".join(INSTALL.split())
