"""`wae-bench check-plugin` and the shipped contract checks
(:mod:`wae_bench.plugin_check`) on small plugins, bad and good, registered
for the test: each bad plugin fails exactly the check it breaks, with one line
naming the plugin, what broke and the fix; the good one passes them all."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wae_bench import plugin_check as C
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import RegOut, Regularizer, RegularizerConfig
from tests.helpers import pull_plugin, run_cli

pytestmark = pytest.mark.usefixtures("single_thread")


PullConfig = pull_plugin().PullConfig


class Pull(pull_plugin().Pull):
    """Pull latents to the origin: the good plugin (the third-party plugin
    tests/test_registry.py installs, declared in this module)."""

    paper = "test plugin"


class Itemy(Pull):
    """Reads its penalty on the host to decide a weight."""

    name = "itemy"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1).mean()
        w = 1.0 if p.item() < 1e6 else 0.0
        return RegOut(w * p, {"l2": p})


@dataclass
class GlobalConfig(PullConfig):
    """source: the global generator its prior samples come from (torch, python, numpy)."""

    source: str = "torch"


class GlobalDraw(Pull):
    """Matches z to prior samples drawn from a process-global generator."""

    name = "globaldraw"
    Config = GlobalConfig

    def penalty(self, x, z, ae, ctx):
        e = torch.zeros(z.shape)
        if "torch" in self.cfg.source:
            e = e + torch.randn(z.shape)
        if "python" in self.cfg.source:
            e = e + random.gauss(0.0, 1.0)
        if "numpy" in self.cfg.source:
            e = e + torch.from_numpy(np.random.standard_normal(z.shape)).float()
        p = (z - e).pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})


class Forgetful(Pull):
    """Keeps a running mean of z as a plain tensor attribute (not a buffer)."""

    name = "forgetful"

    def attach(self, ae):
        self.mu = torch.zeros(self.setup_info.latent_dim)

    def penalty(self, x, z, ae, ctx):
        p = (z - self.mu).pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})

    def after_step(self, x, z, out, ae, ctx):
        self.mu.mul_(0.5).add_(0.5 * z.mean(0))


class NanPenalty(Pull):
    """Its penalty is the log of a negative number."""

    name = "nanpenalty"

    def penalty(self, x, z, ae, ctx):
        p = torch.log(-z.abs().sum(1).mean())
        return RegOut(p, {"l2": p})


class Branchy(Pull):
    """Branches in Python on a tensor value."""

    name = "branchy"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1).mean()
        return RegOut(p if p > 0 else 2 * p, {"l2": p})


class AeGrabber(Pull):
    """Its auxiliary optimiser steps the encoder."""

    name = "aegrabber"

    def attach(self, ae):
        self.held = [ae.encoder]

    def make_aux_optimizer(self):
        return torch.optim.SGD(self.held[0].parameters(), lr=0.1)

    def aux_loss(self, z, ctx):
        return z.pow(2).mean()


class IdleCritic(Pull):
    """Has a critic with its own optimiser, but its auxiliary loss ignores it."""

    name = "idlecritic"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.critic = nn.Linear(setup.latent_dim, 1)

    def make_aux_optimizer(self):
        return torch.optim.SGD(self.critic.parameters(), lr=0.1)

    def aux_loss(self, z, ctx):
        return (self.critic(z) * 0).sum()


class Unpapered(Pull):
    """Says nothing about where it comes from."""

    name = "unpapered"
    paper = ""


class Unbuildable(Pull):
    """Its constructor fails."""

    name = "unbuildable"

    def __init__(self, cfg, setup):
        raise RuntimeError("needs a GPU-only extension")


class Raiser(Pull):
    """Its penalty raises."""

    name = "raiser"

    def penalty(self, x, z, ae, ctx):
        raise ValueError("shapes do not match")


class Counter(Pull):
    """Warms its weight up with a Python step counter."""

    name = "counter"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.calls = 0

    def penalty(self, x, z, ae, ctx):
        self.calls += 1
        p = z.pow(2).sum(1).mean()
        return RegOut(min(1.0, self.calls / 2) * p, {"l2": p})


class PerSample(Pull):
    """Returns a loss per sample (not reduced)."""

    name = "persample"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1)
        return RegOut(p, {"l2": p.mean()})


class Critic(Pull):
    """A critic of z with its own Adam (WAE-GAN's shape): the lr of its
    optimiser as built, ``lr`` (None: Adam's default) and ``lr_scale`` (None:
    no key), are the test's to set."""

    name = "critic"
    lr: float | None = None
    lr_scale: float | None = None

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.D = nn.Linear(setup.latent_dim, 1)

    def make_aux_optimizer(self):
        group = {"params": list(self.D.parameters())} | ({} if self.lr_scale is None else {"lr_scale": self.lr_scale})
        return torch.optim.Adam([group], betas=(0.5, 0.999), **({} if self.lr is None else {"lr": self.lr}))

    def aux_loss(self, z, ctx):
        return self.D(z).mean() - self.D(self.sample_prior(len(z), z.device, ctx.generator)).mean()

    def penalty(self, x, z, ae, ctx):
        p = -self.D(z).mean()
        return RegOut(p, {"d": p})


class NoAuxOpt(Critic):
    """Has a critic and an aux_loss, but no make_aux_optimizer."""

    name = "noauxopt"

    def make_aux_optimizer(self):
        return None


class CriticInPenalty(Critic):
    """Trains its critic in the wrong place: the critic's loss added to
    penalty(), no auxiliary optimiser, aux_loss not overridden."""

    name = "critic-inpen"
    aux_loss = Regularizer.aux_loss

    def make_aux_optimizer(self):
        return None

    def penalty(self, x, z, ae, ctx):
        out = super().penalty(x, z, ae, ctx)
        return RegOut(out.loss + Critic.aux_loss(self, z.detach(), ctx), out.terms)


class HalfOptimised(Critic):
    """A critic whose second layer (used in aux_loss) is not in its optimiser."""

    name = "halfoptimised"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.head = nn.Linear(1, 1)

    def aux_loss(self, z, ctx):
        return self.head(self.D(z)).mean() - self.D(self.sample_prior(len(z), z.device, ctx.generator)).mean()


class AuxReturns(Critic):
    """aux_loss returns what ``returns`` says: "regout" (a RegOut logging
    its parts: right), "vector" (a loss per sample), "regout-vector" (the
    same in a RegOut), "nograd" (computed under no_grad)."""

    name = "auxreturns"
    returns = "regout"

    def aux_loss(self, z, ctx):
        if self.returns == "nograd":
            with torch.no_grad():
                return super().aux_loss(z, ctx)
        per_sample = (self.D(z) - self.D(self.sample_prior(len(z), z.device, ctx.generator))).squeeze(1)
        if self.returns == "vector":
            return per_sample
        if self.returns == "regout-vector":
            return RegOut(per_sample)
        return RegOut(per_sample.mean(), {"d_gap": per_sample.mean()})


class NoAuxOptSteps(Pull):
    """Asks for 5 auxiliary steps but has no auxiliary optimiser."""

    name = "noauxopt-steps"
    aux_steps = 5


class CriticList(Critic):
    """Keeps its critic in a plain list (not registered)."""

    name = "critic-list"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        del self.D
        self.Ds = [nn.Linear(setup.latent_dim, 1)]

    @property
    def D(self):
        return self.Ds[0]


class NCritic(Critic):
    """Takes 2 extra critic steps per iteration with a private optimiser (WGAN's n_critic)."""

    name = "ncritic"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.inner = torch.optim.SGD(self.D.parameters(), lr=0.01)

    def aux_loss(self, z, ctx):
        for _ in range(2):
            self.inner.zero_grad()
            super().aux_loss(z, ctx).backward()
            self.inner.step()
        return super().aux_loss(z, ctx)


class Temperature(Pull):
    """Keeps a learnable temperature as a plain tensor that requires grad."""

    name = "temperature"

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.temp = torch.ones((), requires_grad=True)


class Spanned(Pull):
    """Tunes by the default tuning_grid over its ``tuning_spans`` (the test's to set)."""

    name = "spanned"
    tuning_spans = {"lambda": (1.0, 1.0)}


@dataclass
class UndocumentedConfig(RegularizerConfig):
    lambda_: float = 0.5


class Undocumented(Pull):
    name = "undocumented"
    paper = ""
    Config = UndocumentedConfig


class Tunable(Pull):
    """Tunes λ by the plugin's own grid (``grid``: the test's to set)."""

    name = "tunable"
    grid: dict = {"reg.lambda": [0.1, 1.0]}

    @classmethod
    def tuning_grid(cls, setup):
        return cls.grid


class Misdeclared(Pull):
    """Misspells its sampler or prior (the test sets which)."""

    name = "misdeclared"


class InPlace(Pull):
    """Normalises z in place in its penalty."""

    name = "inplace"

    def penalty(self, x, z, ae, ctx):
        return super().penalty(x, z.div_(z.norm(dim=1, keepdim=True) + 1), ae, ctx)


PLUGINS = (Pull, Itemy, GlobalDraw, Forgetful, NanPenalty, Branchy, AeGrabber, IdleCritic, Unpapered,
           Unbuildable, Raiser, Counter, PerSample, Critic, NoAuxOpt, Undocumented, Tunable, Misdeclared, InPlace,
           CriticInPenalty, HalfOptimised, AuxReturns, CriticList, NCritic, Temperature, Spanned, NoAuxOptSteps)


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in PLUGINS:
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


def report(out: str) -> dict[str, dict[str, str]]:
    """``{plugin: {check: "STATUS text"}}`` from check-plugin's output."""
    seen: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        if m := re.match(r"plugin '([^']+)' \(", line):
            plugin = seen.setdefault(m.group(1), {})
        elif m := re.match(r"  (pass|skip|FAIL) +(\S+) +(\S.*)$", line):
            plugin[m.group(2)] = f"{m.group(1)} {m.group(3)}"
    return seen


def statuses(checks: dict[str, str]) -> dict[str, str]:
    return {k: v.split(" ")[0] for k, v in checks.items()}


ALL_PASS = {c.key: "pass" for c in C.CHECKS} | {"aux-step": "skip", "tuning": "skip"}


def test_each_bad_plugin_fails_exactly_its_check_and_the_good_one_passes(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "pull", "itemy", "globaldraw", "forgetful"], capsys)
    assert code == 1 and err == ""
    got = report(out)
    assert statuses(got["pull"]) == ALL_PASS
    assert statuses(got["itemy"]) == ALL_PASS | {"capture-safe": "FAIL"}
    assert statuses(got["globaldraw"]) == ALL_PASS | {"randomness": "FAIL"}
    assert statuses(got["forgetful"]) == ALL_PASS | {"state": "FAIL"}
    assert re.fullmatch(r"FAIL plugin 'itemy': penalty\(\) reads a tensor on the host \(Tensor\.item, at "
                        r"test_check_plugin\.py:\d+\) inside the step; this breaks CUDA-graph capture — keep "
                        r"values as tensors, log them via RegOut\.terms", got["itemy"]["capture-safe"])
    assert got["globaldraw"]["randomness"] == (
        "FAIL plugin 'globaldraw': a step drew from torch's global generator; draw from the run's generator: "
        "torch.randn(..., generator=ctx.generator), self.sample_prior(n, z.device, ctx.generator)")
    assert got["forgetful"]["state"].startswith("FAIL plugin 'forgetful': self.mu (a tensor of shape (6,)) "
                                                "changed during a step, but a checkpoint does not carry a plain "
                                                "attribute")
    assert "self.register_buffer" in got["forgetful"]["state"]
    assert out.splitlines()[-1] == "3 of 4 plugins fail the contract checks: itemy, globaldraw, forgetful"
    (line,) = [ln for ln in out.splitlines() if "plugin 'itemy'" in ln and "FAIL" in ln]
    shown = re.sub(r"(test_check_plugin\.py):\d+", r"\1:LINE", line)       # as it is, bar the line number
    assert f"\n{shown}\n" in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()


def test_a_good_plugin_exits_0(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "pull"], capsys)
    assert code == 0 and err == ""
    assert statuses(report(out)["pull"]) == ALL_PASS
    assert out.splitlines()[-1] == "pull: 7 pass, 2 skip"


def test_an_unknown_name_is_one_line_with_a_suggestion(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "pull", "mocha"], capsys)
    assert code == 2 and out == ""        # refused before any check runs
    assert err.count("\n") == 1 and err.startswith("error: unknown regularizer 'mocha'; did you mean 'moca'?")


def test_a_plugin_file_that_does_not_import_is_one_line_exit_2_as_docs_plugins_md_says(tmp_path, capsys):
    (tmp_path / "broken_import.py").write_text("import wae_bench_no_such_module_xyz\n")
    code, out, err = run_cli(["--plugin", str(tmp_path / "broken_import.py"), "check-plugin", "moca"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "broken_import.py" in err and "raised ModuleNotFoundError" in err and "pip install" in err
    assert "does not import" in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()


def test_a_plugins_own_exception_is_that_checks_failure_and_debug_shows_it(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "raiser"], capsys)
    assert code == 1 and "Traceback" not in out + err
    got = report(out)["raiser"]
    assert re.fullmatch(r"FAIL plugin 'raiser': raised ValueError: shapes do not match \(at "
                        r"test_check_plugin\.py:\d+\); fix the plugin \(rerun as `wae-bench --debug COMMAND \.\.\.`, or "
                        r"with WAE_BENCH_DEBUG=1, for the traceback\)", got["finite-step"]), got["finite-step"]
    for key in ("penalty", "state", "randomness", "aux-step", "capture-safe"):     # each would raise it again
        assert got[key] == "skip not run: a step breaks the contract (see finite-step)", got[key]
    assert statuses(got)["builds"] == "pass" and out.count("shapes do not match") == 1
    code, out, err = run_cli(["--debug", "check-plugin", "raiser"], capsys)
    assert code == 1 and "--debug" not in out
    assert err.count("Traceback") == 1 and 'raise ValueError("shapes do not match")' in err


def test_a_plugin_that_does_not_build_is_not_checked_further(plugins, capsys):
    code, out, _ = run_cli(["check-plugin", "unbuildable"], capsys)
    got = report(out)["unbuildable"]
    assert code == 1
    assert got["builds"].startswith("FAIL plugin 'unbuildable': raised RuntimeError: needs a GPU-only extension")
    assert {k: v for k, v in got.items() if k != "builds"} == {c.key: "skip not run: it does not build"
                                                                for c in C.CHECKS[1:]}


# -- every shipped check fails on a plugin that breaks it --------------------------------------
@pytest.mark.parametrize("check, name, kwargs, says", [
    (C.finite_step, "nanpenalty", {}, "3 steps on tiny data gave non-finite loss terms ['loss', 'nanpenalty/l2', "
                                      "'reg']"),
    (C.penalty_reaches_encoder, "nanpenalty", {}, "penalty() returned a non-finite loss"),
    (C.state_round_trips, "forgetful", {}, "self.mu (a tensor of shape (6,)) changed during a step"),
    (C.state_round_trips, "counter", {}, "self.calls (an int: 2 -> 3) changed during a step"),
    (C.draws_only_from_run_generator, "globaldraw", {}, "a step drew from torch's global generator"),
    (C.draws_only_from_run_generator, "globaldraw", {"reg_cfg": {"source": "python"}},
     "a step drew from Python's random module"),
    (C.draws_only_from_run_generator, "globaldraw", {"reg_cfg": {"source": "numpy"}},
     "a step drew from NumPy's global generator;"),
    (C.draws_only_from_run_generator, "globaldraw", {"reg_cfg": {"source": "numpy+python"}},
     "a step drew from Python's random module and NumPy's global generator;"),
    (C.draws_only_from_run_generator, "pull", {"expect_draws": True}, "a step did not draw from ctx.generator"),
    (C.draws_only_from_run_generator, "swae", {"expect_draws": False}, "a step drew from ctx.generator"),
    (C.aux_step_touches_only_its_own, "aegrabber", {}, "make_aux_optimizer() optimises parameters of the "
                                                        "autoencoder"),
    (C.aux_step_touches_only_its_own, "idlecritic", {}, "the auxiliary step left the plugin's own parameters "
                                                         "unchanged"),
    (C.capture_safe, "itemy", {}, "penalty() reads a tensor on the host (Tensor.item"),
    (C.capture_safe, "branchy", {}, "penalty() reads a tensor on the host (Tensor.__bool__"),
    (C.documented, "unpapered", {}, "its class has no paper;"),
    (C.aux_step_touches_only_its_own, "noauxopt", {}, "it overrides aux_loss() but make_aux_optimizer() returns "
                                                       "None, so the trainer never runs the auxiliary step"),
    (C.aux_step_touches_only_its_own, "noauxopt-steps", {}, "it sets aux_steps = 5 but make_aux_optimizer() "
                                                             "returns None, so no auxiliary step runs"),
])
def test_each_check_fails_on_a_plugin_that_breaks_it(plugins, check, name, kwargs, says):
    with pytest.raises(C.ContractBroken) as e:
        check(name, **kwargs)
    assert str(e.value).startswith(f"plugin {name!r}: ") and says in str(e.value)
    assert "; " in str(e.value)           # ... and the fix


def test_the_documented_check_sees_a_dataclass_without_a_docstring(plugins, monkeypatch):
    @dataclass
    class BareConfig(RegularizerConfig):
        lambda_: float = 0.5

    monkeypatch.setattr(Unpapered, "paper", "test plugin")
    C.documented("unpapered")
    monkeypatch.setattr(Unpapered, "Config", BareConfig)
    with pytest.raises(C.ContractBroken, match="its Config .*BareConfig has no docstring"):
        C.documented("unpapered")


def test_the_documented_check_asks_for_a_module_docstring_if_told(plugins, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules[__name__], "__doc__", None)
    C.documented("pull")
    with pytest.raises(C.ContractBroken, match=f"module {__name__} has no docstring; cite the paper"):
        C.documented("pull", module_docstring=True)


def test_a_read_the_plugin_swallows_still_fails(plugins, monkeypatch):
    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1).mean()
        try:
            p.item()
        except Exception:  # noqa: BLE001
            pass
        return RegOut(p, {"l2": p})

    monkeypatch.setattr(Pull, "penalty", penalty)
    with pytest.raises(C.ContractBroken, match=r"penalty\(\) reads a tensor on the host \(Tensor.item"):
        C.capture_safe("pull")


def test_the_host_read_guard_is_removed_afterwards():
    t = torch.ones(())
    with pytest.raises(C.ContractBroken):
        with C.no_host_reads():
            t.item()
    assert t.item() == 1.0 and bool(t) and float(t) == 1.0


# -- what the checks say ------------------------------------------------------------------------
def test_a_resumed_run_that_differs_without_a_plain_attribute_says_so(plugins, monkeypatch):
    """State the attribute diff cannot see (here: a list's hidden contents
    inside an opaque object) still fails by the round trip."""
    class Box:
        pass

    def attach(self, ae):
        self.box = Box()
        self.box.mu = torch.zeros(self.setup_info.latent_dim)

    def after_step(self, x, z, out, ae, ctx):
        self.box.mu.mul_(0.5).add_(0.5 * z.mean(0))

    def penalty(self, x, z, ae, ctx):
        p = (z - self.box.mu).pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})

    for hook in (attach, after_step, penalty):
        monkeypatch.setattr(Forgetful, hook.__name__, hook)
    with pytest.raises(C.ContractBroken, match="a run resumed from a checkpoint trains differently "
                                               r"\(the autoencoder's state_dict: "):
        C.state_round_trips("forgetful")


def test_a_broken_return_value_is_reported_once_and_the_later_step_checks_are_not_run(plugins, capsys):
    code, out, _ = run_cli(["check-plugin", "persample"], capsys)
    got = report(out)["persample"]
    assert code == 1
    assert got["finite-step"] == ("FAIL plugin 'persample': penalty() returned RegOut with loss = a tensor of "
                                  "shape (8,); return RegOut(loss=..., terms={...}) (wae_bench.regularizer.RegOut) "
                                  "with a scalar (0-d) tensor loss (reduce it, e.g. .mean())")
    assert out.count("penalty() returned RegOut") == 1
    later = {c.key for c in C.CHECKS[2:] if c.steps}
    assert later == {"penalty", "state", "randomness", "aux-step", "capture-safe"}
    assert {k: got[k] for k in later} == {k: "skip not run: a step breaks the contract (see finite-step)"
                                          for k in later}
    assert statuses(got) == ALL_PASS | {"finite-step": "FAIL"} | {k: "skip" for k in later}


def test_documented_names_every_gap_in_one_line(plugins):
    with pytest.raises(C.ContractBroken) as e:
        C.documented("undocumented", module_docstring=True)
    assert str(e.value) == (
        "plugin 'undocumented': its class has no paper, class Undocumented has no docstring and its Config "
        "UndocumentedConfig has no docstring; set paper = 'Author et al. YEAR, Eq. N' (wae-bench list shows it); "
        "say in one line what its penalty is; document each setting there, e.g. \"lambda_: weight of the penalty\"")


@pytest.mark.parametrize("lr, lr_scale, fails", [
    (None, None, False),     # Adam's default lr, the run's
    (2e-3, 0.5, True),       # an lr of its own, lr_scale 0.5: the trainer gives it 5e-4
    (5e-4, 0.5, False),
    (None, 0.5, False),      # lr left at Adam's default, set by lr_scale (docs/plugins.md's example): passed
])
def test_aux_step_fails_an_lr_the_trainer_would_replace(plugins, monkeypatch, lr, lr_scale, fails):
    monkeypatch.setattr(Critic, "lr", lr)
    monkeypatch.setattr(Critic, "lr_scale", lr_scale)
    if not fails:
        assert C.aux_step_touches_only_its_own("critic") is None
        return
    with pytest.raises(C.ContractBroken) as e:
        C.aux_step_touches_only_its_own("critic")
    assert str(e.value) == (
        "plugin 'critic': make_aux_optimizer() set lr=0.002, but the trainer sets every group's lr to the run's "
        "lr × the group's 'lr_scale' (here 0.001 × 0.5) and follows the schedule, so that lr is never used; "
        "give {'params': ..., 'lr_scale': 2} instead (lr_scale 2 is lr=0.002 at this run's lr 0.001)")


def test_aux_step_names_the_lr_a_plugin_set_and_the_lr_scale_to_give(plugins, capsys, monkeypatch):
    monkeypatch.setattr(Critic, "lr", 2e-4)
    code, out, _ = run_cli(["check-plugin", "critic"], capsys)
    got = report(out)["critic"]
    assert code == 1 and statuses(got) == ALL_PASS | {"aux-step": "FAIL"}
    assert got["aux-step"].startswith("FAIL plugin 'critic': make_aux_optimizer() set lr=0.0002, but the trainer ")
    assert "give {'params': ..., 'lr_scale': 0.2} instead" in got["aux-step"]


@pytest.mark.parametrize("grid, says", [
    ({"reg.lambda": [0.1, 1.0]}, None),
    ({"lambda": [1, 30]}, 'unknown grid axis tunable.tuning_grid: "lambda"; use reg.KEY for a regularizer setting'),
    ({"reg.lamda": [1, 30]}, "unknown config key 'reg.lamda'; did you mean 'reg.lambda'?"),
    ({"reg.lambda": ["big"]}, "reg.lambda"),
    ({"reg.lambda": []}, 'empty grid: axis tunable.tuning_grid: "reg.lambda" has no values'),
])
def test_the_tuning_check_refuses_what_a_bench_refuses(plugins, monkeypatch, grid, says):
    monkeypatch.setattr(Tunable, "grid", grid)
    if says is None:
        assert C.tuning_grid_is_a_bench_grid("tunable") is None
        return
    with pytest.raises(C.ContractBroken) as e:
        C.tuning_grid_is_a_bench_grid("tunable")
    assert str(e.value).startswith("plugin 'tunable': a bench cannot tune it by its tuning_grid(): ")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_tuning_check_skips_a_plugin_with_nothing_to_tune_and_passes_the_builtins(plugins):
    assert C.tuning_grid_is_a_bench_grid("pull") == "pull has nothing to tune (tuning_grid() is empty: no tuning_spans)"
    assert C.tuning_grid_is_a_bench_grid("moca") is None


@pytest.mark.parametrize("attr, value, allowed", [("sampler", "GMM", "samples, n, gmm"),
                                                  ("prior", "Sphere", "gaussian, sphere")])
def test_builds_refuses_an_unknown_sampler_or_prior(plugins, monkeypatch, capsys, attr, value, allowed):
    monkeypatch.setattr(Misdeclared, attr, value)
    code, out, _ = run_cli(["check-plugin", "misdeclared"], capsys)
    got = report(out)["misdeclared"]
    assert code == 1
    assert got["builds"] == (f"FAIL plugin 'misdeclared': {attr} = {value!r} is not one of {allowed}; set one of "
                             f"them in class Misdeclared")
    assert {k for k, v in got.items() if v == "skip not run: it does not build"} == {c.key for c in C.CHECKS[1:]}


def test_z_modified_in_place_is_the_first_steps_failure_named_once(plugins, capsys):
    """The trainer's first step refuses a z modified in place (one line naming
    the hook and the fix); check-plugin reports it once, at finite-step."""
    code, out, _ = run_cli(["check-plugin", "inplace"], capsys)
    got = report(out)["inplace"]
    assert code == 1
    assert got["finite-step"].startswith("FAIL plugin 'inplace': penalty() modified z in place, e.g. z.div_"), got
    assert out.count("modified z in place") == 1
    assert all(got[k] == "skip not run: a step breaks the contract (see finite-step)"
               for k in ("penalty", "state", "randomness", "capture-safe")), got


# -- a plugin's own trained state: in an optimiser, registered, its auxiliary loss a scalar ---------
INPEN_LINE = ("FAIL plugin 'critic-inpen': its parameters D.weight and D.bias get a gradient in a step, but no "
              "optimiser steps them (the trainer's Adam holds only the encoder and decoder, and "
              "make_aux_optimizer() returns None), so they never train; return an optimiser over them from "
              "make_aux_optimizer() and train them in aux_loss(), or freeze a fixed one "
              "(p.requires_grad_(False), or a buffer)")


def test_a_critic_trained_through_the_penalty_fails_naming_its_parameters(plugins, capsys):
    """Its parameters get a gradient on every step and nothing steps them
    (the trainer's first step finds it): one FAIL, the later step checks not
    run, where before every check passed and the critic never moved."""
    code, out, _ = run_cli(["check-plugin", "critic-inpen"], capsys)
    got = report(out)["critic-inpen"]
    assert code == 1
    assert got["finite-step"] == INPEN_LINE
    assert out.count("get a gradient in a step") == 1
    later = {"penalty", "state", "randomness", "aux-step", "capture-safe"}
    assert statuses(got) == ALL_PASS | {"finite-step": "FAIL"} | {k: "skip" for k in later}


def test_a_parameter_used_in_aux_loss_but_not_in_its_optimiser_fails(plugins):
    with pytest.raises(C.BrokenStep) as e:
        C.finite_step("halfoptimised")
    assert str(e.value) == (
        "plugin 'halfoptimised': its parameters head.weight and head.bias get a gradient in a step, but no "
        "optimiser steps them (the trainer's Adam holds only the encoder and decoder, and make_aux_optimizer()'s "
        "optimiser does not hold them), so they never train; add them to make_aux_optimizer()'s optimiser, or "
        "freeze a fixed one (p.requires_grad_(False), or a buffer)")


AUX_FIX = ("return the auxiliary loss as a scalar (0-d) tensor that depends on the parameters of "
           "make_aux_optimizer(), or RegOut(loss=..., terms={...}) to log its parts")


@pytest.mark.parametrize("returns, says", [
    ("regout-vector", f"aux_loss() returned RegOut with loss = a tensor of shape (8,); {AUX_FIX} (reduce it, e.g. "
                      f".mean())"),
    ("vector", f"aux_loss() returned a tensor of shape (8,); {AUX_FIX} (reduce it, e.g. .mean())"),
    ("nograd", f"aux_loss() returned a tensor without gradient (computed under torch.no_grad(), or detached); "
               f"{AUX_FIX}"),
])
def test_an_aux_loss_returning_the_wrong_thing_is_the_plugins_one_line(plugins, monkeypatch, capsys, returns, says):
    """check_aux, in the trainer's first step (finite-step) and in the
    aux-step check: not torch's error at the trainer's line."""
    monkeypatch.setattr(AuxReturns, "returns", returns)
    with pytest.raises(C.BrokenStep) as e:
        C.aux_step_touches_only_its_own("auxreturns")
    assert str(e.value).startswith(f"plugin 'auxreturns': {says}")
    code, out, _ = run_cli(["check-plugin", "auxreturns"], capsys)
    got = report(out)["auxreturns"]
    assert code == 1 and got["finite-step"].startswith(f"FAIL plugin 'auxreturns': {says}"), got
    assert got["aux-step"] == "skip not run: a step breaks the contract (see finite-step)"
    assert "trainer.py" not in out and out.count("aux_loss() returned") == 1


def test_an_aux_loss_returning_a_regout_of_its_parts_passes_every_check(plugins, capsys):
    code, out, _ = run_cli(["check-plugin", "auxreturns"], capsys)
    assert code == 0 and statuses(report(out)["auxreturns"]) == ALL_PASS | {"aux-step": "pass"}


@pytest.mark.parametrize("steps", [0, -2, 2.5, False])
def test_builds_refuses_an_aux_steps_that_is_not_a_whole_number_of_at_least_1(plugins, monkeypatch, capsys, steps):
    monkeypatch.setattr(Critic, "aux_steps", steps)
    code, out, _ = run_cli(["check-plugin", "critic"], capsys)
    got = report(out)["critic"]
    assert code == 1
    assert got["builds"] == (f"FAIL plugin 'critic': aux_steps = {steps!r} is not a whole number >= 1; set "
                             f"aux_steps to the number of auxiliary (critic) steps per iteration, e.g. 1 (WAE "
                             f"Algorithm 1) or 5 (WGAN-GP's n_critic), in class Critic")
    monkeypatch.setattr(Critic, "aux_steps", 5)
    code, out, _ = run_cli(["check-plugin", "critic"], capsys)
    assert code == 0 and statuses(report(out)["critic"]) == ALL_PASS | {"aux-step": "pass"}


@pytest.mark.parametrize("name, says", [
    ("critic-list", "self.Ds holds a module (Linear, as self.Ds[0]) that is not registered, so no checkpoint "
                    "carries it and .to(device) does not move it; keep modules in nn.ModuleList / nn.ModuleDict, "
                    "or assign each to self"),
    ("ncritic", "self.inner is an optimiser (SGD) that the trainer neither steps nor checkpoints (a checkpoint "
                "carries only the optimiser make_aux_optimizer() returns); return it from make_aux_optimizer() "
                "and let the trainer step it on aux_loss(), aux_steps times per iteration (WGAN's n_critic: "
                "aux_steps = 5)"),
    ("temperature", "self.temp is a tensor (Tensor) that requires grad but is neither a parameter nor a buffer, "
                    "so no optimiser trains it and no checkpoint carries it; make a trained tensor an nn.Parameter"),
])
def test_state_names_an_attribute_holding_state_no_checkpoint_carries(plugins, name, says):
    """Named by the attribute, before the resume comparison (which would
    name only its symptom, an encoder weight that differs)."""
    with pytest.raises(C.ContractBroken) as e:
        C.state_round_trips(name)
    assert str(e.value).startswith(f"plugin {name!r}: {says}"), str(e.value)
    assert "resumed" not in str(e.value)


def test_state_leaves_alone_what_a_checkpoint_carries(plugins):
    """A plain list holding the autoencoder's encoder, or a plain alias of the
    plugin's own registered module and of the trainer's optimiser, is state
    some checkpoint carries: not named."""
    from wae_bench.run.build import stand_in_trainer

    tr = stand_in_trainer("aegrabber")
    object.__setattr__(tr.reg, "aliases", {"opt": tr.aux_opt, "ae": (tr.ae.decoder,)})
    assert C.unregistered_state(tr) == []
    tr = stand_in_trainer("critic")
    object.__setattr__(tr.reg, "layers", [tr.reg.D, tr.reg.D.weight])
    assert C.unregistered_state(tr) == []


@pytest.mark.parametrize("spans, says", [
    ({"lambda_": (1.0, 1.0)}, "spanned: 'lambda_' in tuning_spans is not a setting of spanned (its settings: "
                              "lambda); tuning_spans spells the field lambda_ as 'lambda'"),
    ({"lamda": (1.0, 1.0)}, "spanned: 'lamda' in tuning_spans is not a setting of spanned (its settings: lambda); "
                            "did you mean 'lambda'?"),
    ({"width": (1.0, 1.0)}, "spanned: 'width' in tuning_spans is not a setting of spanned (its settings: lambda)"),
])
def test_tuning_spans_keyed_by_an_unknown_name_says_so(plugins, monkeypatch, spans, says):
    monkeypatch.setattr(Spanned, "tuning_spans", spans)
    with pytest.raises(C.ContractBroken) as e:
        C.tuning_grid_is_a_bench_grid("spanned")
    assert str(e.value) == f"plugin 'spanned': a bench cannot tune it by its tuning_grid(): {says}"
    monkeypatch.setattr(Spanned, "tuning_spans", {"lambda": (1.0, 1.0)})
    assert C.tuning_grid_is_a_bench_grid("spanned") is None


# -- check-plugin --compile --------------------------------------------------------------------
class GpCritic(Critic):
    """A WGAN-GP latent critic (Gulrajani et al. 2017), 5 critic steps an
    iteration: its aux_loss differentiates the critic twice (the gradient
    penalty at interpolates), which a compiled critic cannot be."""

    name = "gpcritic"
    aux_steps = 5

    def aux_loss(self, z, ctx):
        zp = self.sample_prior(len(z), z.device, ctx.generator)
        eps = torch.rand(len(z), 1, device=z.device, generator=ctx.generator)
        zi = (eps * zp + (1 - eps) * z).requires_grad_(True)
        g, = torch.autograd.grad(self.D(zi).sum(), zi, create_graph=True)
        gap = self.D(z).mean() - self.D(zp).mean()
        gp = (g.norm(dim=1) - 1).pow(2).mean()
        return RegOut(gap + 10 * gp, {"gap": gap, "gp": gp})


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile by Dynamo and aot_autograd without Inductor's code
    generation (backend aot_eager): seconds, not a minute, and the same
    double-backward refusal."""
    real = nn.Module.compile
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: real(self, backend="aot_eager", dynamic=False))
    monkeypatch.setitem(REGULARIZERS._items, GpCritic.name, GpCritic)
    yield
    torch._dynamo.reset()


def test_check_plugin_compile_finds_a_double_backward_only_the_compiled_step_meets(plugins, aot_eager, monkeypatch,
                                                                                    capsys):
    """Without --compile the WGAN-GP critic passes every check and fails only
    in a run with --compile; with it, the compile check fails with the
    run's translated line, and passes once the critic stays eager."""
    from wae_bench.plugin_fault import DOUBLE_BACKWARD, double_backward

    code, out, _ = run_cli(["check-plugin", "gpcritic"], capsys)
    assert code == 0 and "compile" not in report(out)["gpcritic"]
    code, out, err = run_cli(["check-plugin", "--compile", "gpcritic", "pull", "rae-gp"], capsys)
    got = report(out)
    assert code == 1 and "Traceback" not in out + err
    assert out.splitlines()[0] == (f"plugin 'gpcritic' (module {__name__}): {len(C.CHECKS) + 1} checks on a tiny "
                                   f"run on the CPU")
    assert statuses(got["gpcritic"]) == ALL_PASS | {"aux-step": "pass", "compile": "FAIL"}
    assert got["gpcritic"]["compile"] == f"FAIL {double_backward(RuntimeError(DOUBLE_BACKWARD), GpCritic)}"
    assert got["gpcritic"]["compile"].startswith("FAIL plugin 'gpcritic': torch.compile cannot differentiate a "
                                                 "compiled module twice")
    assert "leave that module out of compile_targets()" in got["gpcritic"]["compile"]
    assert got["pull"]["compile"] == "pass 3 steps compiled as --compile default: finite losses, the encoder moves"
    assert got["rae-gp"]["compile"] == ("skip rae-gp sets compilable = False: a run with --compile trains it "
                                        "eagerly")
    monkeypatch.setattr(GpCritic, "compile_targets", lambda self: [])   # the fix the line names
    code, out, _ = run_cli(["check-plugin", "--compile", "gpcritic"], capsys)
    assert code == 0 and report(out)["gpcritic"]["compile"].startswith("pass")


def test_another_compile_error_names_the_plugin_and_the_ways_out(plugins, aot_eager, monkeypatch):
    class Head(nn.Module):                        # what a module's compiled call raises, at the first step
        def forward(self, z):
            raise torch._dynamo.exc.Unsupported("a construct Dynamo cannot trace")

    monkeypatch.setattr(Critic, "compile_targets", lambda self: [self.D])
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: setattr(self, "_compiled_call_impl", Head()))
    with pytest.raises(C.ContractBroken) as e:
        C.compiled_steps("critic")
    assert str(e.value).startswith("plugin 'critic': torch.compile failed on a step of it (Unsupported: a "
                                   "construct Dynamo cannot trace); leave the module it fails on out of "
                                   "compile_targets()")


@pytest.mark.slow
def test_check_plugin_compile_with_inductor(tmp_path):
    """The real path, Inductor's code generation included (a cold compile:
    a minute or more on a CPU), in a fresh process as tests/test_compile.py's."""
    import subprocess
    import sys

    from tests.reliability_helpers import env

    r = subprocess.run([sys.executable, "-m", "wae_bench", "check-plugin", "--compile", "ae"], capture_output=True,
                       text=True, timeout=900, env=env(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert report(r.stdout)["ae"]["compile"].startswith("pass 3 steps compiled")
