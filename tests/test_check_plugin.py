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
from wae_bench.regularizer import RegOut, RegularizerConfig
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
        if self.cfg.source == "torch":
            e = torch.randn(z.shape)
        elif self.cfg.source == "python":
            e = torch.full(z.shape, random.gauss(0.0, 1.0))
        else:
            e = torch.from_numpy(np.random.standard_normal(z.shape)).float()
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


PLUGINS = (Pull, Itemy, GlobalDraw, Forgetful, NanPenalty, Branchy, AeGrabber, IdleCritic, Unpapered,
           Unbuildable, Raiser)


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


ALL_PASS = {c.key: "pass" for c in C.CHECKS} | {"aux-step": "skip"}


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
    assert got["forgetful"]["state"].startswith("FAIL plugin 'forgetful': a run resumed from a checkpoint "
                                                "trains differently (the autoencoder's state_dict: ")
    assert "self.register_buffer" in got["forgetful"]["state"]
    assert out.splitlines()[-1] == "3 of 4 plugins fail the contract checks: itemy, globaldraw, forgetful"
    (line,) = [ln for ln in out.splitlines() if "plugin 'itemy'" in ln and "FAIL" in ln]
    shown = re.sub(r"(test_check_plugin\.py):\d+", r"\1:LINE", line)       # as it is, bar the line number
    assert f"\n{shown}\n" in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()


def test_a_good_plugin_exits_0(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "pull"], capsys)
    assert code == 0 and err == ""
    assert statuses(report(out)["pull"]) == ALL_PASS
    assert out.splitlines()[-1] == "pull: 7 pass, 1 skip"


def test_an_unknown_name_is_one_line_with_a_suggestion(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "pull", "mocha"], capsys)
    assert code == 2 and out == ""        # refused before any check runs
    assert err.count("\n") == 1 and err.startswith("error: unknown regularizer 'mocha'; did you mean 'moca'?")


def test_a_plugins_own_exception_is_that_checks_failure_and_debug_shows_it(plugins, capsys):
    code, out, err = run_cli(["check-plugin", "raiser"], capsys)
    assert code == 1 and "Traceback" not in out + err
    got = report(out)["raiser"]
    for key in ("finite-step", "penalty", "state", "randomness", "capture-safe"):
        assert re.fullmatch(r"FAIL plugin 'raiser': raised ValueError: shapes do not match \(at "
                            r"test_check_plugin\.py:\d+\); fix the plugin \(rerun with --debug for the "
                            r"traceback\)", got[key]), got[key]
    assert statuses(got)["builds"] == "pass"
    code, out, err = run_cli(["--debug", "check-plugin", "raiser"], capsys)
    assert code == 1 and "--debug" not in out
    assert err.count("Traceback") == 5 and 'raise ValueError("shapes do not match")' in err


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
    (C.state_round_trips, "forgetful", {}, "a run resumed from a checkpoint trains differently"),
    (C.draws_only_from_run_generator, "globaldraw", {}, "a step drew from torch's global generator"),
    (C.draws_only_from_run_generator, "globaldraw", {"reg_cfg": {"source": "python"}},
     "a step drew from Python's random module"),
    (C.draws_only_from_run_generator, "globaldraw", {"reg_cfg": {"source": "numpy"}},
     "a step drew from NumPy's global generator"),
    (C.draws_only_from_run_generator, "pull", {"expect_draws": True}, "a step did not draw from ctx.generator"),
    (C.draws_only_from_run_generator, "swae", {"expect_draws": False}, "a step drew from ctx.generator"),
    (C.aux_step_touches_only_its_own, "aegrabber", {}, "make_aux_optimizer() optimises parameters of the "
                                                        "autoencoder"),
    (C.aux_step_touches_only_its_own, "idlecritic", {}, "the auxiliary step left the plugin's own parameters "
                                                         "unchanged"),
    (C.capture_safe, "itemy", {}, "penalty() reads a tensor on the host (Tensor.item"),
    (C.capture_safe, "branchy", {}, "penalty() reads a tensor on the host (Tensor.__bool__"),
    (C.documented, "unpapered", {}, "its class has no paper"),
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
