"""`bench --dry-run` estimates a cell from the images its data check counted
(the dataset's ``scan`` hook at the cell's ``data_root``), not from the
standard copy's size: a reduced CIFAR-10 folder, or a ``folder`` dataset
whose size only its files know (wae_bench.bench.estimate.split_sizes)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.helpers import run_cli
from tests.test_bench_estimate import FAST, ROOT, cells_of
from wae_bench.bench import estimate


def test_scanned_sizes_replace_the_standard_ones_and_make_a_folder_dataset_estimable():
    s, cells, configs, evals = cells_of("table1-cifar10.toml", FAST, "ae-a1-*,tune-moca-a1-*-lambda1000-s0")
    rates = estimate.load_rates()
    final, tuning = configs["ae-a1-cifar10-s0"], configs["tune-moca-a1-cifar10-lambda1000-s0"]
    root = final.get("data_root")
    scanned = {("cifar10", root): {"train": 12000, "test": 3000}}
    g = estimate.estimate(cells, configs, evals, "NVIDIA H200", 1, rates, scanned=scanned)
    assert g.cells["ae-a1-cifar10-s0"].steps == 12000 // 64 * final["epochs"]
    assert g.cells["tune-moca-a1-cifar10-lambda1000-s0"].steps == (12000 - 5000) // 64 * tuning["epochs"]
    plain = estimate.estimate(cells, configs, evals, "NVIDIA H200", 1, rates)
    assert plain.cells["ae-a1-cifar10-s0"].steps == 50000 // 64 * final["epochs"]
    # the reference split's size is the scanned one too (its statistics are computed once per split)
    ev = evals["ae-a1-cifar10-s0"]
    assert estimate.eval_images(final, ev, scanned)[1] == ("cifar10", ev.split, 3000)
    # a dataset known only by its files: unknown until scanned, then estimated
    folder = dict(final, dataset="folder")
    est = estimate.Estimator(rates, "NVIDIA H200")
    assert est.cell(folder, ev).steps is None
    assert est.cell(folder, ev, {("folder", root): {"train": 640, "test": 64}}).steps == 640 // 64 * final["epochs"]


@pytest.mark.parametrize("n_train", [128, 320])
def test_dry_run_of_a_reduced_copy_estimates_the_images_it_found(tmp_path, capsys, n_train):
    jpg = tmp_path / "jpg"
    for split, n in (("train", n_train), ("test", 8)):
        (jpg / split / "cat").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32)).save(jpg / split / "cat" / f"{i}.png")
    args = ["bench", str(ROOT / "benchmarks/table1-cifar10.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--only", "ae-a1-*", "--estimate-on", "NVIDIA H200", "--data-root", str(jpg),
            *(a for x in FAST for a in ("--set", x))]
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    cell = {c["id"]: c for c in json.loads(out)}["ae-a1-cifar10-s0"]
    assert cell["estimate"]["steps"] == n_train // 64 * cell["config"]["epochs"]
    assert f"{n_train} train / 8 test" in " ".join(err.split())


def test_a_hold_out_that_leaves_less_than_a_batch_is_not_estimated_at_a_negative_time():
    s, cells, configs, evals = cells_of("table1-cifar10.toml", FAST, "tune-moca-a1-*-lambda1000-s0")
    cfg = configs["tune-moca-a1-cifar10-lambda1000-s0"]
    est = estimate.Estimator(estimate.load_rates(), "NVIDIA H200")
    ev = evals["tune-moca-a1-cifar10-lambda1000-s0"]
    e = est.cell(cfg, ev, {("cifar10", cfg.get("data_root")): {"train": 5000 + 63, "test": 100}})
    assert e.steps is None and e.train_s is None
    assert e.missing == ("its hold-out of 5,000 leaves fewer than one batch of the 5,063 cifar10 training images: "
                         "it would not train")
    assert est.cell(cfg, ev, {("cifar10", cfg.get("data_root")): {"train": 5000 + 64, "test": 100}}).train_s > 0


def test_a_final_cell_whose_tuned_batch_size_is_not_chosen_is_said_not_estimated(tmp_path, capsys):
    spec = tmp_path / "bs.toml"
    spec.write_text('[bench]\nname = "bs"\nregularizers = ["moca"]\ndatasets = ["digits"]\narchs = ["tiny"]\nseeds = [0]\n'
                    '[train]\nepochs = 1\nmax_steps = 4\n[tune]\nepochs = 1\nmax_steps = 2\nholdout = 300\n'
                    '[reg.moca.tune]\n"batch_size" = [8, 16]\n[eval]\nfeatures = "standin"\nfid_samples = 16\n')
    code, out, err = run_cli(["bench", str(spec), "--dry-run", "--out", str(tmp_path / "res"), "--estimate-on", "cpu",
                              "--json"], capsys)
    assert code == 0, err
    cell = {c["id"]: c for c in json.loads(out)}["moca-tiny-digits-s0"]
    assert cell["estimate"]["missing"] == "its batch_size is tuned and not chosen yet"
