"""A bench cell trained with settings its spec no longer resolves to (a
plugin's default λ changed between two invocations) is "stale": never done,
never resumed or retrained over, listed with what changed by --dry-run,
refused in one line by a real run, and marked in the table.  Every run also
records who provides its regularizer (``versions.regularizer``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import wae_bench.evaluate
import wae_bench.run.train
from wae_bench import __version__
from wae_bench.registry import REGULARIZERS, Registry
from wae_bench.regularizer import RegOut, Regularizer
from tests.helpers import run_cli
from tests.reliability_helpers import assert_one_line_error, fake_evaluate_run, install_plugin

pytestmark = pytest.mark.usefixtures("single_thread")

DEFAULT = {"lambda": 0.5}   # the plugin's default λ: a test changes it between two bench invocations
CELL = "pull-tiny-digits-s0"
SPEC = """
[bench]
name = "plugin-change"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["pull"]
seeds = [0]

[train]
epochs = 1
max_steps = 2
batch_size = 32
image_size = 8
latent_dim = 4
expost = []
log_every = 1
device = "cpu"

[eval]
fid_samples = 16
features = "standin"
"""


class Pull(Regularizer):
    """Test plugin: pulls the latents towards 0, with a default λ the test changes."""

    name = "pull"
    paper = "test only"

    @classmethod
    def defaults(cls, setup):
        return dict(DEFAULT)

    def penalty(self, x, z, ae, ctx):
        pull = z.pow(2).mean()
        return RegOut(self.cfg["lambda"] * pull, {"pull": pull})


@pytest.fixture
def pull(monkeypatch, tmp_path):
    """The plugin registered for this test only; training counted, evaluation faked (score = λ)."""
    REGULARIZERS.load_entry_points()
    monkeypatch.setitem(REGULARIZERS._items, "pull", Pull)
    monkeypatch.setitem(DEFAULT, "lambda", 0.5)
    trained: list[str] = []
    real = wae_bench.run.train.train_run

    def train_run(overrides, out, **kw):
        trained.append(Path(out).name)
        return real(overrides, out, **kw)

    monkeypatch.setattr(wae_bench.run.train, "train_run", train_run)
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", fake_evaluate_run(lambda cfg: cfg["reg"]["lambda"]))
    spec = tmp_path / "stale.toml"
    spec.write_text(SPEC)
    return spec, tmp_path / "res", trained


def bench(capsys, spec, out, *args):
    return run_cli(["bench", str(spec), "--out", str(out), "--quiet", *args], capsys)


def test_a_changed_plugin_default_makes_a_done_cell_stale(pull, capsys, monkeypatch):
    spec, out, trained = pull
    assert bench(capsys, spec, out)[0] == 0 and trained == [CELL]
    cell = out / "cells" / CELL
    rec = json.loads((cell / "config.json").read_text())
    assert rec["config"]["reg"]["lambda"] == 0.5
    assert rec["versions"]["regularizer"] == f"pull: module {__name__}"   # registered in-process: its module
    results = (cell / "results.json").read_text()
    assert "| pull | tiny | 0.500 (1/1) |" in (out / "table.md").read_text()

    monkeypatch.setitem(DEFAULT, "lambda", 2.0)                  # the plugin's new release
    code, stdout, _ = bench(capsys, spec, out, "--dry-run")
    assert code == 0 and "stale: reg.lambda" in stdout and "done" not in stdout   # (the table wraps at 80 columns)
    code, stdout, _ = bench(capsys, spec, out, "--dry-run", "--json")
    row = json.loads(stdout)[0]
    assert row["state"] == "stale" and row["stale"] == "reg.lambda 0.5 -> 2.0" and row["config"]["reg"]["lambda"] == 2.0

    code, _, err = bench(capsys, spec, out)                      # a real run: refused, nothing touched
    assert_one_line_error(code, err, CELL, "reg.lambda 0.5 -> 2.0", "remove", "another --out")
    assert trained == [CELL] and (cell / "results.json").read_text() == results

    assert run_cli(["table", str(out)], capsys)[0] == 0          # the old score is not shown as current
    md = (out / "table.md").read_text()
    assert "| pull | tiny | stale (1/1) |" in md and "| pull | tiny | 0.50" not in md

    (cell / "results.json").unlink()                             # half done (config, no scores): stale too
    assert json.loads(bench(capsys, spec, out, "--dry-run", "--json")[1])[0]["stale"] == "reg.lambda 0.5 -> 2.0"

    shutil.rmtree(cell)                                          # the fix the error names
    assert bench(capsys, spec, out)[0] == 0 and trained == [CELL, CELL]
    assert json.loads((cell / "config.json").read_text())["config"]["reg"]["lambda"] == 2.0
    assert "| pull | tiny | 2.00 (1/1) |" in (out / "table.md").read_text()


def test_an_unchanged_cell_stays_done_and_a_setting_named_in_the_spec_is_not_stale(pull, capsys, monkeypatch):
    spec, out, trained = pull
    spec.write_text(SPEC + "\n[reg.pull]\nlambda = 0.5\n")
    assert bench(capsys, spec, out)[0] == 0
    monkeypatch.setitem(DEFAULT, "lambda", 2.0)                  # the spec's own λ wins: nothing changed
    code, stdout, _ = bench(capsys, spec, out, "--dry-run")
    assert code == 0 and "stale" not in stdout and "done" in stdout
    assert bench(capsys, spec, out)[0] == 0 and trained == [CELL]   # skipped as done


def test_the_provider_of_a_regularizer_is_its_distribution_or_module(tmp_path, monkeypatch):
    assert REGULARIZERS.provider("moca") == f"wae-bench {__version__}"     # a built-in: wae-bench's own
    source = "from wae_bench.regularizer import Regularizer\n\nclass Mine(Regularizer):\n    name = 'mine'\n"
    root = install_plugin(tmp_path / "plugins", "my_reg_pkg", source, {"mine": "my_reg_pkg:Mine"})
    monkeypatch.syspath_prepend(str(root))
    reg = Registry("regularizer", "wae_bench.regularizers")
    assert reg.provider("mine") == "my_reg_pkg 0.0.1"                      # an entry point: its distribution
    reg.add("local", Pull)
    assert reg.provider("local") == f"module {__name__}"                   # registered another way
    from wae_bench.run.directory import versions
    assert versions("moca")["regularizer"] == f"moca: wae-bench {__version__}"
    assert "regularizer" not in versions()


def test_a_per_device_default_matches_the_choice_a_cell_recorded_but_a_real_change_does_not():
    """step_mode "auto" and an unset channels_last are chosen per device when a
    run builds: a cell that recorded "eager"/false (the defaults before auto)
    or "graph"/true is the same setting, not stale; eager against graph, or
    any other setting, still is (wae_bench.run.directory.changes)."""
    from wae_bench.run.directory import changes

    base = {"epochs": 30, "reg": {"lambda": 30.0}}
    old = {**base, "step_mode": "eager", "channels_last": False}
    assert changes(old, {**base, "step_mode": "auto", "channels_last": None}) == []
    assert changes({**base, "step_mode": "graph", "channels_last": True}, {**base, "step_mode": "auto"}) == []
    assert changes(old, {**base, "step_mode": "graph", "channels_last": True}) == [
        ("step_mode", "eager", "graph"), ("channels_last", False, True)]
    assert changes(old, {**old, "epochs": 100}) == [("epochs", 30, 100)]


def test_the_committed_digits_cells_are_not_stale_under_todays_defaults():
    """The digits testbed's cells trained before step_mode auto was the
    default (their config.json records "eager"): none is stale now, so
    re-tabling the committed folder keeps its numbers."""
    from wae_bench.bench import spec as spec_mod
    from wae_bench.bench.folder import ResultsDir
    from wae_bench.bench.grid import expand
    from wae_bench.bench.tune import changes

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    folder = ResultsDir(root / "results" / "digits-d-lambda")
    cells = [c for c in expand(spec_mod.load(root / "digits-d-lambda.toml")) if folder.cell_dir(c.id).is_dir()]
    assert len(cells) >= 10
    assert {c.id: changes(folder, c) for c in cells if changes(folder, c)} == {}
