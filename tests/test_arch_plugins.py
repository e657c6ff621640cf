"""Architecture and dataset plugins: the registry keeps the built-ins' names
and refuses an entry point that is not a spec or names another one
(wae_bench/registry.py); a net with the wrong shapes is refused when built,
in one line naming it and the contract, and the probe leaves the net and the
random streams as they were (wae_bench/nets/contract.py); an exception in a
net's code, or a global draw in its forward, is blamed on the architecture
(wae_bench/plugin_fault.py, wae_bench/step/first_step.py); `check-plugin`
probes an architecture (wae_bench/cli/check_plugin.py)."""
from __future__ import annotations

import inspect
import math
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import batch, make_trainer, pull_plugin
from tests.reliability_helpers import assert_one_line_error, cli, install_plugin
from wae_bench.errors import WaeError
from wae_bench.nets import ArchSpec, Autoencoder, build_arch
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS, Registry

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["--dataset", "digits", "--set", "image_size=8", "--set", "latent_dim=16", "--quiet", "--no-eval",
          "--set", "max_steps=2", "--set", "expost=[]"]


class Lin(nn.Module):
    """Flatten, one linear layer, reshape to ``shape`` per image: a stand-in for a plugin's conv stack."""

    def __init__(self, n_in: int, shape: tuple[int, ...]):
        super().__init__()
        self.shape, self.fc = shape, nn.Linear(n_in, math.prod(shape))

    def forward(self, x):
        return self.fc(x.flatten(1)).view(len(x), *self.shape)


def net(enc, dec):
    """``build`` of a net whose encoder gives ``enc(s, c, d)`` per image and decoder ``dec(s, c, d)``."""
    def build(s, c, d):
        e = enc(s, c, d)
        return Autoencoder(Lin(c * s * s, e), Lin(math.prod(e), dec(s, c, d)), d, s, c)
    return build


LATENT, IMAGE = (lambda s, c, d: (d,)), (lambda s, c, d: (c, s, s))
GOOD = ArchSpec("dcg", "a good test net", net(LATENT, IMAGE))


@pytest.fixture
def mynets(monkeypatch):
    """``register(*specs)``: into the architectures registry, as provided by ``mynets 0.1``."""
    ARCHITECTURES.load_entry_points()

    def register(*specs, registry=ARCHITECTURES):
        for spec in specs:
            monkeypatch.setitem(registry._items, spec.name, spec)
            monkeypatch.setitem(registry._dists, spec.name, "mynets 0.1")
    return register


def contract(c, s, d):
    x = f"(B, {c}, {s}, {s})"
    return (f"build(image_size, channels, latent_dim) must give Enc: {x} -> (B, {d}) and Dec: (B, {d}) -> {x} "
            f"(float tensors)")


# -- the probe (the report's finding-2 table, on 1×8×8 digits with d = 16) -----------------
SHAPES = {
    "b-ch": (LATENT, lambda s, c, d: (3, s, s), "its decoder gives (2, 3, 8, 8)"),
    "b-ch4": (LATENT, lambda s, c, d: (4, s, s), "its decoder gives (2, 4, 8, 8)"),
    "b-res": (LATENT, lambda s, c, d: (c, s // 2, s // 2), "its decoder gives (2, 1, 4, 4)"),
    "b-flat": (LATENT, lambda s, c, d: (c * s * s,), "its decoder gives (2, 64)"),
    "b-4d": (lambda s, c, d: (d, 1, 1), IMAGE, "its encoder gives (2, 16, 1, 1)"),
    "b-ign": (lambda s, c, d: (64,), IMAGE, "its encoder gives (2, 64)"),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_net_with_wrong_shapes_is_refused_before_training_naming_it_and_the_contract(name, mynets, tmp_path,
                                                                                     capsys):
    enc, dec, gives = SHAPES[name]
    mynets(ArchSpec(name, "bad", net(enc, dec)))
    code, _, err = cli(["run", "--reg", "ae", "--arch", name, *DIGITS, "--out", tmp_path / "r"], capsys)
    line = assert_one_line_error(code, err)
    assert code == 2
    assert line == (f"error: architecture {name!r} (mynets 0.1): {gives} for 1×8×8 images with d = 16; "
                    f"{contract(1, 8, 16)}")
    assert not (tmp_path / "r" / "checkpoints").exists() or not any((tmp_path / "r" / "checkpoints").iterdir())


def test_a_build_that_returns_no_autoencoder_is_refused(mynets, tmp_path, capsys):
    def build(s, c, d):
        ae = net(LATENT, IMAGE)(s, c, d)
        return ae.encoder, ae.decoder

    mynets(ArchSpec("b-tuple", "bad", build))
    code, _, err = cli(["run", "--reg", "moca", "--arch", "b-tuple", *DIGITS, "--out", tmp_path / "r"], capsys)
    assert assert_one_line_error(code, err) == (
        "error: architecture 'b-tuple' (mynets 0.1): build() returned a tuple, not a wae_bench.nets.Autoencoder; "
        "return Autoencoder(encoder, decoder, latent_dim, image_size, channels)")


class Noisy(nn.Module):
    """Batch norm, dropout and input noise from torch's global generator: all that a probe could disturb."""

    def __init__(self, c, s, d):
        super().__init__()
        self.bn, self.drop, self.fc = nn.BatchNorm2d(c), nn.Dropout(0.5), nn.Linear(c * s * s, d)

    def forward(self, x):
        x = x + 0.01 * torch.randn_like(x)
        return self.fc(self.drop(self.bn(x).flatten(1)))


def build_noisy(s, c, d):
    return Autoencoder(Noisy(c, s, d), Lin(d, (c, s, s)), d, s, c)


NONDET = ArchSpec("dcg-nondet", "draws in its forward", build_noisy)


def test_the_probe_leaves_the_net_modes_and_generators_as_they_were():
    from wae_bench.nets.contract import probe

    torch.manual_seed(0)
    ae = build_noisy(8, 3, 6)
    ae.decoder.eval()                                             # a mixed mode is put back as it was
    state = {k: v.clone() for k, v in ae.state_dict().items()}
    rng, np_rng = torch.get_rng_state(), np.random.get_state()[1].copy()
    probe("dcg-nondet", ae, 8, 3, 6)
    assert all(torch.equal(state[k], v) for k, v in ae.state_dict().items())    # BN statistics untouched
    assert ae.training and ae.encoder.training and not ae.decoder.training
    assert torch.equal(torch.get_rng_state(), rng) and np.array_equal(np.random.get_state()[1], np_rng)
    ae.encode(torch.zeros(2, 3, 8, 8))                            # (it does draw: the test can fail)
    assert not torch.equal(torch.get_rng_state(), rng)


def test_a_runs_first_steps_are_bit_identical_with_and_without_the_probe(mynets, monkeypatch):
    import wae_bench.nets.contract

    mynets(NONDET)

    def two_steps():
        tr = make_trainer("moca", arch="dcg-nondet", d=6)
        for s in range(2):
            tr.step(batch(seed=s))
        return tr.state_dict()

    probed = two_steps()
    monkeypatch.setattr(wae_bench.nets.contract, "probe", lambda *a: None)
    plain = two_steps()
    for part in ("ae", "reg"):
        assert probed[part].keys() == plain[part].keys()
        assert all(torch.equal(probed[part][k], plain[part][k]) for k in plain[part]), part
    assert torch.equal(probed["generator"]["state"], plain["generator"]["state"])


# -- blame -----------------------------------------------------------------------------
class TrainBug(nn.Module):
    """Fine in eval mode (the probe), broken in training."""

    def __init__(self, c, s, d):
        super().__init__()
        self.fc = nn.Linear(c * s * s, d)

    def forward(self, x):
        if self.training:
            x = x[:, :, :3]                                       # the bug
        return self.fc(x.flatten(1))


def test_an_exception_in_a_nets_code_is_the_architectures(mynets, tmp_path, capsys):
    def build_bug(s, c, d):
        return Autoencoder(TrainBug(c, s, d), Lin(d, (c, s, s)), d, s, c)

    def build_fails(s, c, d):
        return Autoencoder(nn.Linear(c * s * s, d), Lin(d, (c, s, s)), d, s, c, 7)   # the slip

    mynets(ArchSpec("b-trainbug", "bad", build_bug), ArchSpec("b-build", "bad", build_fails))
    lines, starts = inspect.getsourcelines(TrainBug)
    at = starts + next(i for i, ln in enumerate(lines) if "the bug" in ln) + 1      # the line after the slice
    code, _, err = cli(["run", "--reg", "moca", "--arch", "b-trainbug", *DIGITS, "--out", tmp_path / "r"], capsys)
    line = assert_one_line_error(code, err)
    assert code == 2 and "report it" not in line
    assert re.fullmatch(rf"error: architecture plugin 'b-trainbug' \(mynets 0\.1\) raised RuntimeError: .+ \(at "
                        rf"test_arch_plugins\.py:{at}\); fix it, or choose another --arch", line), line
    code, _, err = cli(["run", "--reg", "ae", "--arch", "b-build", *DIGITS, "--out", tmp_path / "r2"], capsys)
    line = assert_one_line_error(code, err, "error: architecture plugin 'b-build' (mynets 0.1) raised TypeError: ",
                                 "(at test_arch_plugins.py:", "); fix it, or choose another --arch")
    assert code == 2


class DrawsInConstrain(pull_plugin().Pull):
    """Deterministic but for a global draw in its constrain()."""

    name = "draws-constrain"

    def constrain(self, f):
        return f + 0 * torch.rand(())


def _warnings(capsys, arch: str, reg: str, monkeypatch) -> list[str]:
    import wae_bench.step.first_step as first_step

    monkeypatch.setattr(first_step, "_WARNED", set())
    capsys.readouterr()
    tr = make_trainer(reg, arch=arch, d=6)
    for s in range(2):
        tr.step(batch(seed=s))
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_a_global_draw_in_the_nets_forward_is_the_architectures_and_one_in_constrain_the_plugins(
        mynets, monkeypatch, capsys):
    mynets(NONDET, GOOD)
    monkeypatch.setitem(REGULARIZERS._items, DrawsInConstrain.name, DrawsInConstrain)
    assert _warnings(capsys, "dcg-nondet", "moca", monkeypatch) == [
        "warning: architecture 'dcg-nondet' (mynets 0.1) drew from torch's global generator in its forward: its "
        "results depend on the cells run alongside it (bench --concurrent) and a resume is not exact; make the net "
        "deterministic, or draw from a torch.Generator kept as an attribute of the net (saved in every checkpoint)"]
    (line,) = _warnings(capsys, "dcg", "draws-constrain", monkeypatch)
    assert line.startswith("warning: plugin 'draws-constrain' drew from torch's global generator in a training step")
    assert len(_warnings(capsys, "dcg-nondet", "draws-constrain", monkeypatch)) == 2


class RaisesOnce(pull_plugin().Pull):
    """A penalty that raises in the first step, then works."""

    name = "raises-once"
    raised = False

    def penalty(self, x, z, ae, ctx):
        if not RaisesOnce.raised:
            RaisesOnce.raised = True
            raise RuntimeError("first step fails")
        return super().penalty(x, z, ae, ctx)


def _hooks(module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def test_a_first_step_that_raises_leaves_no_hook_on_the_net(mynets, monkeypatch):
    """review 4: the first step's hooks on an architecture plugin's modules are
    removed also when the step raises (else every later forward, CUDA-graph
    warm-up and capture included, reads the global generators' states)."""
    mynets(GOOD)
    monkeypatch.setitem(REGULARIZERS._items, RaisesOnce.name, RaisesOnce)
    monkeypatch.setattr(RaisesOnce, "raised", False)
    tr = make_trainer("raises-once", arch="dcg", d=6)
    with pytest.raises(RuntimeError, match="first step fails"):
        tr.step(batch(seed=0))
    assert _hooks(tr.ae) == 0
    tr.step(batch(seed=1))
    assert _hooks(tr.ae) == 0


def test_no_first_step_hook_is_put_inside_a_compiled_encoder_or_decoder(mynets):
    """review 3: Dynamo would trace a hook's state reads inside a compiled
    net (graph breaks, extra compiled frames): modules under a compiled root
    get none; the marks around constrain still attribute the draws."""
    from wae_bench.step.first_step import FirstStep

    def build(s, c, d):   # the plugin's own modules inside torch containers, as a real conv stack is
        return Autoencoder(nn.Sequential(Lin(c * s * s, LATENT(s, c, d))),
                           nn.Sequential(Lin(math.prod(LATENT(s, c, d)), IMAGE(s, c, d))), d, s, c)
    mynets(ArchSpec("dcg-nested", "own modules in containers", build))
    tr = make_trainer("ae", arch="dcg-nested", d=6)
    assert _hooks(tr.ae) == 0
    check = FirstStep("ae", torch.device("cpu"), 0, "dcg-nested", (tr.ae, tr.reg))
    assert _hooks(tr.ae.encoder) > 0 and _hooks(tr.ae.decoder) > 0
    check.release()
    tr.ae.encoder.compile()                   # (lazy: nothing is compiled until it runs)
    check = FirstStep("ae", torch.device("cpu"), 0, "dcg-nested", (tr.ae, tr.reg))
    assert _hooks(tr.ae.encoder) == 0 and _hooks(tr.ae.decoder) > 0
    check.release()
    assert _hooks(tr.ae) == 0


# -- the registry ------------------------------------------------------------------------
BAD_SPECS = '''
    from wae_bench.data import DatasetSpec
    from wae_bench.nets import ArchSpec
    from tests.test_arch_plugins import GOOD, net, LATENT

    def build_dcg(s, c, d):
        return GOOD.build(s, c, d)

    def load(root, split, image_size, download):
        raise OSError("not used")

    NAMED = ArchSpec("dcgan", "named otherwise", build_dcg)
    WRONG = ArchSpec("b-wrong", "a decoder of 2 channels", net(LATENT, lambda s, c, d: (2, s, s)), sizes=(32,))
    DATA_NAMED = DatasetSpec("npz-other", "named otherwise", load, 32)
'''
BROKEN = {
    "b-fn": ("{m}:build_dcg", "architecture 'b-fn' is a function, not a wae_bench.nets.ArchSpec; point the entry "
                              "point at the ArchSpec object"),
    "b-cls": ("{m}:ArchSpec", "architecture 'b-cls' is a class, not a wae_bench.nets.ArchSpec; point the entry "
                              "point at the ArchSpec object"),
    "mydcgan": ("{m}:NAMED", "architecture entry point 'mydcgan' gives ArchSpec 'dcgan'; make the two names equal"),
    "d-notaspec": ("{m}:load", "dataset 'd-notaspec' is a function, not a wae_bench.data.DatasetSpec; point the "
                               "entry point at the DatasetSpec object"),
    "npz-renamed": ("{m}:DATA_NAMED", "dataset entry point 'npz-renamed' gives DatasetSpec 'npz-other'; make the "
                                      "two names equal"),
}


def fake_dist(root: Path, module: str, source: str, groups: dict[str, dict[str, str]], version="0.1") -> None:
    """What `pip install` leaves: the module and a dist-info whose entry_points.txt has ``groups``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for g, eps in groups.items()))


@pytest.fixture
def fresh_registries(monkeypatch):
    """The architecture and dataset registries, to be loaded again (from what is on sys.path then)."""
    for reg in (ARCHITECTURES, DATASETS):
        for attr in ("_items", "_broken", "_dists", "_broken_by"):
            monkeypatch.setattr(reg, attr, {})
        monkeypatch.setattr(reg, "_ambiguous", set())
        monkeypatch.setattr(reg, "_loaded", False)


def test_a_non_spec_or_a_misnamed_spec_is_listed_as_broken_and_list_still_works(
        tmp_path, monkeypatch, fresh_registries, capsys):
    mod = "mynets_bad"
    data = {n: v.format(m=mod) for n, (v, _) in BROKEN.items() if n.startswith(("d-", "npz"))}
    archs = {n: v.format(m=mod) for n, (v, _) in BROKEN.items() if n not in data}
    fake_dist(tmp_path, mod, BAD_SPECS, {"wae_bench.architectures": archs | {"b-wrong": f"{mod}:WRONG"},
                                         "wae_bench.datasets": data})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, mod, raising=False)
    broken = {**ARCHITECTURES.broken, **DATASETS.broken}
    assert broken == {n: f"{v.format(m=mod)}: {why}" for n, (v, why) in BROKEN.items()}
    assert "a1" in ARCHITECTURES and "cifar10" in DATASETS and "b-wrong" in ARCHITECTURES
    with pytest.raises(WaeError, match=r"architecture 'mydcgan' from mynets_bad 0.1 failed to load \(.*make the two "
                                       r"names equal\)"):
        ARCHITECTURES.get("mydcgan")
    code, out, err = cli(["list"], capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    for name in BROKEN:
        assert name in out
    assert "│ b-wrong │" in out and "fails: see below" in out
    assert ("b-wrong at 32x32: architecture 'b-wrong' (mynets_bad 0.1): its decoder gives (2, 2, 32, 32) for "
            f"3×32×32 images with d = 128; {contract(3, 32, 128)}") in flat


CLASH = '''
    from wae_bench.nets import ArchSpec
    from wae_bench.nets.tiny import build_tiny

    A1 = ArchSpec("a1", "my own A1 variant", build_tiny)
    DCG = ArchSpec("dcg", "the first dcg", build_tiny)
'''


def test_a_plugin_taking_a_builtins_name_is_refused_whatever_the_sys_path_order(tmp_path):
    """The plugin on PYTHONPATH is found before wae-bench's own distribution;
    the built-in a1 is still the one a run gets, and a run of it says that
    the entry point was refused.  Two distributions giving one name: the
    name is ambiguous, neither is loaded (not the first by sort order), and
    using it is refused in one line naming both; `list` shows the conflict."""
    fake_dist(tmp_path, "clashpkg", CLASH, {"wae_bench.architectures": {"a1": "clashpkg:A1", "dcg": "clashpkg:DCG"}})
    fake_dist(tmp_path, "otherpkg", CLASH, {"wae_bench.architectures": {"dcg": "otherpkg:DCG"}}, version="0.2")
    code = textwrap.dedent('''
        from wae_bench.registry import ARCHITECTURES as A
        print(A.get("a1").build.__module__, A.provider("a1"), "dcg" in A, sorted(A.ambiguous))
        print(A.broken["a1"]); print(A.shadowed("a1"))
        try:
            A.get("dcg")
        except Exception as e:
            print(e)
    ''')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "wae_bench.nets.a1 wae-bench 0.1.0 False ['dcg']",
        "clashpkg:A1: architecture 'a1' from clashpkg 0.1: the name is wae-bench's built-in; choose another name",
        "an installed architecture entry point 'a1' from clashpkg 0.1 was refused (the name is wae-bench's "
        "built-in, used here instead); give the plugin another name",
        "architecture 'dcg' is given by two installed distributions, clashpkg 0.1 and otherpkg 0.2; uninstall one"]
    run = [sys.executable, "-m", "wae_bench", "run", "--reg", "moca", "--epochs", "1", "--set", "max_steps=1",
           "--no-eval", "--quiet", "--set", "expost=[]"]
    r = subprocess.run([*run, "--arch", "dcg", "--out", "x"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert_one_line_error(r.returncode, r.stderr, "architecture 'dcg' is given by two installed distributions, "
                                                  "clashpkg 0.1 and otherpkg 0.2; uninstall one")
    r = subprocess.run([sys.executable, "-m", "wae_bench", "list"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.replace("│", " ").split())
    assert "dcg ambiguous: given by two installed distributions, clashpkg 0.1 and otherpkg 0.2; uninstall one" in flat
    assert "a1 refused: clashpkg:A1: architecture 'a1' from clashpkg 0.1: the name is wae-bench's built-in" in flat


def test_an_in_process_duplicate_names_the_provider_not_a_repr():
    reg = Registry("architecture", "wae_bench.none", check=ARCHITECTURES.check)
    reg.add("dcg", GOOD)
    with pytest.raises(WaeError) as e:
        reg.add("dcg", ArchSpec("dcg", "another", GOOD.build))
    assert str(e.value) == ("duplicate architecture name 'dcg': already registered by module tests.test_arch_plugins; "
                            "choose another name (or pass replace=True to replace it)")


# -- check-plugin -------------------------------------------------------------------------
def test_check_plugin_probes_an_architecture_and_names_a_dataset(mynets, capsys):
    mynets(GOOD, ArchSpec("b-ch", "bad", net(LATENT, lambda s, c, d: (1, s, s)), sizes=(32, 64)))
    code, out, err = cli(["check-plugin", "dcg", "b-ch"], capsys)
    assert code == 1 and err == "", err
    assert out.splitlines() == [
        "architecture 'dcg' (mynets 0.1): the shape probe at 2 image size(s), d = 16",
        "  pass 3x32x32  Enc: (2, 3, 32, 32) -> (2, 16), Dec: (2, 16) -> (2, 3, 32, 32)",
        "  pass 3x64x64  Enc: (2, 3, 64, 64) -> (2, 16), Dec: (2, 16) -> (2, 3, 64, 64)",
        "dcg: 2 pass",
        "architecture 'b-ch' (mynets 0.1): the shape probe at 2 image size(s), d = 16",
        "  FAIL 3x32x32  architecture 'b-ch' (mynets 0.1): its decoder gives (2, 1, 32, 32) for 3×32×32 images with "
        f"d = 16; {contract(3, 32, 16)}",
        "  FAIL 3x64x64  architecture 'b-ch' (mynets 0.1): its decoder gives (2, 1, 64, 64) for 3×64×64 images with "
        f"d = 16; {contract(3, 64, 16)}",
        "b-ch: 2 FAIL",
        "1 of 2 plugins fail the contract checks: b-ch"]
    code, out, err = cli(["check-plugin", "digits"], capsys)
    assert code == 2 and out == ""
    assert assert_one_line_error(code, err) == (
        "error: dataset 'digits' (wae-bench 0.1.0) is a dataset; check-plugin checks regularizers (the step "
        "contract) and architectures (a shape probe); a dataset is checked when a run loads it (see "
        "the 'Datasets' page of wae-bench's docs, section 'Dataset plugins: the contract' "
        "(docs/datasets.md#dataset-plugins-the-contract in wae-bench's source))")


# -- docs/plugins.md's worked example ---------------------------------------------------------
def _section() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    return text[text.index("## Architectures and datasets"):]


def _block(lang: str, needle: str) -> str:
    (b,) = [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```", _section(), re.S | re.M) if needle in m.group(1)]
    return b


def test_the_docs_example_registers_lists_checks_and_trains(monkeypatch, tmp_path, capsys):
    entry = tomllib.loads(_block("toml", "wae_bench.architectures"))["project"]["entry-points"]
    targets = {**entry["wae_bench.architectures"], **entry["wae_bench.datasets"]}
    assert targets == {"dcg": "my_nets.dcg:DCG", "npzset": "my_nets.npz:NPZSET"}
    objs = {}
    for (name, target), needle in zip(targets.items(), ("ArchSpec(", "DatasetSpec(")):
        path, _, attr = target.partition(":")
        mod = types.ModuleType(path)
        monkeypatch.setitem(sys.modules, path, mod)
        exec(compile(_block("python", needle), "docs/plugins.md", "exec"), mod.__dict__)
        objs[name] = getattr(mod, attr)
    ARCHITECTURES.load_entry_points()
    DATASETS.load_entry_points()
    for reg, name in ((ARCHITECTURES, "dcg"), (DATASETS, "npzset")):
        reg.check(name, objs[name])                              # what the registry checks of an entry point
        monkeypatch.setitem(reg._items, name, objs[name])
        monkeypatch.setitem(reg._dists, name, "my-nets 0.1")
    code, out, err = cli(["list"], capsys)
    assert code == 0, err
    shown = _block("text", "│ dcg")
    for row in shown.splitlines():
        assert row in out.splitlines(), f"docs/plugins.md shows {row!r}; `wae-bench list` now: {out}"
    code, out, err = cli(["check-plugin", "dcg"], capsys)
    assert code == 0 and out == _block("text", "shape probe"), out
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        np.savez(tmp_path / f"{split}.npz", x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
    code, out, err = cli(["run", "--reg", "ae", "--dataset", "npzset", "--data-root", tmp_path, "--batch-size", "8",
                          "--set", "max_steps=2", "--set", "expost=[]", "--no-eval", "--quiet",
                          "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    assert '"arch": "dcg"' in (tmp_path / "r" / "config.json").read_text()
