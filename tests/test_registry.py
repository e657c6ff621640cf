"""Discovery: the registry decorator, duplicate names, and third-party
plugins arriving through the ``wae_bench.regularizers`` entry-point group."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from wae_bench.errors import WaeError
from wae_bench.registry import ARCHITECTURES, REGULARIZERS, Registry
from tests.helpers import PULL_PLUGIN as PLUGIN, pull_plugin

ARCH_CHECK = ARCHITECTURES.check



def fake_install(root: Path, dist: str, module: str, source: str, entry: str) -> None:
    """What `pip install` leaves for a package: the module and a dist-info
    with entry_points.txt (no pip run needed)."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[wae_bench.regularizers]\n{entry}\n")


def cli(args, root: Path, cwd: Path):
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "wae_bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_third_party_plugin_is_listed_and_trains_and_broken_one_is_reported(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    fake_install(site, "wae_pull", "wae_pull", PLUGIN, "pull = wae_pull:Pull")
    fake_install(site, "wae_broken", "wae_broken", "raise ImportError('needs libfoo')\n",
                 "broken = wae_broken:Broken")
    r = cli(["list"], site, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pull" in r.stdout and "third-party test plugin" in r.stdout
    assert "broken" in r.stdout and "failed to load" in r.stdout and "needs libfoo" in r.stdout
    r = cli(["run", "--reg", "pull", "--quiet", "--no-eval", "--set", "max_steps=5", "--set", "expost=[]",
             "--out", "r"], site, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "samples.png").is_file()
    assert '"pull/l2"' in (tmp_path / "r" / "metrics.jsonl").read_text()
    r = cli(["run", "--reg", "broken", "--quiet"], site, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "regularizer 'broken' from wae_broken 1.0 failed to load" in r.stderr and "needs libfoo" in r.stderr


MISDECLARED = PLUGIN + textwrap.dedent('''
    class Caps(Pull):
        """Says its sampler in capitals."""
        sampler = "GMM"

    class Sphere(Pull):
        """Says its prior in capitals."""
        prior = "Sphere"
''')


def test_a_plugin_with_an_unknown_sampler_or_prior_is_broken_and_refused_in_one_line(tmp_path, monkeypatch):
    """As for a plugin that fails to import (whose `list` and `run` lines the
    test above runs): what the registry loads through the entry points."""
    from wae_bench.registry import _check_regularizer

    fake_install(tmp_path, "wae_caps", "wae_caps", MISDECLARED, "caps = wae_caps:Caps\nsphere = wae_caps:Sphere")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("regularizer", "wae_bench.regularizers", check=_check_regularizer)
    assert reg.broken == {
        "caps": "wae_caps:Caps: plugin 'caps': sampler = 'GMM' is not one of samples, n, gmm; set one of them in "
                "class Caps",
        "sphere": "wae_caps:Sphere: plugin 'sphere': prior = 'Sphere' is not one of gaussian, sphere; set one of "
                  "them in class Sphere"}
    assert "moca" in reg and "caps" not in reg.names()
    with pytest.raises(WaeError) as e:
        reg.get("caps")
    assert str(e.value) == ("regularizer 'caps' from wae_caps 1.0 failed to load (wae_caps:Caps: plugin 'caps': "
                            "sampler = 'GMM' is "
                            "not one of samples, n, gmm; set one of them in class Caps); fix or uninstall the "
                            "plugin that provides it")


def test_the_known_samplers_are_the_prior_and_the_ex_post_densities():
    from wae_bench.config import WHAT
    from wae_bench.expost import COMPONENTS
    from wae_bench.regularizer import SAMPLERS

    assert SAMPLERS == ("samples", *COMPONENTS) and set(SAMPLERS) <= set(WHAT)


def test_a_registry_check_refuses_at_registration():
    from wae_bench.registry import _check_regularizer

    Bad = type("Bad", (pull_plugin().Pull,), {"prior": "sphere ", "__doc__": "x"})
    reg = Registry("regularizer", "wae_bench.none", check=_check_regularizer)
    with pytest.raises(WaeError, match=r"plugin 'bad': prior = 'sphere ' is not one of gaussian, sphere; set one"):
        reg.add("bad", Bad)
    assert "bad" not in reg
    reg.add("pull", pull_plugin().Pull)


def test_decorator_and_duplicate_names():
    reg = Registry("thing", "wae_bench.none")
    @reg.register("a")
    class A:
        pass
    assert reg.get("a") is A
    reg.add("a", A)  # same object again is fine
    with pytest.raises(WaeError, match="duplicate thing name 'a'"):
        reg.add("a", object())


def _module_of_source(name: str, source: str) -> types.ModuleType:
    """``source`` run as a module named ``name``: anew on each call, as a
    notebook re-runs a cell (``__main__``, a notebook's module)."""
    mod = types.ModuleType(name)
    exec(compile(source, name, "exec"), mod.__dict__)
    return mod


def test_a_notebook_cell_run_again_replaces_its_plugin_quietly():
    """A cell re-run makes a new class of the same module and qualified
    name: it replaces the registered one (get() gives the new class), with
    no refusal; the same holds for a spec dataclass rebuilt with equal fields."""
    from wae_bench.registry import _check_regularizer

    reg = Registry("regularizer", "wae_bench.none", check=_check_regularizer)
    first, second = (_module_of_source("__main__", PLUGIN).Pull for _ in range(2))
    assert first is not second
    reg.register("pull")(first)
    assert reg.register("pull")(second) is second and reg.get("pull") is second
    assert reg.provider("pull") == "module __main__"

    from wae_bench.nets import ArchSpec
    arch = Registry("architecture", "wae_bench.none", check=ARCH_CHECK)
    build = (_module_of_source("__main__", "def build(s, c, d):\n    pass\n").build for _ in range(2))
    specs = [ArchSpec("mine", "my net", b, sizes=(32,)) for b in build]
    arch.add("mine", specs[0])
    arch.add("mine", specs[1])
    assert arch.get("mine") is specs[1]


def test_another_plugin_under_a_taken_name_is_refused_unless_replace_is_passed(monkeypatch):
    reg = Registry("regularizer", "wae_bench.none")
    monkeypatch.setitem(sys.modules, "my_mod", types.ModuleType("my_mod"))   # (its dataclass looks it up)
    mine = _module_of_source("my_mod", PLUGIN).Pull
    other = type("Pull2", (mine,), {})
    reg.add("pull", mine)
    with pytest.raises(WaeError) as e:
        reg.add("pull", other)
    assert str(e.value) == ("duplicate regularizer name 'pull': already registered by module my_mod; choose "
                            "another name (or pass replace=True to replace it)")
    assert reg.get("pull") is mine
    assert reg.register("pull", replace=True)(other) is other and reg.get("pull") is other


def test_a_replacement_refused_by_the_check_keeps_the_registered_plugin():
    from wae_bench.registry import _check_regularizer

    reg = Registry("regularizer", "wae_bench.none", check=_check_regularizer)
    good = _module_of_source("__main__", PLUGIN).Pull
    reg.add("pull", good)
    bad = _module_of_source("__main__", PLUGIN.replace('name = "pull"', 'name = "pull"\n    prior = "Sphere"'))
    with pytest.raises(WaeError, match="prior = 'Sphere' is not one of"):
        reg.add("pull", bad.Pull)
    assert reg.get("pull") is good


@pytest.mark.parametrize("replace", [False, True])
def test_a_builtin_name_is_never_taken_in_process(replace):
    """Not even by a class of the built-in's own module and name, nor with
    replace=True: the built-in keeps its name (as against an entry point)."""
    from wae_bench.registry import ARCHITECTURES

    moca = REGULARIZERS.get("moca")
    again = type(moca.__name__, (moca,), {"__module__": moca.__module__, "__qualname__": moca.__qualname__})
    with pytest.raises(WaeError) as e:
        REGULARIZERS.add("moca", again, replace=replace)
    assert str(e.value) == "regularizer name 'moca' is wae-bench's built-in; choose another name"
    assert REGULARIZERS.get("moca") is moca
    assert REGULARIZERS.add("moca", moca) is moca          # (the built-in itself again: nothing changes)
    fresh = Registry("architecture", "wae_bench.architectures", check=ARCH_CHECK)
    with pytest.raises(WaeError, match="'a1' is wae-bench's built-in"):   # before the entry points are loaded too
        fresh.add("a1", ARCHITECTURES.get("a1"), replace=replace)
    assert fresh.get("a1") is ARCHITECTURES.get("a1")


@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", ".hidden", "", "x" * 65])
def test_a_name_that_is_a_path_is_refused(name):
    """A name becomes a run folder and a bench cell id: never a path."""
    reg = Registry("thing", "wae_bench.none")
    with pytest.raises(WaeError, match="bad thing name"):
        reg.add(name, object())
    reg.add("wae-gan_2.x", object())


def test_unknown_name_suggests_close_match():
    with pytest.raises(WaeError, match="did you mean 'moca'"):
        REGULARIZERS.get("mocha")


def test_builtin_plugins_arrive_through_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="wae_bench.regularizers")}
    assert "moca" in names and set(REGULARIZERS.names()) >= names


@pytest.mark.parametrize("group", ["wae_bench.regularizers", "wae_bench.architectures", "wae_bench.datasets"])
def test_installed_entry_points_are_pyprojects(group):
    """An entry point added to pyproject.toml takes effect only after `pip
    install -e .`; until then the registry-parametrised tests silently skip
    the new plugin.  This names the cause."""
    import tomllib
    from importlib.metadata import distribution

    from wae_bench.registry import source_entry_points

    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"][group]
    installed = {ep.name: ep.value for ep in distribution("wae-bench").entry_points if ep.group == group}
    assert installed == declared, (f"the installed {group} entry points are not pyproject.toml's: "
                                   f"run `pip install -e .`")
    assert source_entry_points(group) == declared


def test_an_entry_point_in_pyproject_but_not_installed_names_the_reinstall(monkeypatch):
    import wae_bench.registry as R

    monkeypatch.setattr(R, "source_entry_points", lambda group: {"energy": "wae_bench_regularizers.energy:Energy"})
    with pytest.raises(WaeError) as e:
        REGULARIZERS.get("energy")
    assert "in pyproject.toml" in str(e.value) and "run `pip install -e .`" in str(e.value)
    monkeypatch.undo()
    with pytest.raises(WaeError, match="unknown regularizer 'energy'; choose one of"):
        REGULARIZERS.get("energy")


def test_a_class_registered_under_another_name_logs_its_terms_under_the_run_s_name(tmp_path, monkeypatch, capsys):
    """``@REGULARIZERS.register("push")`` on a class whose ``name`` is
    ``pull`` logged ``pull/l2`` in a ``--reg push`` run: the terms are the
    run's regularizer's, under the name the run asked for."""
    from tests.helpers import one_thread, run_cli

    Pull = pull_plugin().Pull
    monkeypatch.setitem(REGULARIZERS._items, "push", Pull)
    with one_thread():
        code, _, err = run_cli(["run", "--reg", "push", "--dataset", "digits", "--quiet", "--no-eval",
                                "--set", "max_steps=2", "--set", "image_size=8", "--set", "log_every=1",
                                "--set", "expost=[]", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    logged = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert Pull.name == "pull" and '"push/l2"' in logged and '"pull/l2"' not in logged
