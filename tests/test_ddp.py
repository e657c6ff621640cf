"""DDP on CPU with the gloo backend and 2 processes: the model, the momentum
encoder and the queue stay identical on both ranks, the queue holds both
ranks' keys in order, and a penalty on the gathered batch equals the
single-process one (value and gradient)."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as td
import torch.multiprocessing as mp
import torch.nn.functional as F

from wae_bench.step.distributed import Dist, gather_with_grad, leave_process_group

# B: tests/test_compile.py's batch, so that the compiled nets' kernels are its (the session's Inductor cache)
W, B, STEPS = 2, 8, 3
K = 53   # MoCA's queue: no multiple of the global batch, longer than the STEPS batches it takes in (step 0's keys stay)


def _init(rank, store):
    td.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=W)
    return Dist(rank=rank, world_size=W)


def _train(dist, rank, name="moca", reg_cfg=None, compile_mode="none"):
    """Train plugin ``name`` for STEPS steps on this rank; its state."""
    from tests.helpers import make_trainer
    from wae_bench.data import Batcher

    # same seed -> same init; compiled before the DDP wrap; then prior samples differ by rank
    tr = make_trainer(name, reg_cfg, B=B, T=STEPS, lr=1e-2, compile=compile_mode, dist=dist)
    imgs = (torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    batcher = Batcher(imgs, B, seed=0, rank=rank, world_size=W)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    res = {}
    if name == "moca":
        with torch.no_grad():
            res["k0"] = F.normalize(tr.reg.enc_k(batcher.batch(0)), dim=1)
    for s in range(STEPS):
        tr.step(batcher.batch(s))
    res.update(ae=flat(tr.ae), reg=flat(tr.reg), prior=tr.reg.sample_prior(4, generator=tr.ctx.generator))
    if name == "moca":
        res.update(enc_k=flat(tr.reg.enc_k), queue=tr.reg.queue.clone(), ptr=tr.reg.ptr.clone())
    return res


def _gather_part(rank):
    torch.manual_seed(0)
    z_all = torch.randn(W * B, 5)
    z = z_all[rank * B:(rank + 1) * B].clone().requires_grad_(True)
    zg = gather_with_grad(z)
    energy = torch.cdist(zg, zg).pow(2).mean()       # a sample-based penalty of the whole batch
    energy.backward()
    return {"value": energy.detach(), "grad": z.grad.clone(), "zg": zg.detach()}


# The parts one pair of processes runs in turn (one spawn: each pays Python's
# and torch's start-up): name -> what a rank returns.  Compiled last, so that
# Dynamo's state is no part of the eager runs.
PARTS = {
    "moca": lambda rank, dist: _train(dist, rank, "moca", {"K": K, "m0": 0.9}),
    "wae-gan": lambda rank, dist: _train(dist, rank, "wae-gan"),
    "gather": lambda rank, dist: _gather_part(rank),
    "moca-compiled": lambda rank, dist: _train(dist, rank, "moca", {"K": K, "m0": 0.9}, compile_mode="default"),
}


def _parts_worker(rank, store, out):
    """Every part of :data:`PARTS` on this rank, in one process group (a part
    that raises fails the spawn, with its traceback: a rank left waiting in a
    collective would hang)."""
    torch.set_num_threads(1)      # two ranks on two cores; tests/test_compile.py's thread count (its kernels)
    dist = _init(rank, store)
    res = {name: part(rank, dist) for name, part in PARTS.items()}
    torch.save(res, f"{out}/rank{rank}.pt")
    leave_process_group()


def _spawn(fn, tmp_path):
    mp.spawn(fn, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=W, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(W)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Both ranks' results of every part of :data:`PARTS`, from one spawn."""
    return _spawn(_parts_worker, tmp_path_factory.mktemp("ddp"))


def _part(ranks, name):
    return tuple(r[name] for r in ranks)


def test_moca_state_identical_on_ranks_and_queue_in_rank_order(ranks):
    r0, r1 = _part(ranks, "moca")
    # (batch-norm running statistics: DDP copies rank 0's to every rank at each
    # forward; only rank 0's are ever saved)
    for key in ("ae", "enc_k", "queue", "ptr"):
        assert torch.equal(r0[key], r1[key]), key
    assert int(r0["ptr"]) == (STEPS * W * B) % K
    # step 0 enqueued the global batch: rank 0's keys, then rank 1's
    assert torch.allclose(r0["queue"][:B], r0["k0"], atol=1e-6)
    assert torch.allclose(r0["queue"][B:2 * B], r1["k0"], atol=1e-6)
    assert not torch.allclose(r0["k0"], r1["k0"])


def test_compiled_nets_under_ddp_keep_the_ranks_identical(ranks):
    """``compile`` with DDP: the gradient all-reduce still reaches every
    parameter of the compiled nets, so both ranks hold the same model, key
    encoder and queue after training (finite, the queue pointer where it should be)."""
    r0, r1 = _part(ranks, "moca-compiled")
    for key in ("ae", "enc_k", "queue", "ptr"):
        assert torch.equal(r0[key], r1[key]), key
    assert torch.isfinite(r0["ae"]).all() and int(r0["ptr"]) == (STEPS * W * B) % K


def test_wae_gan_discriminator_synchronised_across_ranks(ranks):
    r0, r1 = _part(ranks, "wae-gan")
    assert not torch.equal(r0["prior"], r1["prior"])          # own prior samples per rank ...
    assert torch.equal(r0["ae"], r1["ae"])
    assert torch.equal(r0["reg"], r1["reg"])                  # ... yet one discriminator


def test_gathered_penalty_equals_single_process_value_and_gradient(ranks):
    r0, r1 = _part(ranks, "gather")
    torch.manual_seed(0)
    z_all = torch.randn(W * B, 5, requires_grad=True)
    energy = torch.cdist(z_all, z_all).pow(2).mean()
    energy.backward()
    assert torch.equal(r0["zg"], z_all.detach()) and torch.equal(r1["zg"], z_all.detach())
    assert torch.allclose(r0["value"], energy.detach()) and torch.allclose(r1["value"], energy.detach())
    # every rank computes the same penalty, so all_gather's backward sums W
    # copies: rank r's slice gets W x the single-process gradient, and DDP's
    # 1/W average of the parameter gradients then gives exactly dE/dθ.
    assert torch.allclose(r0["grad"], W * z_all.grad[:B], atol=1e-5)
    assert torch.allclose(r1["grad"], W * z_all.grad[B:], atol=1e-5)


def _eval_worker(rank, run_dir, port):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(W), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from wae_bench.evaluate import evaluate_run

    evaluate_run(run_dir, fid_samples=30, what=("samples", "rec"), metrics=("fid",), features="standin",
                 batch_size=7, quiet=True, device="cpu")
    leave_process_group()


def test_evaluation_does_not_depend_on_the_number_of_processes(tmp_path):
    import json
    import socket

    from wae_bench.evaluate import evaluate_run
    from wae_bench.run.train import train_run

    run = train_run({"max_steps": 4, "latent_dim": 8, "expost": []}, tmp_path / "run", quiet=True)
    one = evaluate_run(run, fid_samples=30, what=("samples", "rec"), metrics=("fid",), features="standin",
                       batch_size=11, quiet=True, device="cpu")
    (run / "results.json").unlink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_eval_worker, args=(str(run), port), nprocs=W, join=True)
    two = json.loads((run / "results.json").read_text())
    assert two["protocol"]["processes"] == 2 and one["protocol"]["processes"] == 1
    for col in ("samples", "rec"):
        assert two["scores"][col]["fid"] == pytest.approx(one["scores"][col]["fid"], rel=1e-9, abs=1e-9)


def test_torchrun_cli_trains_one_model_writes_one_run_directory_and_scores_it(tmp_path):
    import json
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "wae_bench", "run",
           "--reg", "moca", "--quiet", "--batch-size", "16", "--set", "max_steps=6", "--set", "latent_dim=8",
           "--set", "reg.K=64", "--set", "expost=[]", "--features", "standin", "--fid-samples", "40",
           "--out", "run"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]          # rank 1 wrote nothing elsewhere
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["global_batch_size"] == 32 and cfg["total_steps"] == 6
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["protocol"]["processes"] == 2 and res["scores"]["samples"]["fid"] > 0
    assert r.stdout.count("run directory:") == 1
