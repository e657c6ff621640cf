"""What a measurement records about where it was made: the CPU thread count
of a run and of its evaluation (a CPU FID depends on it), and the commit of
the benchmark scripts' JSON files."""
from __future__ import annotations

import json

import torch

from tests.helpers import run_cli
from wae_bench import results


def test_a_run_and_its_evaluation_record_the_cpu_thread_count(tmp_path, capsys):
    """The README run's FID is 180.84 on 2 threads and 180.92 on 1 (same
    code): config.json and the results.json protocol both say how many."""
    out, before = tmp_path / "run", torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        code, _, err = run_cli(["run", "--reg", "moca", "--out", str(out), "--quiet", "--set", "max_steps=4",
                                "--set", "latent_dim=8", "--features", "standin", "--fid-samples", "8"], capsys)
    finally:
        torch.set_num_threads(before)
    assert code == 0, err
    want = {"intra_op": 1, "interop": torch.get_num_interop_threads()}
    assert json.loads((out / "config.json").read_text())["threads"] == want
    assert json.loads((out / "results.json").read_text())["protocol"]["threads"] == want


def test_the_thread_count_does_not_split_a_results_file():
    """A results.json from before the thread count was recorded (no key), or
    re-scored with another count, keeps its scores side by side."""
    old = {"features": "inception", "seed": 0, "device": "cpu", "versions": {"torch": "2"}}
    new = {**old, "threads": {"intra_op": 2, "interop": 2}}
    assert results.compatible(old, new) and results.compatible(new, {**old, "threads": {"intra_op": 1, "interop": 2}})
    assert not results.compatible(old, {**old, "seed": 1})      # (the basis still compares the rest)
