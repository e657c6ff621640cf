"""Fixes from the newcomer's report (docs/status.md): what the generated
compare spec claims, the README's figures and commands, and small output nits."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from wae_bench.bench import compare
from wae_bench.bench import spec as specs


def _description(regs, sets=()):
    data = compare.spec_data(regs, "digits", [0], list(sets))
    return specs.parse(tomllib.loads(compare.toml_text(data))).bench.description


def test_the_compare_description_states_the_settings_it_runs_with():
    """table.md and the report header print the spec's description: it says
    "default budget" and "real FID" only when they hold."""
    assert _description(["moca", "wae-mmd"]) == ("Head-to-head of moca, wae-mmd on digits (wae-bench compare): "
                                                 "the dataset's default budget for every regularizer, real FID.")
    short = _description(["moca", "wae-mmd"], ["train.epochs=3", "eval.fid_samples=200"])
    assert "default budget but train.epochs=3, eval.fid_samples=200 for every regularizer, real FID" in short
    standin = _description(["moca"], ["eval.features=standin", "train.epochs=1"])
    assert "real FID" not in standin and "stand-in features (NOT FID)" in standin and "train.epochs=1" in standin
    assert _description(["moca"], ['bench.description="mine"']) == "mine"        # the user's own wins
    assert _description(["moca"], ["train.lr=0.01"]).endswith("default budget for every regularizer, real FID.")


ROOT = Path(__file__).resolve().parents[1]


def _markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").rglob("*.md"))]


def test_no_markdown_table_is_broken_by_a_blank_line():
    """A row after a blank line starts a new table: it must be a header
    (followed by |---|), else it renders as a paragraph."""
    broken = []
    for path in _markdown_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines[1:-1], 1):
            if line.startswith("|") and not lines[i - 1].strip() and not lines[i + 1].startswith("|-"):
                broken.append(f"{path.relative_to(ROOT)}:{i + 1}")
    assert not broken


def test_the_readmes_first_run_time_is_the_measured_one():
    readme = " ".join((ROOT / "README.md").read_text().split())
    measured = (ROOT / "benchmarks/results/README.md").read_text()
    assert "a few minutes" not in readme
    low, high = re.search(r"(\d+)–(\d+) s of `time wae-bench run --reg moca`", readme).groups()
    rows = [ln for ln in measured.splitlines() if "wae-bench run --reg moca`" in ln and "weights converted" in ln]
    walls = {int(ln.split("|")[2].split()[0]) for ln in rows}   # the wall-time column
    assert {int(low), int(high)} <= walls and min(walls) == int(low) and max(walls) == int(high)
