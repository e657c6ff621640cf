"""The head-to-head walked as a researcher new to wae-bench walks it
(README -> `wae-bench compare REG...` -> `wae-bench table` / `report` of
what it wrote -> more regularizers or seeds -> bad options and values):

- what every cell would fail on alike (a device that is not one, or not
  here; a dataset without its data root, or a root without its files) is
  refused in one line before the first cell, nothing written, in `compare`
  and in `bench` (:mod:`wae_bench.bench.preflight`); a rerun with nothing
  left to train is not;
- a cell's messages name the spec's settings, not a run's flags (the
  download, the image size and arch, `reg.ae.K`), and a cell in use names
  the command that holds it (`compare`, not `bench`);
- `table` / `report` of `runs/compare` name the results folders it holds;
- a misplaced `--set epochs=N` is pointed to `train.epochs`, not to the
  tuning's `tune.epochs`;
- compare refuses what cannot apply or would silently replace its command
  line: `--exclude-failed-tuning` without `--tune`, a negative `--seeds`,
  `--set bench.regularizers` (`seeds`, `datasets`), a `--set reg.NAME.*` of
  a regularizer not compared, the folder of another head-to-head (naming
  the folder of its own beside it, which takes over the cells done there).

Stand-in features and a tiny budget."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from tests.reliability_helpers import assert_one_line_error
from tests.test_compare import TINY

ROOT = Path(__file__).resolve().parents[1]
CIFAR_TINY = ["--set", "train.max_steps=4", "--set", "eval.features=standin", "--set", "eval.fid_samples=24"]
SMOKE = ["bench", str(ROOT / "benchmarks" / "smoke.toml"), "--only", "ae-*", "--no-table", "--quiet"]


@pytest.mark.parametrize("args, needle", [
    (["compare", "moca", "ae", *TINY, "--device", "foo"],
     "bad device 'foo'; use auto, cpu, cuda or cuda:N (wae-bench compare did not start: each of its 2 cell(s)"),
    (["compare", "moca", "ae", *TINY, "--device", "cuda"],
     "device 'cuda' asked for but no CUDA GPU is available; use --device cpu (wae-bench compare did not start"),
    (["compare", "moca", "ae", *TINY, "--set", 'train.device="foo"'], "bad device 'foo'"),
    ([*SMOKE, "--device", "foo"], "bad device 'foo'; use auto, cpu, cuda or cuda:N (the bench did not start: "),
    ([*SMOKE, "--devices", "cpu,cuda"],
     "device 'cuda' asked for but no CUDA GPU is available; use --device cpu (the bench did not start: the cells "
     "sent to it would fail on it)"),
])
def test_a_device_every_cell_would_fail_on_is_refused_before_the_first_cell(args, needle, tmp_path, capsys,
                                                                          monkeypatch):
    """It was accepted: each cell then failed with the same line into its
    failed.json, the folder claimed and its table all 'failed'."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # (the same on a GPU machine)
    out = tmp_path / "res"
    code, _, err = run_cli([*args, "--out", str(out)], capsys)
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("results folder:"))   # (bench's first line)
    assert_one_line_error(code, err, needle)
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("more, needle", [
    ([], "error: dataset 'cifar10' needs --data-root DIR (or --set train.download=true when online) "
         "(wae-bench compare did not start: each of its 2 cell(s) to run would fail on it)"),
    (["--data-root", "nope"], "error: data root 'nope' does not exist; pass an existing --data-root "
                              "(or --set train.download=true when online) (wae-bench compare did not start"),
])
def test_a_head_to_head_without_its_data_root_is_refused_before_the_first_cell(more, needle, tmp_path, capsys,
                                                                             monkeypatch):
    """It failed every cell, each naming `--download`, which compare does not have."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "moca", "ae", "--dataset", "cifar10", *more, *CIFAR_TINY], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["compare", "moca", "ae", "--dataset", "cifar10"],
                                     ["bench", str(ROOT / "benchmarks" / "table1-cifar10.toml"), "--dry-run"]])
def test_an_image_size_the_arch_cannot_take_names_the_spec_keys(command, tmp_path, capsys, monkeypatch):
    """It said 'pass --set image_size=N or choose another --arch', a run's
    key and a flag neither command has."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*command, *CIFAR_TINY, "--set", "train.image_size=8"], capsys)
    assert_one_line_error(code, err, "architecture 'a1' cannot take 8x8 images (it takes 32, 64); "
                                     "pass --set train.image_size=N or another --set train.arch=NAME")


def test_a_data_root_without_the_datasets_files_is_refused_before_the_first_cell(tmp_path, capsys, monkeypatch):
    """An existing folder that holds no train/ split: every cell failed on it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["compare", "moca", "ae", "--dataset", "folder", "--data-root", "empty", *CIFAR_TINY],
                           capsys)
    assert_one_line_error(code, err, "no folder train split in 'empty': expected 'train/' or '*train*.zip' of images "
                                     "there; fix --data-root (wae-bench compare did not start: each of its 2 cell(s)")
    assert code == 2 and not (tmp_path / "runs").exists()


def test_a_cells_missing_data_root_names_the_download_setting_of_its_command():
    """A cell's own check (the root gone after the command started) in a bench's words."""
    from wae_bench import worded
    from wae_bench.data.spec import root_problem
    from wae_bench.registry import DATASETS

    cifar = DATASETS.get("cifar10")
    assert root_problem(cifar, None) == "dataset 'cifar10' needs --data-root DIR (or --download when online)"
    with worded.bench("train.holdout", command="compare"):
        assert root_problem(cifar, None) == ("dataset 'cifar10' needs --data-root DIR "
                                             "(or --set train.download=true when online)")


def test_a_done_head_to_head_with_a_bad_device_is_still_shown(tmp_path, capsys, monkeypatch):
    """The check is of the cells to run: a rerun with nothing left to train is not refused."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "ae", *TINY], capsys)
    assert code == 0, err
    code, out, err = run_cli(["compare", "ae", *TINY, "--device", "foo"], capsys)
    assert code == 0 and "skipping 1 cell(s) already done" in err and "pictures" in out, err


@pytest.mark.parametrize("command", ["table", "report"])
def test_the_folder_of_head_to_heads_names_the_results_folders_it_holds(command, tmp_path, capsys, monkeypatch):
    """`wae-bench table runs/compare` said only 'pass the --out of a `wae-bench bench` run'."""
    monkeypatch.chdir(tmp_path)
    for regs in (["ae"], ["ae", "swae"]):
        code, _, err = run_cli(["compare", *regs, *TINY], capsys)
        assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "runs" / "compare").iterdir())
    code, _, err = run_cli([command, "runs/compare"], capsys)
    assert_one_line_error(code, err, "'runs/compare' is not a benchmark results folder (no spec.json); it holds 2 "
                          "results folder(s), one per bench or head-to-head: pass one of them (" +
                          ", ".join(f"runs/compare/{n}" for n in names) + ")")
    code, _, err = run_cli([command, str(tmp_path)], capsys)   # (nothing inside: the generic fix)
    assert_one_line_error(code, err, "pass the --out of a `wae-bench bench` or `wae-bench compare` run")


@pytest.mark.parametrize("key, suggested", [("epochs", "train.epochs"), ("holdout", "train.holdout"),
                                            ("fid_samples", "eval.fid_samples")])
def test_a_spec_key_given_without_its_section_is_pointed_to_the_cells_setting(key, suggested, tmp_path, capsys,
                                                                            monkeypatch):
    """`--set epochs=3` was answered "did you mean 'tune.epochs'?", a key that turns on the tuning."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "moca", "ae", "--set", f"{key}=3"], capsys)
    assert_one_line_error(code, err, f"unknown config key '{key}'; did you mean '{suggested}'?")


@pytest.mark.parametrize("args, needle", [
    (["--exclude-failed-tuning"], "--exclude-failed-tuning chooses among tuned values, and without --tune nothing "
                                  "is tuned: add --tune, or drop --exclude-failed-tuning"),
    (["--seeds", "-1"], "bad --seeds '-1': write integers >= 0, e.g. --seeds 0,1,2"),
    (["--seeds", "0,x"], "bad --seeds '0,x': write integers >= 0"),
])
def test_a_compare_flag_that_cannot_apply_is_refused_naming_it(args, needle, tmp_path, capsys, monkeypatch):
    """--exclude-failed-tuning without --tune did nothing, silently; --seeds -1
    named a cell 'moca-tiny-digits-s-1' rather than the flag."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "moca", "ae", *TINY, *args], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["bench", "compare"])
def test_a_cell_in_use_names_the_command_that_holds_it(command, tmp_path):
    """A second `compare` beside a running one was told the cell 'is in use by
    wae-bench bench (cell ...)', a command nobody ran."""
    from wae_bench import lock, worded
    from wae_bench.bench import grid, spec as specs
    from wae_bench.bench.folder import ResultsDir

    spec = specs.parse({"bench": {"name": "x", "datasets": ["digits"], "regularizers": ["ae"], "seeds": [0]}})
    (cell,) = grid.expand(spec)
    folder = ResultsDir(tmp_path / "res")
    with worded.bench("train.holdout", command=command), folder.cell_lock(cell) as held:
        holder = lock.holder_text(lock.read_holder(held))
    assert holder.startswith(f"wae-bench {command} (cell ae-tiny-digits-s0) (pid {os.getpid()} on "), holder


@pytest.mark.parametrize("key, value, fix", [
    ("regularizers", '["swae"]', "takes its regularizers as its arguments, wae-bench compare REG REG ..."),
    ("seeds", "[5]", "takes its seeds with --seeds 0,1,2"),
    ("datasets", '["mnist"]', "takes its datasets with --dataset NAME (a head-to-head is on one dataset)"),
])
def test_a_set_of_what_the_command_line_gives_is_refused(key, value, fix, tmp_path, capsys, monkeypatch):
    """`compare moca ae --set 'bench.regularizers=["swae"]'` trained swae
    alone, in a folder named for moca and ae; `--seeds 3 --set
    bench.seeds=[5]` trained seed 5."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "moca", "ae", "--seeds", "3", *TINY, "--set", f"bench.{key}={value}"], capsys)
    assert_one_line_error(code, err, f"--set bench.{key}: wae-bench compare {fix}; drop the --set")
    assert code == 2 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name, hint", [("mocaa", "did you mean 'moca'? "), ("swae", "")])
def test_a_setting_of_a_regularizer_not_compared_names_the_ones_compared(name, hint, tmp_path, capsys, monkeypatch):
    """It said '[reg.mocaa] configures a regularizer not in bench.regularizers
    (moca, ae); add it there', a spec's words for a spec the user did not write."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "moca", "ae", *TINY, "--set", f"reg.{name}.lambda=1"], capsys)
    assert_one_line_error(code, err, f"--set reg.{name}.…: '{name}' is not one of the regularizers compared "
                                     f"(moca, ae); {hint}set one of theirs, or add {name} to the REG arguments")


def test_a_head_to_head_given_the_folder_of_another_says_so_and_where_its_own_goes(tmp_path, capsys, monkeypatch):
    """`compare moca ae swae --out` the folder of `compare moca ae` was refused
    as a spec that 'differs in bench.name', a key the user never set."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["compare", "ae", *TINY], capsys)
    assert code == 0, err
    (made,) = (tmp_path / "runs" / "compare").iterdir()
    code, _, err = run_cli(["compare", "ae", "swae", *TINY, "--out", f"runs/compare/{made.name}"], capsys)
    line = assert_one_line_error(code, err, f"results folder 'runs/compare/{made.name}' was made by a different "
                                            "spec, the head-to-head of ae on digits; this one is of ae, swae on "
                                            "digits: give it a folder of its own beside that one, --out "
                                            "'runs/compare/digits-ae-swae-",
                                 "(which takes over the cells done there alike), or rerun the command that made it, "
                                 "`wae-bench compare ae --set train.max_steps=4")
    assert "bench.name" not in line and [p.name for p in (tmp_path / "runs" / "compare").iterdir()] == [made.name]
    own = line.split("--out '")[1].split("'")[0]
    code, out, err = run_cli(["compare", "ae", "swae", *TINY, "--out", own], capsys)   # the folder it names
    assert code == 0 and f"reusing 1 finished cell(s) from runs/compare/{made.name}" in out, err


@pytest.mark.parametrize("command", [["compare", "moca", "ae", *TINY], [*SMOKE, "--dry-run"]])
def test_a_setting_a_regularizer_lacks_names_its_spec_key(command, tmp_path, capsys, monkeypatch):
    """It said "unknown config key 'reg.K' of regularizer 'ae'", a run's key:
    the spec's (and --set's) is reg.ae.K."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*command, "--set", "reg.ae.K=3"], capsys)
    assert_one_line_error(code, err, "cell ae-tiny-digits-s0", "unknown config key 'reg.ae.K' of regularizer 'ae'; "
                                     "valid keys: lambda")
