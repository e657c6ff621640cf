"""The tuning protocol ([tune], wae_bench.bench.tune): the validation hold-out,
every plugin's own grid, tuning cells and final cells in the grid, the choice
of the best value by validation score (failed and diverged values never
chosen), resume in the middle of tuning, shards whose final cells wait for
another shard's tuning cells, and the table and plots that state it.

The end-to-end test runs benchmarks/smoke-tune.toml with real training and
evaluation (stand-in features); the scheduling tests fake the training and
the evaluation so that the chosen value is known in advance."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

import wae_bench.evaluate
import wae_bench.data
import wae_bench.run.train
from tests.bench_helpers import run_cli
from tests.helpers import builtin_names
from wae_bench.run import checkpoint
from wae_bench.bench import grid, runner, tune
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.atomic import write_json
from wae_bench.config import TrainConfig, from_dict
from wae_bench.data import Batcher, holdout
from wae_bench.errors import WaeError
from wae_bench.metrics.reference import content_hash
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import Setup
from wae_bench.step.trainer import NonFinite, Trainer

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[1]
SMOKE_TUNE = ROOT / "benchmarks" / "smoke-tune.toml"


# -- the hold-out -------------------------------------------------------------------------
def test_holdout_is_a_seeded_random_subset_fixed_per_dataset():
    idx = holdout.indices(1500, 300, "digits")
    assert torch.equal(idx, holdout.indices(1500, 300, "digits"))           # a pure function
    assert len(idx) == len(set(idx.tolist())) == 300 and torch.equal(idx, idx.sort().values)
    assert not torch.equal(idx, holdout.indices(1500, 300, "cifar10"))       # its seed is the dataset's
    classes = torch.bincount(idx // 150, minlength=10)                       # a class-sorted layout
    assert classes.min() >= 15 and classes.max() <= 45                       # every class, none over-drawn
    assert not torch.equal(idx, torch.arange(300))                           # not "the first N"
    with pytest.raises(WaeError, match="holdout = 1,500 must be between 1 and 1,499"):
        holdout.indices(1500, 1500, "digits")


def test_training_and_evaluation_split_the_training_set_the_same_way_whatever_the_run_seed():
    from wae_bench.data import load_split
    from wae_bench.run.build import load_data, load_val, resolve

    plans = [resolve(from_dict(TrainConfig, {"dataset": "digits", "arch": "tiny", "image_size": 8,
                                             "holdout": 200, "seed": s})) for s in (0, 7)]
    (train_a, _), (train_b, _) = load_data(plans[0]), load_data(plans[1])
    val = load_val(plans[1])
    assert torch.equal(train_a.images, train_b.images) and len(train_a.images) == 1300 and len(val.images) == 200
    full = load_split(plans[0].data, None, "train", 8).images
    held = holdout.indices(1500, 200, "digits")
    keep = torch.ones(1500, dtype=torch.bool)
    keep[held] = False
    assert torch.equal(val.images, full[held]) and torch.equal(train_a.images, full[keep])
    with pytest.raises(WaeError, match="held out no validation images"):
        load_val(resolve(from_dict(TrainConfig, {"dataset": "digits", "arch": "tiny", "image_size": 8})))


# -- every plugin's own grid ----------------------------------------------------------------------
# The setting each built-in tunes (None: nothing).  The test runs over every built-in entry point, so a
# new built-in without a row here fails by name instead of going untested.
TUNED = {"moca": "reg.lambda", "wae-mmd": "reg.lambda", "swae": "reg.lambda", "sinkhorn": "reg.lambda",
         "wae-gan": "reg.lambda", "rae-l2": "reg.lambda", "rae-gp": "reg.lambda", "rae-sn": "reg.beta", "ae": None}


@pytest.mark.parametrize("name", sorted(set(TUNED) | set(builtin_names())))
@pytest.mark.parametrize("arch,dataset", [("a1", "cifar10"), ("a2", "cifar10"), ("a1", "celeba"), ("tiny", "digits")])
def test_each_plugin_tunes_its_own_weight_over_three_decades_around_its_default(name, arch, dataset):
    assert name in TUNED, f"built-in {name!r}: add the setting it tunes to TUNED in tests/test_bench_tune.py"
    assert name in builtin_names(), f"{name!r} is in TUNED but is not a built-in entry point (pip install -e .?)"
    cls = REGULARIZERS.get(name)
    setup = Setup(total_steps=0, batch_size=64, latent_dim=128, arch=arch, dataset=dataset)
    axes = cls.tuning_grid(setup)
    if TUNED[name] is None:
        assert axes == {}
        return
    assert list(axes) == [TUNED[name]]
    values = axes[TUNED[name]]
    default = {**cls.defaults(setup)}.get(TUNED[name][4:] + "_" * (TUNED[name] == "reg.lambda"))
    default = default if default is not None else getattr(cls.Config(), TUNED[name][4:])
    assert default in values and values == sorted(values) and len(set(values)) == len(values)
    assert math.log10(max(values) / min(values)) >= 2.9                     # about three decades
    assert min(values) < default < max(values)                              # around the paper's value
    assert cls.sampler == ("gmm" if name.startswith("rae") else "samples")


# -- the spec and the grid ----------------------------------------------------------------------
def test_tuning_cells_come_first_with_the_tuning_budget_and_final_cells_keep_their_ids():
    s = specs.load(SMOKE_TUNE)
    cells = grid.expand(s)
    tune_cells = [c for c in cells if c.role == "tune"]
    assert cells[:len(tune_cells)] == tune_cells                            # tuning first: a serial run tunes first
    assert [c.id for c in tune_cells] == ["tune-moca-tiny-digits-lambda10-s0", "tune-moca-tiny-digits-lambda100-s0",
                                          "tune-moca-tiny-digits-lambda1e_39-s0",
                                          "tune-rae-sn-tiny-digits-beta0.001-s0", "tune-rae-sn-tiny-digits-beta0.1-s0"]
    assert [(c.id, c.role, c.tuned) for c in cells[len(tune_cells):]] == [
        ("moca-tiny-digits-s0", "final", ("reg.lambda",)), ("moca-tiny-digits-s1", "final", ("reg.lambda",)),
        ("rae-sn-tiny-digits-s0", "final", ("reg.beta",)), ("rae-sn-tiny-digits-s1", "final", ("reg.beta",)),
        ("ae-tiny-digits-s0", "plain", ()), ("ae-tiny-digits-s1", "plain", ())]
    configs = grid.resolve_all(cells)
    for c in tune_cells:      # every regularizer: the same budget, the hold-out, only its own ex-post density
        cfg = configs[c.id]
        assert (cfg["max_steps"], cfg["holdout"], cfg["epochs"]) == (6, 300, 1)
        assert cfg["expost"] == (["gmm"] if c.regularizer == "rae-sn" else [])
        assert tune.eval_settings(s, c).split == "val" and tune.eval_settings(s, c).fid_samples == 128
    finals = [c for c in cells if c.role != "tune"]
    assert all(configs[c.id]["holdout"] == 0 and configs[c.id]["max_steps"] == 8 for c in finals)
    assert all(tune.eval_settings(s, c) == s.eval for c in finals)
    assert {c.group for c in tune_cells} == {c.group for c in finals if c.role == "final"}


def test_table1_specs_tune_every_regularizer_by_one_protocol():
    for name in ("table1-cifar10", "table1-celeba"):
        s = specs.load(ROOT / "benchmarks" / f"{name}.toml")
        if any(r not in REGULARIZERS for r in s.bench.regularizers):
            pytest.skip("not every regularizer is registered")
        cells = grid.expand(s)
        configs = grid.resolve_all([c for c in cells if c.role == "tune"])
        assert {(c["epochs"], c["holdout"], c["max_steps"]) for c in configs.values()} == {(30, 5000, 0)}
        for reg in s.bench.regularizers:
            for arch in s.bench.archs:
                mine = [c for c in cells if c.role == "tune" and c.regularizer == reg and c.arch == arch]
                assert len(mine) == (0 if reg == "ae" else 7), (reg, arch)
        moca_a1 = sorted(dict(c.axes)["reg.lambda"] for c in cells if c.id.startswith("tune-moca-a1-"))
        assert {10, 30, 100, 300, 1000, 3000} <= set(moca_a1)                # the grid at least


@pytest.mark.parametrize("extra,message", [
    ('[reg.moca.tune]\n"reg.lambda" = [1, 10]\n', "[reg.moca.tune] sets tuning axes but the spec has no [tune] table"),
    ('[tune]\nepochs = 2\n', "tune.holdout must name how many training images"),
    ('[tune]\nholdout = 10\nmetric = "pr"\n', "tuning picks the lowest score; choose fid or kid"),
    ('[tune]\nholdout = 10\n[grid]\n"reg.lambda" = [1, 10]\n', "is tuned and also a grid axis of moca"),
    ('[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.lambda" = []\n', 'axis [reg.moca.tune] "reg.lambda" has no values'),
    # the tuning protocol's own keys: the final cells would hold out images / train the tuned epochs (F-f)
    ('[tune]\nholdout = 10\n[reg.moca.tune]\nholdout = [100, 200]\n',
     'tuning axis [reg.moca.tune] "holdout" cannot be tuned (tune.holdout sets it for the tuning cells'),
    ('[tune]\nholdout = 10\n[reg.moca.tune]\nepochs = [1, 2]\n', "tune reg.KEY (a regularizer setting) or one of: "
                                                                 "batch_size,"),
    ('[tune]\nholdout = 10\n[reg.moca.tune]\ndevice = ["cpu"]\n', "(a location, not a setting"),
    ('[tune]\nholdout = 10\nseeds = []\n', "tune.seeds is empty; list at least one seed"),
    # KID subsets larger than the validation split: refused before any tuning cell trains (F-i)
    ('[tune]\nholdout = 300\nfid_samples = 128\nmetric = "kid"\n',
     'draws subsets of eval.kid_subset_size = 1000 images from each side, but a tuning score has only '
     'tune.holdout = 300 validation images and tune.fid_samples = 128 generated images; set '
     'eval.kid_subset_size = 128 or less'),
])
def test_bad_tuning_specs_are_refused_in_one_line(tmp_path, capsys, extra, message):
    p = tmp_path / "bad.toml"
    p.write_text('[bench]\nname = "bad"\ndatasets = ["digits"]\nregularizers = ["moca"]\n' + extra)
    code, _, err = run_cli(["bench", str(p), "--dry-run", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_holdout_larger_than_the_training_set_stops_the_bench_in_one_line(tmp_path, capsys):
    code, _, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "r"), "--set", "tune.holdout=1500"],
                           capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "holdout = 1,500 must be between 1 and 1,499" in errors[0], err
    assert "Traceback" not in err and not (tmp_path / "r" / "cells").exists()    # no cell ran, none failed


def test_the_dry_run_warns_of_a_holdout_the_known_training_set_cannot_fit(tmp_path, capsys):
    """The digits need no scan (embedded, 1,500 training images): the dry run
    still warns, as it does for scanned data, instead of only a negative estimate."""
    code, out, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "r"), "--dry-run",
                              "--set", "tune.holdout=5000"], capsys)
    text = " ".join((out + err).split())
    assert code == 0 and ("warning: tune.holdout = 5,000 would hold out all of the 1,500 digits training images found, "
                          "leaving none to train on (one batch is 32)") in text and "--set tune.holdout=N, at most 1,468" in text, text
    code, out, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "r"), "--dry-run"], capsys)
    assert code == 0 and "warning: tune.holdout" not in out + err


def test_dry_run_shows_tuning_cells_and_pending_tuned_values(tmp_path, capsys):
    code, out, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "r"), "--dry-run", "--json"], capsys)
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["tune-moca-tiny-digits-lambda10-s0"]["role"] == "tune"
    assert rows["tune-moca-tiny-digits-lambda10-s0"]["config"]["reg"]["lambda"] == 10.0
    final = rows["moca-tiny-digits-s0"]
    assert final["role"] == "final" and final["tuning"] == "tuned λ pending"
    assert final["config"]["reg"]["lambda"] is None                          # not the default: chosen later
    assert rows["ae-tiny-digits-s0"]["role"] == "plain" and "tuning" not in rows["ae-tiny-digits-s0"]
    code, out, _ = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "r"), "--dry-run"], capsys)
    assert "(tuned λ" in out and "(tuned β" in out and "tuning cells are scored on the validation" in out
    assert not (tmp_path / "r").exists()


# -- end to end on the smoke data ----------------------------------------------------------------------
def test_smoke_tuning_end_to_end_killed_mid_tuning_then_resumed(tmp_path, monkeypatch, capsys):
    """Killed (SIGINT) in the middle of the second tuning cell, then resumed:
    the done tuning cell is skipped, the killed one resumes from its
    checkpoint, the diverged value is recorded and never chosen, the final
    cells train with the best validation value, the table states it and the
    plot is written; no tuning batch ever holds a validation image."""
    out = tmp_path / "res"
    served: dict[str, list[bytes]] = {}
    current = {"cell": ""}
    real_train, real_batch, real_step = wae_bench.run.train.train_run, Batcher.batch, Trainer.step

    def train_run(overrides, run_dir, **kw):
        current["cell"] = Path(run_dir).name
        return real_train(overrides, run_dir, **kw)

    def batch(self, step):
        served.setdefault(current["cell"], []).extend(
            x.numpy().tobytes() for x in self.images.index_select(0, self.indices(step)))
        return real_batch(self, step)

    steps = {"n": 0}

    def step(self, x):
        steps["n"] += 1
        r = real_step(self, x)
        if current["cell"] == "tune-moca-tiny-digits-lambda100-s0" and int(self.t) == 3 and kill["on"]:
            os.kill(os.getpid(), signal.SIGINT)                # Ctrl-C: the trainer saves and stops
        return r

    kill = {"on": True}
    monkeypatch.setattr(wae_bench.run.train, "train_run", train_run)
    monkeypatch.setattr(Batcher, "batch", batch)
    monkeypatch.setattr(Trainer, "step", step)
    code, _, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(out), "--quiet"], capsys)
    assert code == 130 and "rerun the same bench command to continue" in err, err
    killed = out / "cells" / "tune-moca-tiny-digits-lambda100-s0"
    assert int(checkpoint.latest(killed)[1]["t"]) == 3 and not (killed / "results.json").exists()
    assert not (out / "cells" / "moca-tiny-digits-s0").exists()

    kill["on"], steps["n"] = False, 0
    code, _, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    err = " ".join(err.split())                                 # (rich wraps long lines)
    assert "skipping 1 cell(s) already done" in err and "1 tuning cell(s) diverged (recorded, never chosen)" in err
    # resumed at step 3 of 6; the diverged cell stops at its first finiteness check (log_every = 4 steps);
    # 2 rae-sn tuning cells of 6 steps; 6 final cells of 8
    assert steps["n"] == 3 + 4 + 2 * 6 + 6 * 8

    s = specs.load(SMOKE_TUNE)
    folder = ResultsDir(out)
    val = holdout.split(wae_bench.data.load_split(
        wae_bench.registry.DATASETS.get("digits"), None, "train", 8), 300, "digits")[1].images
    kept_val = {x.numpy().tobytes() for x in val}
    for c in (c for c in grid.expand(s) if c.role == "tune"):
        if c.id.endswith("lambda1e_39-s0"):
            fail = folder.failure(c.id)
            assert fail["diverged"] is True and "non-finite" in fail["error"]
            continue
        res = folder.results(c.id)
        ref = res["protocol"]["reference"]
        assert ref["split"] == "val" and ref["n"] == 300 and ref["content_sha256"] == content_hash(val)
        assert ref["holdout"]["size"] == 300 and ref["holdout"]["seed"] == holdout.seed("digits")
        assert set(res["scores"]) == {tune.eval_settings(s, c).what[0]}
        assert served[c.id] and kept_val.isdisjoint(served[c.id])           # never a validation image
    assert any(not kept_val.isdisjoint(v) for k, v in served.items() if not k.startswith("tune-"))  # (the check bites)

    for reg, what, key, values in (("moca", "samples", "reg.lambda", [10, 100]), ("rae-sn", "gmm", "reg.beta",
                                                                                   [0.001, 0.1])):
        name = key[4:]
        scores = {v: folder.results(f"tune-{reg}-tiny-digits-{name}{v}-s0")["scores"][what]["fid"] for v in values}
        best = min(scores, key=scores.get)
        for seed in (0, 1):
            rec = json.loads((out / "tuning" / f"{reg}-tiny-digits-s{seed}.json").read_text())
            assert rec["values"] == {key: best} and rec["score"] == scores[best]
            cfg = json.loads((out / "cells" / f"{reg}-tiny-digits-s{seed}" / "config.json").read_text())["config"]
            assert cfg["reg"][name] == best and cfg["holdout"] == 0
            assert folder.results(f"{reg}-tiny-digits-s{seed}")["protocol"]["reference"]["split"] == "test"
        if reg == "moca":
            assert [p["state"] for p in rec["points"]] == ["ok", "ok", "diverged"] and rec["grid"] == {key: [10, 100,
                                                                                                             1e39]}
    md = (out / "table.md").read_text()
    lam = json.loads((out / "tuning" / "moca-tiny-digits-s0.json").read_text())["values"]["reg.lambda"]
    assert f"| moca | tiny | λ = {lam}, tuned over λ ∈ {{10, 100, 1e+39}} at 1 epoch capped at 6 steps |" in md
    assert "| ae | tiny | nothing to tune |" in md
    assert "λ = 1e+39: diverged (non-finite" in md and "(chosen)" in md and "300 training images held out" in md
    rows = list(csv.DictReader(io.StringIO((out / "tuning.csv").read_text())))   # (by name: columns are added at the end)
    assert len(rows) == 5 and sum(r["chosen"] == "True" for r in rows) == 2
    for name in ("tune-fid-vs-lambda-moca-digits.png", "tune-fid-vs-beta-rae-sn-digits.png"):
        assert (out / "plots" / name).stat().st_size > 5000

    code, _, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(out), "--quiet", "--no-table"], capsys)
    assert code == 0 and "skipping 11 cell(s) already done or diverged" in " ".join(err.split())   # not retried
    with pytest.raises(WaeError, match="held out no validation images"):
        wae_bench.evaluate.evaluate_run(out / "cells" / "ae-tiny-digits-s0", split="val", features="standin",
                                        fid_samples=16, quiet=True)


# -- scheduling: shards, waiting, every value failed, parallel workers --------------------------------------
SPEC = """
[bench]
name = "sched"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca", "ae"]
seeds = [0, 1]

[train]
max_steps = 4

[eval]
features = "standin"

[tune]
holdout = 100
max_steps = 2

[reg.moca.tune]
"reg.lambda" = [1, 10, 1000]
"""
TUNE_IDS = ["tune-moca-tiny-digits-lambda1-s0", "tune-moca-tiny-digits-lambda10-s0",
            "tune-moca-tiny-digits-lambda1000-s0"]


@pytest.fixture
def fake(monkeypatch):
    """No training or scoring: train_run writes the config it was given,
    evaluate_run a score of |log10 λ − 1| + 5 (best: λ = 10) on the split it
    was asked for; FAIL_LAMBDAS makes those tuning cells fail, DIVERGE_LAMBDAS
    diverge (a non-finite loss)."""
    trained = []

    def train_run(overrides, out, **kw):
        trained.append(Path(out).name)
        lam = overrides["reg"].get("lambda", 0)
        if str(lam) in os.environ.get("FAIL_LAMBDAS", "").split(","):
            raise WaeError("out of memory (fake)")
        if str(lam) in os.environ.get("DIVERGE_LAMBDAS", "").split(","):
            raise NonFinite("loss is nan (fake)")
        write_json(Path(out) / "config.json", {"config": overrides})
        return Path(out)

    def evaluate_run(run_dir, **kw):
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        lam = cfg["reg"].get("lambda") or 10
        res = {"scores": {w: {"fid": abs(math.log10(lam) - 1) + 5} for w in kw["what"]},
               "protocol": {"reference": {"split": kw["split"]}}, "run": {}}
        write_json(Path(run_dir) / "results.json", res)
        return res

    monkeypatch.setattr(wae_bench.run.train, "train_run", train_run)
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", evaluate_run)
    return trained


def scored_by(fid_of):
    """An ``evaluate_run`` that scores a cell ``fid_of(λ, seed)`` (for
    ``fake``'s, to give tuning values chosen scores per seed)."""
    def evaluate_run(run_dir, **kw):
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        fid = fid_of(cfg["reg"].get("lambda") or 10, cfg["seed"])
        res = {"scores": {w: {"fid": fid} for w in kw["what"]}, "protocol": {"reference": {"split": kw["split"]}},
               "run": {}}
        write_json(Path(run_dir) / "results.json", res)
        return res
    return evaluate_run


def sched(tmp_path: Path, capsys, *args) -> tuple[int, str]:
    p = tmp_path / "sched.toml"
    p.write_text(SPEC)
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", *args], capsys)
    return code, " ".join(err.split())                         # (rich wraps long lines)


def test_a_final_cell_waits_for_tuning_cells_on_another_shard_then_runs(tmp_path, capsys, fake):
    # cells: 3 tuning, moca s0, moca s1, ae s0, ae s1; shard 1/2 = lambda10, moca s0, ae s0
    code, err = sched(tmp_path, capsys, "--shard", "1/2")
    assert code == 0 and fake == [TUNE_IDS[1], "ae-tiny-digits-s0"], err
    assert "waiting" in err and "1 cell(s) wait for tuning cells not yet run" in err
    md = (tmp_path / "res" / "table.md").read_text()
    assert "| moca | tiny | tuned λ pending |" in md
    # the Settings block does not show the plugin default as the tuned value (closing5)
    assert "- moca: tuned: λ = not chosen yet" in md, md
    moca = next(r for r in csv.DictReader(io.StringIO((tmp_path / "res" / "table.csv").read_text()))
                if r["regularizer"] == "moca")
    assert json.loads(moca["settings"])["lambda"] is None        # (a number's column: null, not the text)
    code, err = sched(tmp_path, capsys, "--shard", "0/2")    # lambda1, lambda1000, moca s1, ae s1
    assert code == 0 and fake[2:] == [TUNE_IDS[0], TUNE_IDS[2], "moca-tiny-digits-s1", "ae-tiny-digits-s1"], err
    # chosen, moca s0 not run yet: its settings are the chosen ones, not the plugin default's 100
    assert "- moca: tuned: λ = 10;" in (tmp_path / "res" / "table.md").read_text()
    code, err = sched(tmp_path, capsys, "--shard", "1/2")
    assert code == 0 and fake[6:] == ["moca-tiny-digits-s0"], err
    res = tmp_path / "res"
    for seed in (0, 1):
        cfg = json.loads((res / "cells" / f"moca-tiny-digits-s{seed}" / "config.json").read_text())["config"]
        assert cfg["reg"]["lambda"] == 10 and cfg["max_steps"] == 4 and "holdout" not in cfg
    tcfg = json.loads((res / "cells" / TUNE_IDS[0] / "config.json").read_text())["config"]
    assert (tcfg["holdout"], tcfg["max_steps"], tcfg["reg"]["lambda"]) == (100, 2, 1)
    assert json.loads((res / "cells" / TUNE_IDS[0] / "results.json").read_text())["protocol"]["reference"] == {
        "split": "val"}
    md = (res / "table.md").read_text()
    assert "λ = 1: 6.00; λ = 10: 5.00 (chosen); λ = 1000: 7.00" in md
    assert "| moca | tiny | λ = 10, tuned over λ ∈ {1, 10, 1000} at 30 epochs capped at 2 steps |" in md


def test_the_tuning_line_reads_the_choice_of_any_final_cell_of_its_group(tmp_path, capsys, fake):
    """Seed 0's final cell ran (its choice recorded), seed 1's not yet: the
    group's line marks the choice, not "best so far", and its status is set
    apart from the last value."""
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*,moca-tiny-digits-s0")
    assert code == 0 and fake == [*TUNE_IDS, "moca-tiny-digits-s0"], err
    (line,) = [ln for ln in (tmp_path / "res" / "table.md").read_text().splitlines()
               if "moca · tiny · digits, validation" in ln]
    assert line.endswith("λ = 1: 6.00; λ = 10: 5.00 (chosen); λ = 1000: 7.00"), line
    (tmp_path / "b").mkdir()
    code, err = sched(tmp_path / "b", capsys, "--only", "tune-moca-tiny-digits-lambda1-s0")
    (line,) = [ln for ln in (tmp_path / "b" / "res" / "table.md").read_text().splitlines()
               if "moca · tiny · digits, validation" in ln]
    assert line.endswith("λ = 1: 6.00; λ = 10: pending; λ = 1000: pending — (waiting for its tuning cells)"), line


def test_a_failed_tuning_cell_blocks_the_choice_until_it_is_retried(tmp_path, capsys, fake, monkeypatch):
    """λ = 10 (the best) crashes: the final cell does not train at the next
    best, it waits in one line with the fix and nothing is recorded; the
    rerun retries λ = 10, and only then is the choice made, at λ = 10.
    (Before: the final cell trained at λ = 1 at once, and the retried λ = 10
    then scored better than the value marked chosen.)"""
    monkeypatch.setenv("FAIL_LAMBDAS", "10")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    assert code == 2 and "1 cell(s) failed (tune-moca-tiny-digits-lambda10-s0)" in err, err
    assert "moca-tiny-digits-s0" not in fake and not (tmp_path / "res" / "tuning").exists()
    assert ("final cells wait for 1 failed tuning cell(s) (tune-moca-tiny-digits-lambda10-s0): fix the cause and "
            "rerun (without --skip-failed) to retry them") in err, err
    code, out, _ = run_cli(["bench", str(tmp_path / "sched.toml"), "--out", str(tmp_path / "res"), "--dry-run",
                            "--set", "bench.seeds=[0]"], capsys)
    assert "waits for 1 failed tuning cell(s)" in " ".join(out.split())
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--skip-failed", "--no-table")
    assert code == 0 and "wait for 1 failed tuning cell(s)" in err and "moca-tiny-digits-s0" not in fake, err

    monkeypatch.delenv("FAIL_LAMBDAS")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0 and fake[-2:] == ["tune-moca-tiny-digits-lambda10-s0", "moca-tiny-digits-s0"], err
    rec = json.loads((tmp_path / "res" / "tuning" / "moca-tiny-digits-s0.json").read_text())
    assert rec["values"] == {"reg.lambda": 10} and [p["state"] for p in rec["points"]] == ["ok", "ok", "ok"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "res" / "tuning.csv").read_text())))
    assert [r["chosen"] for r in rows] == ["False", "True", "False"]


def test_a_tuned_batch_larger_than_the_training_images_left_fails_that_value_not_the_grid(tmp_path, capsys, fake,
                                                                                        monkeypatch):
    """``[reg.moca.tune] batch_size = [8, 5000]`` on the digits: the hold-out
    leaves fewer images than the 5000 batch.  That stopped the whole bench
    at that tuning cell, as a hold-out wrong for every cell does, naming
    ``lower train.batch_size``, a key the spec does not set it by (and a grid
    may not drop a value in place); it is this value's failure: recorded, the
    other value trains, and --exclude-failed-tuning makes the choice."""
    faked = wae_bench.run.train.train_run

    def train_run(overrides, out, **kw):
        if overrides.get("batch_size") == 5000:
            raise holdout.HoldoutSize("holdout = 100 leaves 1400 of the 1500 digits training images, fewer than one "
                                      "batch of 5000; lower train.batch_size (--set train.batch_size=N)")
        return faked(overrides, out, **kw)

    monkeypatch.setattr(wae_bench.run.train, "train_run", train_run)
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.replace('"reg.lambda" = [1, 10, 1000]', 'batch_size = [8, 5000]'))
    args = ["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--set", "bench.seeds=[0]", "--no-table"]
    code, _, err = run_cli(args, capsys)
    err = " ".join(err.split())
    assert code == 2 and "1 cell(s) failed (tune-moca-tiny-digits-batch_size5000-s0)" in err, err
    assert "tune-moca-tiny-digits-batch_size8-s0" in fake and "ae-tiny-digits-s0" in fake, err   # (the grid went on)
    fail = ResultsDir(tmp_path / "res").failure("tune-moca-tiny-digits-batch_size5000-s0")["error"]
    assert fail == ("holdout = 100 leaves 1400 of the 1500 digits training images, fewer than one batch of 5000, this "
                    "tuning cell's batch_size: a failure of this value (--exclude-failed-tuning excludes it from the "
                    "choice)"), fail
    code, _, err = run_cli([*args, "--exclude-failed-tuning"], capsys)
    assert code == 0 and fake[-1] == "moca-tiny-digits-s0", err
    rec = json.loads((tmp_path / "res" / "tuning" / "moca-tiny-digits-s0.json").read_text())
    assert rec["values"] == {"batch_size": 8}, rec


def test_diverged_values_are_never_chosen_and_all_diverged_fails_the_final_cell(tmp_path, capsys, fake,
                                                                                monkeypatch):
    monkeypatch.setenv("DIVERGE_LAMBDAS", "10")               # a result: the choice is made without it
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    assert code == 0 and "1 tuning cell(s) diverged" in err, err
    rec = json.loads((tmp_path / "res" / "tuning" / "moca-tiny-digits-s0.json").read_text())
    assert rec["values"] == {"reg.lambda": 1} and [p["state"] for p in rec["points"]] == ["ok", "diverged", "ok"]

    monkeypatch.setenv("DIVERGE_LAMBDAS", "1,10,1000")
    (tmp_path / "res2").mkdir()
    p = tmp_path / "sched.toml"
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res2"), "--quiet", "--set", "bench.seeds=[0]"],
                           capsys)
    assert code == 2 and "moca-tiny-digits-s0" in err
    fail = ResultsDir(tmp_path / "res2").failure("moca-tiny-digits-s0")
    assert "every tuning cell of moca-tiny-digits-s0 diverged" in fail["error"]


def test_parallel_workers_start_a_final_cell_only_after_its_tuning_group(tmp_path):
    """run_parallel with two slots and a fake worker that logs its start and
    end: each final cell starts after every tuning cell of its group ended."""
    p = tmp_path / "sched.toml"
    p.write_text(SPEC)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "res")
    folder.claim(s)
    log = tmp_path / "log.txt"
    worker = ("import json, sys, time, pathlib\n"
              "res, cid, what, log = sys.argv[1:]\n"
              "open(log, 'a').write(f'start {cid} {time.time()}\\n')\n"
              "time.sleep(0.3 if cid.startswith('tune-') else 0.05)\n"
              "d = pathlib.Path(res) / 'cells' / cid; d.mkdir(parents=True, exist_ok=True)\n"
              "(d / 'results.json').write_text(json.dumps({'scores': {what: {'fid': len(cid)}}}))\n"
              "open(log, 'a').write(f'end {cid} {time.time()}\\n')\n")

    def command(cell, device):
        what = tune.eval_settings(s, cell).what[0]
        return [sys.executable, "-c", worker, str(folder.path), cell.id, what, str(log)]

    cells = grid.expand(s)
    out = runner.run_parallel(folder, s, cells, ["cpu", "cpu"], command)
    assert sorted(o.state for o in out) == ["done"] * len(cells)
    times = {}
    for line in log.read_text().splitlines():
        kind, cid, t = line.split()
        times[(kind, cid)] = float(t)
    last_tuning_end = max(times[("end", cid)] for cid in TUNE_IDS)
    for seed in (0, 1):
        assert times[("start", f"moca-tiny-digits-s{seed}")] >= last_tuning_end
    assert times[("start", "ae-tiny-digits-s0")] < last_tuning_end             # plain cells need not wait

    other = ResultsDir(tmp_path / "other")                                      # tuning cells on another shard
    other.claim(s)
    out = runner.run_parallel(other, s, [c for c in cells if c.role != "tune"], ["cpu"], command)
    assert {o.cell.id: o.state for o in out if o.cell.regularizer == "moca"} == {
        "moca-tiny-digits-s0": "waiting", "moca-tiny-digits-s1": "waiting"}


def test_a_tune_spec_says_which_regularizers_have_nothing_to_tune(tmp_path, capsys):
    """No silent "no tuning cells": a plugin without tuning_spans (here ae) is
    named in one line with the fix; the others are not."""
    spec = ROOT / "benchmarks/smoke-tune.toml"
    code, out, err = run_cli(["bench", str(spec), "--dry-run", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert "ae: nothing to tune (no tuning_spans); give [reg.ae.tune] values to tune it" in err
    assert "moca: nothing" not in err and "rae-sn: nothing" not in err
    assert err.count("nothing to tune") == 1


def test_the_tuning_section_says_when_the_choice_may_be_seed_noise(tmp_path, capsys, fake, monkeypatch):
    """One tuning seed: "spread unknown"; two: a choice that beats the next
    value by less than the seed spread is marked.  The dry-run shows the
    resolved tuning seeds (the first of bench.seeds by default), not []."""
    code, out, err = run_cli(["bench", str(SMOKE_TUNE), "--out", str(tmp_path / "d"), "--dry-run"], capsys)
    assert code == 0 and '"seeds": [0]' in " ".join(out.split()), out

    # λ = 10: 5.0 and 7.0 (mean 6.0, std 1.41); λ = 1: 6.2 twice; λ = 1000: 7.0
    noisy = scored_by(lambda lam, seed: {1: 6.2, 10: 5.0 + 2 * seed}.get(lam, 7.0))

    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    md = " ".join((tmp_path / "res" / "table.md").read_text().split())
    assert "one tuning seed: spread unknown" in md and "below the seed spread" not in md
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", noisy)
    p = tmp_path / "sched.toml"
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res2"), "--quiet", "--set", "bench.seeds=[0]",
                            "--set", "tune.seeds=[0,1]"], capsys)
    assert code == 0, err
    md = " ".join((tmp_path / "res2" / "table.md").read_text().split())
    assert "one tuning seed" not in md
    assert "λ = 10: 6.00 (chosen)" in md
    assert "(margin 0.20 to λ = 1 is below the seed spread, std 1.00: the choice may be noise)" in md
    # tuning.csv: each value's seed scores and their sample std (empty with one seed: see the first table)
    rows = {r["tuned:reg.lambda"]: r for r in csv.DictReader(io.StringIO((tmp_path / "res2" / "tuning.csv").read_text()))}
    assert rows["10"]["val:standin-fid:scores"] == "5.0 7.0" and float(rows["10"]["val:standin-fid:std"]) == pytest.approx(2 ** 0.5)
    assert rows["1"]["val:standin-fid:std"] == "0.0" and rows["10"]["chosen"] == "True"
    one = list(csv.DictReader(io.StringIO((tmp_path / "res" / "tuning.csv").read_text())))
    assert one and all(r["val:standin-fid:std"] == "" and len(r["val:standin-fid:scores"].split()) == 1 for r in one)


def test_a_choice_at_the_edge_of_its_grid_says_to_widen_it(tmp_path, capsys, fake):
    """λ = 10 is best; over {10, 100, 1000} it is the lowest value, so the
    best may lie below: the tuning line says so and names the table to widen
    (over {1, 10, 1000} it is not: no note, as the tests above assert)."""
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.replace('"reg.lambda" = [1, 10, 1000]', '"reg.lambda" = [10, 100, 1000]'))
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--set", "bench.seeds=[0]"],
                           capsys)
    assert code == 0, err
    (line,) = [ln for ln in (tmp_path / "res" / "table.md").read_text().splitlines()
               if "moca · tiny · digits, validation" in ln]
    assert line.endswith("λ = 10: 5.00 (chosen); λ = 100: 6.00; λ = 1000: 7.00 — (at the edge of the grid: "
                         "λ = 10, its lowest value; widen [reg.moca.tune])"), line
