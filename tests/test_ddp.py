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

from wae_bench.distributed import Dist, gather_with_grad

W, B, STEPS = 2, 4, 3


def _init(rank, store):
    td.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=W)
    return Dist(rank=rank, world_size=W)


def _moca_worker(rank, store, out):
    from tests.helpers import make_trainer
    from wae_bench.data import Batcher

    dist = _init(rank, store)
    tr = make_trainer("moca", {"K": 37, "m0": 0.9}, B=B, T=STEPS)   # same seed -> same init
    from wae_bench.trainer import Trainer
    tr = Trainer(tr.ae, tr.reg, lr=1e-2, total_steps=STEPS, model=dist.wrap(tr.ae), ctx=dist.context(STEPS))
    imgs = (torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    batcher = Batcher(imgs, B, seed=0, rank=rank, world_size=W)
    with torch.no_grad():
        k0 = F.normalize(tr.reg.enc_k(batcher.batch(0)), dim=1)
    for s in range(STEPS):
        tr.step(batcher.batch(s))
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    res = {"ae": flat(tr.ae), "enc_k": flat(tr.reg.enc_k), "queue": tr.reg.queue.clone(),
           "ptr": tr.reg.ptr.clone(), "k0": k0,
           "bn": torch.cat([b.flatten().float() for b in tr.ae.buffers()])}
    torch.save(res, f"{out}/rank{rank}.pt")
    td.destroy_process_group()


def _spawn(fn, tmp_path):
    mp.spawn(fn, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=W, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(W)]


def test_moca_state_identical_on_ranks_and_queue_in_rank_order(tmp_path):
    r0, r1 = _spawn(_moca_worker, tmp_path)
    # (batch-norm running statistics: DDP copies rank 0's to every rank at each
    # forward; only rank 0's are ever saved)
    for key in ("ae", "enc_k", "queue", "ptr"):
        assert torch.equal(r0[key], r1[key]), key
    assert int(r0["ptr"]) == (STEPS * W * B) % 37
    # step 0 enqueued the global batch: rank 0's keys, then rank 1's
    assert torch.allclose(r0["queue"][:B], r0["k0"], atol=1e-6)
    assert torch.allclose(r0["queue"][B:2 * B], r1["k0"], atol=1e-6)
    assert not torch.allclose(r0["k0"], r1["k0"])


def _gather_worker(rank, store, out):
    dist = _init(rank, store)
    torch.manual_seed(0)
    z_all = torch.randn(W * B, 5)
    z = z_all[rank * B:(rank + 1) * B].clone().requires_grad_(True)
    zg = gather_with_grad(z)
    energy = torch.cdist(zg, zg).pow(2).mean()       # a sample-based penalty of the whole batch
    energy.backward()
    grad = z.grad.clone()
    torch.save({"value": energy.detach(), "grad": grad, "zg": zg.detach()}, f"{out}/rank{rank}.pt")
    td.destroy_process_group()


def test_gathered_penalty_equals_single_process_value_and_gradient(tmp_path):
    r0, r1 = _spawn(_gather_worker, tmp_path)
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
    td.destroy_process_group()


def test_evaluation_does_not_depend_on_the_number_of_processes(tmp_path):
    import json
    import socket

    from wae_bench.evaluate import evaluate_run
    from wae_bench.train import train_run

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
