"""docs/multi-gpu.md walked as a researcher who trains with several
processes: what a torchrun launch says when something is wrong (once, not
once a process; a rank's own failure under its number; the other ranks
without an internal error), and the launches that are no torchrun launch
(``WORLD_SIZE`` alone) or ask for a device torchrun does not give."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wae_bench.errors import WaeError
from wae_bench.run.build import pick_device
from wae_bench.step.distributed import Dist

TINY = ["--dataset", "digits", "--arch", "tiny", "--set", "image_size=8", "--set", "latent_dim=8",
        "--batch-size", "16", "--no-eval", "--quiet"]

# Raises on rank 1 at its third step, as a plugin with a bug there would.
FAILS_ON_RANK_1 = '''
from dataclasses import dataclass
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut, Regularizer, RegularizerConfig

@REGULARIZERS.register("rank1boom")
class Boom(Regularizer):
    """Pulls the latents to 0; raises on rank 1 at step 2."""
    name = "rank1boom"
    paper = "none"
    prior = "gaussian"

    def penalty(self, x, z, ae, ctx):
        if ctx.rank == 1 and int(ctx.t) == 2:
            raise RuntimeError("boom on one rank")
        p = z.pow(2).sum(1).mean()
        return RegOut(loss=self.cfg.lambda_ * p, terms={"l2": p})
'''


def _torchrun(tmp_path, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "wae_bench",
           *args]
    return subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)


def test_world_size_without_torchrun_is_one_line_naming_torchrun_and_unset(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(WaeError, match=r"WORLD_SIZE=2 is set but RANK, MASTER_ADDR, MASTER_PORT are not.*"
                                       r"torchrun --nproc_per_node 2 .*unset WORLD_SIZE"):
        Dist.from_env()


def test_a_device_torchrun_does_not_give_is_refused_not_ignored():
    dist = Dist(rank=0, world_size=2, device=torch.device("cpu"))
    assert pick_device("auto", dist) == pick_device("cpu", dist) == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(WaeError, match=rf"--device {name} under torchrun, .*here cpu.*drop it"):
            pick_device(name, dist)


def test_an_indexed_device_under_torchrun_is_refused_on_every_rank_alike():
    # cuda:0 is rank 0's own device but not rank 1's: both refuse it, so the error is one, said once
    for rank in (0, 1):
        dist = Dist(rank=rank, world_size=2, device=torch.device(f"cuda:{rank}"))
        assert pick_device("auto", dist) == pick_device("cuda", dist) == torch.device(f"cuda:{rank}")
        with pytest.raises(WaeError, match=rf"--device cuda:0 under torchrun, .*here cuda:{rank}.*drop it"):
            pick_device("cuda:0", dist)


def test_a_resume_under_torchrun_does_not_inherit_the_runs_indexed_device(tmp_path):
    # a run trained alone on cuda:0, resumed under torchrun without --device: each process takes its own
    import json

    from wae_bench import train_run
    from wae_bench.run.directory import RunDir, plan_for
    out = tmp_path / "run"
    train_run({"dataset": "digits", "arch": "tiny", "image_size": 8, "latent_dim": 8, "batch_size": 16,
               "max_steps": 1, "device": "cpu"}, out, quiet=True)
    record = json.loads((out / "config.json").read_text())
    record["config"]["device"] = "cuda:0"
    (out / "config.json").write_text(json.dumps(record))
    run = RunDir(out)
    assert plan_for({}, run, True, False, world_size=2).cfg.device == "auto"
    assert plan_for({}, run, True, False, world_size=1).cfg.device == "cuda:0"   # alone: where it ran
    assert plan_for({"device": "cuda"}, run, True, False, world_size=2).cfg.device == "cuda"


def test_an_error_outside_torchrun_is_always_said():
    from wae_bench.step.distributed import says_error

    assert says_error("anything")


def test_a_setting_every_rank_refuses_is_said_once(tmp_path):
    r = _torchrun(tmp_path, "run", "--reg", "moca", *TINY, "--set", "reg.K=20", "--out", "run")
    assert r.returncode != 0
    assert r.stderr.count("error: K (20) must be >= the global batch size (32)") == 1, r.stderr[-3000:]
    assert "process 1 of 2" not in r.stderr


def test_one_rank_failing_is_said_by_it_and_the_others_say_why_they_end(tmp_path):
    (tmp_path / "boom.py").write_text(FAILS_ON_RANK_1)
    r = _torchrun(tmp_path, "--plugin", "boom.py", "run", "--reg", "rank1boom", *TINY, "--set", "max_steps=6",
                  "--out", "run")
    assert r.returncode != 0
    assert ("error: process 1 of 2: plugin 'rank1boom' raised RuntimeError: boom on one rank" in r.stderr), \
        r.stderr[-3000:]
    assert "internal error" not in r.stderr


@pytest.mark.parametrize("command, instead", [
    (["bench", "benchmarks/smoke.toml"], "--devices cuda:0,cuda:1"),
    (["compare", "moca", "ae"], "run it in one process"),
])
def test_a_bench_or_compare_under_torchrun_is_refused_once_before_anything_runs(tmp_path, monkeypatch, capsys,
                                                                                command, instead):
    """Each process of the launch would run the whole grid into one folder (the
    second was refused as 'in use by wae-bench bench (pid N)', rank 0's pid)."""
    from tests.helpers import run_cli

    monkeypatch.chdir(tmp_path)
    spec = Path(__file__).resolve().parents[1] / command[1] if command[0] == "bench" else None
    args = [command[0], str(spec)] if spec else command
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, out, err = run_cli(args, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: wae-bench {command[0]} is not a torchrun command: each of its 2 processes") and \
        instead in err
    monkeypatch.setenv("RANK", "1")                 # the other processes: the same status, silently
    assert run_cli(args, capsys) == (2, "", "")
    assert not (tmp_path / "runs").exists()


def test_eval_under_torchrun_says_where_its_results_are_once(tmp_path, monkeypatch, capsys):
    """Every process scores its share of the samples; the results line was printed by each."""
    from tests.helpers import run_cli

    monkeypatch.chdir(tmp_path)
    assert run_cli(["run", "--reg", "ae", *TINY, "--set", "max_steps=4", "--out", "run"], capsys)[0] == 0
    r = _torchrun(tmp_path, "eval", "run", "--features", "standin", "--fid-samples", "32", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("results: run/results.json") == 1, r.stdout


@pytest.mark.parametrize("args, said", [
    (["run", "--bogus"], "error: no such option"),
    (["run", "--epochs", "many"], "error: invalid value for '--epochs'"),
])
def test_a_bad_option_under_torchrun_is_said_by_rank_0_alone(monkeypatch, capsys, args, said):
    """Every process parses the same arguments: the usage error was printed once a process."""
    from tests.helpers import run_cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, out, err = run_cli(args, capsys)
    assert code == 2 and err.lower().startswith(said.lower()) and err.count("\n") == 1, err
    monkeypatch.setenv("RANK", "1")
    assert run_cli(args, capsys) == (2, "", "")
