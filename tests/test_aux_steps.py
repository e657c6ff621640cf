"""Several auxiliary steps per iteration (``Regularizer.aux_steps``, WGAN's
n_critic) and an ``aux_loss()`` that logs its parts (a RegOut): the trainer
steps the plugin's optimiser ``aux_steps`` times per iteration, each on a
fresh ``aux_loss`` of the same latents, as a hand-written loop does; under
DDP the ranks stay identical; WAE-GAN (one step, WAE Algorithm 1) logs its
discriminator's two cross-entropies; a checkpoint whose metric window
predates a plugin's new terms resumes.  (Exact resume with ``aux_steps`` > 1
and a RegOut aux_loss: tests/test_resume.py's probe plugin.)"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import LinearCritic, assert_trained_alike, batch, cuda_pair, make_trainer, pull_plugin
from tests.test_ddp import W, _init, _spawn
from wae_bench.losses import reconstruction
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut

pytestmark = pytest.mark.usefixtures("single_thread")


class NCritic(LinearCritic, pull_plugin().Pull):
    """A WGAN-style latent critic taking three steps per iteration; its
    aux_loss logs the critic's gap."""

    name = "ncritic3"
    aux_steps = 3

    def aux_loss(self, z, ctx):
        gap = self.f(z).mean() - self.f(self.sample_prior(len(z), z.device, ctx.generator)).mean()
        return RegOut(gap, {"gap": gap})

    def penalty(self, x, z, ae, ctx):
        frozen = {n: p.detach() for n, p in self.f.named_parameters()}
        critic = -torch.func.functional_call(self.f, frozen, (z,)).mean()
        return RegOut(critic, {"critic": critic})


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    monkeypatch.setitem(REGULARIZERS._items, NCritic.name, NCritic)


def test_aux_steps_steps_the_plugins_optimiser_that_many_times_as_a_hand_written_loop(plugins):
    a, b = make_trainer("ncritic3", seed=0), make_trainer("ncritic3", seed=0)
    calls = []
    real = a.aux_opt.step
    a.aux_opt.step = lambda *args, **kw: (calls.append(int(a.t)), real(*args, **kw))[1]
    gaps = []
    for s in range(2):
        x = batch(seed=s)
        a.step(x)
        # the same iteration by hand: 3 critic steps on the detached latents, then the autoencoder's
        z, x_hat = b.ae(x, b.reg.constrain)
        for _ in range(3):
            b.aux_opt.zero_grad(set_to_none=True)
            aux = b.reg.aux_loss(z.detach(), b.ctx)
            aux.loss.backward()
            b.aux_opt.step()
            gaps.append(aux.loss.detach())
        out = b.reg.penalty(x, z, b.ae, b.ctx)
        b.opt.zero_grad(set_to_none=True)
        (reconstruction(x_hat, x) + out.loss).backward()
        b.opt.step()
    assert calls == [0, 0, 0, 1, 1, 1]
    assert len({g.item() for g in gaps}) == 6                        # fresh prior draws each step
    assert torch.equal(a.ctx.generator.get_state(), b.ctx.generator.get_state())
    for (k, p), q in zip([*a.ae.named_parameters(), *a.reg.named_parameters()],
                         [*b.ae.parameters(), *b.reg.parameters()]):
        assert torch.allclose(p, q, atol=1e-6, rtol=1e-5), k
    assert [int(s["step"]) for s in a.aux_opt.state.values()] == [6, 6]
    means, _ = a.meter.read()                                        # aux and its part: means over all 6 steps
    want = torch.stack(gaps).mean().item()
    assert means["aux"] == pytest.approx(want, rel=1e-5) and means["ncritic3/gap"] == pytest.approx(want, rel=1e-5)


@pytest.mark.gpu(reason="CUDA graph capture needs a GPU")
def test_aux_steps_are_captured_whole_in_the_cuda_graph(plugins, monkeypatch):
    """Replays of the captured step (its 3 critic steps a static loop) train
    as eager steps do, and draw what they draw from the run's generator."""
    from wae_bench.step.graph import capture_step

    a, b, x = cuda_pair("ncritic3", "fp32", monkeypatch)
    step = capture_step(a, x(0))
    for s in range(5):
        step(x(s))
        b.step(x(s))
    assert torch.equal(a.ctx.generator.get_state(), b.ctx.generator.get_state())
    assert [int(st["step"]) for st in a.aux_opt.state.values()] == [15, 15]
    assert_trained_alike(a, b, 5, 1e-4)


def test_one_aux_step_is_the_default_and_wae_gans(plugins):
    assert pull_plugin().Pull.aux_steps == 1 == make_trainer("wae-gan").aux_steps


def test_wae_gan_logs_its_discriminators_two_cross_entropies():
    """λ × (bce_p + bce_q) is the discriminator's loss (WAE Alg. 1), the
    parts logged unweighted as wae-gan/bce_p and wae-gan/bce_q."""
    tr = make_trainer("wae-gan", {"lambda": 2.0, "d_hidden": 16}, d=6)
    z, _ = tr.ae(batch(), tr.reg.constrain)
    g = torch.Generator().set_state(tr.ctx.generator.get_state())
    out = tr.reg.aux_loss(z.detach(), tr.ctx)
    p = torch.randn(len(z), 6, generator=g) * math.sqrt(2.0)
    lp, lq = tr.reg.D(p).squeeze(1), tr.reg.D(z.detach()).squeeze(1)
    assert out.terms["bce_p"].item() == pytest.approx(F.softplus(-lp).mean().item(), rel=1e-5)   # −mean log D
    assert out.terms["bce_q"].item() == pytest.approx(F.softplus(lq).mean().item(), rel=1e-5)    # −mean log(1 − D)
    assert out.loss.item() == pytest.approx(2.0 * (out.terms["bce_p"] + out.terms["bce_q"]).item(), rel=1e-6)
    tr.step(batch())
    means, _ = tr.meter.read()
    assert {"aux", "wae-gan/bce_p", "wae-gan/bce_q", "wae-gan/gan", "wae-gan/d_q"} <= set(means)
    assert means["aux"] == pytest.approx(2.0 * (means["wae-gan/bce_p"] + means["wae-gan/bce_q"]), rel=1e-5)


def test_a_checkpoint_whose_metric_window_lacks_new_terms_resumes():
    """A WAE-GAN checkpoint written before its discriminator logged
    bce_p / bce_q: the window's sums of the terms both have carry on."""
    a = make_trainer("wae-gan", {"d_hidden": 16})
    for s in range(2):
        a.step(batch(seed=s))
    state = a.state_dict()
    names = state["meter"]["names"]
    sums = dict(zip(names, state["meter"]["sums"].tolist()))          # of steps 1 and 2
    keep = [i for i, n in enumerate(names) if not n.startswith("wae-gan/bce_")]
    state["meter"] = {"names": [names[i] for i in keep], "sums": state["meter"]["sums"][keep],
                      "count": state["meter"]["count"].clone(), "first_bad": state["meter"]["first_bad"][keep]}
    b = make_trainer("wae-gan", {"d_hidden": 16}, seed=3)
    b.load_state_dict(state)
    a.step(batch(seed=2))
    b.step(batch(seed=2))
    (ma, bad_a), (mb, bad_b) = a.meter.read(), b.meter.read()
    assert list(ma) == list(mb) == names and bad_a == bad_b == {}
    for k in ma:   # a new term: its third step's value over the window's 3 steps
        want = (3 * ma[k] - sums[k]) / 3 if k.startswith("wae-gan/bce_") else ma[k]
        assert mb[k] == pytest.approx(want, rel=1e-4, abs=1e-6), k


def _aux_steps_worker(rank, store, out):
    REGULARIZERS.get("wae-gan").aux_steps = 3                   # (in this spawned process only)
    tr = make_trainer("wae-gan", {"d_hidden": 16}, B=4, T=3, lr=1e-2, dist=_init(rank, store))
    for s in range(3):
        tr.step(batch(B=4, seed=10 * rank + s))
    res = {"ae": torch.cat([p.detach().flatten() for p in tr.ae.parameters()]),
           "reg": torch.cat([p.detach().flatten() for p in tr.reg.parameters()]),
           "steps": [int(s["step"]) for s in tr.aux_opt.state.values()]}
    torch.save(res, f"{out}/rank{rank}.pt")
    from wae_bench.step.distributed import leave_process_group

    leave_process_group()


def test_aux_steps_under_ddp_keep_the_discriminator_identical_on_every_rank(tmp_path):
    r0, r1 = _spawn(_aux_steps_worker, tmp_path)
    assert W == 2 and r0["steps"] == r1["steps"] == [9] * len(r0["steps"])
    assert torch.equal(r0["reg"], r1["reg"]) and torch.equal(r0["ae"], r1["ae"])
