"""The speed benchmarks themselves (benchmarks/speed.py, kernel_count.py, throughput.py, rates.py, cells_summary.py):
they run, isolate a plugin that fails, and write what the docs and the GPU
scripts read, through wae_bench.atomic; bad input to a script is one line.  No timing is asserted (speed is a benchmark figure, not a
test); a GPU call must not be the first place a broken benchmark shows."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod           # (dataclasses look their module up there)
    spec.loader.exec_module(mod)
    return mod


def test_speed_benchmark_reports_every_regularizer_against_the_plain_loops(tmp_path):
    out, prof = tmp_path / "speed.json", tmp_path / "profile.txt"
    res = load("speed").main(["--arch", "tiny", "--image-size", "8", "--batch-size", "8", "--latent-dim", "6",
                              "--K", "32", "--regs", "ae,moca,sinkhorn,rae-gp", "--steps", "1", "--repeats", "1",
                              "--warmup", "1", "--out", str(out), "--profile", str(prof),
                              "--profile-regs", "moca,sinkhorn"])
    saved = json.loads(out.read_text())
    assert saved["rows"] == res["rows"] and saved["plain_ae_ms"] > 0 and saved["plain_moca_ms"] > 0
    rows = {r["regularizer"]: r for r in saved["rows"]}
    assert set(rows) == {"ae", "moca", "sinkhorn", "rae-gp"}
    assert all(r["ms_per_step"] > 0 and r["setup_s"] >= 0 for r in rows.values())
    assert rows["ae"]["vs_trainer_ae"] == 1.0
    assert rows["moca"]["overhead_vs_plain_moca"] > 0 and "overhead_vs_plain_moca" not in rows["ae"]
    assert "steps profiled" in prof.read_text()
    assert "steps profiled" in (tmp_path / "profile-sinkhorn.txt").read_text()


def test_speed_benchmark_reports_a_plugin_that_cannot_be_built_and_times_the_rest(tmp_path, capsys):
    res = load("speed").main(["--arch", "tiny", "--image-size", "8", "--batch-size", "8", "--latent-dim", "6",
                              "--K", "4", "--regs", "moca,ae", "--steps", "1", "--repeats", "1", "--warmup", "1"])
    rows = {r["regularizer"]: r for r in res["rows"]}
    assert "K (4) must be >= the global batch size (8)" in rows["moca"]["error"]
    assert rows["ae"]["ms_per_step"] > 0
    assert "moca: FAILED" in capsys.readouterr().err


def test_speed_benchmark_with_compile_reports_dynamos_counters(tmp_path):
    """In its own process (Inductor's global state stays out of the other tests);
    one thread, as tests/test_compile.py and check-plugin --compile compile:
    Inductor's CPU kernels depend on the thread count, so these nets'
    kernels come from the session's cache there (tests/conftest.py)."""
    out = tmp_path / "s.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--arch", "tiny", "--image-size", "8",
                        "--batch-size", "8", "--latent-dim", "6", "--K", "32", "--regs", "ae,sinkhorn", "--steps", "1",
                        "--repeats", "1", "--warmup", "1", "--compile", "default", "--threads", "1", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    dyn = json.loads(out.read_text())["dynamo"]
    assert dyn["graph_breaks"] == {} and dyn["frames_ok"] == dyn["frames_total"] >= 3   # encoder, decoder, Sinkhorn


def test_kernel_count_counts_eager_ops_and_compiled_kernels(tmp_path):
    """In its own process (Inductor's global state stays out of the other tests)."""
    out = tmp_path / "k.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_count.py"), "--regs", "swae,ae",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    from tests.test_provenance import assert_is_the_commit

    rows = json.loads(out.read_text())["rows"]
    assert_is_the_commit(json.loads(out.read_text())["meta"]["commit"])      # (the code it counted)
    assert [(x["what"], x["regularizer"]) for x in rows] == [("penalty", "swae"), ("decoder a1", "ae")]
    assert all(x["eager_ops"] > 0 and x["compiled_kernels"] > 0 for x in rows)
    assert rows[0]["eager_ops"] > rows[0]["compiled_kernels"]      # sliced W2: projections, sorts, a mean, fused
    # the profiler's and Inductor's own log lines are kept off stderr (closing5: noise)
    assert not [ln for ln in r.stderr.splitlines() if "profiler_st" in ln or "CUDA_HOME" in ln], r.stderr


def test_throughput_benchmark_feeds_the_concurrent_rates_of_the_time_estimates(tmp_path):
    """benchmarks/throughput.py (N cells advanced round robin, as bench
    --concurrent does) writes rows that benchmarks/rates.py turns into
    concurrency-N step rates, which the dry-run estimate then uses."""
    from wae_bench.bench import estimate

    out = tmp_path / "results" / "throughput.json"
    out.parent.mkdir()
    res = load("throughput").main(["--arch", "tiny", "--image-size", "8", "--batch-size", "8", "--latent-dim", "6",
                                   "--K", "32", "--images", "64", "--concurrency", "1,2", "--steps", "2",
                                   "--warmup", "1", "--step-mode", "eager", "--precision", "fp32", "--device", "cpu",
                                   "--out", str(out)])
    from tests.test_provenance import assert_is_the_commit

    rows = json.loads(out.read_text())["rows"]
    assert rows == res["rows"] and [r["concurrency"] for r in rows] == [1, 2]
    assert_is_the_commit(json.loads(out.read_text())["commit"])
    assert all(r["images_per_s"] > 0 and r["ms_per_step_per_cell"] > 0 for r in rows)
    assert rows[0]["speedup_vs_1"] == 1.0          # (a / b) * b is a only within rounding
    assert rows[1]["images_per_s"] == pytest.approx(rows[1]["speedup_vs_1"] * rows[0]["images_per_s"], rel=1e-12)
    res["command"] = "benchmarks/throughput.py ..."       # (the in-process call's argv is pytest's)
    out.write_text(json.dumps(res))
    rates = load("rates").collect(out.parent)
    (two,) = [r for r in rates["steps"] if r["concurrency"] == 2]
    assert two["ms_per_step"] == round(rows[1]["ms_per_step_per_cell"], 4) and two["source"] == "throughput.json"
    cfg = {"regularizer": "moca", "arch": "tiny", "dataset": "digits", "epochs": 1, "max_steps": 0, "holdout": 0,
           "batch_size": 8, "image_size": 8, "latent_dim": 6, "precision": "fp32", "step_mode": "eager",
           "channels_last": False, "compile": "none"}
    e = estimate.Estimator(rates, "cpu", 2).cell(cfg, estimate.EvalSettings(features="standin"))
    assert e.steps == 1500 // 8 and e.train_s == e.steps * two["ms_per_step"] / 1e3


def test_cells_summary_reads_every_cell_of_a_results_folder(tmp_path, capsys):
    from wae_bench.atomic import write_json

    cell = tmp_path / "cells" / "tune-moca-a1-cifar10-lambda30-s0"
    write_json(cell / "config.json", {"config": {"regularizer": "moca", "arch": "a1", "reg": {"lambda": 30.0}},
                                      "total_steps": 10})
    (cell / "metrics.jsonl").write_text(json.dumps({"step": 10, "rec": 4.5, "moca/neg": 1.7, "img_per_s": 9.0}) + "\n")
    write_json(cell / "results.json", {"scores": {"samples": {"fid": 80.5}}, "protocol": {
        "reference": {"split": "val"}, "seconds": 3.0}, "diagnostics": {"rec_mse_test": 5.0,
                                                                        "spectrum_effective_rank": 90.0}})
    failed = tmp_path / "cells" / "ae-a1-cifar10-s0"
    write_json(failed / "failed.json", {"error": "boom"})
    for lam in (100, 1000):   # λ in numeric order, not as text (where "lambda100" < "lambda30")
        write_json(tmp_path / "cells" / f"tune-moca-a1-cifar10-lambda{lam}-s0" / "config.json",
                   {"config": {"regularizer": "moca", "arch": "a1", "reg": {"lambda": float(lam)}}})
    load("cells_summary").main([str(tmp_path), "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert "tune-moca-a1-cifar10-lambda30-s0: λ 30; step 10/10; samples 80.5 (val); rec error 5; " \
           "train rec 4.5, moca/neg 1.7; effective rank 90; 9 img/s" in out and "FAILED: boom" in out
    assert [r["cell"] for r in json.loads((tmp_path / "s.json").read_text())] == [
        failed.name, cell.name, "tune-moca-a1-cifar10-lambda100-s0", "tune-moca-a1-cifar10-lambda1000-s0"]


def test_cells_summary_reads_a_committed_copy_and_refuses_a_folder_without_cells_in_one_line(tmp_path, capsys):
    """A committed results copy holds its cells directly (no ``cells/``); a
    folder without cells, or none at all, is one line ``error: ...``, exit 2."""
    load("cells_summary").main([str(ROOT / "benchmarks" / "results" / "h200-2026-11-28" / "table1-cifar10")])
    assert "moca-a1-cifar10-s0: λ 1000; step 78100/78100; samples 154.6" in capsys.readouterr().out
    for bad, needle in ((tmp_path, "no cells in"), (tmp_path / "missing", "is not a folder")):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cells_summary.py"), str(bad)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and needle in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_prune_pictures_keeps_each_cells_sampler_grid_and_every_number(tmp_path, capsys):
    """benchmarks/prune_pictures.py: a MoCA cell keeps samples.png, an AE cell
    samples-gmm.png (what their FIDs judge), at any depth; JSON and the
    folder's plots stay; nothing goes without --apply; --keep-final spares
    final cells; a bad folder is one line, exit 2."""
    import json

    grids = ("samples.png", "samples-n.png", "samples-gmm.png", "reconstructions.png", "interpolations.png",
             "latent_spectrum.png")
    cells = {"a/cells/moca-tiny-digits-s0": "moca", "a/cells/tune-moca-tiny-digits-lambda10-s0": "moca",
             "b/deeper/ae-tiny-digits-s0": "ae"}
    for where, reg in cells.items():
        d = tmp_path / where
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"config": {"regularizer": reg}}))
        (d / "results.json").write_text("{}")
        for g in grids:
            (d / g).write_bytes(b"x" * 10)
    (tmp_path / "a" / "plots").mkdir()
    (tmp_path / "a" / "plots" / "fid-vs-lambda.png").write_bytes(b"p")
    prune = load("prune_pictures")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    prune.main([str(tmp_path)])
    assert "would remove 15 pictures, 150 bytes" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == before
    prune.main([str(tmp_path), "--keep-final", "--apply"])
    assert "removed 5 pictures" in capsys.readouterr().out              # the tuning cell's only
    assert len(list((tmp_path / "a/cells/moca-tiny-digits-s0").glob("*.png"))) == 6
    prune.main([str(tmp_path), "--apply"])
    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png")}
    assert left == {"a/cells/moca-tiny-digits-s0/samples.png", "a/cells/tune-moca-tiny-digits-lambda10-s0/samples.png",
                    "b/deeper/ae-tiny-digits-s0/samples-gmm.png", "a/plots/fid-vs-lambda.png"}
    assert all((tmp_path / w / "results.json").is_file() and (tmp_path / w / "config.json").is_file() for w in cells)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "prune_pictures.py"), str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_the_gpu_calls_pack_splits_what_comes_back_so_the_numbers_always_do(tmp_path):
    """gpu_setup.sh's pack: a file comes back from the GPU call only under
    16 MiB, so the numbers, logs, plots and each cell's sampler grids go in
    gpu-check.tar.gz and the other grids (most of the bytes) in
    gpu-pictures.tar.gz; checkpoints in neither."""
    import tarfile

    work, out = tmp_path / "work", tmp_path / "out"
    cell = work / "table1-cifar10" / "cells" / "ae-a1-cifar10-s0"
    (work / "table1-cifar10" / "plots").mkdir(parents=True)
    (cell / "checkpoints").mkdir(parents=True)
    files = {"summary.txt", "table1-cifar10/plots/fid-vs-lambda.png", "table1-cifar10/logs.log",
             *(f"table1-cifar10/cells/ae-a1-cifar10-s0/{n}" for n in (
                 "results.json", "metrics.jsonl", "samples.png", "samples-gmm.png", "samples-n.png",
                 "reconstructions.png", "interpolations.png", "latent_spectrum.png", "checkpoints/step-1.pt"))}
    for f in files:
        (work / f).write_bytes(b"x")
    env = {**os.environ, "OUT": str(out), "WORK": str(work), "BUDGET": "30"}
    r = subprocess.run(["bash", "-c", f"source {ROOT / 'benchmarks' / 'gpu_setup.sh'} > /dev/null 2>&1; pack"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

    def members(name):
        with tarfile.open(out / name) as t:
            return {m.name.removeprefix("./") for m in t.getmembers() if m.isfile()}
    cell_files = "table1-cifar10/cells/ae-a1-cifar10-s0/"
    assert members("gpu-check.tar.gz") == {"summary.txt", "table1-cifar10/plots/fid-vs-lambda.png",
                                            "table1-cifar10/logs.log", *(cell_files + n for n in (
                                                "results.json", "metrics.jsonl", "samples.png", "samples-gmm.png"))}
    assert members("gpu-pictures.tar.gz") == {cell_files + n for n in (
        "samples-n.png", "reconstructions.png", "interpolations.png", "latent_spectrum.png")}
    assert (out / "summary.txt").is_file()
    assert not list(out.glob(".pack-*"))               # written under temporary names, moved into place


def test_the_gpu_calls_parts_say_when_they_are_skipped_and_know_what_is_committed(tmp_path):
    """gpu_setup.sh's part: a part the budget leaves less than its minimum is
    skipped with a line saying so (not started for 5 s); committed: the newest
    committed copy of a file, so a later call repeats no measurement."""
    work = tmp_path / "work"
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(work), "BUDGET": "3000"}
    script = (f"source {ROOT / 'benchmarks' / 'gpu_setup.sh'} > /dev/null 2>&1; "
              "part 10 'small part' && echo RAN-SMALL; part 9000 'big part' || echo SKIPPED-BIG; "
              "committed provenance.json; committed no-such-file.json || echo NONE")
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")    # (not the checkout: a prepared .whl would install)
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "RAN-SMALL" in r.stdout and "SKIPPED-BIG" in r.stdout and "NONE" in r.stdout, r.stdout
    assert "benchmarks/results/h200-2026-11-28/provenance.json" in r.stdout
    summary = (work / "summary.txt").read_text()
    assert "small part" in summary and "big part" in summary and "skipped: " in summary and "needs at least 9000 s" in summary


def test_stacked_cells_compute_what_each_cell_computes_alone():
    """benchmarks/stacked.py: N MoCA cells vmapped as one stacked model take the
    same steps as the same N plain cells (speed.PlainMoCA) stepped one by one —
    losses, weights, key encoders and queues, within float tolerance (the
    stacked convolutions are grouped kernels, not the same computation)."""
    import argparse

    import torch

    stacked = load("stacked")
    a = argparse.Namespace(arch="tiny", image_size=8, latent_dim=6, K=16)
    model = stacked.StackedMoCA(stacked.plain_cells(3, a, torch.device("cpu")))
    alone = stacked.plain_cells(3, a, torch.device("cpu"))
    for c in alone:
        c.T = 4                      # a short cosine schedule, so that m_t moves between the steps
    model.T = 4
    x = torch.rand(4, 3, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))   # 4 steps x 3 cells x batch 4
    for s in range(4):
        losses = model.step(x[s])
        for i, c in enumerate(alone):
            assert float(losses[i]) == pytest.approx(float(c.step(x[s, i])), rel=1e-4)
    for i, c in enumerate(alone):
        for name, p in c.ae.encoder.named_parameters():
            torch.testing.assert_close(model.enc_p[name][i], p, rtol=1e-4, atol=1e-5)
        for name, p in c.ae.decoder.named_parameters():
            torch.testing.assert_close(model.dec_p[name][i], p, rtol=1e-4, atol=1e-5)
        for name, p in c.enc_k.named_parameters():
            torch.testing.assert_close(model.key_p[name][i], p, rtol=1e-4, atol=1e-5)
        for name, b in c.ae.encoder.named_buffers():
            torch.testing.assert_close(model.enc_b[name][i].to(b.dtype), b, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.queue[i], c.queue, rtol=1e-4, atol=1e-5)
    assert int(model.ptr) == alone[0].ptr == (4 * 4) % 16


def test_stacked_benchmark_reports_rows_as_the_throughput_benchmark_does(tmp_path):
    out = tmp_path / "stacked.json"
    res = load("stacked").main(["--arch", "tiny", "--image-size", "8", "--batch-size", "4", "--latent-dim", "6",
                                "--K", "16", "--concurrency", "1,2", "--steps", "2", "--warmup", "1",
                                "--step-mode", "eager", "--precision", "fp32", "--device", "cpu", "--out", str(out)])
    from tests.test_provenance import assert_is_the_commit

    rows = json.loads(out.read_text())["rows"]
    assert rows == res["rows"] and [r["concurrency"] for r in rows] == [1, 2]
    assert_is_the_commit(json.loads(out.read_text())["commit"])
    assert all(r["images_per_s"] > 0 and r["ms_per_step_per_cell"] > 0 and "error" not in r for r in rows)
    assert rows[0]["speedup_vs_1"] == 1.0 and res["runner"].startswith("stacked")


@pytest.mark.gpu(reason="a CUDA graph needs a GPU")
def test_stacked_cells_captured_on_a_gpu_take_the_eager_steps():
    """The captured stacked step (what stacked.py times on a GPU) takes the
    steps the eager stacked step takes, momentum schedule and queue pointer
    included (they live on the device so that replays advance them)."""
    import argparse

    stacked = load("stacked")
    dev = torch.device("cuda")
    a = argparse.Namespace(arch="tiny", image_size=8, latent_dim=6, K=16)
    eager = stacked.StackedMoCA(stacked.plain_cells(2, a, dev))
    model = stacked.StackedMoCA(stacked.plain_cells(2, a, dev), capturable=True)
    x = torch.rand(6, 2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0)).to(dev)
    for s in range(3):                       # CapturedStep's own warm-up steps, on the eager twin
        eager.step(x[0])
    captured = stacked.CapturedStep(model, x[0], warmup=3)
    for s in range(1, 6):
        torch.testing.assert_close(captured.step(x[s]), eager.step(x[s]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.queue, eager.queue, rtol=1e-4, atol=1e-4)
    assert int(model.ptr) == int(eager.ptr) and model.t == eager.t


def test_committed_files_leave_room_for_what_the_gpu_call_carries():
    """The device tool carries at most 64 MiB: the working tree plus the
    CIFAR-10 copy, the FID weights and two wheels.  Results committed under
    benchmarks/results/ count against it (shrink pictures with
    benchmarks/shrink_pngs.py)."""
    payload = load("payload")
    tree, carried = payload.tree_bytes(), sum(payload.CARRIED.values())
    assert tree + carried <= payload.LIMIT, (
        f"the tracked files ({tree:,} bytes) and the carried data ({carried:,}) exceed the device tool's "
        f"{payload.LIMIT:,}: the prepared GPU call would not start")
    share = ROOT.parent / "shared" / "data" / "device" / "cifar10-jpeg.tar.xz"
    if share.exists():                            # the carried copy of the data is the one measured
        assert share.stat().st_size == payload.CARRIED[".device-data/cifar10-jpeg.tar.xz"]


def test_pngs_are_shrunk_only_losslessly(tmp_path):
    from PIL import Image
    import numpy as np

    a = np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)
    Image.fromarray(np.stack([a] * 3, -1)).save(tmp_path / "grey.png")
    Image.fromarray(np.stack([a, a, a // 2], -1)).save(tmp_path / "colour.png")
    before = (tmp_path / "colour.png").read_bytes()
    assert load("shrink_pngs").main([str(tmp_path)]) == 0
    grey = Image.open(tmp_path / "grey.png")
    assert grey.mode == "L" and np.array_equal(np.asarray(grey), a)
    colour = Image.open(tmp_path / "colour.png")
    assert colour.mode == "RGB" and np.array_equal(np.asarray(colour)[..., 2], a // 2)
    assert len((tmp_path / "colour.png").read_bytes()) <= len(before)


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    """``python benchmarks/NAME.py ARGS`` in its own process."""
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2 and r.stderr.startswith("error: ") and needle in r.stderr, r.stderr[-3000:]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_rates_rewrites_the_committed_file_exactly_and_refuses_a_folder_with_nothing_to_collect(tmp_path):
    """benchmarks/rates.py: from the committed measurements it writes the
    committed rates.json byte for byte; a misspelt --results, or a folder
    without measurements, is one line and the rates file is left as it was
    (the dry run's estimates read it)."""
    out = tmp_path / "rates.json"
    load("rates").main(["--out", str(out)])
    assert out.read_bytes() == (ROOT / "benchmarks/results/rates.json").read_bytes()
    out.write_text("kept\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.json").write_text('{"command": "something else"}')
    one_line_error(script("rates", "--results", str(tmp_path / "reslts"), "--out", str(out)), "is not a folder")
    one_line_error(script("rates", "--results", str(tmp_path / "empty"), "--out", str(out)),
                   "no speed.py, throughput.py or fid_reference.py JSON")
    assert out.read_text() == "kept\n"


def test_kernel_count_and_shrink_pngs_answer_bad_input_in_one_line(tmp_path):
    one_line_error(script("kernel_count", "--regs", "nosuch"), "unknown regularizer 'nosuch'")
    one_line_error(script("shrink_pngs", str(tmp_path / "nonexistent")), "is not a folder")


def test_benchmark_scripts_write_files_only_through_wae_bench_atomic():
    """A kill mid-write never leaves a torn result file: no script under
    benchmarks/ writes with ``open(..., "w")``, ``json.dump`` or
    ``Path.write_text``/``write_bytes``; they use ``wae_bench.atomic``."""
    plain = re.compile(r"\.write_(text|bytes)\(|\bjson\.dump\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']")
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted((ROOT / "benchmarks").glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if plain.search(line)]
    assert not found, f"write these through wae_bench.atomic (write_text / write_json / atomic_write): {found}"


def test_every_committed_cell_records_the_code_it_ran_and_every_recorded_commit_is_in_the_history():
    """A committed cell says which code made it: ``config.json``'s ``source``,
    or (cells made before runs recorded it) its results folder's
    ``provenance.json`` with a commit or the evidence why none is known; a
    recorded commit is in this repository's history, or named unreachable
    in ``provenance.json`` with the reason."""
    page = load("reproduction_page")
    cells = [p.parent for p in (ROOT / "benchmarks" / "results").rglob("config.json")]
    assert len(cells) >= 40
    in_history = None
    if (ROOT / ".git").exists() and subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
                                                   capture_output=True, text=True).stdout.strip() == "false":
        in_history = lambda c: subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", c, "HEAD"],
                                              capture_output=True).returncode == 0
    for cell in cells:
        source = json.loads((cell / "config.json").read_text()).get("source")
        found = page.provenance(cell)
        if not source:
            assert found and (found[1].get("commit") or found[1].get("evidence")), \
                f"{cell.relative_to(ROOT)} records no source and no provenance.json above it says which code made it"
            continue
        commit = source.removesuffix("-dirty")
        if in_history and not in_history(commit):
            assert found and commit in found[1].get("unreachable", {}), \
                f"{cell.relative_to(ROOT)} records commit {commit}, which is not in the history (name it in provenance.json)"


def _committed_bench_folders() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "benchmarks" / "results").rglob("spec.json")
                  if (p.parent / "table.md").is_file())


@pytest.mark.parametrize("where", [str(p.relative_to(ROOT / "benchmarks" / "results"))
                                   for p in _committed_bench_folders()])
def test_each_committed_table_is_what_wae_bench_table_prints_now(where):
    """A committed results folder's ``table.md`` and ``table.csv`` are what
    ``wae-bench table`` renders from its cells today (a change to the table's
    rendering regenerates them; the plots are left as they are)."""
    from wae_bench.bench import table, table_render
    from wae_bench.bench.folder import ResultsDir

    folder = ResultsDir(ROOT / "benchmarks" / "results" / where)
    rep = table.collect(folder)
    fix = f"stale: run `wae-bench table benchmarks/results/{where} --no-plots`"
    assert (folder.path / "table.md").read_text() == table_render.markdown(rep), fix
    assert (folder.path / "table.csv").read_text() == table_render.csv_text(rep), fix
