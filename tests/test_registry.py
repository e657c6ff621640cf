"""Discovery: the registry decorator, duplicate names, and third-party
plugins arriving through the ``wae_bench.regularizers`` entry-point group."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wae_bench.errors import WaeError
from wae_bench.registry import REGULARIZERS, Registry
from tests.helpers import PULL_PLUGIN as PLUGIN



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
    assert "failed to load" in r.stderr and "needs libfoo" in r.stderr


def test_decorator_and_duplicate_names():
    reg = Registry("thing", "wae_bench.none")
    @reg.register("a")
    class A:
        pass
    assert reg.get("a") is A
    reg.add("a", A)  # same object again is fine
    with pytest.raises(WaeError, match="duplicate thing name 'a'"):
        reg.add("a", object())


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
