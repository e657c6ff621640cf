"""What a measurement records about where it was made: the CPU thread count
of a run and of its evaluation (a CPU FID depends on it), and the commit of
the benchmark scripts' JSON files."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import torch

from tests.helpers import run_cli
from tests.test_benchmarks import load
from wae_bench import results
from wae_bench.run import directory


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


def test_a_results_file_never_shows_a_score_under_another_thread_count():
    """A results.json from before the thread count was recorded (no key)
    keeps its scores side by side with a new evaluation's; one scored with
    other counts (a CPU FID moves by ~0.1 with them) goes to the history, so
    no column is shown under a count it was not computed with."""
    old = {"features": "inception", "seed": 0, "device": "cpu", "versions": {"torch": "2"}}
    two, one = ({**old, "threads": {"intra_op": n, "interop": 2}} for n in (2, 1))
    assert results.compatible(old, two) and results.compatible(two, dict(two))
    assert not results.compatible(two, one)
    assert not results.compatible(old, {**old, "seed": 1})      # (the basis still compares the rest)
    a = {"scores": {"samples": {"fid": 180.84}}, "protocol": two}
    merged = results.merge(a, {"scores": {"rec": {"fid": 150.0}}, "protocol": one})
    assert merged["scores"] == {"rec": {"fid": 150.0}} and merged["protocol"]["threads"]["intra_op"] == 1
    assert merged["history"][0]["scores"] == {"samples": {"fid": 180.84}}
    side = results.merge(a, {"scores": {"rec": {"fid": 150.0}}, "protocol": dict(two)})
    assert set(side["scores"]) == {"samples", "rec"} and "history" not in side


ROOT = Path(__file__).resolve().parents[1]


def checkout_commit() -> str | None:
    """``git rev-parse --short HEAD`` of this checkout (None outside one)."""
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def assert_is_the_commit(commit: str) -> None:
    head = checkout_commit()
    if head is None or os.environ.get(directory.SOURCE_ENV):
        assert commit == (os.environ.get(directory.SOURCE_ENV) or "unknown")
    else:
        assert commit in (head, f"{head}-dirty"), commit


def test_the_benchmark_scripts_record_the_commit_they_measured(tmp_path, monkeypatch):
    """speed.py (and throughput.py, through its provenance) and
    fid_reference.py write ``commit`` into their JSON; ``unknown`` outside a
    git checkout of wae-bench."""
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    speed = load("speed")
    speed.main(["--arch", "tiny", "--image-size", "8", "--batch-size", "8", "--latent-dim", "6", "--K", "32",
                "--regs", "ae", "--steps", "1", "--repeats", "1", "--warmup", "1", "--out", str(tmp_path / "s.json")])
    assert_is_the_commit(json.loads((tmp_path / "s.json").read_text())["commit"])
    fid = load("fid_reference")
    fid.main(["--dataset", "digits", "--data-root", str(tmp_path), "--features", "standin", "--limit", "32",
              "--batch-size", "32", "--device", "cpu", "--out", str(tmp_path / "f.json")])
    assert_is_the_commit(json.loads((tmp_path / "f.json").read_text())["commit"])
    monkeypatch.delenv(directory.SOURCE_ENV, raising=False)
    monkeypatch.setattr(directory, "is_own_checkout", lambda top: False)     # (a wheel, a copy of the package)
    assert speed.provenance(torch.device("cpu"))["commit"] == "unknown"


def test_the_h200_profile_split_is_what_profile_groups_gives():
    """benchmarks/results/h200-2026-11-28/README.md's "Where the a1 MoCA
    step's time goes" table and its a2 sentence: benchmarks/profile_groups.py
    over the committed profiles, rounded as the page rounds."""
    pg, folder = load("profile_groups"), ROOT / "benchmarks/results/h200-2026-11-28"
    page = (folder / "README.md").read_text()
    a1 = pg.groups((folder / "profile-a1-graph-bf16-cl.txt").read_text())
    rows = dict(re.findall(r"^\| (.+?) \| (\d+\.\d\d) \|$", page.split("step's time goes")[1].split("##")[0], re.M))
    assert rows == {g: f"{ms:.2f}" for g, ms in a1.items() if g != "busy"}
    a2 = pg.groups((folder / "profile-a2-graph-bf16-cl.txt").read_text())
    assert (f"On a2, batch norm takes {a2['batch norm']:.2f} of {a2['busy']:.2f} ms, and the convolutions "
            f"{a2['convolutions (cuDNN)']:.2f}.") in " ".join(page.split())


KEPT = ("readme-run/results.json", "readme-run/threads-1/results.json", "readme-run/intel-xeon/results.json")


def test_the_readme_runs_fid_the_docs_quote_is_the_committed_ones():
    """Every "NNN.NN (`[benchmarks/results/]readme-run/.../results.json`" in
    the docs is that file's FID rounded to 2 decimals (and readme-run's
    ": 180.8389..." its exact value); each kept file is quoted on every page."""
    fid = {k: json.loads((ROOT / "benchmarks/results" / k).read_text())["scores"]["samples"]["fid"] for k in KEPT}
    pages = ("docs/benchmarks.md", "benchmarks/results/README.md", "benchmarks/results/readme-run/README.md")
    for page in pages:
        text = " ".join((ROOT / page).read_text().split())
        quoted = re.findall(r"(\d+\.\d\d) \(`(?:benchmarks/results/)?(readme-run/(?:threads-1/|intel-xeon/)?results\.json)`", text)
        assert {k for _, k in quoted} == set(KEPT), (page, quoted)
        assert all(v == f"{fid[k]:.2f}" for v, k in quoted), (page, quoted, fid)
    exact = re.findall(r"`(readme-run/(?:threads-1/|intel-xeon/)?results\.json)`: ([\d.]+)\)",
                       (ROOT / "benchmarks/results/readme-run/README.md").read_text())
    assert sorted(exact) == sorted((k, repr(v)) for k, v in fid.items())
    config = json.loads((ROOT / "benchmarks/results/readme-run/config.json").read_text())
    assert config["threads"]["intra_op"] == 2 and json.loads(
        (ROOT / "benchmarks/results/readme-run/threads-1/config.json").read_text())["threads"]["intra_op"] == 1
