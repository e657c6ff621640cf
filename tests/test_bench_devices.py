"""`wae-bench bench --devices`: one cell per device at a time, each in its own
subprocess (here two CPU workers, as two GPUs would be used), with the real
training and evaluation; a worker that fails is recorded and the rest go on."""
from __future__ import annotations

import json
from pathlib import Path

from tests.bench_helpers import run_cli
from wae_bench.bench.runner import child_env

SMOKE = Path(__file__).resolve().parents[1] / "benchmarks" / "smoke.toml"


def test_two_cpu_workers_run_cells_concurrently_into_one_folder(tmp_path, capsys):
    out = tmp_path / "res"
    sets = ["--set", 'bench.regularizers=["moca"]', "--set", "bench.seeds=[0]"]
    code, _, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--devices", "cpu,cpu", *sets], capsys)
    assert code == 0, err
    ids = ["moca-tiny-digits-lambda10-s0", "moca-tiny-digits-lambda100-s0"]
    pids = set()
    for cid in ids:
        r = json.loads((out / "cells" / cid / "results.json").read_text())
        assert r["protocol"]["device"] == "cpu" and r["scores"]["samples"]["fid"] > 0
        log = (out / "logs" / f"{cid}.log").read_text()
        assert "moca · tiny" in log and "step 8/8 " in log and "eval: generate samples" in log     # the block
        assert "moca · tiny · digits · step 8  (stand-in features: NOT FID)" in log.splitlines()
        assert "on cpu (pid" in err
        done = [ln for ln in err.splitlines() if f"done {cid} (" in ln]                # one line, its scores
        assert len(done) == 1 and f"· stand-in FID (NOT FID): prior samples {r['scores']['samples']['fid']:.2f}" \
            in done[0], err
    assert "eval:" not in err and "step 8/8" not in err
    pids = {line.split("pid ")[1].rstrip(")") for line in err.splitlines() if "(pid " in line}
    assert len(pids) == 2                                           # two worker processes
    assert "| moca | tiny | 10 | " in (out / "table.md").read_text()
    # a rerun through workers skips the done cells without starting any
    code, _, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--devices", "cpu,cpu", *sets], capsys)
    assert code == 0 and "skipping 2 cell(s) already done" in err and "(pid" not in err


def test_a_worker_failure_is_recorded_and_the_others_finish(tmp_path, capsys):
    out = tmp_path / "res"
    # K = 16 < batch 32 passes the spec check but MoCA refuses it when the model is built: a runtime failure
    sets = ["--set", 'bench.regularizers=["moca"]', "--set", "bench.seeds=[0]",
            "--set", "reg.moca.grid.reg.lambda=[10]", "--set", "grid.reg.K=[16, 256]"]
    code, _, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--devices", "cpu,cpu", *sets], capsys)
    assert code == 2 and "1 cell(s) failed (moca-tiny-digits-K16-lambda10-s0)" in err
    fail = json.loads((out / "cells" / "moca-tiny-digits-K16-lambda10-s0" / "failed.json").read_text())
    assert "K (16) must be >= the global batch size (32)" in fail["error"]
    assert (out / "cells" / "moca-tiny-digits-K256-lambda10-s0" / "results.json").is_file()
    row = next(r for r in (out / "table.md").read_text().splitlines() if r.startswith("| moca | tiny | 16 "))
    assert row.split(" | ")[4] == "failed"


def test_cpu_workers_share_the_cores(monkeypatch):
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert child_env(["cpu", "cpu", "cpu", "cpu"])["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in child_env(["cuda:0", "cuda:1"])
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert child_env(["cpu", "cpu"])["OMP_NUM_THREADS"] == "3"     # the user's setting wins


def test_a_sigterm_to_the_parent_of_workers_exits_143(tmp_path):
    """A scheduler's SIGTERM to `bench --devices` stops the workers and exits
    128 + SIGTERM, as a sequential bench does (it used to exit 130)."""
    import signal
    import subprocess
    import sys
    import time

    from tests.bench_helpers import tiny_spec
    from tests.reliability_helpers import env

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec("term", ["moca"], [0, 1], 100000, [], ckpt_every=50))
    out = tmp_path / "res"
    p = subprocess.Popen([sys.executable, "-m", "wae_bench", "bench", str(spec), "--out", str(out), "--devices",
                          "cpu,cpu", "--quiet"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 240
    while not list(out.glob("cells/*/metrics.jsonl")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=240)
    assert p.returncode == 128 + signal.SIGTERM, err[-2000:]
    # worded as a sequential or concurrent bench's stop (it said "interrupted with 2 cell(s) running")
    assert err.splitlines()[-1].startswith("stopped by SIGTERM with 2 cell(s) running (moca-tiny-digits-s"), err[-2000:]
    assert err.splitlines()[-1].endswith("; rerun the same command to continue (they resume from their "
                                         "checkpoints)"), err[-2000:]
