"""Dataset plugins and the provenance of a run's plugins.

- a loader that breaks the dataset contract (docs/datasets.md) is refused in
  one line naming the dataset's entry-point name (not its variant), its
  provider and the fix; images that pass but look wrong (every pixel 0 or 1,
  a channel count unlike the DatasetSpec's) are warned about once;
- who provided the architecture and the dataset is recorded beside the
  regularizer (config.json, checkpoints, score protocols), and a run whose
  plugin is not installed here names the package to install;
- MoCA's queue on a small dataset; a hold-out that leaves less than a batch;
- the source revision is wae-bench's own checkout, never the repository a
  wheel happens to be installed in."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import run_cli
from tests.reliability_helpers import assert_one_line_error
from wae_bench import __version__, worded
from wae_bench.config import TrainConfig
from wae_bench.data import DatasetSpec, ImageSet, holdout, load_split, spec as data_spec
from wae_bench.errors import WaeError
from wae_bench.registry import DATASETS
from wae_bench.run import directory
from wae_bench.run.build import resolve

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[1]
N = 64   # images a split of the test datasets


def _good(n: int = N, channels: int = 1, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


# The loader mistakes of the archplug walk-through (finding 5), each at 8×8.
LOADERS = {
    "d-nhwc": lambda root, split, size, dl: ImageSet(_good(channels=3).permute(0, 2, 3, 1), "nhwc-v"),
    "d-nonsq": lambda root, split, size, dl: ImageSet(_good()[..., :6].contiguous(), "nonsq-v"),
    "d-numpy": lambda root, split, size, dl: ImageSet(_good().numpy(), "numpy-v"),
    "d-bare": lambda root, split, size, dl: _good(),
    "d-float": lambda root, split, size, dl: ImageSet(_good().float() / 255, "floats-v"),
    "d-noroot": lambda root, split, size, dl: ImageSet(np.load(root / f"{split}.npz")["x"], "noroot-v"),
    "d-nofile": lambda root, split, size, dl: ImageSet(torch.from_numpy(np.load(root / "nope.npz")["x"]), "v"),
    "d-unit": lambda root, split, size, dl: ImageSet((_good().float() / 255).to(torch.uint8), "unit-v"),
    "d-gray3": lambda root, split, size, dl: ImageSet(_good(channels=1), "gray-v"),
    "d-good": lambda root, split, size, dl: ImageSet(_good(seed=int(split == "test")), "good-v"),
}


def _spec(name: str, **kw) -> DatasetSpec:
    kw = {"channels": 1, "arch": "tiny", "needs_root": False, "downloadable": False, **kw}
    return DatasetSpec(name, "a test plugin", LOADERS[name], 8, **kw)


@pytest.fixture
def plugins(monkeypatch):
    """The test datasets registered as if ``mynets 0.1`` provided them; warnings said afresh."""
    DATASETS.load_entry_points()
    specs = {name: _spec(name, **({"channels": 3} if name == "d-gray3" else {})) for name in LOADERS}
    for name, s in specs.items():
        monkeypatch.setitem(DATASETS._items, name, s)
        monkeypatch.setitem(DATASETS._dists, name, "mynets 0.1")
    monkeypatch.setattr(data_spec, "_WARNED", set())
    return specs


@pytest.mark.parametrize("name, needles, not_in", [
    ("d-nhwc", ("looks like N×H×W×C", "x.permute(0, 3, 1, 2)"), "--set image_size"),
    ("d-nonsq", ("8x6, not square", "crop or resize them in the loader"), "--set image_size"),
    ("d-numpy", ("as a numpy.ndarray, not a torch.Tensor", "torch.from_numpy(x)"), "gave uint8"),
    ("d-bare", ("load() returned a Tensor, not an ImageSet", "ImageSet(images, variant)"), "internal error"),
    ("d-float", ("gave torch.float32", "(x * 255).round().to(torch.uint8)"), "floats-v"),
    ("d-noroot", ("raised TypeError", "(at test_data_plugins.py:", "needs_root=True"), "internal error"),
    ("d-nofile", ("cannot use", "nope.npz", "No such file or directory"), "internal error"),
])
def test_each_contract_mistake_is_one_line_naming_the_dataset_its_provider_and_the_fix(plugins, tmp_path, name,
                                                                                       needles, not_in):
    root = None if name == "d-noroot" else tmp_path
    with pytest.raises(WaeError) as e:
        load_split(plugins[name], root, "train", 8)
    line = str(e.value)
    assert f"dataset plugin {name!r} (mynets 0.1)" in line, line
    for n in needles:
        assert n in line, line
    assert not_in not in line and "\n" not in line, line


def test_a_plugin_loader_failure_through_the_cli_is_the_plugins_not_an_internal_error(plugins, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["run", "--dataset", "d-noroot", "--arch", "tiny", "--reg", "ae", "--quiet", "--no-eval",
                            "--set", "max_steps=1", "--out", str(out)], capsys)
    line = assert_one_line_error(code, err, "dataset plugin 'd-noroot' (mynets 0.1) raised TypeError", "fix its load()")
    assert code == 2 and "internal error" not in line and not out.exists()


def test_a_built_in_loaders_own_errors_are_unchanged(tmp_path):
    """A built-in dataset's messages stay as they were (its loader's WaeError
    or the CLI's line for an OSError), never re-worded as a plugin's."""
    with pytest.raises(WaeError, match=r"^no folder train split in .*fix --data-root$"):
        load_split(DATASETS.get("folder"), str(tmp_path), "train", 32)


def test_zero_one_pixels_and_a_channel_count_unlike_the_spec_are_warned_once(plugins, capsys):
    capsys.readouterr()
    for split in ("train", "test", "train"):
        load_split(plugins["d-unit"], None, split, 8)
    err = capsys.readouterr().err
    assert err.count("warning: dataset plugin 'd-unit' (mynets 0.1): every pixel is 0 or 1") == 1, err
    assert "(x * 255).round().to(torch.uint8)" in err
    load_split(plugins["d-gray3"], None, "train", 8)
    err = capsys.readouterr().err
    assert "gives 1-channel images, but its DatasetSpec says channels=3" in err and "set channels=1" in err, err
    load_split(plugins["d-good"], None, "train", 8)
    load_split(DATASETS.get("digits"), None, "train", 8)
    assert capsys.readouterr().err == ""                          # good images: not a word


# -- provenance --------------------------------------------------------------------------
RUN = ["--dataset", "d-good", "--arch", "tiny", "--reg", "ae", "--quiet", "--no-eval", "--batch-size", "16",
       "--set", "latent_dim=8", "--set", "max_steps=2", "--set", "expost=[]"]


def test_the_providers_of_architecture_and_dataset_are_recorded_and_named_when_missing(plugins, tmp_path,
                                                                                        capsys, monkeypatch):
    out = tmp_path / "run"
    code, _, err = run_cli(["run", *RUN, "--out", str(out)], capsys)
    assert code == 0, err
    v = json.loads((out / "config.json").read_text())["versions"]
    assert (v["regularizer"], v["architecture"], v["dataset"]) == (
        f"ae: wae-bench {__version__}", f"tiny: wae-bench {__version__}", "d-good: mynets 0.1")
    ckpt = torch.load(next((out / "checkpoints").glob("step-*.pt")), weights_only=True)
    assert ckpt["versions"]["dataset"] == "d-good: mynets 0.1" and ckpt["versions"]["architecture"] == v["architecture"]
    # a score's protocol: what the run recorded (not who provides it now)
    cfg = resolve(TrainConfig(regularizer="ae", dataset="d-good", arch="tiny"), data=plugins["d-good"]).cfg
    assert directory.providers(v, cfg)["dataset"] == "d-good: mynets 0.1"
    assert directory.providers({}, cfg)["dataset"] == "d-good: mynets 0.1"    # a run from before: who does now
    # a newer mynets on resume: one warning line
    monkeypatch.setitem(DATASETS._dists, "d-good", "mynets 0.2")
    code, _, err = run_cli(["run", "--resume", "--force", *RUN, "--set", "max_steps=3", "--out", str(out)], capsys)
    assert code == 0, err
    said = [ln for ln in err.splitlines() if "d-good: mynets 0.1 (now d-good: mynets 0.2)" in ln]
    assert len(said) == 1 and said[0].startswith("warning: resuming a checkpoint written with"), err
    # mynets uninstalled: eval and resume name the package, not "restore the file"
    monkeypatch.delitem(DATASETS._items, "d-good")
    for args in (["eval", str(out), "--features", "standin", "--fid-samples", "16", "--quiet"],
                 ["run", "--resume", "--out", str(out), "--quiet", "--no-eval"]):
        code, _, err = run_cli(args, capsys)
        line = assert_one_line_error(code, err, "dataset 'd-good' came from mynets 0.2, which is not installed here",
                                     "pip install mynets==0.2")
        assert "restore" not in line and "edit the file" not in line


def test_a_run_whose_plugin_is_now_another_version_is_told_which_one_it_used():
    saved = {"regularizer": "ae", "arch": "tiny", "dataset": "digits", "foo": 1}
    recorded = {"wae_bench": __version__, "dataset": "digits: mynets 0.1"}
    with pytest.raises(WaeError) as e:
        directory.saved_plan(saved, "x/config.json", __version__, recorded=recorded)
    assert str(e.value).endswith(
        f"install what the run used (dataset digits: mynets 0.1, here wae-bench {__version__})")
    with pytest.raises(WaeError) as e:                           # nothing recorded: no restore-a-copy advice
        directory.saved_plan(saved, "x/config.json", __version__)
    assert "unknown config key 'foo'" in str(e.value) and "restore" not in str(e.value)


# -- MoCA's queue --------------------------------------------------------------------------
def test_mocas_queue_is_sized_by_a_declared_small_training_set_and_flagged_where_undeclared(monkeypatch):
    DATASETS.load_entry_points()
    for name, n in (("d-small", 400), ("d-undeclared", None)):
        monkeypatch.setitem(DATASETS._items, name, DatasetSpec(name, "t", LOADERS["d-good"], 8, channels=1,
                                                               arch="tiny", needs_root=False, n_train=n))
    plan = resolve(TrainConfig(regularizer="moca", dataset="d-small"))
    assert plan.cfg.reg.K == 240 and "K" not in plan.provisional            # 60% of the 400 declared images
    plan = resolve(TrainConfig(regularizer="moca", dataset="d-undeclared"))
    assert plan.cfg.reg.K == 30000 and "does not declare its size" in plan.provisional["K"]
    assert "K" not in resolve(TrainConfig(regularizer="moca", dataset="d-undeclared", reg={"K": 256})).provisional
    # the built-in datasets keep their queues (committed cells stay as they are)
    assert {d: resolve(TrainConfig(regularizer="moca", dataset=d)).cfg.reg.K
            for d in ("cifar10", "celeba", "digits", "mnist")} == {"cifar10": 30000, "celeba": 60000, "digits": 1024,
                                                                  "mnist": 30000}


# -- the hold-out --------------------------------------------------------------------------
def test_a_holdout_leaving_less_than_a_batch_is_a_holdout_size_error():
    train = ImageSet(_good(400), "v")
    with pytest.raises(holdout.HoldoutSize) as e:
        holdout.split(train, 390, "npzset", batch=32)
    assert str(e.value) == ("holdout = 390 leaves 10 of the 400 npzset training images, fewer than one batch of 32; "
                            "lower holdout (to at most 368) or --batch-size")
    kept, held = holdout.split(train, 368, "npzset", batch=32)
    assert (len(kept.images), len(held.images)) == (32, 368)


def test_a_holdout_error_names_the_key_a_run_or_a_bench_sets():
    """A run's hold-out is ``holdout``; a bench's tuning cells hold out
    ``tune.holdout`` (what `bench` sets around its cells), never named
    ``holdout`` there, where that key does not exist."""
    with pytest.raises(holdout.HoldoutSize, match=r"\(the npzset training set has 10 images\); lower holdout$"):
        holdout.indices(10, 10, "npzset")
    with worded.bench("tune.holdout"), pytest.raises(holdout.HoldoutSize) as e:
        holdout.indices(10, 10, "npzset")
    assert str(e.value).endswith("; lower tune.holdout (--set tune.holdout=N)")
    with pytest.raises(holdout.HoldoutSize, match=r"; lower holdout$"):   # (the key is the block's only)
        holdout.indices(10, 10, "npzset")


def test_a_holdout_leaving_less_than_a_batch_stops_the_bench_at_its_first_cell(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run_cli(["bench", str(ROOT / "benchmarks" / "smoke-tune.toml"), "--out", str(out),
                            "--set", "tune.holdout=1480"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "holdout = 1,480 leaves 20 of the 1,500 digits training images, fewer than one batch of 32" in errors[0]
    # the key a bench sets (a run's message says holdout: the test above)
    assert ("lower tune.holdout (--set tune.holdout=N) (to at most 1,468) or train.batch_size "
            "(--set train.batch_size=N)") in errors[0] and "Traceback" not in err   # (bench has no --batch-size)
    assert not list(out.glob("cells/*/failed.json")) and not (out / "failed.json").exists()   # no cell failed


# -- the source revision -----------------------------------------------------------------------
def _repo(top: Path, pyproject: str | None = None, package: Path = ROOT / "wae_bench") -> Path:
    """A fresh git repository at ``top`` with a copy of ``package`` in
    ``top/site-packages`` (a wheel installed in a user's project), or, with
    ``pyproject``, at its top level beside that pyproject.toml (a checkout);
    returns the folder holding the copy."""
    parent = top / "site-packages" if pyproject is None else top
    shutil.copytree(package, parent / "wae_bench", ignore=shutil.ignore_patterns("__pycache__"))
    if pyproject is not None:
        (top / "pyproject.toml").write_text(pyproject)
    (top / "README").write_text("a project\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(top), *args], check=True, capture_output=True)
    return parent


def test_a_wheel_inside_another_git_repository_records_no_source_revision(tmp_path):
    parent = _repo(tmp_path / "user")
    env = {k: v for k, v in os.environ.items() if k != directory.SOURCE_ENV}
    code = "import wae_bench.run.directory as d; print(d.__file__); print(d.source_revision())"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "user", capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(parent)}, timeout=120)
    assert done.returncode == 0, done.stderr
    where, rev = done.stdout.split()
    assert Path(where).is_relative_to(parent) and rev == "None", done.stdout   # the copy, in the user's repo


def test_the_source_revision_is_a_checkout_of_wae_bench_only(tmp_path, monkeypatch):
    """Only a checkout whose top level holds the package and a pyproject.toml
    naming wae-bench gives its commit (the package's own file is moved there)."""
    monkeypatch.delenv(directory.SOURCE_ENV, raising=False)
    fake = tmp_path / "pkg"
    (fake / "run").mkdir(parents=True)
    (fake / "run" / "directory.py").write_text("")
    for name, project, expected in (("own", "wae-bench", True), ("other", "my-project", False),
                                    ("wheel", None, False)):
        parent = _repo(tmp_path / name, None if project is None else f'[project]\nname = "{project}"\n', fake)
        monkeypatch.setattr(directory, "__file__", str(parent / "wae_bench" / "run" / "directory.py"))
        rev = directory.source_revision()
        assert (rev is not None and not rev.endswith("-dirty")) == expected, (name, rev)


# -- the optional scan hook: what `bench --dry-run` says about a dataset's files ------------------
def _checked(spec: DatasetSpec, root, monkeypatch, holdout_size: int = 0, role: str = "plain"):
    """:func:`wae_bench.cli.bench.data_check` of one cell of ``spec`` at ``root``."""
    from wae_bench.bench.grid import Cell
    from wae_bench.cli.bench import data_check

    monkeypatch.setitem(DATASETS._items, spec.name, spec)
    monkeypatch.setitem(DATASETS._dists, spec.name, "mynets 0.1")
    cell = Cell(f"ae-tiny-{spec.name}-s0", "ae", "tiny", spec.name, 0, role=role)
    cfg = {"dataset": spec.name, "data_root": None if root is None else str(root), "download": False,
           "holdout": holdout_size, "batch_size": 16, "data_variant": None}
    return data_check([cell], {cell.id: cfg})


def test_a_scan_hook_gives_the_dry_runs_data_line_and_a_plugin_without_one_the_root(tmp_path, monkeypatch):
    def scan(root):
        return data_spec.DataScan(f"{len(list(root.iterdir()))} files in {str(root)!r}", {"train": 40, "test": 8},
                                  "good-v", ("a note of the plugin's",))

    (tmp_path / "a.npz").write_bytes(b"")
    hooked = _spec("d-good", needs_root=True, scan=scan)
    assert _checked(hooked, tmp_path, monkeypatch) == [
        ("data", f"d-good at {str(tmp_path)!r}: 1 files in {str(tmp_path)!r}: 40 train / 8 test (variant good-v)"),
        ("note", "a note of the plugin's")]
    *_, (kind, text) = _checked(hooked, tmp_path, monkeypatch, holdout_size=30, role="tune")
    assert kind == "warning" and text.startswith("tune.holdout = 30 leaves 10 of the 40 d-good training images "
                                                 "found, fewer than one batch of 16;") and "at most 24)" in text
    assert _checked(_spec("d-good", needs_root=True), tmp_path, monkeypatch) == [
        ("data", f"d-good at {str(tmp_path)!r}: the folder exists (the dataset has no scan hook: its files are "
                 f"first read by its first cell)")]
    assert _checked(_spec("d-good", needs_root=True), None, monkeypatch) == [
        ("error", "dataset 'd-good' needs --data-root DIR; every d-good cell would fail on it")]
    assert _checked(_spec("d-good", needs_root=True), tmp_path / "nope", monkeypatch)[0][0] == "error"


@pytest.mark.parametrize("scan, needles", [
    (lambda root: {"train": 1}, ("d-good' (mynets 0.1): scan() returned a dict, not a DataScan",)),
    (lambda root: 1 / 0, ("d-good' (mynets 0.1) raised ZeroDivisionError: division by zero (at test_data_plugins.py:",
                          "scanning its files; fix its scan()")),
    (lambda root: data_spec.DataScan("x", {"train": None, "test": 10}, "v"),
     ("d-good' (mynets 0.1): scan() returned sizes {'train': None, 'test': 10}; give each split's image count as an int",)),
    (lambda root: data_spec.DataScan("x", {"train": "40"}, "v"), ("scan() returned sizes {'train': '40'}",)),
])
def test_a_broken_scan_hook_is_one_error_line_naming_the_plugin(tmp_path, monkeypatch, scan, needles):
    (line,) = _checked(_spec("d-good", needs_root=True, scan=scan), tmp_path, monkeypatch)
    assert line[0] == "error" and all(n in line[1] for n in needles), line
