"""The baseline plugins (wae-mmd, wae-gan, swae, sinkhorn, rae-l2, rae-gp,
rae-sn, ae): each penalty against an independent reference with the same
prior draw, WAE-GAN's two optimisers, RAE's decoder regularisers, the
per-dataset defaults, one-line config errors, and a short CLI run of each.
The baselines are every built-in but MoCA (tests/test_moca.py), read from
the entry points, so a new built-in gets the CLI run and must have a row in
the defaults table."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import torch

from tests.helpers import batch, builtin_names, make_trainer, run_cli
from tests.test_missing_deps import needs_test_extra
from wae_bench.run import checkpoint
from wae_bench.config import TrainConfig, from_dict
from wae_bench.errors import WaeError
from wae_bench.run.build import resolve

BASELINES = [n for n in builtin_names() if n != "moca"]


def val(t: torch.Tensor) -> float:
    return float(t.detach())


def forward(tr, seed: int = 0):
    x = batch(seed=seed)
    z, _ = tr.ae(x, tr.reg.constrain)
    return x, z


def replay(tr) -> torch.Generator:
    """A copy of the run's generator as it is now: what the next draws of a
    penalty will be, drawn again for the reference."""
    g = torch.Generator()
    g.set_state(tr.ctx.generator.get_state())
    return g


# -- sample-based penalties, with the prior draw replayed ----------------------------

def test_wae_mmd_penalty_is_lambda_times_the_wae_estimator():
    tr = make_trainer("wae-mmd", {"lambda": 3.0, "sigma_z": 1.5}, d=6)
    x, z = forward(tr)
    g = replay(tr)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    p = (torch.randn(len(z), 6, generator=g) * 1.5).double().numpy()
    zz = z.detach().double().numpy()
    n, ref = len(zz), 0.0
    for s in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0):          # WAE Alg. 2, C = 2·d·σ_z²·s
        C = 2 * 6 * 1.5 ** 2 * s
        k = lambda a, b: C / (C + ((a[:, None] - b[None]) ** 2).sum(-1))
        off = 1 - np.eye(n)
        ref += (k(zz, zz) * off).sum() / (n * (n - 1)) + (k(p, p) * off).sum() / (n * (n - 1)) - 2 * k(zz, p).mean()
    assert val(out.terms["mmd"].detach()) == pytest.approx(ref, rel=1e-4, abs=1e-6)
    assert val(out.loss) == pytest.approx(3.0 * ref, rel=1e-4, abs=1e-6)


def test_swae_penalty_is_lambda_times_pot_sliced_w2():
    tr = make_trainer("swae", {"lambda": 2.0, "L": 13}, d=6)
    x, z = forward(tr)
    g = replay(tr)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    p = torch.randn(len(z), 6, generator=g)                 # prior first, then the directions
    theta = torch.randn(13, 6, generator=g)
    theta = theta / theta.norm(dim=1, keepdim=True)
    sw = needs_test_extra("ot").sliced_wasserstein_distance(z.detach().double().numpy(), p.double().numpy(),
                                                            projections=theta.double().numpy().T, p=2) ** 2
    assert val(out.terms["sw2"]) == pytest.approx(float(sw), rel=1e-4)
    assert val(out.loss) == pytest.approx(2.0 * float(sw), rel=1e-4)


def test_sinkhorn_penalty_uses_the_scaled_blur():
    from geomloss import SamplesLoss

    tr = make_trainer("sinkhorn", {"blur_rel": 0.5, "sigma_z": 2.0, "p": 2}, d=6)
    x, z = forward(tr)
    g = replay(tr)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    p = torch.randn(len(z), 6, generator=g) * 2.0
    blur = 0.5 * 2.0 * math.sqrt(2 * 6)                    # blur_rel · σ_z · √(2d)
    ref = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=tr.reg.cfg.scaling, diameter=tr.reg.diameter,
                      debias=True)(z.detach(), p)
    assert val(out.terms["sinkhorn"]) == pytest.approx(float(ref), rel=1e-3)
    assert val(out.loss) == pytest.approx(500.0 * float(ref), rel=1e-3)


# -- WAE-GAN ---------------------------------------------------------------------------

def test_wae_gan_losses_are_the_papers_cross_entropies():
    tr = make_trainer("wae-gan", {"lambda": 2.0, "d_hidden": 16}, d=6)
    x, z = forward(tr)
    D = tr.reg.D
    g = replay(tr)
    aux = tr.reg.aux_loss(z.detach(), tr.ctx).loss
    p = torch.randn(len(z), 6, generator=g) * math.sqrt(2.0)
    sig = lambda t: torch.sigmoid(D(t).squeeze(1))
    want = -2.0 * (torch.log(sig(p)).mean() + torch.log(1 - sig(z.detach())).mean())
    assert val(aux) == pytest.approx(val(want), rel=1e-5)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    assert val(out.loss) == pytest.approx(val(-2.0 * torch.log(sig(z)).mean()), rel=1e-5)


def test_wae_gan_p_trick_adds_the_prior_log_density():
    tr = make_trainer("wae-gan", {"p_trick": True, "sigma_z": 1.5, "d_hidden": 8}, d=6)
    z = torch.randn(5, 6)
    logp = torch.distributions.Normal(0.0, 1.5).log_prob(z).sum(1)
    assert torch.allclose(tr.reg.logits(z), tr.reg.D(z).squeeze(1) + logp, atol=1e-5)


def test_wae_gan_steps_touch_only_their_own_parameters():
    tr = make_trainer("wae-gan", {"d_hidden": 16}, d=6)
    D = list(tr.reg.D.parameters())
    AE = list(tr.ae.parameters())
    assert {id(p) for g in tr.aux_opt.param_groups for p in g["params"]} == {id(p) for p in D}
    assert not {id(p) for g in tr.opt.param_groups for p in g["params"]} & {id(p) for p in D}
    x, z = forward(tr)
    # the autoencoder's backward leaves D without gradients (penalty through detached D weights)
    d_before = [p.detach().clone() for p in D]
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    tr.opt.zero_grad()
    out.loss.backward()
    assert all(p.grad is None for p in D)
    tr.opt.step()
    assert all(torch.equal(a, b) for a, b in zip(d_before, D))
    # the discriminator step moves D only
    ae_before = [p.detach().clone() for p in AE]
    x, z = forward(tr, seed=1)
    ae_before = [p.detach().clone() for p in AE]
    tr.aux_opt.zero_grad()
    tr.reg.aux_loss(z.detach(), tr.ctx).loss.backward()
    tr.aux_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ae_before, AE))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D))


def test_wae_gan_discriminator_learns_to_separate():
    tr = make_trainer("wae-gan", {"d_hidden": 16, "sigma_z": 1.0}, d=4)
    tr.set_lr(1e-2)                                         # D: 1e-2 × d_lr_scale
    assert tr.aux_opt.param_groups[0]["lr"] == pytest.approx(5e-3)
    zq = torch.randn(64, 4, generator=torch.Generator().manual_seed(0)) * 0.3 + 1.5
    for _ in range(100):
        tr.aux_opt.zero_grad()
        tr.reg.aux_loss(zq, tr.ctx).loss.backward()
        tr.aux_opt.step()
    with torch.no_grad():
        acc = ((tr.reg.logits(torch.randn(500, 4)) > 0).float().mean() + (tr.reg.logits(zq) < 0).float().mean()) / 2
    assert acc > 0.9


def test_wae_gan_checkpoints_both_optimiser_states(tmp_path):
    a = make_trainer("wae-gan", {"d_hidden": 16}, d=6)
    for s in range(3):
        a.step(batch(seed=s))
    checkpoint.save(tmp_path / "c.pt", a.state_dict())
    state = checkpoint.load(tmp_path / "c.pt")
    assert len(state["aux_opt"]["state"]) == len(list(a.reg.D.parameters()))
    assert state["aux_opt"]["param_groups"][0]["lr_scale"] == 0.5
    b = make_trainer("wae-gan", {"d_hidden": 16}, d=6, seed=9)
    b.load_state_dict(state)
    for opt_a, opt_b in ((a.opt, b.opt), (a.aux_opt, b.aux_opt)):
        sa, sb = opt_a.state_dict(), opt_b.state_dict()
        assert sa["param_groups"] == sb["param_groups"]
        for k in sa["state"]:
            for kk, v in sa["state"][k].items():
                assert torch.equal(v, sb["state"][k][kk]), (k, kk)
    assert all(torch.equal(p, q) for p, q in zip(a.reg.D.parameters(), b.reg.D.parameters()))


# -- RAE family ---------------------------------------------------------------------------

def jacobian_rows(dec, z):
    J = torch.autograd.functional.jacobian(dec, z, vectorize=True)   # B×C×H×W×B×d
    B, d = z.shape
    J = J.reshape(B, -1, B, d)
    return torch.stack([J[i, :, i] for i in range(B)])       # B×O×d


@pytest.mark.parametrize("grad", ["code", "sum"])
def test_rae_gp_penalty_matches_the_jacobian(grad):
    """With batch norm in eval mode the examples are independent, so the
    per-example Jacobians give the penalty exactly."""
    tr = make_trainer("rae-gp", {"beta": 0.01, "lambda": 0.5, "grad": grad}, d=6, size=8)
    tr.ae.eval()
    x = batch()[:3]
    z, _ = tr.ae(x, tr.reg.constrain)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    zd = z.detach().double()
    dec = tr.ae.decoder.double()
    Ji = jacobian_rows(dec, zd)
    y = dec(zd).reshape(len(zd), -1)
    w = 2 * y if grad == "code" else torch.ones_like(y)
    gi = torch.einsum("bo,bod->bd", w, Ji)
    gp = val(gi.pow(2).sum(1).mean())
    S, d = 8 * 8, 6
    lat = float(zd.pow(2).mean())
    assert val(out.terms["gp"]) == pytest.approx(gp, rel=1e-4)
    assert val(out.loss) == pytest.approx(S * 0.01 * lat + S * 0.5 * gp / d, rel=1e-4)
    assert val(out.terms["lz"]) == pytest.approx(float(zd.pow(2).sum(1).mean() / 2), rel=1e-5)


def test_rae_gp_second_decoder_pass_leaves_batch_norm_statistics_alone():
    tr = make_trainer("rae-gp", d=6)
    x, z = forward(tr)
    before = {k: v.clone() for k, v in tr.ae.decoder.state_dict().items()}
    tr.reg.penalty(x, z, tr.ae, tr.ctx).loss.backward()
    assert all(torch.equal(before[k], v) for k, v in tr.ae.decoder.state_dict().items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tr.ae.decoder.parameters())


def test_rae_l2_weight_decay_is_the_authors_l2_in_our_units():
    tr = make_trainer("rae-l2", {"lambda": 1e-6, "beta": 0.0}, size=8)
    enc, dec = tr.opt.param_groups
    assert enc["weight_decay"] == 0 and dec["weight_decay"] == pytest.approx(2 * 64 * 1e-6)
    # Adam's coupled weight decay w adds w·θ to the gradient: the gradient of S·λ·||θ||²
    x, z = forward(tr)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    assert val(out.loss) == 0.0


def test_rae_sn_normalises_every_decoder_layer():
    tr = make_trainer("rae-sn", d=6, size=8)
    layers = [m for m in tr.ae.decoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(hasattr(m, "parametrizations") for m in tr.ae.encoder.modules())
    for s in range(5):
        tr.step(batch(seed=s))
    with torch.no_grad():                                 # one power iteration per training forward:
        for _ in range(100):                              # converge on the trained weights
            tr.ae.decoder(torch.randn(4, 6))
    for m in layers:
        W = m.weight.detach()
        W = W.transpose(0, 1) if isinstance(m, torch.nn.ConvTranspose2d) else W
        sigma = torch.linalg.matrix_norm(W.reshape(W.shape[0], -1), ord=2)     # SVD, independent of torch's SN
        assert float(sigma) == pytest.approx(1.0, abs=1e-3)


def test_ae_has_no_penalty():
    tr = make_trainer("ae")
    x, z = forward(tr)
    assert val(tr.reg.penalty(x, z, tr.ae, tr.ctx).loss) == 0.0
    assert tr.reg.decoder_weight_decay() == 0.0 and tr.aux_opt is None


# -- defaults and errors ---------------------------------------------------------------------

DEFAULTS = [
    ("wae-mmd", "digits", {"lambda": 10.0 * 20, "sigma_z": 1.0}),          # paper λ on our scale
    ("wae-mmd", "cifar10", {"lambda": 100.0 * 5, "sigma_z": math.sqrt(2)}),
    ("wae-gan", "celeba", {"lambda": 1.0 * 5, "sigma_z": math.sqrt(2), "d_hidden": 512, "d_layers": 4}),
    ("wae-gan", "mnist", {"lambda": 1.0 * 20, "sigma_z": 1.0}),
    ("swae", "cifar10", {"lambda": 500.0, "L": 50}),
    ("swae", "digits", {"lambda": 200.0}),
    ("sinkhorn", "cifar10", {"lambda": 500.0, "p": 1, "blur_rel": 1.0}),
    ("rae-l2", "cifar10", {"beta": 1e-3, "lambda": 1e-6}),
    ("rae-l2", "celeba", {"beta": 1e-4, "lambda": 1e-7}),
    ("rae-gp", "digits", {"beta": 1e-4, "lambda": 5e-8, "grad": "code"}),
    ("rae-sn", "cifar10", {"beta": 0.03, "lambda": 0.0}),
    ("ae", "celeba", {"lambda": 0.0}),
]


def test_every_baseline_has_a_row_in_the_defaults_table():
    missing = sorted(set(BASELINES) - {name for name, _, _ in DEFAULTS})
    assert not missing, f"add the paper's defaults of {missing} to DEFAULTS in tests/test_baselines.py"


@pytest.mark.parametrize("name, dataset, want", DEFAULTS)
def test_defaults_follow_the_papers(name, dataset, want):
    data_root = {} if dataset == "digits" else {"data_root": "/nonexistent"}
    plan = resolve(from_dict(TrainConfig, {"regularizer": name, "dataset": dataset, **data_root}))
    for k, v in want.items():
        assert plan.cfg.reg[k] == pytest.approx(v) if isinstance(v, float) else plan.cfg.reg[k] == v, k


def test_user_settings_win_over_defaults():
    plan = resolve(from_dict(TrainConfig, {"regularizer": "wae-mmd", "reg": {"lambda": 7.0, "kernel": "rbf"}}))
    assert plan.cfg.reg["lambda"] == 7.0 and plan.cfg.reg["kernel"] == "rbf"


@pytest.mark.parametrize("name, reg, needle", [
    ("rae-sn", {"lambda": 1.0}, "rae-sn has no decoder-penalty weight"),
    ("ae", {"lambda": 1.0}, "ae has no penalty"),
    ("rae-l2", {"beta": -1.0}, "beta must be >= 0"),
    ("rae-gp", {"grad": "hessian"}, "bad value 'hessian' for reg.grad"),
    ("wae-mmd", {"kernel": "laplace"}, "bad value 'laplace' for reg.kernel"),
    ("wae-mmd", {"scales": []}, "scales must be a non-empty list"),
    ("wae-mmd", {"sigma_z": 0}, "sigma_z must be > 0"),
    ("swae", {"L": 0}, "L must be >= 1"),
    ("sinkhorn", {"scaling": 1.0}, "scaling must be in (0, 1)"),
    ("sinkhorn", {"p": 3}, "bad value 3 for reg.p"),
    ("wae-gan", {"d_layers": 0}, "d_hidden and d_layers must be >= 1"),
])
def test_bad_settings_are_one_line_errors(name, reg, needle):
    with pytest.raises(WaeError) as e:
        resolve(from_dict(TrainConfig, {"regularizer": name, "reg": reg}))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_rae_needs_attach_before_the_optimiser_and_the_penalty():
    """The pixel count S (the factor between the authors' units and ours) has
    one source, ``attach``: without it the weight decay and the penalty are
    refused, never computed with S = 0."""
    from wae_bench.registry import REGULARIZERS
    from wae_bench.regularizer import Setup

    for name in ("rae-l2", "rae-gp"):
        cls = REGULARIZERS.get(name)
        reg = cls(cls.Config(), Setup(total_steps=1, batch_size=4))
        with pytest.raises(WaeError, match="attach"):
            reg.decoder_weight_decay() if name == "rae-l2" else reg.penalty(batch(B=4), torch.randn(4, 6), None, None)


# -- end to end through the CLI -----------------------------------------------------------------



SMALL = {"wae-gan": ["--set", "reg.d_hidden=32"]}     # the paper's 4×512 D is covered above; keep this fast


@pytest.mark.parametrize("name", BASELINES)
def test_cli_run_of_each_baseline(name, tmp_path, capsys):
    out = tmp_path / name
    code, _, err = run_cli(["run", "--reg", name, "--out", str(out), "--quiet", "--no-eval", *SMALL.get(name, []),
                            "--set", "image_size=8", "--set", "latent_dim=6", "--set", "batch_size=32",
                            "--set", "max_steps=6", "--set", "log_every=3", "--set", "ckpt_every=6"], capsys)
    assert code == 0, err
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 6]
    for rec in lines:
        assert all(math.isfinite(v) for k, v in rec.items() if isinstance(v, float)), rec
        assert any(k.startswith(f"{name}/") for k in rec), rec
    state = checkpoint.load(checkpoint.checkpoints(out)[-1])
    assert state["finished"] and set(state["expost"]) == {"n", "gmm"}
    assert (out / "samples.png").stat().st_size > 100
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["regularizer"] == name
