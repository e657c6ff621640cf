"""A plugin whose ``penalty()`` breaks the return contract (a Tensor instead
of a ``RegOut``, a loss that is not a scalar, terms that are not scalar
tensors), or whose ``aux_loss()`` does (a loss per sample, bare or in a
``RegOut``, a loss without gradient, a ``RegOut`` with a ``carry`` or terms
that are not scalars, a term name penalty() logs too), is refused in one
line naming the plugin, what it returned and what it must return -- not an
"internal error" -- and the check runs on the first step only, reading no
tensor on the host.  So is a plugin whose own parameters get a gradient in
a step but are in no optimiser, and one whose ``aux_steps`` is not a whole
number >= 1, one that defines no ``penalty()`` at all, and (check-plugin's
``builds``) a class that is no Regularizer subclass.  An ``aux_loss()``
RegOut's terms are logged."""
from __future__ import annotations

import pytest
import torch

import wae_bench.step.trainer
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut, Regularizer
from tests.helpers import LinearCritic, batch, make_trainer
from tests.reliability_helpers import TINY, assert_one_line_error, cli

pytestmark = pytest.mark.usefixtures("single_thread")


class Bare(Regularizer):
    """Returns the penalty tensor itself."""

    name = "bare"

    def penalty(self, x, z, ae, ctx):
        return z.pow(2).mean()


class PerSample(Regularizer):
    """Returns a RegOut whose loss is one value per sample."""

    name = "persample"

    def penalty(self, x, z, ae, ctx):
        return RegOut(z.pow(2).mean(1))


class FloatTerm(Regularizer):
    """Returns a term as a Python float."""

    name = "floatterm"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).mean()
        return RegOut(p, {"pull": 1.0})


class NoPenalty(Regularizer):
    """Defines no penalty() at all."""

    name = "nopenalty"


class Loose(torch.nn.Module):
    """A penalty, but not a Regularizer subclass."""

    def penalty(self, x, z, ae, ctx):
        return RegOut(z.pow(2).mean())


class Critic(LinearCritic, Regularizer):
    """A latent critic with its own optimiser; aux_loss returns what
    ``returns`` says: "loss" or "regout" (right: the loss, or a RegOut of it
    logging its part "gap"), "vector" (a loss per sample), "regout-vector"
    (the same in a RegOut), "detached", "regout-carry" (a RegOut with a
    carry), "regout-terms" (a RegOut with a term per sample), "clash" (a
    RegOut logging the term penalty() logs)."""

    name = "auxcritic"
    returns = "loss"

    def aux_loss(self, z, ctx):
        w = (self.f(z) - self.f(self.sample_prior(len(z), z.device, ctx.generator))).squeeze(1)
        return {"loss": w.mean(), "regout": RegOut(w.mean(), {"gap": w.mean().detach()}), "vector": w,
                "regout-vector": RegOut(w), "detached": w.mean().detach(),
                "regout-carry": RegOut(w.mean(), carry={"w": w}), "regout-terms": RegOut(w.mean(), {"w": w}),
                "clash": RegOut(w.mean(), {"critic": w.mean()})}[self.returns]

    def penalty(self, x, z, ae, ctx):
        frozen = {n: p.detach() for n, p in self.f.named_parameters()}
        critic = -torch.func.functional_call(self.f, frozen, (z,)).mean()
        return RegOut(critic, {"critic": critic})


class CriticInPenalty(Critic):
    """Trains its critic through penalty(): no optimiser ever steps it."""

    name = "critic-inpen"

    def make_aux_optimizer(self):
        return None

    def penalty(self, x, z, ae, ctx):
        return RegOut(-self.f(z).mean() + Critic.aux_loss(self, z.detach(), ctx))


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in (Bare, PerSample, FloatTerm, NoPenalty, Critic, CriticInPenalty):
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


@pytest.mark.parametrize("reg, returned", [
    ("bare", "penalty() returned a tensor of shape ()"),
    ("persample", "penalty() returned RegOut with loss = a tensor of shape (32,)"),
    ("floatterm", "penalty() returned RegOut with terms['pull'] = float"),
    ("nopenalty", "class NoPenalty defines no penalty(self, x, z, ae, ctx), the hook every plugin implements"),
])
def test_a_penalty_returning_the_wrong_thing_is_one_line_naming_the_plugin(plugins, reg, returned, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = cli(["run", "--reg", reg, *TINY, "--batch-size", "32", "--set", "max_steps=3", "--out", out],
                       capsys)
    line = assert_one_line_error(code, err, f"plugin {reg!r}", returned, "RegOut(loss=..., terms={...})"
                                 if reg != "floatterm" else "scalar (0-d) tensor")
    assert "internal error" not in line
    assert not out.exists()   # it failed before its first checkpoint: nothing left behind


def test_a_class_that_is_not_a_regularizer_is_refused_as_that_not_by_its_prior():
    """check-plugin's ``builds`` (check_declared): before, ``prior = None is
    not one of gaussian, sphere``, as if the prior were the slip."""
    from wae_bench.errors import WaeError
    from wae_bench.regularizer import check_declared

    with pytest.raises(WaeError) as e:
        check_declared("loose", Loose)
    assert str(e.value) == ("regularizer 'loose' is class Loose, not a subclass of wae_bench.regularizer.Regularizer; "
                            "subclass it")


def test_the_return_value_is_checked_on_the_first_step_only(monkeypatch):
    seen = []
    real = wae_bench.step.trainer.check_penalty
    monkeypatch.setattr(wae_bench.step.trainer, "check_penalty", lambda name, out: (seen.append(name), real(name, out)))
    tr = make_trainer("moca")
    x = batch()
    for _ in range(3):
        tr.step(x)
    assert seen == ["moca"]


@pytest.mark.parametrize("returns, returned", [
    ("vector", "aux_loss() returned a tensor of shape (32,)"),
    ("regout-vector", "aux_loss() returned RegOut with loss = a tensor of shape (32,)"),
    ("detached", "aux_loss() returned a tensor without gradient"),
    ("regout-carry", "aux_loss() returned RegOut with carry ['w'], which nothing receives"),
    ("regout-terms", "aux_loss() returned RegOut with terms['w'] = a tensor of shape (32,)"),
    ("clash", "aux_loss() and penalty() both log a term 'critic' (one metrics key auxcritic/critic)"),
])
def test_an_aux_loss_returning_the_wrong_thing_is_one_line_naming_the_plugin(plugins, monkeypatch, returns, returned,
                                                                             tmp_path, capsys):
    """Before: torch's AttributeError / RuntimeError at the trainer's
    backward(), called wae-bench's internal error (exit 1)."""
    monkeypatch.setattr(Critic, "returns", returns)
    out = tmp_path / "run"
    code, _, err = cli(["run", "--reg", "auxcritic", *TINY, "--batch-size", "32", "--set", "max_steps=3",
                        "--out", out], capsys)
    fix = {"regout-carry": "hand it on from penalty()", "regout-terms": "scalar (0-d) tensor",
           "clash": "give them different names"}.get(returns, "scalar (0-d) tensor that depends on the parameters "
                                                              "of make_aux_optimizer()")
    line = assert_one_line_error(code, err, "plugin 'auxcritic'", returned, fix)
    assert code == 2 and "internal error" not in line
    assert not out.exists()


@pytest.mark.parametrize("returns", ["loss", "regout"])
def test_an_aux_loss_regout_logs_its_terms_and_a_bare_loss_still_trains(plugins, monkeypatch, returns, tmp_path,
                                                                        capsys):
    """Its terms reach metrics.jsonl under the plugin's prefix (as
    penalty()'s do), beside the auxiliary loss ``aux``."""
    import json

    monkeypatch.setattr(Critic, "returns", returns)
    out = tmp_path / "run"
    code, _, err = cli(["run", "--reg", "auxcritic", *TINY, "--set", "max_steps=4", "--set", "log_every=2",
                        "--out", out], capsys)
    assert code == 0, err
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [2, 4]
    for ln in lines:
        assert {"aux", "auxcritic/critic"} <= set(ln)
        assert ("auxcritic/gap" in ln) == (returns == "regout")
        if returns == "regout":                     # the part logged is the loss here: the same mean
            assert ln["auxcritic/gap"] == pytest.approx(ln["aux"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("steps", [0, -1, 2.0, True, "5"])
def test_an_aux_steps_that_is_not_a_whole_number_of_at_least_1_is_one_line(plugins, monkeypatch, steps, tmp_path,
                                                                           capsys):
    """Refused where the registry loads a plugin (check_declared) and where a
    run builds one (its value, a property reading the Config included)."""
    from wae_bench.errors import WaeError
    from wae_bench.regularizer import check_declared

    want = (f"plugin 'auxcritic': aux_steps = {steps!r} is not a whole number >= 1; set aux_steps to the number "
            f"of auxiliary (critic) steps per iteration, e.g. 1 (WAE Algorithm 1) or 5 (WGAN-GP's n_critic), in "
            f"class Critic")
    monkeypatch.setattr(Critic, "aux_steps", steps)
    with pytest.raises(WaeError) as e:
        check_declared("auxcritic", Critic)
    assert str(e.value) == want
    code, _, err = cli(["run", "--reg", "auxcritic", *TINY, "--set", "max_steps=3", "--out", tmp_path / "r"],
                       capsys)
    assert_one_line_error(code, err, want)
    assert code == 2
    monkeypatch.setattr(Critic, "aux_steps", property(lambda self: steps))
    check_declared("auxcritic", Critic)             # (a property: its value is the built plugin's)
    with pytest.raises(WaeError) as e:
        make_trainer("auxcritic")
    assert str(e.value) == want


def test_a_one_element_aux_loss_is_accepted_as_backward_takes_it():
    """A shape-(1,) loss (``critic(z).mean(0)`` of a Linear(d, 1) critic)
    trained before check_aux existed, so it is not refused (review 2); so
    is the same in a RegOut."""
    from wae_bench.regularizer import BrokenAux, check_aux

    check_aux("p", torch.ones(1, requires_grad=True) * 2)
    check_aux("p", torch.ones((), requires_grad=True) * 2)
    check_aux("p", RegOut(torch.ones(1, requires_grad=True) * 2, {"part": torch.ones(())}))
    with pytest.raises(BrokenAux, match=r"shape \(2,\)"):
        check_aux("p", torch.ones(2, requires_grad=True) * 2)
    with pytest.raises(BrokenAux, match=r"returned RegOut with a loss without gradient"):
        check_aux("p", RegOut(torch.ones(())))


def test_the_aux_loss_is_checked_on_the_first_step_only(plugins, monkeypatch):
    seen = []
    real = wae_bench.step.trainer.check_aux
    monkeypatch.setattr(wae_bench.step.trainer, "check_aux", lambda name, aux: (seen.append(name), real(name, aux)))
    tr = make_trainer("auxcritic")
    for _ in range(3):
        tr.step(batch())
    assert seen == ["auxcritic"]


def test_a_critic_no_optimiser_steps_stops_the_run_in_one_line(plugins, tmp_path, capsys):
    """Before: it trained without a word against a critic that never moved."""
    code, _, err = cli(["run", "--reg", "critic-inpen", *TINY, "--set", "max_steps=3", "--out", tmp_path / "r"],
                       capsys)
    line = assert_one_line_error(code, err, "plugin 'critic-inpen': its parameters f.weight and f.bias get a "
                                            "gradient in a step, but no optimiser steps them",
                                 "return an optimiser over them from make_aux_optimizer()")
    assert code == 2 and "internal error" not in line
