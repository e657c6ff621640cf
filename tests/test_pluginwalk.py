"""The slips of a researcher packaging their own regularizer and
architecture (docs/plugins.md, docs/architectures.md walked through as an
outside package): each is one line naming what is wrong and the fix, never
a traceback, and check-plugin passes nothing that trains wrong."""
from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
import torch

from wae_bench import plugin_check as C
from wae_bench.errors import WaeError
from wae_bench.registry import ARCHITECTURES, REGULARIZERS, Registry, _check_regularizer
from wae_bench.regularizer import RegOut
from tests.helpers import PULL_PLUGIN, pull_plugin, run_cli

pytestmark = pytest.mark.usefixtures("single_thread")

Pull = pull_plugin().Pull


def _broken(tmp_path, monkeypatch, targets: dict[str, str]) -> dict[str, str]:
    """What a regularizer registry lists as broken for entry points
    ``{name: target}`` into the package ``walkpkg`` (module ``regs``, the
    pull plugin; ``needy``, which imports a module not installed;
    ``ownmiss``, which imports a module its package lacks)."""
    for module in [m for m in sys.modules if m.partition(".")[0] == "walkpkg"]:   # (another test's package)
        monkeypatch.delitem(sys.modules, module)
    pkg = tmp_path / "walkpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "regs.py").write_text(PULL_PLUGIN)
    (pkg / "needy.py").write_text("import geomloss_not_installed\n")
    (pkg / "ownmiss.py").write_text("import walkpkg.helperz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [EntryPoint(n, t, "wae_bench.walk") for n, t in targets.items()]
    monkeypatch.setattr("wae_bench.registry.entry_points", lambda group: eps if group == "wae_bench.walk" else [])
    reg = Registry("regularizer", "wae_bench.walk", check=_check_regularizer)
    assert not reg.names()
    return reg.broken


def test_an_entry_point_at_the_config_or_the_module_is_broken_with_its_fix_not_a_crash_of_list(tmp_path,
                                                                                                monkeypatch):
    """Before, both registered, and `wae-bench list` stopped with an internal
    error (AttributeError: ... has no attribute 'paper')."""
    broken = _broken(tmp_path, monkeypatch, {"cfg": "walkpkg.regs:PullConfig", "mod": "walkpkg.regs",
                                             "fn": "walkpkg.regs:dataclass"})
    assert broken["cfg"] == ("walkpkg.regs:PullConfig: regularizer 'cfg' is class PullConfig, a Config, not the "
                             "plugin; point the entry point (or the registration) at the Regularizer subclass "
                             "whose Config it is")
    assert broken["mod"] == ("walkpkg.regs: regularizer 'mod' is the module walkpkg.regs, not a class; point the "
                             "entry point at the class: \"walkpkg.regs:CLASS\" (module:attribute), and reinstall "
                             "the plugin's package")
    assert "is a function, not a subclass of wae_bench.regularizer.Regularizer; subclass it" in broken["fn"]


def test_an_entry_point_whose_target_or_import_is_missing_says_the_fix(tmp_path, monkeypatch):
    """Before, Python's bare line: ``AttributeError: module 'walkpkg.regs' has
    no attribute 'Pul'`` / ``No module named ...``, with no fix."""
    broken = _broken(tmp_path, monkeypatch, {"typo": "walkpkg.regs:Pul", "nomod": "walkpkg.reg:Pull",
                                             "needy": "walkpkg.needy:Needy", "own": "walkpkg.ownmiss:X"})
    assert broken["typo"].endswith("(did you mean walkpkg.regs:Pull? the entry point 'walkpkg.regs:Pul' names an "
                                   "attribute walkpkg.regs does not define; fix it as module:Class in the plugin's "
                                   "pyproject.toml and reinstall its package, pip install -e DIR)")
    assert broken["nomod"].endswith("(the entry point 'walkpkg.reg:Pull' names module walkpkg.reg, which is not "
                                    "installed; fix the module path of that module:Class in the plugin's "
                                    "pyproject.toml and reinstall its package, pip install -e DIR)")
    assert broken["needy"] == ("walkpkg.needy:Needy: ModuleNotFoundError: No module named 'geomloss_not_installed' "
                               "(the plugin imports geomloss_not_installed, which is not installed here; pip "
                               "install geomloss_not_installed, whose distribution name may differ, and list it "
                               "in the plugin's dependencies)")
    assert broken["own"].endswith("(the plugin imports walkpkg.helperz, which its own package does not hold; fix "
                                  "that import)")


class NoGrad(Pull):
    """Its penalty of a detached z: trains as the plain AE."""

    name = "walk-nograd"

    def penalty(self, x, z, ae, ctx):
        p = z.detach().pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})


class UnderNoGrad(Pull):
    """Its penalty computed under no_grad."""

    name = "walk-undernograd"

    def penalty(self, x, z, ae, ctx):
        with torch.no_grad():
            p = z.pow(2).sum(1).mean()
        return RegOut(p, {"l2": p})


class NanLoss(Pull):
    """A NaN penalty: finite-step's failure, not the state check's."""

    name = "walk-nan"

    def penalty(self, x, z, ae, ctx):
        p = z.pow(2).sum(1).mean() * float("nan")
        return RegOut(p, {"l2": p})


class BareSpan(Pull):
    """tuning_spans of one number."""

    name = "walk-span"
    tuning_spans = {"lambda": 1.5}


@pytest.fixture
def walk_plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in (NoGrad, UnderNoGrad, NanLoss, BareSpan):
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


@pytest.mark.parametrize("name", ["walk-nograd", "walk-undernograd"])
def test_a_penalty_without_gradient_fails_the_penalty_check(walk_plugins, name):
    """Before, it passed ``a scalar RegOut whose gradient reaches the
    encoder``: the reconstruction's gradient reached it."""
    with pytest.raises(C.ContractBroken) as e:
        C.penalty_reaches_encoder(name)
    assert str(e.value) == (f"plugin {name!r}: penalty()'s loss carries no gradient (computed from a detached z, "
                            f"under torch.no_grad() or as a constant), so it regularises nothing; compute it from "
                            f"the z penalty() is given, without .detach() or no_grad (a plugin that regularises "
                            f"only in attach() or decoder_weight_decay() returns 0 * z.sum())")


def test_a_nan_penalty_does_not_fail_the_state_check_as_unsaved_state(walk_plugins):
    """Before: ``a run resumed from a checkpoint trains differently ...;
    keep every piece of state in a buffer``, NaN != NaN."""
    C.state_round_trips("walk-nan")


def test_a_tuning_span_that_is_not_two_numbers_is_one_line_naming_the_form(walk_plugins, capsys):
    """Before: ``raised TypeError: cannot unpack non-iterable float object
    (at regularizer.py:370); fix the plugin``, a place in wae-bench."""
    with pytest.raises(WaeError) as e:
        BareSpan.tuning_grid(None)
    assert str(e.value) == ("walk-span: tuning_spans['lambda'] = 1.5 is not (decades below, decades above) its "
                            "default; write it as two numbers >= 0, e.g. tuning_spans = {'lambda': (1.5, 1.5)}, "
                            "in class BareSpan")


def test_a_classmethod_hook_defined_without_the_decorator_names_it():
    from wae_bench.regularizer import check_shape

    class Grid(Pull):
        """tuning_grid as a plain method."""

        name = "grid"

        def tuning_grid(self, setup):
            return {}

    with pytest.raises(WaeError) as e:
        check_shape("grid", Grid)
    assert "define it as @classmethod tuning_grid(cls, setup) in class" in str(e.value)


def test_check_plugin_of_an_architecture_name_refused_for_the_builtin_says_so_and_exits_1(monkeypatch, capsys):
    """Before, `check-plugin tiny` probed the built-in and exited 0 with no
    word: the plugin's author read it as their net passing."""
    ARCHITECTURES.load_entry_points()
    monkeypatch.setitem(ARCHITECTURES._broken, "tiny", "my_nets:TINY: architecture 'tiny' from my-nets 0.1: ...")
    monkeypatch.setitem(ARCHITECTURES._broken_by, "tiny", "my-nets 0.1")
    code, out, _ = run_cli(["check-plugin", "tiny"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == ("  note: an installed architecture entry point 'tiny' from my-nets 0.1 was refused (the "
                        "name is wae-bench's built-in, used here instead); give the plugin another name")
    assert lines[-1] == "1 installed entry point(s) not checked, refused for a built-in's name: tiny from my-nets 0.1"
