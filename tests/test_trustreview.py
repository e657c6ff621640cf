"""What the GPU session's tuned numbers rest on (a correctness review):

- the tuning choice reads each tuning cell's score from the evaluation the
  tuning protocol asks for (the validation split, ``tune.fid_samples``
  images), never from another one at the top of its ``results.json`` (a
  re-score on the test split, or with fewer images); a tuning cell with no
  such evaluation is scored on the validation split again by the next run
  (training and scoring faked: tests/test_bench_tune.py's ``fake``, best
  λ = 10 on every split); with ``tune.metric = "kid"``, by the lowest KID
  mean (not its std, nor the FID beside it); each arch of a grid by its
  own tuning cells; over two tuning seeds by the lowest mean (not the
  lowest single score, nor one seed's best);
- ``bench --concurrent`` of a tuned grid trained and scored for real: the
  cells scored in between the rounds of the others change nothing, every
  checkpoint, score and the tuned value equal the serial bench's (the
  concurrent tests of tests/test_bench_concurrent.py fake the scoring)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import wae_bench.evaluate
from tests.bench_helpers import run_cli, tiny_spec
from tests.reliability_helpers import cli, diff_states
from tests.test_bench_tune import SPEC, TUNE_IDS, fake, sched, scored_by  # noqa: F401 - (fake: a fixture)
from wae_bench import results
from wae_bench.atomic import write_json
from wae_bench.run import checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")

# Another evaluation of a tuning cell than the one its protocol asks for: on the test split, or of
# fewer images than tune.fid_samples (the sched spec's default, 1,000).
OTHER = {"test split": {"reference": {"split": "test"}},
         "64 images": {"reference": {"split": "val"}, "generated": {"samples": {"n": 64}}}}
BEST_ELSEWHERE = 1.0   # λ = 1000's score under that other evaluation: the lowest of all (its val score: 7)


def _lambda(res: Path, cell_id: str):
    return json.loads((res / "cells" / cell_id / "config.json").read_text())["config"]["reg"]["lambda"]


@pytest.mark.parametrize("other", list(OTHER))
def test_a_tuning_cell_rescored_otherwise_is_chosen_by_its_validation_score(tmp_path, capsys, fake, other):
    """λ = 1000's tuning cell re-scored under another protocol (`wae-bench eval`
    of the cell folder; results.json keeps the validation score in its history):
    the final cells train at λ = 10, the best validation score, not at λ = 1000."""
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*")
    assert code == 0, err
    res = tmp_path / "res"
    results.write(res / "cells" / TUNE_IDS[2], {"scores": {"samples": {"fid": BEST_ELSEWHERE}},
                                                "protocol": OTHER[other], "run": {}})
    assert results.read(res / "cells" / TUNE_IDS[2])["history"]      # (the validation score kept below)
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*,moca-*")
    assert code == 0, err
    assert _lambda(res, "moca-tiny-digits-s0") == _lambda(res, "moca-tiny-digits-s1") == 10
    assert "λ = 1: 6.00; λ = 10: 5.00 (chosen); λ = 1000: 7.00" in (res / "table.md").read_text()


@pytest.mark.parametrize("other", list(OTHER))
def test_a_tuning_cell_scored_only_otherwise_is_scored_on_the_validation_split_again(tmp_path, capsys, fake,
                                                                                      other):
    """λ = 1000's tuning cell holds only another evaluation (its results.json
    written by another protocol alone): it is not done for the tuning protocol,
    so the next run scores it on the validation split, and the choice is made
    on that score."""
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*")
    assert code == 0, err
    res = tmp_path / "res"
    write_json(res / "cells" / TUNE_IDS[2] / "results.json",
               {"scores": {"samples": {"fid": BEST_ELSEWHERE}}, "protocol": OTHER[other], "run": {}})
    fake.clear()
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*,moca-*")
    assert code == 0, err
    assert fake[0] == TUNE_IDS[2]                                     # (resumed: scored again)
    top = json.loads((res / "cells" / TUNE_IDS[2] / "results.json").read_text())
    assert top["protocol"]["reference"] == {"split": "val"} and top["scores"]["samples"]["fid"] == 7.0
    assert _lambda(res, "moca-tiny-digits-s0") == 10


def test_a_concurrent_tuned_grid_with_real_scores_ends_as_the_serial_one(tmp_path, capsys):
    """``bench --concurrent 2`` of a tuned grid, trained and scored for real
    (stand-in features): the tuning cells end and are scored on the
    validation split in between the rounds of a longer AE cell (its ex-post
    GMM fitted after), the final MoCA cells start once their tuning is done.
    Every checkpoint, every score and the tuned λ equal the serial bench's."""
    spec = tmp_path / "conc.toml"
    spec.write_text(tiny_spec("conc", ["moca", "ae"], [0], 10, ["gmm"], ckpt_every=4, grid=CONC_TUNE))
    outs = {}
    for name, extra in (("serial", []), ("conc", ["--concurrent", "2"])):
        code, _, err = cli(["bench", spec, "--out", tmp_path / name, "--quiet", "--no-table", *extra], capsys)
        assert code == 0, err
        outs[name] = tmp_path / name / "cells"
    names = sorted(p.name for p in outs["serial"].iterdir())
    assert names == sorted(p.name for p in outs["conc"].iterdir()) and len(names) == 5
    for n in names:
        a, b = outs["serial"] / n, outs["conc"] / n
        for ca, cb in zip(checkpoint.checkpoints(a), checkpoint.checkpoints(b), strict=True):
            assert diff_states(checkpoint.load(ca), checkpoint.load(cb)) == [], ca
        ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
        ref_a, ref_b = ({k: v for k, v in r["protocol"]["reference"].items() if k != "cached"} for r in (ra, rb))
        assert ra["scores"] == rb["scores"] and ref_a == ref_b, n
    assert _lambda(tmp_path / "serial", "moca-tiny-digits-s0") == _lambda(tmp_path / "conc", "moca-tiny-digits-s0")
    assert json.loads((outs["conc"] / TUNED[0] / "results.json").read_text())["protocol"]["reference"]["split"] == "val"


CONC_TUNE = """
[tune]
holdout = 100
max_steps = 4
fid_samples = 16

[reg.moca.tune]
"reg.lambda" = [1, 10, 100]
"""
TUNED = ["tune-moca-tiny-digits-lambda1-s0"]


# Per λ: KID (its mean, the choice's; the lowest at λ = 1), KID's std and FID, whose lowest lie elsewhere.
KID_MEAN, KID_STD, KID_FID = {1: 0.01, 10: 0.05, 1000: 0.03}, {1: 0.9, 10: 0.1, 1000: 0.5}, {1: 9.0, 10: 8.0, 1000: 7.0}


def test_a_kid_tuned_grid_chooses_the_lowest_kid_mean_not_its_std_or_the_fid(tmp_path, capsys, fake, monkeypatch):
    """``tune.metric = "kid"``: the evaluation records ``kid_mean`` and ``kid_std``
    (wae_bench.metrics.fid.kid); the final cells train at the λ of the lowest
    KID mean (λ = 1), not that of the lowest std (10) or FID (1000)."""
    def evaluate_run(run_dir, **kw):
        lam = json.loads((Path(run_dir) / "config.json").read_text())["config"]["reg"].get("lambda") or 10
        res = {"scores": {w: {"kid_mean": KID_MEAN[lam], "kid_std": KID_STD[lam], "fid": KID_FID[lam]}
                          for w in kw["what"]}, "protocol": {"reference": {"split": kw["split"]}}, "run": {}}
        write_json(Path(run_dir) / "results.json", res)
        return res

    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", evaluate_run)
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.replace("[tune]\n", "[tune]\nmetric = \"kid\"\n")
                 .replace("[eval]\n", "[eval]\nkid_subset_size = 50\n"))   # (KID subsets that fit the 100 held out)
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--only", "tune-moca-*,moca-*"],
                           capsys)
    assert code == 0, err
    assert _lambda(tmp_path / "res", "moca-tiny-digits-s0") == 1


# (arch, λ) -> a tuning cell's validation score: the best λ differs between the two archs' groups.
BY_ARCH = {("tiny", 1): 5.0, ("tiny", 10): 6.0, ("tiny", 1000): 7.0, ("a1", 1): 7.0, ("a1", 10): 6.0, ("a1", 1000): 5.0}


def test_each_arch_of_a_grid_is_tuned_on_its_own_tuning_cells(tmp_path, capsys, fake, monkeypatch):
    """Two archs in one folder (as table1's a1 and a2): each final cell trains
    at the best λ of its own arch's tuning cells (tiny: 1, a1: 1000), never at
    the other arch's, nor at the λ of the best score over both."""
    def evaluate_run(run_dir, **kw):
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
        fid = BY_ARCH[(cfg["arch"], cfg["reg"]["lambda"])] if kw["split"] == "val" else 20.0
        res = {"scores": {w: {"fid": fid} for w in kw["what"]}, "protocol": {"reference": {"split": kw["split"]}},
               "run": {}}
        write_json(Path(run_dir) / "results.json", res)
        return res

    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", evaluate_run)
    p = tmp_path / "sched.toml"
    p.write_text(SPEC.replace('archs = ["tiny"]', 'archs = ["tiny", "a1"]')
                 .replace("[train]\n", "[train]\nimage_size = 32\n"))    # (a1's smallest size; nothing is trained)
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--only", "tune-moca-*,moca-*"],
                           capsys)
    assert code == 0, err
    res = tmp_path / "res"
    assert [_lambda(res, f"moca-{arch}-digits-s{s}") for arch in ("tiny", "a1") for s in (0, 1)] == [1, 1, 1000, 1000]


# (λ, tuning seed) -> validation score: the lowest mean is λ = 10's; the lowest single score λ = 1's (seed 0),
# the lowest of seed 1 λ = 1000's.
BY_SEED = {(1, 0): 5.0, (1, 1): 9.0, (10, 0): 6.5, (10, 1): 6.5, (1000, 0): 8.0, (1000, 1): 6.0}


def test_two_tuning_seeds_choose_the_lowest_mean_not_the_lowest_score_or_one_seeds_best(tmp_path, capsys, fake,
                                                                                           monkeypatch):
    """``tune.seeds = [0, 1]``: the final cells train at the λ of the lowest
    mean over the seeds (10), not that of the lowest single score (1) nor of
    either seed's best alone (1, 1000)."""
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", scored_by(lambda lam, seed: BY_SEED[(lam, seed)]))
    code, err = sched(tmp_path, capsys, "--only", "tune-moca-*,moca-*", "--set", "tune.seeds=[0,1]")
    assert code == 0, err
    assert _lambda(tmp_path / "res", "moca-tiny-digits-s0") == _lambda(tmp_path / "res", "moca-tiny-digits-s1") == 10
