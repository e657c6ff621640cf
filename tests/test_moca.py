"""MoCA (regularizers/moca.py) against brute-force re-computations of the
paper's equations, written independently here."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from wae_bench.momentum import cosine_momentum
from wae_bench.regularizer import Context
from tests.helpers import batch, make_trainer


def brute_moco(q, k, queue, tau):
    """L_MoCo by explicit loops over the batch and the K queue entries."""
    B, K = len(q), len(queue)
    neg = 0.0
    for i in range(B):
        s = 0.0
        for j in range(K):
            s += math.exp(float(q[i] @ queue[j]) / tau)
        neg += math.log(s / K)
    pos = sum(float(q[i] @ k[i]) / tau for i in range(B))
    return neg / B, pos / B


def test_loss_matches_brute_force():
    tr = make_trainer("moca", {"K": 13, "tau": 0.5, "lambda": 3.0})
    reg, ae = tr.reg, tr.ae
    x = batch()
    z, _ = ae(x, reg.constrain)
    ctx = Context(t=torch.zeros((), dtype=torch.long), T=10)
    out = reg.penalty(x, z, ae, ctx)
    with torch.no_grad():
        k = F.normalize(reg.enc_k(x), dim=1)
    neg, pos = brute_moco(z.detach().double(), k.double(), reg.queue.double(), 0.5)
    assert out.terms["neg"].item() == pytest.approx(neg, rel=1e-5)
    assert out.terms["pos"].item() == pytest.approx(pos, rel=1e-5)
    assert out.loss.item() == pytest.approx(3.0 * (neg - pos), rel=1e-5)


def test_latent_on_unit_sphere_and_prior_samples_normalised():
    tr = make_trainer("moca")
    z, _ = tr.ae(batch(), tr.reg.constrain)
    assert torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-6)
    s = tr.reg.sample_prior(100, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s.norm(dim=1), torch.ones(100), atol=1e-6)
    # and is uniform-ish: the mean resultant length of 100 sphere samples is small
    assert s.mean(0).norm() < 0.35


@pytest.mark.parametrize("m0", [0.9, 0.99, 0.0])
def test_cosine_momentum_schedule(m0):
    T = 1000
    at = lambda t: cosine_momentum(m0, torch.tensor(t), T).item()  # noqa: E731
    assert at(0) == pytest.approx(m0, abs=1e-7)
    assert at(T) == pytest.approx(1.0, abs=1e-7)
    assert at(T // 2) == pytest.approx(1 - (1 - m0) * (math.cos(math.pi * 0.5) + 1) / 2, abs=1e-6)
    assert at(250) < at(750)


def test_queue_wraps_around_in_order_when_K_not_multiple_of_B():
    B, K = 4, 10
    tr = make_trainer("moca", {"K": K}, B=B)
    reg = tr.reg
    keys_seen = []
    for step in range(3):
        x = batch(B, seed=10 + step)
        with torch.no_grad():
            keys_seen.append(F.normalize(reg.enc_k(x), dim=1).clone())
        tr.step(x)
    # batch 0 -> slots 0..3, batch 1 -> 4..7, batch 2 -> 8, 9, 0, 1
    assert int(reg.ptr) == (3 * B) % K == 2
    assert torch.allclose(reg.queue[4:8], keys_seen[1], atol=1e-6)
    assert torch.allclose(reg.queue[8:10], keys_seen[2][:2], atol=1e-6)
    assert torch.allclose(reg.queue[0:2], keys_seen[2][2:], atol=1e-6)
    assert torch.allclose(reg.queue[2:4], keys_seen[0][2:], atol=1e-6)


def test_ema_update_and_order_of_step():
    """The loss uses the queue as it was before the batch; after the optimiser
    step enc_k = m_t enc_k + (1 - m_t) enc with the *updated* encoder."""
    T = 50
    tr = make_trainer("moca", {"K": 16, "m0": 0.9, "tau": 0.2}, T=T)
    reg, ae = tr.reg, tr.ae
    tr.step(batch(seed=3))                      # t = 0 -> 1
    old_k = [p.detach().clone() for p in reg.enc_k.parameters()]
    queue_before = reg.queue.clone()
    x = batch(seed=4)
    # expected neg term from the queue before this batch and the pre-step encoder
    with torch.no_grad():
        ae.train()
        q = F.normalize(ae.encode(x), dim=1).double()
    tr.meter.read()
    tr.step(x)                                  # t = 1 -> 2
    means, _ = tr.meter.read()
    neg_brute, _ = brute_moco(q, q, queue_before.double(), 0.2)
    assert means["moca/neg"] == pytest.approx(neg_brute, rel=1e-4)
    m = cosine_momentum(0.9, torch.tensor(1), T).item()
    for pk, pk_old, pq in zip(reg.enc_k.parameters(), old_k, ae.encoder.parameters()):
        assert torch.allclose(pk, m * pk_old + (1 - m) * pq.detach(), atol=1e-6)
    assert not any(p.requires_grad for p in reg.enc_k.parameters())


def test_include_current_keys_option():
    """include_current: negatives = the queue after enqueueing this batch's keys."""
    B, K = 4, 6
    tr = make_trainer("moca", {"K": K, "include_current": True, "tau": 1.0}, B=B)
    reg, ae = tr.reg, tr.ae
    x = batch(B)
    z, _ = ae(x, reg.constrain)
    out = reg.penalty(x, z, ae, Context(t=torch.zeros((), dtype=torch.long), T=5))
    with torch.no_grad():
        k = F.normalize(reg.enc_k(x), dim=1)
    expect_queue = torch.cat([k, reg.queue[B:]])     # ptr = 0: slots 0..3 replaced
    neg, _ = brute_moco(z.detach().double(), k.double(), expect_queue.double(), 1.0)
    assert out.terms["neg"].item() == pytest.approx(neg, rel=1e-5)


def _bn_buffers(module):
    return [b.detach().clone() for b in module.buffers() if b.is_floating_point()]


def test_key_bn_train_uses_batch_statistics_so_its_buffers_are_unused():
    """Default key_bn = "train": Enc_k normalises with the batch's statistics,
    so whether the EMA covers its running statistics cannot change a key."""
    tr = make_trainer("moca")
    reg = tr.reg
    tr.step(batch(seed=2))
    x = batch(seed=5)
    with torch.no_grad():
        before = reg.enc_k(x)
        for b in reg.enc_k.buffers():
            if b.is_floating_point():
                b.add_(3.0)
        assert torch.equal(reg.enc_k(x), before)
    assert reg.enc_k.training


def test_key_bn_eval_runs_on_running_statistics_that_follow_the_encoder():
    T = 50
    tr = make_trainer("moca", {"K": 16, "m0": 0.9, "key_bn": "eval"}, T=T)
    reg, ae = tr.reg, tr.ae
    tr.step(batch(seed=3))                      # t = 0 -> 1
    old_k = _bn_buffers(reg.enc_k)
    tr.step(batch(seed=4))                      # t = 1 -> 2; the trainer calls reg.train()
    assert reg.training and not reg.enc_k.training
    m = cosine_momentum(0.9, torch.tensor(1), T).item()
    for bk, bk_old, bq in zip(_bn_buffers(reg.enc_k), old_k, _bn_buffers(ae.encoder)):
        assert torch.allclose(bk, m * bk_old + (1 - m) * bq, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(old_k, _bn_buffers(reg.enc_k)))
    # the keys are the eval-mode forward of a copy of Enc_k (running statistics, not the batch's)
    x = batch(seed=6)
    twin = copy.deepcopy(reg.enc_k).eval()
    with torch.no_grad():
        out = reg.penalty(x, F.normalize(ae.encode(x), dim=1), ae, Context(t=torch.ones((), dtype=torch.long), T=T))
        assert torch.allclose(out.carry["keys"], F.normalize(twin(x), dim=1), atol=1e-6)
        assert not torch.allclose(out.carry["keys"], F.normalize(twin.train()(x), dim=1), atol=1e-3)


def test_step_changes_weights_and_paper_defaults():
    from wae_bench_regularizers.moca import MoCA, MoCAConfig
    from wae_bench.regularizer import Setup

    c = MoCAConfig()
    assert (c.K, c.tau, c.m0, c.lambda_, c.key_bn) == (30000, 0.05, 0.99, 1000.0, "train")
    assert MoCA.defaults(Setup(1, 64, arch="a2", dataset="cifar10"))["lambda_"] == 100.0
    assert MoCA.defaults(Setup(1, 64, arch="a1", dataset="celeba"))["K"] == 60000
    tr = make_trainer("moca")
    before = [p.detach().clone() for p in tr.ae.parameters()]
    tr.step(batch())
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.ae.parameters()))


def test_paper_scale_queue_K30000_B64():
    tr = make_trainer("moca", {"K": 30000}, B=64, d=128)
    for s in range(2):
        tr.step(batch(64, seed=s))
    assert int(tr.reg.ptr) == 128
    means, bad = tr.meter.read()
    assert not bad and math.isfinite(means["loss"])


@pytest.mark.parametrize("bad", [{"K": 4}, {"tau": 0.0}, {"m0": 1.5}, {"lambda": -1.0}, {"key_bn": "batch"}])
def test_bad_values_are_one_line_errors(bad):
    from wae_bench.errors import WaeError

    with pytest.raises(WaeError) as e:
        make_trainer("moca", bad, B=8)
    assert "\n" not in str(e.value)
