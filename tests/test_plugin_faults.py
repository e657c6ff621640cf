"""A plugin's own bug, met by `wae-bench run` / `bench` rather than
`check-plugin`: an exception raised from the plugin's code is the plugin's
(``plugin 'NAME' raised ...; run wae-bench check-plugin NAME``, exit 2), not
an internal error to report, and so is torch.compile's refusal of a double
backward in the plugin's step (naming the fix); the trainer's first step refuses a ``z``
modified in place by ``penalty()`` or ``aux_loss()``, naming the plugin and
the fix, and warns once when a step draws from a process-global generator
(wae_bench/plugin_fault.py, wae_bench/step/first_step.py)."""
from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import LinearCritic, batch, builtin_names, make_trainer, pull_plugin
from tests.reliability_helpers import TINY, assert_one_line_error, cli
from wae_bench.errors import WaeError
from wae_bench.plugin_fault import plugin_fault
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut

pytestmark = pytest.mark.usefixtures("single_thread")

Pull = pull_plugin().Pull


class ShapeBug(Pull):
    """A penalty with a shape bug (adds a 3-vector to B×d latents)."""

    name = "shapebug"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1).mean()
        p = p + (torch.zeros(3) + z).sum()        # the bug
        return RegOut(p, {"l2": p})


class InPlace(Pull):
    """Normalises z in place inside penalty()."""

    name = "inplace"

    def penalty(self, x, z, ae, ctx):
        z = z.div_(z.norm(dim=1, keepdim=True) + 1)
        p = z.pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})


class InPlaceAux(LinearCritic, Pull):
    """A latent discriminator whose aux_loss clamps its (detached) z in place."""

    name = "inplace-aux"

    def aux_loss(self, z, ctx):
        return self.f(z.clamp_(-3, 3)).mean()


class GlobalDraws(Pull):
    """Draws its noise from torch's, NumPy's and Python's global generators."""

    name = "globaldraws"

    def penalty(self, x, z, ae, ctx):
        e = torch.randn(z.shape) + float(np.random.rand()) + random.random()
        p = (z - e).pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})


class GpCritic(LinearCritic, Pull):
    """A WGAN-GP latent critic (Gulrajani et al. 2017): its aux_loss
    differentiates the critic twice (the gradient penalty at interpolates)."""

    name = "gpcritic"

    def aux_loss(self, z, ctx):
        zp = self.sample_prior(len(z), z.device, ctx.generator)
        eps = torch.rand(len(z), 1, device=z.device, generator=ctx.generator)
        zi = (eps * zp + (1 - eps) * z).requires_grad_(True)
        g, = torch.autograd.grad(self.f(zi).sum(), zi, create_graph=True)
        return self.f(z).mean() - self.f(zp).mean() + (g.norm(dim=1) - 1).pow(2).mean()


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in (ShapeBug, InPlace, InPlaceAux, GlobalDraws, GpCritic):
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


def _line_of(cls, text: str) -> int:
    """The line number in this file of ``text`` inside ``cls``."""
    import inspect

    lines, start = inspect.getsourcelines(cls)
    return start + next(i for i, ln in enumerate(lines) if text in ln)


def test_a_plugins_exception_in_run_is_the_plugins_not_an_internal_error(plugins, tmp_path, capsys):
    code, _, err = cli(["run", "--reg", "shapebug", *TINY, "--set", "max_steps=3", "--out", tmp_path / "r"], capsys)
    line = assert_one_line_error(code, err, "plugin 'shapebug' raised RuntimeError: The size of tensor a (3)",
                                 f"(at test_plugin_faults.py:{_line_of(ShapeBug, 'the bug')}); "
                                 f"run wae-bench check-plugin shapebug")
    assert code == 2 and "internal error" not in line and "report it" not in line


def test_a_plugins_exception_in_a_bench_cell_is_recorded_as_the_plugins(plugins, tmp_path, capsys):
    from tests.bench_helpers import tiny_spec

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec("faults", ["shapebug"], [0], 3, [], ckpt_every=0).replace("[reg.moca]\nK = 64", ""))
    code, _, err = cli(["bench", spec, "--out", tmp_path / "res", "--quiet", "--no-table"], capsys)
    assert code == 2 and "1 cell(s) failed (shapebug-tiny-digits-s0)" in err
    want = f"plugin 'shapebug' raised RuntimeError: The size of tensor a (3) must match"
    assert f"failed shapebug-tiny-digits-s0: {want}" in " ".join(err.split())
    fail = json.loads((tmp_path / "res/cells/shapebug-tiny-digits-s0/failed.json").read_text())
    assert fail["error"].startswith(want) and fail["error"].endswith(
        f"(at test_plugin_faults.py:{_line_of(ShapeBug, 'the bug')}); run wae-bench check-plugin shapebug")
    assert "Traceback" in fail["traceback"]


def test_an_error_outside_any_plugin_is_still_an_internal_error(monkeypatch, tmp_path, capsys):
    """A frame of a plugin's *class* in the locals is not enough: the
    traceback must pass through the plugin's module."""
    import wae_bench.run.train

    def broken(*a, **k):
        raise RuntimeError("wae-bench's own bug")

    monkeypatch.setattr(wae_bench.run.train, "_finish", broken)
    code, _, err = cli(["run", "--reg", "moca", *TINY, "--set", "max_steps=2", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "internal error RuntimeError: wae-bench's own bug", "report it")
    assert code == 1
    with pytest.raises(RuntimeError) as e:
        make_trainer("moca").step(batch()[:, :1])          # a bad batch: raised in the nets, not the plugin
    assert plugin_fault(e.value) is None


@pytest.mark.parametrize("name, hook, shared", [("inplace", "penalty", False), ("inplace-aux", "aux_loss", True)])
def test_the_first_step_refuses_a_z_modified_in_place(plugins, name, hook, shared, tmp_path, capsys):
    tr = make_trainer(name)
    with pytest.raises(WaeError) as e:
        tr.step(batch())
    msg = str(e.value)
    assert msg.startswith(f"plugin {name!r}: {hook}() modified z in place")
    assert "e.g. z.div_, z.clamp_, z[...] = ...; compute a new tensor (z = z / ...) instead" in msg
    assert ("shares storage with the trained latent" in msg) == shared
    code, _, err = cli(["run", "--reg", name, *TINY, "--set", "max_steps=3", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, f"plugin {name!r}: {hook}() modified z in place")
    assert code == 2


def test_a_step_drawing_from_global_generators_is_warned_once_naming_them(plugins, capsys, monkeypatch):
    import wae_bench.step.first_step as first_step

    monkeypatch.setattr(first_step, "_WARNED", set())
    capsys.readouterr()
    for _ in range(2):                                     # two runs in one process: one warning
        tr = make_trainer("globaldraws")
        for s in range(3):
            tr.step(batch(seed=s))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert re.fullmatch(r"warning: plugin 'globaldraws' drew from torch's global generator, NumPy's global "
                        r"generator, Python's random module in a training step: its results depend on the cells "
                        r"run alongside it \(bench --concurrent\) and a resume is not exact; draw from "
                        r"ctx\.generator \(see wae-bench check-plugin globaldraws\)", lines[0]), lines[0]


def test_no_builtin_draws_from_a_global_generator(capsys, monkeypatch):
    import wae_bench.step.first_step as first_step

    monkeypatch.setattr(first_step, "_WARNED", set())
    capsys.readouterr()
    for name in builtin_names():
        make_trainer(name).step(batch())
    assert "drew from" not in capsys.readouterr().err


def test_the_checks_run_on_the_first_step_only(plugins, monkeypatch):
    """Later steps (those a CUDA graph captures) run none of them."""
    import wae_bench.step.first_step as first_step

    made = []
    real = first_step.FirstStep.__init__
    monkeypatch.setattr(first_step.FirstStep, "__init__", lambda self, *a: (made.append(a), real(self, *a))[1])
    tr = make_trainer("wae-gan")
    for s in range(3):
        tr.step(batch(seed=s))
    assert len(made) == 1


DOUBLE_BACKWARD = "torch.compile with aot_autograd does not currently support double backward"
COMPILED_TWICE = ("plugin 'gpcritic': torch.compile cannot differentiate a compiled module twice, and a step of the "
                  "plugin does (a double backward, e.g. a gradient penalty with create_graph=True); leave that "
                  "module out of compile_targets() (return [] to keep every module of the plugin eager, the "
                  "encoder and decoder still compiled), or set compilable = False in the plugin where the encoder "
                  "or decoder is differentiated twice; or train with --compile none")


def test_torch_compiles_double_backward_error_is_the_plugins_naming_the_fix(plugins):
    """torch raises it in the trainer's backward(), after the plugin's code
    returned: the plugin is the one the step's frames hold."""
    def backward(reg):
        raise RuntimeError(DOUBLE_BACKWARD)

    with pytest.raises(RuntimeError) as e:
        backward(make_trainer("gpcritic").reg)
    assert plugin_fault(e.value) == COMPILED_TWICE
    with pytest.raises(RuntimeError) as e:       # no plugin ran: not a plugin's
        backward(None)
    assert plugin_fault(e.value) is None


def test_a_gradient_penalty_under_compile_stops_the_run_in_one_line_and_its_fix_trains(plugins, monkeypatch,
                                                                                        tmp_path, capsys):
    """A real compile, by Dynamo and aot_autograd without Inductor's code
    generation (backend aot_eager: seconds, not a minute): the compiled
    critic's backward cannot be differentiated.  The fix the line names,
    compile_targets() -> [], trains with the nets compiled."""
    from wae_bench.step.compile import compile_nets

    real = nn.Module.compile
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: real(self, backend="aot_eager", dynamic=False))
    run = ["run", "--reg", "gpcritic", *TINY, "--compile", "default", "--set", "max_steps=2"]
    try:
        code, _, err = cli([*run, "--out", tmp_path / "a"], capsys)
        assert_one_line_error(code, err, f"error: {COMPILED_TWICE}")
        assert code == 2
        monkeypatch.setattr(GpCritic, "compile_targets", lambda self: [])
        code, _, err = cli([*run, "--out", tmp_path / "b"], capsys)
        assert code == 0, err
        tr = make_trainer("gpcritic")
        assert compile_nets(tr.ae, tr.reg, "default") and tr.ae.encoder._compiled_call_impl is not None
        assert getattr(tr.reg.f, "_compiled_call_impl", None) is None
    finally:
        torch._dynamo.reset()


def test_the_compile_notice_names_the_plugin_that_sets_compilable_false(plugins, monkeypatch, capsys):
    from wae_bench.step.compile import compile_nets

    monkeypatch.setattr(GpCritic, "compilable", False)
    tr = make_trainer("gpcritic")
    capsys.readouterr()
    assert not compile_nets(tr.ae, tr.reg, "default")
    assert " ".join(capsys.readouterr().err.split()) == (
        "compile=default is not used with gpcritic: it sets compilable = False (its step differentiates a net "
        "twice, which torch.compile cannot); eager kernels")
