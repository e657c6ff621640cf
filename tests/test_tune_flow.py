"""The tuning flow across runs (wae_bench.bench.tune): a failed tuning cell
excluded from the choice (``bench --exclude-failed-tuning``), tuning seeds
grown in place, and the warning where a tuned regularizer's sampler is not a
column of the table.  The training and the scoring are faked
(tests/test_bench_tune.py's ``fake``: the best value is λ = 10)."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.bench_helpers import run_cli, tiny_spec
from tests.helpers import one_thread
from tests.test_bench_tune import SPEC, TUNE_IDS, fake, sched  # noqa: F401 (fake: a fixture)
from wae_bench import worded
from wae_bench.bench import spec as specs
from wae_bench.bench import tune
from wae_bench.data import Batcher
from wae_bench.errors import WaeError
from wae_bench.run import checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")

FINAL = "moca-tiny-digits-s0"


# -- F21: a failed tuning cell excluded from the choice -----------------------------------------------------
def test_a_failed_tuning_cell_excluded_by_the_flag_lets_the_final_cell_train_at_the_best_of_the_others(
        tmp_path, capsys, fake, monkeypatch):
    """λ = 10 (the best) crashes for a reason the user accepts: without the
    flag the final cell waits and the exit names --exclude-failed-tuning;
    with it the failed cell is left as it is (not retried), recorded as
    excluded, and the final trains at the best of the others (λ = 1); a later
    run without the flag keeps the exclusion."""
    monkeypatch.setenv("FAIL_LAMBDAS", "10")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    assert code == 2 and FINAL not in fake, err
    assert "--exclude-failed-tuning" in err.split("error:")[-1], err                  # the exit line names it
    assert "final cells wait for 1 failed tuning cell(s)" in err and "rerun with --exclude-failed-tuning" in err

    n = len(fake)
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--exclude-failed-tuning")
    assert code == 0, err
    assert fake[n:] == [FINAL], fake                                                  # λ = 10 not retried
    assert "excluding 1 failed tuning cell(s) from the choice (tune-moca-tiny-digits-lambda10-s0" in err, err
    res = tmp_path / "res"
    fail = json.loads((res / "cells" / TUNE_IDS[1] / "failed.json").read_text())
    assert fail["excluded"] is True and "out of memory (fake)" in fail["error"]
    cfg = json.loads((res / "cells" / FINAL / "config.json").read_text())["config"]
    assert cfg["reg"]["lambda"] == 1                                                  # the best of the others
    rec = json.loads((res / "tuning" / f"{FINAL}.json").read_text())
    assert rec["values"] == {"reg.lambda": 1} and [p["state"] for p in rec["points"]] == ["ok", "excluded", "ok"]
    assert rec["excluded"]["cells"] == [TUNE_IDS[1]] and rec["excluded"]["points"] == [{"reg.lambda": 10}]
    md = " ".join((res / "table.md").read_text().split())
    assert "λ = 10: excluded (out of memory (fake))" in md and "λ = 1: 6.00 (chosen)" in md, md
    rows = list(csv.DictReader(io.StringIO((res / "tuning.csv").read_text())))
    assert [r["state"] for r in rows] == ["ok", "excluded", "ok"] and [r["chosen"] for r in rows] == [
        "True", "False", "False"]

    monkeypatch.delenv("FAIL_LAMBDAS")                                                # the exclusion is recorded:
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")                   # kept without the flag
    assert code == 0 and fake[n + 1:] == [] and "or excluded" in err, (fake, err)


def test_a_compare_words_its_fixes_for_compare_and_takes_the_exclusion_flag(tmp_path, capsys, fake, monkeypatch):
    """`wae-bench compare --tune` has no --skip-failed, --only or shards: a
    failed tuning cell's wait says to rerun the same compare command (or
    with --exclude-failed-tuning, which compare takes too), not a bench's flags."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAIL_LAMBDAS", "10")
    args = ["compare", "moca", "--tune", "--set", "reg.moca.tune.reg.lambda=[1, 10, 100]", "--set",
            "eval.features=\"standin\"", "--set", "eval.what=[\"samples\"]", "--quiet", "--out", "cmp"]
    code, _, err = run_cli(args, capsys)
    text = " ".join(err.split())
    assert code == 2 and FINAL not in fake, err
    assert "fix the cause and rerun the same compare command to retry them, then the choice is made, or rerun " \
           "with --exclude-failed-tuning" in text, text
    assert "--skip-failed" not in text and "--only" not in text, text
    code, _, err = run_cli([*args, "--exclude-failed-tuning"], capsys)
    assert code == 0 and fake[-1] == FINAL, err
    cfg = json.loads((tmp_path / "cmp" / "cells" / FINAL / "config.json").read_text())["config"]
    assert cfg["reg"]["lambda"] == 1 and "excluding 1 failed tuning cell(s) from the choice" in err
    with worded.bench("tune.holdout", command="compare"):
        assert worded.go_on("") == "rerun the same compare command (the cell resumes from its checkpoint)"


def test_without_the_flag_a_wait_line_names_the_flag(tmp_path):
    """The final cell's own waiting line (``[i/n] waiting ID: ...``) names
    both fixes: retry the cell, or exclude it."""
    p = tune.Point({"reg.lambda": 10}, cells=["t1"], errors=["t1: out of memory"], failed=["t1"])
    line = tune.wait_line(tune.Choice([p]))
    assert "fix the cause and rerun (without --skip-failed) to retry it" in line
    assert "or rerun with --exclude-failed-tuning to choose among the other values" in line
    excluded = tune.Point({"reg.lambda": 10}, cells=["t1"], errors=["t1: out of memory"], excluded=["t1"])
    ok = tune.Point({"reg.lambda": 1}, cells=["t2"], scores=[3.0])
    ch = tune.Choice([excluded, ok])
    assert ch.complete and ch.made == {"reg.lambda": 1} and excluded.state == "excluded" and excluded.mean is None


# -- F20: tuning seeds grow in place ------------------------------------------------------------------------
def test_tuning_seeds_grow_in_place_and_only_the_new_seeds_tuning_cells_train(tmp_path, capsys, fake):
    """A folder tuned with the implied seed [0] (the first of bench.seeds)
    takes tune.seeds = [0, 1]: only seed 1's tuning cells train (the final
    cell, still at the choice, is kept); dropping or reordering a seed stays
    refused, in the folder's one line."""
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0 and fake == [*TUNE_IDS, FINAL, "ae-tiny-digits-s0"], err
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--set", "tune.seeds=[0,1]")
    assert code == 0, err
    assert fake[5:] == [t.replace("-s0", "-s1") for t in TUNE_IDS], fake          # only seed 1's tuning cells
    rec = json.loads((tmp_path / "res" / "spec.json").read_text())
    assert rec["spec"]["tune"]["seeds"] == [0, 1]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "res" / "tuning.csv").read_text())))
    assert [r["seeds"] for r in rows] == ["2", "2", "2"] and [r["chosen"] for r in rows] == ["False", "True", "False"]
    for seeds in ("[1]", "[1,0]", "[0]"):
        code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--set", f"tune.seeds={seeds}")
        assert code == 2 and "was made by a different spec" in err and "differs in tune.seeds" in err, (seeds, err)
        assert "; tune.seeds may only grow in place (the folder's [0, 1] first, in order, new seeds after them" in err
        assert len([ln for ln in err.split("error:") if ln.strip()]) == 1


def test_widens_takes_tuning_seeds_appended_only():
    assert specs.widens("tune.seeds", [0], [0, 1]) and specs.widens("tune.seeds", [0, 1], [0, 1, 5])
    assert not specs.widens("tune.seeds", [0, 1], [1, 0]) and not specs.widens("tune.seeds", [0, 1], [0])
    assert not specs.widens("tune.seeds", [0], [1]) and not specs.widens("tune.holdout", 10, 20)
    raw = {"bench": {"name": "x", "seeds": [0, 1]}, "tune": {"holdout": 10}}     # implied tuning seeds [0]
    assert specs.tuning_seeds(raw) == [0] and specs.tuning_seeds({"tune": {"seeds": [3, 1]}}) == [3, 1]
    assert specs.grow(raw, {**raw, "tune": {"holdout": 10, "seeds": [0, 2]}})[2] == []
    assert specs.grow(raw, {**raw, "tune": {"holdout": 10, "seeds": [1]}})[2] == ["tune.seeds"]


# -- F24: a tuned sampler that the table does not show ----------------------------------------------------
def test_a_tuned_sampler_missing_from_eval_what_is_warned_of_in_the_dry_run_the_run_and_the_table(
        tmp_path, capsys, fake):
    """rae-sn is tuned on its GMM column; with eval.what = samples only, the
    dry run, the start of the run and the table's tuning section each say so
    once, naming the fix (add gmm to eval.what); moca (sampler: samples) is
    not named.  eval.what does not add the sampler by itself."""
    p = tmp_path / "rae.toml"
    p.write_text(SPEC.replace('regularizers = ["moca", "ae"]', 'regularizers = ["moca", "rae-sn"]')
                 + '\n[reg.rae-sn.tune]\n"reg.beta" = [0.1, 1]\n')
    s = specs.load(p, ["bench.seeds=[0]"])
    assert s.eval.what == ["samples"] and tune.unjudged_samplers(s) == {"rae-sn": "gmm"}
    assert tune.unjudged_samplers(specs.load(p, ["bench.seeds=[0]", 'eval.what=["samples","gmm"]'])) == {}
    fix = "add gmm to eval.what"
    code, out, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--dry-run",
                              "--set", "bench.seeds=[0]"], capsys)
    text = " ".join(err.split())
    assert code == 0 and text.count("warning: rae-sn (its sampler: gmm) is tuned on gmm scores") == 1, text
    assert fix in text and "moca (its sampler" not in text
    code, _, err = run_cli(["bench", str(p), "--out", str(tmp_path / "res"), "--quiet", "--set", "bench.seeds=[0]"],
                           capsys)
    text = " ".join(err.split())
    assert code == 0 and text.count("warning: rae-sn (its sampler: gmm)") == 1 and fix in text, text
    md = " ".join((tmp_path / "res" / "table.md").read_text().split())
    assert md.count("WARNING: rae-sn (its sampler: gmm) is tuned on gmm scores") == 1 and fix in md, md


# -- F7/F12: a bench cell's errors name the bench's way, not a run's flags ------------------------------------
def _tiny_bench(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(tiny_spec("tiny", ["moca"], [0], steps=4, expost=[], ckpt_every=2))
    return p


def test_an_unloadable_checkpoint_says_start_a_new_run_in_a_run_and_remove_the_cell_folder_in_a_bench(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WaeError) as e:
        checkpoint.latest(run)
    assert str(e.value).endswith("restore the run from a copy, or start a new run"), e.value
    with worded.cell(run), pytest.raises(WaeError) as e:
        checkpoint.latest(run)
    assert str(e.value).endswith(f"restore the run from a copy, or remove the cell's folder ({run}) so that the "
                                 f"next bench run retrains it"), e.value
    with pytest.raises(WaeError, match="lower --batch-size$"):
        Batcher(torch.zeros(4, 1, 2, 2), 8, seed=0)
    with worded.bench("train.holdout"), pytest.raises(WaeError) as e:
        Batcher(torch.zeros(4, 1, 2, 2), 8, seed=0)
    assert str(e.value).endswith("lower train.batch_size (--set train.batch_size=N)"), e.value


def test_a_bench_cell_with_only_unloadable_checkpoints_fails_naming_its_folder_to_remove(tmp_path, capsys):
    """F12: a partial cell whose every checkpoint is truncated fails with the
    fix that works in a bench (remove RESULTS/cells/ID, rerun), and the next
    bench run after that retrains it."""
    spec, out = _tiny_bench(tmp_path), tmp_path / "res"
    with one_thread():
        code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
        assert code == 0, err
        cell = out / "cells" / "moca-tiny-digits-s0"
        (cell / "results.json").unlink()
        for ck in (cell / "checkpoints").iterdir():
            ck.write_bytes(ck.read_bytes()[:100])
        code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
        error = json.loads((cell / "failed.json").read_text())["error"]
        assert code == 2 and error.endswith(f"restore the run from a copy, or remove the cell's folder ({cell}) so "
                                            f"that the next bench run retrains it"), error
        shutil.rmtree(cell)
        code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
        assert code == 0 and (cell / "results.json").is_file(), err


def test_out_of_memory_in_a_bench_cell_names_the_bench_fixes_not_run_flags(tmp_path, capsys, monkeypatch):
    """F7: the trainer's out-of-memory line, raised in a bench cell, names
    the bench's fixes (fewer cells at once, the spec's keys, the same bench
    command) instead of a run's --batch-size and `wae-bench run --resume`."""
    from wae_bench.step.trainer import Trainer

    real = Trainer.step

    def step(self, x):
        if int(self.t) + 1 == 3:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
        return real(self, x)

    monkeypatch.setattr(Trainer, "step", step)
    spec, out = _tiny_bench(tmp_path), tmp_path / "res"
    with one_thread():
        code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
    error = json.loads((out / "cells" / "moca-tiny-digits-s0" / "failed.json").read_text())["error"]
    assert code == 2 and error.startswith("out of memory ("), error
    assert "run fewer cells at once (--concurrent, --devices)" in error and "--set train.KEY=V" in error
    assert error.endswith("then rerun the same bench command (the cell resumes from its checkpoint)"), error
    assert "--batch-size" not in error and "wae-bench run" not in error and "--resume" not in error
