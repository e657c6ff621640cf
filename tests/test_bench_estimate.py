"""``bench --dry-run`` time estimates (wae_bench/bench/estimate.py) from the
committed measured rates (benchmarks/results/rates.json, written by
benchmarks/rates.py from the measurement files beside it)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.test_bench_tune import fake  # noqa: F401 - (a fixture: no training or scoring)
from wae_bench.bench import estimate, grid, tune
from wae_bench.bench import spec as specs

ROOT = Path(__file__).resolve().parents[1]
FAST = ["train.precision=bf16", "train.step_mode=graph", "train.channels_last=true", "bench.seeds=[0]"]


def rates_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import rates
    finally:
        sys.path.pop(0)
    return rates


def test_the_committed_rates_are_what_their_source_files_give():
    """rates.json holds no typed-in number: benchmarks/rates.py rebuilds it
    from the committed measurements exactly, and every row names its file."""
    committed = json.loads((ROOT / "benchmarks/results/rates.json").read_text())
    assert rates_module().collect(ROOT / "benchmarks/results") == committed
    for row in committed["steps"] + committed["fid"]:
        assert (ROOT / "benchmarks/results" / row["source"]).is_file(), row["source"]
    moca = [r for r in committed["steps"] if r["device"] == "NVIDIA H200" and r["regularizer"] == "moca"
            and r["arch"] == "a1" and r["step_mode"] == "graph"]
    assert [r["ms_per_step"] for r in moca] == [pytest.approx(2.5013, abs=1e-4)]   # the README's 2.50 ms


def cells_of(spec_name: str, sets: list[str], only: str):
    s = specs.load(ROOT / "benchmarks" / spec_name, sets)
    cells = grid.select(grid.expand(s), only)
    configs = grid.resolve_all(cells)
    return s, cells, configs, {c.id: tune.eval_settings(s, c) for c in cells}


def test_a_cell_is_its_steps_times_the_measured_step_time_and_unknown_combinations_are_said():
    s, cells, configs, evals = cells_of("table1-cifar10.toml", FAST, "moca-a1-*,tune-moca-a1-*-lambda1000-s0,"
                                                                      "rae-gp-a2-*")
    rates = estimate.load_rates()
    g = estimate.estimate(cells, configs, evals, "NVIDIA H200", 1, rates)
    row = estimate.Estimator(rates, "NVIDIA H200").step_rate(configs["moca-a1-cifar10-s0"])
    final, tuning = g.cells["moca-a1-cifar10-s0"], g.cells["tune-moca-a1-cifar10-lambda1000-s0"]
    assert final.steps == 50000 // 64 * 100 and final.train_s == pytest.approx(final.steps * row["ms_per_step"] / 1e3)
    assert tuning.steps == (50000 - 5000) // 64 * 30          # the hold-out is not trained on
    assert final.eval_images == 5 * 10000 and tuning.eval_images == 5000
    assert g.cells["rae-gp-a2-cifar10-s0"].train_s is not None
    assert g.train_s == pytest.approx(sum(e.train_s for e in g.cells.values()))
    # at a concurrency nobody measured, nothing is guessed
    g4 = estimate.estimate(cells, configs, evals, "NVIDIA H200", 4, rates)
    assert g4.train_s == 0 and all(e.train_s is None for e in g4.cells.values())
    assert all("at concurrency 4 on NVIDIA H200" in why for why in g4.unknown)
    # nor on a device without rates, nor for a dataset whose size depends on its files
    gx = estimate.estimate(cells, configs, evals, "NVIDIA B200", 1, rates)
    assert gx.train_s == 0 and gx.no_fid_rate == len(cells)
    assert "the rates file has: NVIDIA H200" in " ".join(estimate.summary(gx, len(cells)))
    # a device named as a user types it is the rates' device
    for typed in ("nvidia-h200", "h200", "NVIDIA  H200"):
        gt = estimate.estimate(cells, configs, evals, typed, 1, rates)
        assert gt.train_s == pytest.approx(g.train_s) and not gt.other_devices
    assert not estimate.same_device("", "NVIDIA H200") and not estimate.same_device("h100", "NVIDIA H200")
    folder_cfg = dict(configs["moca-a1-cifar10-s0"], dataset="folder")
    assert "not known without its files" in estimate.Estimator(rates, "cpu").cell(folder_cfg, s.eval).missing


def test_a_concurrent_rate_divides_the_grid_by_the_cells_at_once():
    s, cells, configs, evals = cells_of("table1-cifar10.toml", FAST, "moca-a1-*,moca-a2-*")
    rows = [{"device": "X", **{k: configs[c.id][k] for k in estimate.KEY if k not in ("device", "concurrency")},
             "concurrency": 4, "ms_per_step": 4.0 if c.arch == "a1" else 8.0, "source": "made-up.json"}
            for c in cells]
    g = estimate.estimate(cells, configs, evals, "X", 4, {"format": estimate.FORMAT, "steps": rows, "fid": []})
    assert g.train_s == pytest.approx(78100 * (4.0 + 8.0) / 1e3 / 4)


def test_a_concurrency_measured_for_moca_scales_the_one_cell_rates_of_the_others():
    """gpuafter 8: the GPU call measures N cells at once for moca (and ae)
    only; another regularizer's N-cell rate is its one-cell rate times moca's
    measured factor, said so, never a silent guess; without any N-cell
    measurement nothing is estimated (the test above)."""
    s, cells, configs, evals = cells_of("table1-cifar10.toml", FAST, "moca-a1-*,swae-a1-*")
    key = {k: configs["moca-a1-cifar10-s0"][k] for k in estimate.KEY if k not in ("device", "concurrency")}
    rows = [{"device": "X", **key, "concurrency": 1, "ms_per_step": 2.5, "source": "m1.json"},
            {"device": "X", **key, "concurrency": 4, "ms_per_step": 5.0, "source": "m4.json"},
            {"device": "X", **key, "regularizer": "swae", "concurrency": 1, "ms_per_step": 3.0, "source": "s1.json"}]
    rates = {"format": estimate.FORMAT, "steps": rows, "fid": []}
    g = estimate.estimate(cells, configs, evals, "X", 4, rates)
    swae, moca = g.cells["swae-a1-cifar10-s0"], g.cells["moca-a1-cifar10-s0"]
    assert moca.train_s == pytest.approx(78100 * 5.0 / 1e3) and "scaled_by" not in moca.rate
    assert swae.train_s == pytest.approx(78100 * 3.0 * 2.0 / 1e3) and swae.rate["scaled_by"] == "moca"
    assert g.scaled == {"moca": ["swae-a1-cifar10-s0"]}
    line = next(x for x in estimate.summary(g, len(cells)) if "scaled" in x)
    assert "scaled, not measured (1 cell(s), e.g. swae-a1-cifar10-s0): their one-cell rate times moca's measured " \
           "4-cell factor" in line
    # no one-cell rate of its own: still not estimated
    g = estimate.estimate(cells, configs, evals, "X", 4, {**rates, "steps": rows[:2]})
    assert g.cells["swae-a1-cifar10-s0"].train_s is None and not g.scaled


def test_dry_run_prints_the_estimate_of_the_cells_left(tmp_path, capsys, monkeypatch):
    args = ["bench", str(ROOT / "benchmarks/table1-cifar10.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--only", "moca-a1-*,ae-a1-*", "--estimate-on", "NVIDIA H200", *(a for x in FAST for a in ("--set", x))]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    text = " ".join(out.split())
    assert "time estimate on NVIDIA H200, 1 cell(s) at once (measured rates: " in text
    est = estimate.Estimator(estimate.load_rates(), "NVIDIA H200")
    ms = sum(est.step_rate(c)["ms_per_step"] for c in grid.resolve_all(
        grid.select(grid.expand(specs.load(ROOT / "benchmarks/table1-cifar10.toml", FAST)), "moca-a1-*,ae-a1-*")).values())
    assert f"training {78100 * ms / 60e3:.1f} min for 2 of 2 cell(s) left" in text   # 78,100 steps each
    assert "Inception images/s" in text
    code, out, err = run_cli([*args, "--concurrent", "4"], capsys)
    assert code == 0 and "no measured rate for moca a1 32px batch 64 d 128 bf16 graph channels-last " \
                          "compile=none at concurrency 4 on NVIDIA H200" in " ".join(out.split())
    code, out, err = run_cli([*args, "--json"], capsys)
    cells = {c["id"]: c for c in json.loads(out)}
    assert cells["ae-a1-cifar10-s0"]["estimate"]["steps"] == 78100
    assert cells["ae-a1-cifar10-s0"]["estimate"]["rate_source"] == "h200-2026-11-28/speed-a1-graph-bf16-cl.json"
    monkeypatch.setenv("WAE_BENCH_RATES", str(tmp_path / "none.json"))
    code, out, err = run_cli(args, capsys)
    assert code == 0 and "no time estimate: no measured rates at" in " ".join(out.split())


def test_a_default_cell_is_estimated_with_the_step_mode_it_gets_on_the_device():
    """step_mode = "auto", channels_last unset (the defaults): a GPU's rate is
    the captured NHWC step's, the CPU's the eager one's."""
    _, cells, configs, _ = cells_of("table1-cifar10.toml", ["train.precision=bf16", "bench.seeds=[0]"],
                                    "moca-a1-cifar10-s0")
    cfg = configs["moca-a1-cifar10-s0"]
    assert (cfg["step_mode"], cfg["channels_last"]) == ("auto", None)
    rates = estimate.load_rates()
    gpu = estimate.Estimator(rates, "NVIDIA H200").step_rate(cfg)
    assert (gpu["step_mode"], gpu["channels_last"]) == ("graph", True)
    on_cpu = estimate.Estimator(rates, "cpu").on_device(cfg)
    assert (on_cpu["step_mode"], on_cpu["channels_last"]) == ("eager", False)


def test_a_grid_whose_settings_are_measured_but_not_its_nets_says_so():
    """On the CPU the rates are of the tiny net at fp32 eager: a1 cells at
    those settings are not estimated for their net, not for their settings."""
    s, cells, configs, evals = cells_of("table1-cifar10.toml", ["bench.seeds=[0]", "train.device=\"cpu\""],
                                        "moca-a1-*")
    g = estimate.estimate(cells, configs, evals, "cpu", 1, estimate.load_rates())
    head = estimate.summary(g, len(cells))[0]
    assert ("training not estimated: no measured rates for a1 on cpu at concurrency 1 (its rates are for tiny: "
            "measure these nets with benchmarks/speed.py of wae-bench's source (not installed with the package))") \
        in head, head
    assert "rates exist for" not in head


def test_a_grid_without_any_matching_rate_says_which_settings_have_rates_and_the_flags_for_them():
    """Never "training 0 s for 0 of N cells": the shipped spec (fp32) on the
    H200, whose rates are bf16 graph channels-last (and fp32 eager)."""
    s, cells, configs, evals = cells_of("table1-cifar10.toml", ["bench.seeds=[0]"], "moca-a1-*,ae-a1-*")
    g = estimate.estimate(cells, configs, evals, "h200", 1, estimate.load_rates())
    head = estimate.summary(g, len(cells))[0]
    assert "training 0 s" not in head and "for 0 of" not in head
    assert ("training not estimated: no measured rates for fp32 graph channels-last compile=none at concurrency 1 "
            "on h200; rates exist for bf16 graph channels-last compile=none") in head
    assert f"(for {len(cells)} of these cells with --set train.precision=bf16)" in head
    # the flags it names do give the estimate
    s2, cells2, configs2, evals2 = cells_of("table1-cifar10.toml", ["bench.seeds=[0]", "train.precision=bf16"],
                                            "moca-a1-*,ae-a1-*")
    g2 = estimate.estimate(cells2, configs2, evals2, "h200", 1, estimate.load_rates())
    assert not g2.unknown and g2.train_s > 0
    assert estimate.set_flags(("fp32", "eager", False, "none"), ("bf16", "graph", True, "none")) == \
        "--set train.precision=bf16 --set train.step_mode=graph --set train.channels_last=true"


def test_dry_run_of_final_cells_counts_the_tuning_cells_they_wait_for(tmp_path, capsys):
    args = ["bench", str(ROOT / "benchmarks/table1-cifar10.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--estimate-on", "NVIDIA H200", *(a for x in FAST for a in ("--set", x))]
    code, out, err = run_cli([*args, "--only", "moca-a1-*"], capsys)
    assert code == 0, err
    spec = specs.load(ROOT / "benchmarks/table1-cifar10.toml", FAST)
    final = grid.select(grid.expand(spec), "moca-a1-*")
    n_tune = len(tune.members(grid.expand(spec), final[0]))
    assert n_tune > 0
    assert f"for 1 of 1 cell(s) left + {n_tune} tuning cell(s) not selected (they run first" in " ".join(out.split())
    code, out, err = run_cli([*args, "--only", "moca-a1-*,tune-moca-a1-*"], capsys)   # selected: not mentioned
    assert code == 0 and "not selected" not in out


@pytest.mark.parametrize("only", [None, "moca-*,wae-*,swae-*,sinkhorn-*,rae-*,ae-*"])
def test_the_estimates_quoted_in_benchmarks_md_are_what_the_commands_beside_them_print(tmp_path, capsys, only):
    args = ["bench", str(ROOT / "benchmarks/table1-cifar10.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--estimate-on", "NVIDIA H200", *(a for x in FAST for a in ("--set", x)),
            *(["--only", only] if only else [])]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    printed = "time estimate on" + flat.split("time estimate on", 1)[1].split("not counted")[0] + "not counted"
    docs = " ".join((ROOT / "docs/benchmarks.md").read_text().split())
    assert printed in docs, printed
    # docs/status.md quotes the same figures (the whole spec, then the final cells alone)
    minutes = re.search(r"training ([\d.]+) min", printed).group(1)
    status = " ".join((ROOT / "docs/status.md").read_text().split())
    quoted = f"estimated at {minutes} GPU-minutes of training" if only is None else f"the final cells alone at {minutes}"
    assert quoted in status, quoted


def test_the_cpu_estimate_of_a_tuned_compare_is_what_benchmarks_md_quotes(tmp_path, capsys):
    """"A head-to-head in one line": the dry run of the spec `compare --tune`
    writes, at the committed rates (the figures went stale: 74.1 min at 3 img/s)."""
    from wae_bench.bench import compare

    data = compare.spec_data(["moca", "wae-mmd", "swae"], "digits", [0], [], tune=True)
    path = tmp_path / "compare.toml"
    path.write_text(compare.spec_file_text(data, "wae-bench compare moca wae-mmd swae --tune"))
    code, out, err = run_cli(["bench", str(path), "--out", str(tmp_path / "res"), "--dry-run"], capsys)
    assert code == 0, err
    flat = " ".join(out.split()).split("time estimate on", 1)[1]
    train, evaluation, cells = re.search(r"training (.+?) for (\d+) of \d+ cell\(s\) left, evaluation (.+?) for",
                                         flat).group(1, 3, 2)
    rate = float(re.search(r"\(([\d.]+) Inception images/s", flat).group(1))
    rows = [r["images_per_s"] for r in estimate.load_rates()["fid"] if r["device"] == "cpu"]
    docs = " ".join((ROOT / "docs/benchmarks.md").read_text().split())
    assert (f"writes estimates {train} of training and {evaluation} of evaluation for the {cells} cells (at the "
            f"median of the CPU evaluations measured, {sorted(rows)[(len(rows) - 1) // 2]:g} Inception images/s: "
            f"CPUs measured {min(rows):g} to {max(rows):g})") in docs
    assert round(rate) == round(sorted(rows)[(len(rows) - 1) // 2])
    # docs/datasets.md quotes eval's warning for the README run at the same rate
    from types import SimpleNamespace

    import torch

    from wae_bench import evaluate
    from wae_bench.progress import listening

    said = []
    with listening(lambda text, markup: said.append(text)):
        evaluate._warn(SimpleNamespace(finished=True, step=1), "inception", torch.device("cpu"), 500, 297, False)
    quoted = re.search(r"500 generated images ≈ \d+ min \(a first run also computes the statistics of the 297 "
                       r"reference images, ≈ \d+ min more", " ".join(said)).group(0)
    datasets = " ".join((ROOT / "docs/datasets.md").read_text().split())
    assert quoted in datasets and f"for the README run at the median row's {evaluate.cpu_eval_rate()[0]:g} img/s" in datasets


def test_a_plugin_without_rates_is_named_with_its_cells_not_as_unmeasured_settings():
    """On the CPU the smoke cells' settings (fp32 eager, tiny) are measured
    for every built-in; a plugin's cell at the same settings has no rate.
    The line says that regularizer has none and how to time it -- not "no
    measured rates for fp32 eager ...; rates exist for fp32 eager ..."."""
    s, cells, configs, evals = cells_of("smoke.toml", ["bench.seeds=[0]", "train.device=\"cpu\""], "moca-*")
    plugin = grid.Cell("pull-tiny-digits-s0", "pull", "tiny", "digits", 0)
    configs = {**configs, plugin.id: dict(configs[cells[0].id], regularizer="pull")}
    evals = {**evals, plugin.id: evals[cells[0].id]}
    g = estimate.estimate([*cells, plugin], configs, evals, "cpu", 1, estimate.load_rates())
    assert g.cells[cells[0].id].train_s is not None and g.cells[plugin.id].train_s is None
    lines = estimate.summary(g, len(cells) + 1)
    assert f"for {len(cells)} of {len(cells) + 1} cell(s) left" in lines[0]
    (why,) = [ln.strip() for ln in lines[1:] if "(1 cell(s))" in ln]
    assert why.startswith("no measured rates for pull (1 cell(s)) on cpu at concurrency 1: its rates are for ae, "
                          "moca, "), why
    assert why.endswith("(a plugin has none; time one of its cells with --only pull-tiny-digits-s0)"), why
    assert "rates exist for" not in " ".join(lines)
    # a built-in without a rate (one a maintainer just added) is told how its rate is measured
    s, cells, configs, evals = cells_of("smoke.toml", ["bench.seeds=[0]", "train.device=\"cpu\""], "moca-*,swae-*")
    rates = estimate.load_rates()
    rates["steps"] = [r for r in rates["steps"] if r.get("regularizer") != "swae"]
    (why,) = [ln.strip() for ln in estimate.summary(estimate.estimate(cells, configs, evals, "cpu", 1, rates),
                                                     len(cells))[1:] if "no measured rates for swae" in ln]
    assert "(a built-in without one: measure it with the --regs swae of benchmarks/speed.py of wae-bench's " \
           "source (not installed with the package), then rewrite the rates: the " in why, why
    assert why.endswith(" section 'Adding a built-in regularizer' (docs/maintaining.md#adding-a-built-in-regularizer "
                        "in wae-bench's source))"), why
    assert "a plugin" not in why


def test_evaluate_warns_with_the_cpu_rate_the_dry_run_uses(tmp_path, monkeypatch):
    """One source for the CPU Inception rate: `eval`'s warning prints the rate
    `bench --dry-run` applies (the median cpu evaluation row of the rates
    file: "cpu" names every CPU alike, and the newest row was a free Xeon's
    7 img/s where 2 shared cores measure 1.2 to 3.1), and the constant only
    where the file has none."""
    from types import SimpleNamespace

    import torch

    from wae_bench import evaluate
    from wae_bench.progress import listening

    rates = {"format": estimate.FORMAT, "steps": [], "fid": [
        {"device": "cpu", "what": "cell_evaluation", "images_per_s": 3.1, "measured": "2026-01-01T00:00:00+0000",
         "source": "old/results.json"},
        {"device": "cpu", "what": "cell_evaluation", "images_per_s": 1.2, "measured": "2026-02-01T00:00:00+0000",
         "source": "new/results.json"},
        {"device": "cpu", "what": "cell_evaluation", "images_per_s": 7.0, "measured": "2026-03-01T00:00:00+0000",
         "source": "xeon/results.json"}]}
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(rates))
    monkeypatch.setenv("WAE_BENCH_RATES", str(path))

    def warning() -> str:
        said = []
        with listening(lambda text, markup: said.append(text)):
            evaluate._warn(SimpleNamespace(finished=True, step=1), "inception", torch.device("cpu"), 500, 297, False)
        return " ".join(said)

    _, cells, configs, evals = cells_of("digits-d-lambda.toml", [], "moca-tiny-digits-d128-lambda30-s0")
    dry = " ".join(estimate.summary(estimate.estimate(cells, configs, evals, "cpu", 1, rates), len(cells)))
    median = "old/results.json, the median of 3 CPU measurements, 1.2 to 7 img/s"
    assert f"(3 Inception images/s, {median})" in dry
    assert (f"Inception on CPU (~3 img/s, measured: {median}): 500 generated images ≈ 3 min (a first run "
            f"also computes the statistics of the 297 reference images, ≈ 2 min more") in warning()
    monkeypatch.setenv("WAE_BENCH_RATES", str(tmp_path / "none.json"))
    assert "Inception on CPU (~5 img/s, a guess: no measured CPU rate): 500 generated images ≈ 2 min" in warning()


def test_dry_run_checks_each_datasets_files_without_decoding_them(tmp_path, capsys, monkeypatch):
    """One data line per dataset and root (where, how many images a split,
    the variant), its notes, an error line for a root that is missing or
    wrong, a warning for a hold-out the training images found cannot fit;
    no image is decoded, and --json keeps stdout JSON (the lines on stderr)."""
    from tests.test_data import celeba_images, partition_text
    from wae_bench.data import files

    monkeypatch.setattr(files, "_decode", lambda *a, **k: pytest.fail("the dry run decoded an image"))
    args = ["bench", str(ROOT / "benchmarks/table1-celeba.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--only", "ae-a1-*,tune-moca-a1-*", "--set", "bench.seeds=[0]"]

    def data_lines(*more: str, stream: int = 1) -> list[str]:
        code, out, err = run_cli([*args, *more], capsys)
        assert code == 0, err
        text = (out, err)[stream - 1]
        return [" ".join(x.split()) for x in text.splitlines()
                if x.split(":")[0] in ("data", "note", "warning", "error")]

    assert data_lines() == ["error: dataset 'celeba' needs --data-root DIR (or --set train.download=true when "
                            "online); every celeba cell would fail on it"]
    assert data_lines("--data-root", str(tmp_path / "nope"))[0].startswith(
        f"error: data root {str(tmp_path / 'nope')!r} does not exist; pass an existing --data-root")
    root = tmp_path / "tv"
    celeba_images(root / "celeba" / "img_align_celeba")
    (root / "celeba" / "list_eval_partition.txt").write_text(partition_text())
    images, part = root / "celeba" / "img_align_celeba", root / "celeba" / "list_eval_partition.txt"
    assert data_lines("--data-root", str(root)) == [
        f"data: celeba at {str(root)!r}: 10 images in {str(images)!r}, split by {str(part)!r}: 7 train / 3 test "
        f"(variant celeba-140crop-trainval)",
        "warning: tune.holdout = 5,000 would hold out all of the 7 celeba training images found, leaving none to train on "
        "(one batch is 64); "
        "the bench would stop at the first cell that holds them out: lower it (--set tune.holdout=N)"]
    part.unlink()
    lines = data_lines("--data-root", str(root), "--set", "tune.holdout=2", "--set", "train.batch_size=4")
    assert lines[0].endswith("split by file order (no list_eval_partition file): 9 train / 1 test (variant "
                             "celeba-140crop-trainval-fileorder)") and len(lines) == 2, lines
    assert lines[1].startswith("note: no list_eval_partition.txt/.csv in ") and "by file order" in lines[1]
    (root / "celeba" / "img_align_celeba" / "more").mkdir()
    (root / "celeba" / "img_align_celeba" / "000003.jpg").rename(root / "celeba" / "img_align_celeba" / "more" / "x.jpg")
    (line,) = data_lines("--data-root", str(images))
    assert line.startswith(f"error: celeba at {str(images)!r}: 2 image folders under {str(images)!r} ((top level), "
                           f"more); pass the one to use as --data-root"), line
    json_lines = data_lines("--data-root", str(root), "--json", stream=2)
    assert json_lines and json_lines[0].startswith("error: celeba at ")
    code, out, _ = run_cli([*args, "--data-root", str(root), "--json"], capsys)
    assert len(json.loads(out)) == 8                   # 7 tuning cells of moca a1, the ae a1 cell


def test_dry_run_counts_cifar10_in_torchvisions_layout_and_as_files(tmp_path, capsys):
    from PIL import Image

    tv = tmp_path / "tv" / "cifar-10-batches-py"
    tv.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (tv / name).write_bytes(b"")
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            (tmp_path / "jpg" / split / "cat").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "jpg" / split / "cat" / f"{i}.png")
    args = ["bench", str(ROOT / "benchmarks/table1-cifar10.toml"), "--dry-run", "--out", str(tmp_path / "res"),
            "--only", "ae-a1-*", "--set", "bench.seeds=[0]"]

    def data_line(root, *more: str) -> str:
        code, out, err = run_cli([*args, "--data-root", str(root), *more], capsys)
        assert code == 0, err
        return next(" ".join(x.split()) for x in out.splitlines() if x.startswith(("data:", "error:")))

    assert data_line(tmp_path / "tv") == (f"data: cifar10 at {str(tmp_path / 'tv')!r}: torchvision's {str(tv)!r}: "
                                          f"50,000 train / 10,000 test (variant cifar10)")
    (tv / "data_batch_3").unlink()
    assert "lacks data_batch_3 (torchvision's CIFAR-10 is data_batch_1 to data_batch_5" in data_line(tmp_path / "tv")
    jpg = tmp_path / "jpg"
    assert data_line(jpg, "--set", "train.data_variant=cifar10-jpeg-q75") == (f"data: cifar10 at {str(jpg)!r}: {str(jpg / 'train')!r} and {str(jpg / 'test')!r}: "
                              f"3 train / 2 test (variant cifar10-files, recorded as cifar10-jpeg-q75 "
                              f"(train.data_variant))")


TINY = ('[bench]\nname = "tiny"\nregularizers = ["moca"]\ndatasets = ["digits"]\narchs = ["tiny"]\nseeds = [0]\n'
        '[train]\nepochs = 1\nmax_steps = 4\n[eval]\nfeatures = "standin"\nfid_samples = 16\n')


def _dry_rows(out: str) -> dict[str, list[str]]:
    """The dry run's cell table: cell id -> its columns."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    return {r[1]: r for r in rows}


def test_dry_run_of_a_finished_grid_says_nothing_is_left_not_zero_of_zero(tmp_path, capsys, fake):
    """Every cell done: the headline said ``training 0 s for 0 of 0 cell(s)
    left``, and a done cell's estimate ``?`` (as if unknown): nothing is left
    to run, and a done cell has nothing left to time (``—``)."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    args = ["bench", str(spec), "--out", str(tmp_path / "res"), "--estimate-on", "cpu"]
    code, _, err = run_cli([*args, "--quiet"], capsys)
    assert code == 0, err
    code, out, err = run_cli([*args, "--dry-run"], capsys)
    assert code == 0, err
    text = " ".join(out.split())
    assert ": nothing left to run (every cell selected is done, diverged or excluded)" in text, text
    assert "0 of 0" not in text and "not counted" not in text, text
    assert _dry_rows(out)["moca-tiny-digits-s0"][2:4] == ["done", "—"], out


def test_a_grid_whose_cells_have_no_step_count_says_why_each_not_that_sizes_are_unknown(tmp_path, capsys):
    """A tuned batch size larger than the training set left (and the final
    cell's not chosen): the headline said ``the dataset sizes are not known``,
    which is false of the digits; it points at each cell's reason."""
    spec = tmp_path / "bs.toml"
    spec.write_text(TINY + '[tune]\nmax_steps = 2\nholdout = 300\n[reg.moca.tune]\n"batch_size" = [5000]\n')
    code, out, err = run_cli(["bench", str(spec), "--dry-run", "--out", str(tmp_path / "res"), "--estimate-on", "cpu"],
                             capsys)
    assert code == 0, err
    text = " ".join(out.split())
    assert "training not estimated: no cell left has a step count to time (why: below)" in text, text
    assert "not known" not in text, text
    assert "not estimated (1 cell(s), e.g. tune-moca-tiny-digits-batch_size5000-s0): its hold-out of 300 " in text


def test_a_time_under_half_a_second_is_not_printed_as_none():
    assert [estimate.duration(s) for s in (0, 0.2, 0.6, 42, 90)] == ["0 s", "< 1 s", "1 s", "42 s", "1.5 min"]


def test_dry_run_warns_of_a_tuned_batch_the_hold_out_leaves_no_room_for(tmp_path, capsys):
    """The hold-out warning looked at one cell of the largest hold-out, whose
    batch (the first tuned value, 8) fits: a tuned batch of 5000 was not
    warned of; it is, as that value's failure (the others train), and where
    no tuned batch fits, as every tuning cell's."""
    spec = tmp_path / "bs.toml"
    spec.write_text(TINY + '[tune]\nmax_steps = 2\nholdout = 300\n[reg.moca.tune]\n"batch_size" = [8, 5000]\n')
    args = ["bench", str(spec), "--dry-run", "--out", str(tmp_path / "res"), "--estimate-on", "cpu"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert ("warning: tune.holdout = 300 leaves 1,200 of the 1,500 digits training images found, fewer than one "
            "batch of 5,000, the tuned batch_size of tune-moca-tiny-digits-batch_size5000-s0: that value will fail "
            "(--exclude-failed-tuning excludes it from the choice)") in " ".join(out.split()), out
    code, out, err = run_cli([*args, "--set", "tune.holdout=1495"], capsys)
    assert code == 0 and ("fewer than one batch of 5,000; no tuned batch_size of moca fits, so each of its tuning "
                          "cells will fail: lower it (--set tune.holdout=N, at most 1,492)") in " ".join(out.split())
