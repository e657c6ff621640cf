"""A plugin in a file, without packaging (docs/plugins.md, "A plugin in a
file, without packaging"): ``wae-bench --plugin FILE.py|MODULE`` and
``$WAE_BENCH_PLUGINS`` import it once before the command, a run records its
file, a ``bench --devices`` worker imports it too, and each bad VALUE is
the one line the page's table shows.  The plugin is the page's in-process
cell saved as ``pull.py``."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_helpers import tiny_spec
from tests.reliability_helpers import ENV, TINY, assert_one_line_error, cli
from wae_bench.errors import WaeError
from wae_bench.plugin_imports import ENV as PLUGINS_ENV

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "plugins.md"
RUN = ["run", *TINY, "--set", "max_steps=2", "--set", "expost=[]"]


def cell() -> str:
    """The page's in-process plugin cell: a module that registers ``pull`` at import."""
    (block,) = [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", PAGE.read_text(), re.S | re.M)
                if "REGULARIZERS.register" in m.group(1)]
    return block


def wae_bench(args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``wae-bench ARGS`` in a fresh process in ``cwd`` (no plugin variable but ``env``'s)."""
    base = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    return subprocess.run([sys.executable, "-m", "wae_bench", *map(str, args)], cwd=cwd,
                          env={**base, **ENV, **env}, capture_output=True, text=True, timeout=300)


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


@pytest.fixture
def pull(tmp_path) -> Path:
    path = tmp_path / "pull.py"
    path.write_text(cell())
    return path


def test_a_run_of_a_plugin_file_trains_and_records_its_path_and_hash(tmp_path, pull):
    """Given by the variable (absolute) and a flag (relative) both: one
    registration, not a clash with itself."""
    r = wae_bench(["--plugin", "pull.py", *RUN, "--reg", "pull", "--out", "r"], tmp_path,
                  **{PLUGINS_ENV: str(pull)})
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "r" / "config.json").read_text())
    assert rec["versions"]["regularizer"] == f"pull: module wae_bench_plugin_pull from {pull.resolve()}"
    assert rec["plugin_sha256"]["regularizer"] == hashlib.sha256(pull.read_bytes()).hexdigest()
    assert (tmp_path / "r" / "checkpoints").is_dir()
    # without the plugin, the run's next command names the file to give again
    r = wae_bench(["run", "--resume", "--out", "r"], tmp_path)
    assert r.returncode == 2
    assert f"nothing registers it here; give its file again: wae-bench --plugin {pull.resolve()} COMMAND" in r.stderr


def test_the_variable_alone_lists_it_and_a_module_name_and_its_file_are_one_plugin(tmp_path, pull):
    r = wae_bench(["list"], tmp_path, **{PLUGINS_ENV: "pull.py"})
    assert r.returncode == 0, r.stderr
    assert "pull Me et al. 2026, Eq. 1 gaussian" in flat(r.stdout)
    for first, second in (("pull", "pull.py"), ("./pull.py", "pull")):
        r = wae_bench(["--plugin", first, "--plugin", second, "check-plugin", "pull"], tmp_path,
                      PYTHONPATH=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("plugin 'pull' (module ") and "FAIL" not in r.stdout


def test_bench_devices_workers_import_the_plugin(tmp_path, pull):
    """A worker is a fresh ``python -m wae_bench bench ... --only CELL``
    process: it gets the plugin through the variable the parent sets."""
    (tmp_path / "grid.toml").write_text(tiny_spec("filegrid", ["pull"], [0], 2, [], 2).split("[reg.moca]")[0])
    r = wae_bench(["--plugin", "pull.py", "bench", "grid.toml", "--out", "res", "--devices", "cpu", "--no-table"],
                  tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "on cpu (pid" in r.stderr                      # the cell ran in a worker process
    cfg = json.loads((tmp_path / "res" / "cells" / "pull-tiny-digits-s0" / "config.json").read_text())
    assert cfg["versions"]["regularizer"] == f"pull: module wae_bench_plugin_pull from {pull.resolve()}"


def documented(given: str) -> str:
    """The line the page's bad-input table shows for ``given``."""
    rows = dict(re.findall(r"^\| (.+?) \| `(error: [^`]+)` \|$", PAGE.read_text(), re.M))
    return rows[given]


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def no_plugins(monkeypatch):
    monkeypatch.delenv(PLUGINS_ENV, raising=False)


@pytest.mark.parametrize("given, name, source, by", [
    ("a file that is not there", "nope.py", None, "flag"),
    ("a module that is not on `sys.path`", "nope", None, "flag"),
    ("a file that raises on import (the place: the file's innermost line)", "broken.py", "x = 1\ny = 1 / 0\n", "env"),
    ("a file that registers nothing", "helpers.py", "def helper():\n    return 1\n", "flag"),
    ("a built-in's name", "mine.py", "registers moca", "flag"),
])
def test_each_bad_value_is_the_pages_one_line(tmp_path, monkeypatch, capsys, no_plugins, given, name, source, by):
    monkeypatch.chdir(tmp_path)
    if source is not None:
        registers = source.removeprefix("registers ") if source.startswith("registers ") else None
        (tmp_path / name).write_text(source if registers is None else
                                     cell().replace('register("pull")', f'register("{registers}")'))
    if by == "env":
        monkeypatch.setenv(PLUGINS_ENV, name)
    code, out, err = cli([*(["--plugin", name] if by == "flag" else []), "list"], capsys)
    line = assert_one_line_error(code, err)
    assert code == 2 and out == ""
    assert line == documented(given)
    assert f"wae_bench_plugin_{Path(name).stem}" not in sys.modules     # (a failed import is undone)
    assert os.environ.get(PLUGINS_ENV) == (name if by == "env" else None)


def test_an_installed_plugins_name_and_two_files_of_one_name_are_refused(tmp_path):
    """A subprocess: ``my-pkg 0.1`` installed (on PYTHONPATH) with an entry
    point ``pull``, loaded before the file registers its ``pull``."""
    site = tmp_path / "site"
    (site / "my_pkg").mkdir(parents=True)
    (site / "my_pkg" / "__init__.py").write_text(cell().replace('@REGULARIZERS.register("pull")', ""))
    info = site / "my_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wae_bench.regularizers]\npull = my_pkg:Pull\n")
    (tmp_path / "mine.py").write_text(cell())
    r = wae_bench(["--plugin", "mine.py", "list"], tmp_path, PYTHONPATH=str(site))
    assert assert_one_line_error(r.returncode, r.stderr) == documented("an installed plugin's name")
    assert line_of(tmp_path / "mine.py", "@REGULARIZERS.register") == 11    # (the page's "at mine.py:11")
    for folder, name in (("a", "pull"), ("b", "other")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pull.py").write_text(cell().replace('register("pull")', f'register("{name}")'))
    r = wae_bench(["--plugin", "a/pull.py", "--plugin", "b/pull.py", "list"], tmp_path)
    line = assert_one_line_error(r.returncode, r.stderr)
    assert line == documented("two files of one name").replace("/abs/a/pull.py", str(tmp_path.resolve() / "a" / "pull.py"))


def test_debug_after_plugin_shows_the_traceback(tmp_path, monkeypatch, capsys, no_plugins):
    """``wae-bench --plugin FILE --debug ...``: --debug is still the group's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("y = 1 / 0\n")
    with pytest.raises(WaeError, match=r"raised ZeroDivisionError: division by zero \(at broken.py:1\)"):
        cli(["--plugin", "broken.py", "--debug", "list"], capsys)


def test_a_group_option_after_the_command_says_where_it_goes(capsys, no_plugins):
    """``wae-bench bench SPEC --plugin x.py`` (the place a user tries first)."""
    code, _, err = cli(["bench", "spec.toml", "--plugin", "x.py"], capsys)
    assert assert_one_line_error(code, err) == documented("`--plugin` after the command")
    code, _, err = cli(["list", "--debug"], capsys)
    assert assert_one_line_error(code, err) == ("error: --debug is not an option of list but of wae-bench, before "
                                                "the command: wae-bench --debug COMMAND ...")


SLIPS = {   # the page's "Slips refused when it loads": its first column -> that change of the cell
    '`name = "pull"` left out': lambda c: c.replace('    name = "pull"\n', ""),
    "`def penalti(self, x, z, ae, ctx)` for `penalty`": lambda c: c.replace("def penalty(", "def penalti("),
    "`def after_steps(self, x, z, out, ae, ctx)` added for `after_step`":
        lambda c: c + "\n    def after_steps(self, x, z, out, ae, ctx):\n        pass\n",
    "`def penalty(self, z)`": lambda c: c.replace("def penalty(self, x, z, ae, ctx)", "def penalty(self, z)"),
    "`@dataclass` left out before `class PullConfig`": lambda c: c.replace("@dataclass\nclass Pull", "class Pull"),
    "`class PullConfig:` without `(RegularizerConfig)`":
        lambda c: c.replace("class PullConfig(RegularizerConfig):", "class PullConfig:"),
    "a field `hidden: int` (no default) added to `PullConfig`":
        lambda c: c.replace("    lambda_: float = 0.5\n", "    lambda_: float = 0.5\n    hidden: int\n", 1),
}


def slip(given: str) -> tuple[str, str]:
    """The cell changed as the page's row ``given`` says, and the row's line
    (Python's own words for a dataclass field as this Python gives them)."""
    rows = dict(re.findall(r"^\| (.+?) \| `(error: [^`]+)` \|$", PAGE.read_text().split("### Slips")[1].split("\n#")[0],
                           re.M))
    assert set(rows) == set(SLIPS)
    line = rows[given]
    if "non-default argument" in line and sys.version_info >= (3, 13):
        line = line.replace("follows default argument (", "follows default argument 'lambda_' (")
    return SLIPS[given](cell()), line


@pytest.mark.parametrize("given", SLIPS)
def test_each_slip_of_a_newcomers_class_is_the_pages_one_line(tmp_path, monkeypatch, capsys, no_plugins, given):
    """Before: a missing name logged its terms as "/l2" and named it by its
    class; a misspelt penalty() stopped the run as wae-bench's internal
    NotImplementedError, a misspelt after_step() was never called; a Config
    without @dataclass trained at the base's λ; a field without a default
    was Python's TypeError alone."""
    monkeypatch.chdir(tmp_path)
    source, want = slip(given)
    (tmp_path / "pull.py").write_text(source)
    code, out, err = cli(["--plugin", "pull.py", "list"], capsys)
    assert code == 2 and out == ""
    assert assert_one_line_error(code, err) == want


def test_an_installed_plugins_slip_lists_it_as_broken_with_the_fix(tmp_path):
    """The same lines for a package's entry point: `list` shows it broken, and
    `--reg` refuses it naming the fix."""
    site = tmp_path / "site"
    for dist, given in (("noname", '`name = "pull"` left out'),
                        ("nodefault", "a field `hidden: int` (no default) added to `PullConfig`")):
        (site / f"{dist}_pkg").mkdir(parents=True)
        source = slip(given)[0].replace('@REGULARIZERS.register("pull")\n', "").replace('"pull"', f'"{dist}"')
        (site / f"{dist}_pkg" / "__init__.py").write_text(source)
        info = site / f"{dist}_pkg-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}-pkg\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[wae_bench.regularizers]\n{dist} = {dist}_pkg:Pull\n")
    r = wae_bench(["list"], tmp_path, PYTHONPATH=str(site), COLUMNS="400")
    assert r.returncode == 0, r.stderr
    listed = flat(r.stdout + r.stderr)
    assert "plugin 'noname': the class sets no name (a run logs its terms as NAME/TERM); set name = 'noname' in " \
           "class Pull" in listed
    assert "give hidden a default (its paper's value): every field of a plugin's Config needs one" in listed
    r = wae_bench([*RUN, "--reg", "noname"], tmp_path, PYTHONPATH=str(site))
    assert assert_one_line_error(r.returncode, r.stderr) == (
        "error: regularizer 'noname' from noname-pkg 0.1 failed to load (noname_pkg:Pull: plugin 'noname': the "
        "class sets no name (a run logs its terms as NAME/TERM); set name = 'noname' in class Pull); fix or "
        "uninstall the plugin that provides it")


def test_a_plugin_file_imports_the_modules_beside_it_from_any_folder(tmp_path):
    """As a script does: `from my_helpers import ...` in pull.py, run from
    another folder (was: No module named 'my_helpers' ... pip install)."""
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "my_helpers.py").write_text("def squared_norm(z):\n    return z.pow(2).sum(1).mean()\n")
    (plug / "pull.py").write_text(cell().replace("p = z.pow(2).sum(1).mean()", "p = squared_norm(z)")
                                  .replace("from dataclasses import dataclass",
                                           "from dataclasses import dataclass\nfrom my_helpers import squared_norm"))
    assert "squared_norm(z)" in (plug / "pull.py").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = wae_bench(["--plugin", plug / "pull.py", *RUN, "--reg", "pull", "--out", "r"], elsewhere)
    assert r.returncode == 0, r.stderr
    assert (elsewhere / "r" / "config.json").is_file()
