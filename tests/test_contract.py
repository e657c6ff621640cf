"""Contract tests every registered regularizer gets for free (timm-style):
finite loss, gradients reach the encoder, state round-trips through a
checkpoint, auxiliary steps touch only their own parameters, and the step is
capture-safe (never reads a tensor on the host)."""
from __future__ import annotations

import contextlib
import io

import pytest
import torch

from wae_bench.run import checkpoint
from wae_bench.registry import REGULARIZERS
from tests.helpers import batch, make_trainer

NAMES = REGULARIZERS.names()


@pytest.mark.parametrize("name", NAMES)
def test_step_is_finite_and_updates_the_autoencoder(name):
    tr = make_trainer(name)
    before = [p.detach().clone() for p in tr.ae.encoder.parameters()]
    for s in range(3):
        tr.step(batch(seed=s))
    means, bad = tr.meter.read()
    assert not bad, f"non-finite terms {bad}"
    assert all(torch.isfinite(torch.tensor(v)) for v in means.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.ae.encoder.parameters()))


@pytest.mark.parametrize("name", NAMES)
def test_penalty_is_scalar_and_gradient_reaches_encoder(name):
    tr = make_trainer(name)
    x = batch()
    z, x_hat = tr.ae(x, tr.reg.constrain)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    for k, v in out.terms.items():
        assert v.dim() == 0, k
    loss = ((x_hat - x) ** 2).sum() + out.loss
    loss.backward()
    grads = [p.grad for p in tr.ae.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_a_checkpoint(name, tmp_path):
    a = make_trainer(name, seed=0)
    for s in range(2):
        a.step(batch(seed=s))
    checkpoint.save(tmp_path / "c.pt", a.state_dict())
    state = checkpoint.load(tmp_path / "c.pt")           # weights_only
    b = make_trainer(name, seed=123)                      # different init and generator
    b.load_state_dict(state)
    a.step(batch(seed=9))
    b.step(batch(seed=9))
    # (bit-exact resume is tests/test_resume.py's job, in one thread; here
    # multi-threaded CPU kernels may differ in the last bits)
    for sa, sb in ((a.ae.state_dict(), b.ae.state_dict()), (a.reg.state_dict(), b.reg.state_dict())):
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.allclose(sa[k].double(), sb[k].double(), rtol=1e-5, atol=1e-7), k


@pytest.mark.parametrize("name", NAMES)
def test_step_draws_only_from_the_runs_generator(name):
    """Nothing in a step draws from the process-global generators (torch,
    Python, NumPy): every draw comes from ``ctx.generator``, so runs sharing a
    process draw what each would alone.  A plugin that draws (prior samples,
    directions, probes) moves the run's generator."""
    import random

    import numpy as np

    tr = make_trainer(name, {"grad": "frobenius"} if name == "rae-gp" else None)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    g0 = tr.ctx.generator.get_state()
    for s in range(2):
        tr.step(batch(seed=s))
    assert torch.equal(torch.get_rng_state(), before[0]), "the step drew from torch's global generator"
    assert random.getstate() == before[1], "the step drew from Python's random"
    assert np.array_equal(np.random.get_state()[1], before[2]), "the step drew from NumPy's global generator"
    draws = name in ("wae-mmd", "wae-gan", "swae", "sinkhorn", "rae-gp")
    assert torch.equal(tr.ctx.generator.get_state(), g0) != draws


@pytest.mark.parametrize("name", NAMES)
def test_aux_step_touches_only_its_own_parameters(name):
    tr = make_trainer(name)
    if tr.aux_opt is None:
        pytest.skip(f"{name} has no auxiliary optimiser")
    aux_params = {id(p) for g in tr.aux_opt.param_groups for p in g["params"]}
    ae_params = {id(p) for g in tr.opt.param_groups for p in g["params"]}
    assert aux_params and not aux_params & ae_params
    own = [p for p in tr.reg.parameters() if id(p) in aux_params]
    ae_before = [p.detach().clone() for p in tr.ae.parameters()]
    aux_before = [p.detach().clone() for p in own]
    z, _ = tr.ae(batch(), tr.reg.constrain)
    tr.aux_opt.zero_grad()
    tr.reg.aux_loss(z.detach(), tr.ctx).backward()
    tr.aux_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ae_before, tr.ae.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(aux_before, own))


_ALLOWED = [False]


@contextlib.contextmanager
def no_host_reads():
    """Make every host read of a tensor value raise (what breaks CUDA graphs);
    reads inside :func:`allowed` (torch's own non-capturable Adam on CPU) pass."""
    saved = {n: getattr(torch.Tensor, n) for n in ("item", "tolist", "__bool__", "__float__", "__int__")}

    def guard(name):
        def f(self, *a, **k):
            if not _ALLOWED[0]:
                raise AssertionError(f"Tensor.{name} inside the training step (not capture-safe)")
            return saved[name](self, *a, **k)
        return f
    try:
        for n in saved:
            setattr(torch.Tensor, n, guard(n))
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def allowed(fn):
    def call(*a, **k):
        _ALLOWED[0] = True
        try:
            return fn(*a, **k)
        finally:
            _ALLOWED[0] = False
    return call


@pytest.mark.parametrize("name", NAMES)
def test_step_is_capture_safe(name):
    """Everything the plugin and trainer run in a step, bar torch's CPU Adam
    (capturable on the GPU), must not read tensors on the host."""
    tr = make_trainer(name)
    tr.step(batch(seed=0))            # first step may size lazily-built state
    for opt in filter(None, (tr.opt, tr.aux_opt)):
        opt.step = allowed(opt.step)
    with no_host_reads():
        tr.step(batch(seed=1))


@pytest.mark.parametrize("name", NAMES)
def test_listed_with_paper_and_defaults(name):
    cls = REGULARIZERS.get(name)
    assert cls.paper and cls.__module__ and (cls.__doc__ or "").strip()
    assert (type(cls.Config()).__doc__ or "")
    mod = __import__(cls.__module__, fromlist=["_"])
    assert (mod.__doc__ or "").strip(), "module docstring must cite the paper"
