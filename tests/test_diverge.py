"""The divergence check independent of the metric (wae_bench.step.trainer.RecGrowth):
a run whose reconstruction loss blows up but stays finite (wae-mmd at lr 300:
about 1e13 by the first log, every sample one saturated pattern) is stopped as
diverged -- `wae-bench run` ends with one line, as a non-finite loss does, and
a bench records the tuning cell as diverged (never chosen) -- while a healthy
run is untouched and ``diverge_factor = 0`` turns the check off."""
from __future__ import annotations

import json

import pytest

from tests.bench_helpers import run_cli
from tests.helpers import batch, make_trainer
from tests.reliability_helpers import TINY, assert_one_line_error, cli, one_thread
from wae_bench.bench.folder import ResultsDir
from wae_bench.config import TrainConfig, from_dict
from wae_bench.errors import WaeError
from wae_bench.step.loop import Stepper, fit
from wae_bench.step.trainer import Diverged, NonFinite

BLOWUP = ["--reg", "wae-mmd", "--lr", "300", "--set", "max_steps=20", "--set", "log_every=5",
          "--set", "expost=[]"]


def _recs(run_dir) -> list[float]:
    return [json.loads(ln)["rec"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_finite_blowup_is_stopped_as_diverged_in_one_line_and_off_trains_it_to_the_end(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", *TINY, *BLOWUP, "--out", out], capsys)
    line = assert_one_line_error(code, err, "reconstruction loss grew from", "(step 1) to", "at step 5 (x",
                                 "the run diverged; lower the learning rate or λ", "no checkpoint was written")
    assert code == 2, line                        # the exit status of a non-finite loss
    assert not out.exists()                       # as a non-finite loss before the first checkpoint: taken back

    with one_thread():
        code, _, err = cli(["run", *TINY, *BLOWUP, "--set", "diverge_factor=0", "--out", out], capsys)
    assert code == 0, err                         # the check off: the same run trains to its end ...
    recs = _recs(out)
    assert len(recs) == 4 and all(r < float("inf") for r in recs) and min(recs) > 1e6   # ... finite, blown up


def test_a_healthy_run_is_untouched_by_the_check(tmp_path, capsys):
    runs = {}
    for factor in ("10000", "0"):
        runs[factor] = tmp_path / factor
        with one_thread():
            code, _, err = cli(["run", *TINY, "--reg", "wae-mmd", "--set", "max_steps=20", "--set", "log_every=5",
                                "--set", "expost=[]", "--set", f"diverge_factor={factor}", "--out", runs[factor]],
                               capsys)
        assert code == 0, err
    assert _recs(runs["10000"]) == _recs(runs["0"]) and max(_recs(runs["0"])) < _recs(runs["0"])[0] * 2


def test_the_early_value_is_the_first_step_and_survives_a_checkpoint():
    """The first log window's mean would hide a blow-up inside it: the early
    value is rec at step 1, recorded on the device and read with the window
    (no read of its own), saved in the trainer's state; a checkpoint from
    before it was recorded falls back to the first window after the resume."""
    tr = make_trainer("ae", lr=1e-3)
    x = batch(seed=0)
    logged = []
    fit(tr, lambda s: x, start=0, total=6, steps_per_epoch=6, lr_halve_every=0, log_every=3, ckpt_every=0,
        on_log=lambda step, m: logged.append(m["rec"]), on_ckpt=lambda step: None, diverge_factor=1e4)
    rec1, first, last = tr.growth.early
    assert (first, last) == (1, 1) and rec1 > logged[0] > logged[1]   # step 1's, above the windows' means

    state = tr.state_dict()
    again = make_trainer("ae", lr=1e-3)
    again.load_state_dict(state)
    assert again.growth.early == tr.growth.early

    old = {**state, "meter": {k: v for k, v in state["meter"].items() if k != "at_start"}}
    old.pop("rec_early")                          # a checkpoint from before the check existed
    resumed = make_trainer("ae", lr=1e-3)
    resumed.load_state_dict(old)
    fit(resumed, lambda s: x, start=6, total=9, steps_per_epoch=6, lr_halve_every=0, log_every=3, ckpt_every=0,
        on_log=lambda step, m: logged.append(m["rec"]), on_ckpt=lambda step: None, diverge_factor=1e4)
    assert resumed.growth.early == (logged[-1], 7, 9)


def test_a_stop_between_log_steps_checks_before_its_checkpoint():
    """A stop's checkpoint between two log steps holds no diverged state
    either: the window so far is compared before it is written."""
    tr = make_trainer("wae-mmd", lr=300.0)
    x = batch(seed=0)
    saved = []
    stepper = Stepper(tr, lambda s: x, start=0, total=50, steps_per_epoch=50, lr_halve_every=0, log_every=50,
                      ckpt_every=0, on_log=lambda step, m: None, on_ckpt=saved.append, stop=lambda: tr.t >= 3,
                      diverge_factor=1e4)
    with pytest.raises(Diverged, match=r"grew from .* \(step 1\) to .* at step 3 "):
        while not stepper.over:
            stepper.advance()
    assert saved == [] and issubclass(Diverged, NonFinite)


@pytest.mark.parametrize("factor", [-1, 0.5, 1, float("nan")])
def test_a_factor_that_is_not_a_growth_is_refused(factor):
    with pytest.raises(WaeError, match="diverge_factor must be 0 \\(off\\) or > 1"):
        from_dict(TrainConfig, {"diverge_factor": factor})


SPEC = """
[bench]
name = "blowup"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["wae-mmd"]
seeds = [0]

[train]
epochs = 1
max_steps = 10
batch_size = 32
image_size = 8
latent_dim = 8
expost = []
log_every = 5

[eval]
fid_samples = 64
metrics = ["fid"]
what = ["samples"]
features = "standin"
batch_size = 64

[tune]
holdout = 300
max_steps = 10
fid_samples = 64

[reg.wae-mmd.tune]
lr = [0.001, 300]
"""


def test_a_tuned_bench_records_a_finite_blowup_as_diverged_and_never_chooses_it(tmp_path, capsys):
    spec = tmp_path / "blowup.toml"
    spec.write_text(SPEC)
    with one_thread():
        code, _, err = run_cli(["bench", str(spec), "--out", str(tmp_path / "res"), "--quiet"], capsys)
    assert code == 0 and "1 tuning cell(s) diverged (recorded, never chosen)" in " ".join(err.split()), err
    folder = ResultsDir(tmp_path / "res")
    fail = folder.failure("tune-wae-mmd-tiny-digits-lr300-s0")
    assert fail["diverged"] is True and "reconstruction loss grew from" in fail["error"]
    rec = json.loads((tmp_path / "res" / "tuning" / "wae-mmd-tiny-digits-s0.json").read_text())
    assert rec["values"] == {"lr": 0.001} and [p["state"] for p in rec["points"]] == ["ok", "diverged"]
