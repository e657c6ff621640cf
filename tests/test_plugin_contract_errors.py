"""A plugin whose ``penalty()`` breaks the return contract (a Tensor instead
of a ``RegOut``, a loss that is not a scalar, terms that are not scalar
tensors) is refused in one line naming the plugin, what it returned and what
it must return -- not an "internal error" -- and the check runs on the first
step only, reading no tensor on the host."""
from __future__ import annotations

import pytest

import wae_bench.step.trainer
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut, Regularizer
from tests.helpers import batch, make_trainer
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


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in (Bare, PerSample, FloatTerm):
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


@pytest.mark.parametrize("reg, returned", [
    ("bare", "penalty() returned a tensor of shape ()"),
    ("persample", "penalty() returned RegOut with loss = a tensor of shape (32,)"),
    ("floatterm", "penalty() returned RegOut with terms['pull'] = float"),
])
def test_a_penalty_returning_the_wrong_thing_is_one_line_naming_the_plugin(plugins, reg, returned, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = cli(["run", "--reg", reg, *TINY, "--batch-size", "32", "--set", "max_steps=3", "--out", out],
                       capsys)
    line = assert_one_line_error(code, err, f"plugin {reg!r}", returned, "RegOut(loss=..., terms={...})"
                                 if reg != "floatterm" else "scalar (0-d) tensor")
    assert "internal error" not in line
    assert not out.exists()   # it failed before its first checkpoint: nothing left behind


def test_the_return_value_is_checked_on_the_first_step_only(monkeypatch):
    seen = []
    real = wae_bench.step.trainer.check_penalty
    monkeypatch.setattr(wae_bench.step.trainer, "check_penalty", lambda name, out: (seen.append(name), real(name, out)))
    tr = make_trainer("moca")
    x = batch()
    for _ in range(3):
        tr.step(x)
    assert seen == ["moca"]
