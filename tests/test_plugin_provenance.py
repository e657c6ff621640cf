"""Which plugin code produced a result (docs/plugins.md, "Which code a run
used"): a name two installed distributions give is refused at use in one
line naming both, not resolved by sort order; an entry point refused for
a built-in's name is said by check-plugin (whose checks ran on the
built-in: exit status 1), a run and a bench; a plugin that fails to
import is named with its distribution; and each run records the sha256 of
its plugins' source files, a resume across an edit saying so in one line."""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_helpers import tiny_spec
from tests.helpers import PULL_PLUGIN
from tests.reliability_helpers import ENV, TINY, assert_one_line_error, cli, install_plugin, one_thread
from wae_bench.registry import REGULARIZERS

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", *TINY, "--set", "max_steps=2", "--set", "expost=[]"]


def fake_dist(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """What `pip install DIST==VERSION` leaves: module ``DIST`` (the pull
    plugin) and a dist-info whose regularizer entry points are ``entry_points``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{dist}.py").write_text(PULL_PLUGIN)
    info = root / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[wae_bench.regularizers]\n" +
                                           "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


def wae_bench(args: list, site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``wae-bench ARGS`` in a fresh process with ``site`` on PYTHONPATH (its plugins installed)."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "wae_bench", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def flat(text: str) -> str:
    """A rich table's text on one line, its borders dropped (a row's cell may wrap)."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


AMBIGUOUS = ("regularizer 'moment' is given by two installed distributions, aamom 0.1 and momreg 0.2; "
             "uninstall one")


def test_a_name_two_distributions_give_is_refused_at_use_naming_both(tmp_path):
    """Not the first by sort order (aamom), with the other listed as a duplicate."""
    site = tmp_path / "site"
    fake_dist(site, "momreg", "0.2", {"moment": "momreg:Pull"})
    fake_dist(site, "aamom", "0.1", {"moment": "aamom:Pull"})
    r = wae_bench(["list"], site, tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"moment ambiguous: {AMBIGUOUS.split(' is ', 1)[1]}" in flat(r.stdout)
    r = wae_bench([*RUN, "--reg", "moment", "--out", "r"], site, tmp_path)
    assert assert_one_line_error(r.returncode, r.stderr) == f"error: {AMBIGUOUS}"
    assert not (tmp_path / "r").exists()
    r = wae_bench(["check-plugin", "moment"], site, tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert assert_one_line_error(r.returncode, r.stderr) == f"error: {AMBIGUOUS}"
    (tmp_path / "spec.toml").write_text(tiny_spec("amb", ["moca", "moment"], [0], 2, [], 2))
    r = wae_bench(["bench", "spec.toml", "--dry-run", "--out", "res"], site, tmp_path)
    assert AMBIGUOUS in assert_one_line_error(r.returncode, r.stderr)


SHADOWED = ("an installed regularizer entry point 'moca' from momreg 0.2 was refused (the name is wae-bench's "
            "built-in, used here instead); give the plugin another name")


def test_an_entry_point_refused_for_a_builtins_name_is_said_and_check_plugin_fails(tmp_path):
    """check-plugin names the provider it checked (the built-in), says the
    plugin's entry point was refused and exits 1: the author's plugin was
    not checked.  A plugin that fails to import names its distribution."""
    site = tmp_path / "site"
    fake_dist(site, "momreg", "0.2", {"moca": "momreg:Pull", "typo": "momreg.nope:Pull"})
    r = wae_bench(["check-plugin", "moca", "typo"], site, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("plugin 'moca' (wae-bench 0.1.0): ") and lines[1] == f"  note: {SHADOWED}"
    assert "moca: " in r.stdout and "FAIL" not in r.stdout.split("plugin 'typo'")[0]     # (the built-in passes)
    assert "plugin 'typo' (momreg 0.2: failed to load): " in r.stdout
    assert "regularizer 'typo' from momreg 0.2 failed to load (momreg.nope:Pull: ModuleNotFoundError" in r.stdout
    assert lines[-2:] == ["1 of 2 plugins fail the contract checks: typo",
                          "1 installed entry point(s) not checked, refused for a built-in's name: moca from momreg 0.2"]
    r = wae_bench(["list"], site, tmp_path)
    assert "moca refused: momreg:Pull: regularizer 'moca' from momreg 0.2: the name is wae-bench's built-in" \
        in flat(r.stdout)
    assert "typo failed to load (momreg 0.2): momreg.nope:Pull: ModuleNotFoundError" in flat(r.stdout)
    r = wae_bench([*RUN, "--reg", "moca", "--out", "r"], site, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(SHADOWED) == 1, r.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["versions"]["regularizer"] == \
        "moca: wae-bench 0.1.0"
    (tmp_path / "spec.toml").write_text(tiny_spec("shadow", ["moca"], [0, 1], 2, [], 2))
    r = wae_bench(["bench", "spec.toml", "--out", "res"], site, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (r.stdout + r.stderr).count(SHADOWED) == 1, r.stdout + r.stderr     # once for the grid


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def editable_pull(tmp_path, monkeypatch):
    """The pull plugin from a module file in tmp_path, registered for this
    test only: its file stands for an editable install's (edited in place)."""
    REGULARIZERS.load_entry_points()
    root = install_plugin(tmp_path / "plugins", "wae_edited_pull", PULL_PLUGIN, {"pull": "wae_edited_pull:Pull"})
    monkeypatch.syspath_prepend(str(root))
    mod = importlib.import_module("wae_edited_pull")
    monkeypatch.setitem(REGULARIZERS._items, "pull", mod.Pull)
    yield root / "wae_edited_pull.py"
    sys.modules.pop("wae_edited_pull", None)


def test_a_run_records_its_plugins_source_sha256_and_a_resume_across_an_edit_says_so(tmp_path, capsys,
                                                                                     editable_pull):
    """The built-ins' too (the tiny net's, the digits'); an edit without a
    version bump changes no version and no setting (the run resumes, not
    stale) but the resume's note names the changed hash."""
    out = tmp_path / "run"
    base = ["run", *TINY, "--reg", "pull", "--set", "max_steps=6", "--set", "ckpt_every=2",
            "--set", "keep_checkpoints=5", "--set", "expost=[]", "--out", out]
    with one_thread():
        code, _, err = cli(base, capsys)
    assert code == 0, err
    rec = json.loads((out / "config.json").read_text())
    before = _sha256(editable_pull)
    assert rec["plugin_sha256"] == rec["starts"][0]["plugin_sha256"] == {
        "regularizer": before, "architecture": _sha256(ROOT / "wae_bench/nets/tiny.py"),
        "dataset": _sha256(ROOT / "wae_bench/data/builtin.py")}
    for p in sorted((out / "checkpoints").glob("step-*.pt"))[1:]:
        p.unlink()                                   # killed after the checkpoint of step 2
    editable_pull.write_text(editable_pull.read_text().replace("p = z.pow(2)", "p = 2 * z.pow(2)"))
    after = _sha256(editable_pull)
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        f"note: this run mixes settings that change its numbers: regularizer source sha256 {before[:12]} -> "
        f"{after[:12]} since its first start (step 0); config.json lists each start under \"starts\""]
    rec = json.loads((out / "config.json").read_text())
    assert [s["plugin_sha256"]["regularizer"] for s in rec["starts"]] == [before, after]
    assert rec["starts"][0]["versions"] == rec["starts"][1]["versions"]           # (no version said it)


def test_code_without_a_file_records_no_hash():
    """A plugin defined by exec (a notebook cell): null, not a crash."""
    from tests.helpers import pull_plugin
    from wae_bench.registry import Registry

    reg = Registry("regularizer", "wae_bench.none")
    reg.add("pull", pull_plugin().Pull)
    assert reg.source_sha256("pull") is None
