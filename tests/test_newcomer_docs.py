"""Fixes from the newcomer's report (docs/status.md): what the generated
compare spec claims, the README's figures and commands, and small output nits."""
from __future__ import annotations

import tomllib

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
