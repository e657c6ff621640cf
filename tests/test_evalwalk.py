"""Found by walking through docs/evaluation.md as a newcomer scoring a run:

* Scoring a run again under another protocol (say ``--fid-samples 200``
  after the default 500, or ``--split val`` after ``test``) moves the
  earlier evaluation to ``results.json["history"]``; the table, report and
  bench read only the top, so its other columns (``rec``, ``gmm``, ...)
  leave them.  That is said in one line, with what differs, never silently.
* A score computed again under the same protocol with another value (the
  Interp column at other ``--interp-alphas``) is replaced at the top and
  the earlier value kept in the history: said in one line too.
* An option that the evaluation asked for cannot use (``--fid-weights``
  with stand-in features, ``--interp-alphas`` without the interp column,
  the KID settings without KID) is named in one note, not ignored silently.
* The CPU time estimate counts REC as the reference images it reconstructs
  (at most the split's size), not ``--fid-samples`` of them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wae_bench import results
from wae_bench.evaluate import evaluate_run, load_results

pytestmark = pytest.mark.usefixtures("single_thread")

STANDIN = {"features": "standin", "fid_samples": 16, "quiet": False, "table": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, single_thread_module) -> Path:
    """The walk-through's run: `wae-bench run --reg moca --set max_steps=20 --no-eval` (tiny net, digits)."""
    from wae_bench.cli import main

    out = tmp_path_factory.mktemp("runs") / "moca"
    main(["run", "--reg", "moca", "--set", "max_steps=20", "--set", "expost=[]", "--no-eval", "--quiet",
          "--device", "cpu", "--out", str(out)])
    return out


@pytest.fixture
def run(trained, tmp_path, monkeypatch) -> Path:
    """A copy of it with a cache of its own."""
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _evaluation(fid_samples: int, scores: dict, time: str, generated: dict | None = None) -> dict:
    return {"scores": scores,
            "protocol": {"features": "standin-randconv (not FID)", "fid_samples": fid_samples, "time": time,
                         "generated": generated or {c: {"n": fid_samples} for c in scores}, "metrics": ["fid"],
                         "reference": {"split": "test", "n": 297, "cached": False}},
            "diagnostics": {"rec_mse_test": 1.0}}


def test_an_evaluation_moved_to_the_history_is_named_with_what_differs():
    old = results.merge(None, _evaluation(500, {"samples": {"fid": 7.66}, "rec": {"fid": 7.67}}, "t1"))
    new = results.merge(old, _evaluation(200, {"samples": {"fid": 7.60}}, "t2"))
    line = results.moved(old, new)
    assert line.startswith("results.json: the earlier evaluation (samples, rec)")
    assert "fid_samples 500 → 200" in line and "moved to its history" in line and "samples only" in line
    assert "\n" not in line


def test_a_value_computed_again_is_named_with_both_values_and_why():
    a = {"n": 16, "alphas": [0.5]}
    old = results.merge(None, _evaluation(16, {"interp": {"fid": 7.65875}}, "t1", {"interp": a}))
    new = results.merge(old, _evaluation(16, {"interp": {"fid": 7.66553}}, "t2",
                                         {"interp": {**a, "alphas": [0.2, 0.8]}}))
    line = results.moved(old, new)
    assert "computed again: interp fid 7.65875 → 7.66553" in line
    assert "interp.alphas [0.5] → [0.2, 0.8]" in line and "kept in its history" in line


def test_nothing_moved_says_nothing():
    old = results.merge(None, _evaluation(16, {"samples": {"fid": 1.0}}, "t1"))
    assert results.moved(None, old) is None
    assert results.moved(old, results.merge(old, _evaluation(16, {"rec": {"fid": 2.0}}, "t2"))) is None


def test_eval_under_another_protocol_says_its_earlier_columns_left_the_top(run, capsys):
    evaluate_run(run, **STANDIN, what=["samples", "rec"])
    assert "history" not in capsys.readouterr().err
    evaluate_run(run, **{**STANDIN, "fid_samples": 24}, what=["samples"])
    err = capsys.readouterr().err
    assert "the earlier evaluation (samples, rec) was computed otherwise (fid_samples 16 → 24)" in err
    top = load_results(run)
    assert set(top["scores"]) == {"samples"} and set(top["history"][-1]["scores"]) == {"samples", "rec"}
    evaluate_run(run, **{**STANDIN, "fid_samples": 24, "quiet": True}, what=["samples"], seed=1)
    assert capsys.readouterr().err == ""                     # quiet: nothing (the file still has it)
    assert json.loads((run / "results.json").read_text())["history"][-1]["protocol"]["seed"] == 0


def test_eval_at_other_interp_alphas_says_the_interp_score_was_replaced(run, capsys):
    evaluate_run(run, **STANDIN, what=["interp"])
    capsys.readouterr()
    evaluate_run(run, **STANDIN, what=["interp"], interp_alphas=[0.25, 0.75])
    err = capsys.readouterr().err
    assert "computed again: interp fid" in err and "interp.alphas [0.5] → [0.25, 0.75]" in err


def test_settings_this_evaluation_cannot_use_are_named_in_one_note(run, capsys):
    evaluate_run(run, **STANDIN, what=["samples"], fid_weights="/nowhere/weights.pth", interp_alphas=[0.25],
                 kid_subsets=3)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "not used" in x]
    assert line == ("note: not used by this evaluation: fid_weights (needs features='inception'), interp_alphas "
                    "(needs 'interp' in what), kid_subsets (needs 'kid' in metrics)")


def test_the_command_line_names_its_flags_and_defaults_say_nothing(run, capsys):
    from tests.reliability_helpers import cli

    code, _, err = cli(["eval", run, "--features", "standin", "--fid-samples", "16", "--fid-weights", "/nowhere.pth",
                        "--kid-subset-size", "8"], capsys)
    assert code == 0, err
    assert ("note: not used by this evaluation: --fid-weights (needs --features inception), --kid-subset-size "
            "(needs kid in --metrics)") in err
    code, _, err = cli(["eval", run, "--features", "standin", "--fid-samples", "16", "--what", "interp",
                        "--interp-alphas", "0.5", "--metrics", "fid,kid", "--kid-subset-size", "8"], capsys)
    assert code == 0, err
    assert "not used" not in err


class _Stop(Exception):
    pass


def test_the_cpu_time_estimate_counts_rec_as_the_reference_images_it_reconstructs(run, capsys, monkeypatch):
    """--fid-samples 2000 --what samples,rec on the digits generates 2000 + 297 images, not 4000."""
    from wae_bench import evaluate

    monkeypatch.setattr(evaluate, "_weights", lambda *a: None)          # (no Inception network is run here)
    monkeypatch.setattr(evaluate, "cpu_eval_rate", lambda: (1.0, "a test's rate"))

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(evaluate, "make_extractor", stop)
    with pytest.raises(_Stop):
        evaluate_run(run, fid_samples=2000, what=["samples", "rec"], quiet=False, device="cpu")
    err = capsys.readouterr().err
    assert "2297 generated images" in err and "297 reference images" in err


# -- bad input met on the walk: one line each, exit 2 (rows for docs/bad-input.md) ----------------------------
@pytest.mark.parametrize("args, line", [
    (["--fid-samples", "1"], "error: --fid-samples must be >= 2, got 1"),
    (["--batch-size", "0"], "error: --batch-size must be >= 1, got 0"),
    (["--interp-alphas", "1.5", "--what", "interp"],
     "error: bad --interp-alphas [1.5]: write numbers in [0, 1], e.g. 0.5 or 0.25,0.5,0.75"),
    (["--diagnostics-limit", "0"], "error: --diagnostics-limit must be >= 1 image (leave it out for all), got 0"),
    (["--split", "foo"], "error: bad --split 'foo': choose one of test, train, val"),
    (["--features", "standin", "--metrics", "is"],
     "error: the Inception Score needs Inception logits; it is not available with --features standin"),
    (["--fid-weights", "/nowhere/w.pth"],
     "error: FID weights file '/nowhere/w.pth' (from --fid-weights) not found; pass an existing file or provision "
     "the weights with `wae-bench fid-weights --from-fid-helper`"),
])
def test_a_bad_eval_option_is_one_line(run, capsys, args, line):
    from tests.reliability_helpers import cli

    code, _, err = cli(["eval", run, *args], capsys)
    assert (code, err.strip()) == (2, line)
    assert not (run / "results.json").exists()


def test_fid_weights_given_two_sources_or_a_file_that_is_not_one_is_one_line(tmp_path, capsys):
    from tests.reliability_helpers import cli

    code, _, err = cli(["fid-weights", "--download", "--from-fid-helper"], capsys)
    assert (code, err.strip()) == (2, "error: pass only one of --from-fid-helper, --from-file, --download")
    code, _, err = cli(["fid-weights", "--from-file", tmp_path / "none.pth"], capsys)
    assert (code, err.strip()) == (2, f"error: '{tmp_path / 'none.pth'}' not found; pass an existing weight file "
                                      f"to --from-file")
    (tmp_path / "notes.txt").write_text("not weights")
    code, _, err = cli(["fid-weights", "--from-file", tmp_path / "notes.txt"], capsys)
    assert (code, err.strip()) == (2, f"error: '{tmp_path / 'notes.txt'}' is not a loadable state dict "
                                      f"(UnpicklingError); pass torch-fidelity's "
                                      f"weights-inception-2015-12-05-6726825d.pth or run "
                                      f"`wae-bench fid-weights --from-fid-helper`")
