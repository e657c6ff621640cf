"""A stand-in evaluation never displaces an Inception result at the top of
results.json, whatever the order the two were computed in; the stand-in
scores stay readable in the history under their own protocol, and what the
table, report and bench read (the top) is the real FID."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from wae_bench import __version__, results
from wae_bench.bench.folder import score
from wae_bench.evaluate import evaluate_run

pytestmark = pytest.mark.usefixtures("single_thread")

INCEPTION = "inception-v3-compat (TF-Inception 2015-12-05, pool3 2048-d)"
STANDIN = "fixed random conv (not FID)"


def evaluation(features: str, fid: float, time: str) -> dict:
    return {"scores": {"samples": {"fid": fid}},
            "protocol": {"features": features, "fid_samples": 16, "generated": {"samples": {"n": 16}},
                         "metrics": ["fid"], "time": time, "reference": {"split": "test", "cached": False}},
            "diagnostics": {"spectrum_effective_rank": 3.0}}


@pytest.mark.parametrize("first", ["inception", "standin"])
def test_the_top_is_the_inception_evaluation_in_either_order(first):
    real, standin = evaluation(INCEPTION, 172.56, "t1"), evaluation(STANDIN, 1.29, "t1")
    a, b = (real, standin) if first == "inception" else (standin, real)
    b = {**b, "protocol": {**b["protocol"], "time": "t2"}}
    merged = results.merge(results.merge(None, a), b)
    assert merged["protocol"]["features"] == INCEPTION and score(merged, "samples", "fid") == 172.56
    (kept,) = merged["history"]
    assert kept["protocol"]["features"] == STANDIN and kept["scores"] == {"samples": {"fid": 1.29}}
    assert kept["replaced"] == "t2"
    assert ("kept_below" in kept) == (first == "inception")    # never at the top / displaced from it


def test_an_inception_result_still_replaces_another_inception_protocol():
    old, new = evaluation(INCEPTION, 172.56, "t1"), evaluation(INCEPTION, 150.0, "t2")
    new["protocol"]["fid_samples"] = 32
    merged = results.merge(old, new)
    assert score(merged, "samples", "fid") == 150.0 and merged["history"][0]["scores"]["samples"]["fid"] == 172.56


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from wae_bench.run.train import train_run

    out = tmp_path_factory.mktemp("runs") / "digits"
    train_run({"max_steps": 4, "latent_dim": 8, "device": "cpu", "expost": []}, out, quiet=True)
    return out


def _fake_inception(run: Path, like: dict) -> dict:
    """An Inception evaluation of ``run`` (faked from a stand-in one: the network is too slow here)."""
    fake = copy.deepcopy({k: like[k] for k in ("scores", "protocol", "diagnostics", "run")})
    fake["protocol"].update(features=INCEPTION, time="2026-01-01T00:00:00+0000")
    fake["protocol"].pop("warning", None)
    fake["scores"] = {"samples": {"fid": 172.56}}
    return results.write(run, fake)


@pytest.mark.parametrize("first", ["inception", "standin"])
def test_eval_with_standin_features_keeps_the_real_fid_at_the_top(trained, tmp_path, first, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    kw = {"features": "standin", "quiet": True, "fid_samples": 16, "what": ["samples"]}
    if first == "standin":
        standin = evaluate_run(run, **kw)
        _fake_inception(run, standin)
    else:
        probe = tmp_path / "probe"       # (a stand-in evaluation to fake the Inception one from)
        shutil.copytree(trained, probe)
        _fake_inception(run, evaluate_run(probe, **kw))
    capsys.readouterr()
    out = evaluate_run(run, **{**kw, "quiet": False, "table": False})
    assert "an Inception evaluation stays at the top" in capsys.readouterr().err
    on_disk = json.loads((run / "results.json").read_text())
    assert on_disk["protocol"]["features"] == INCEPTION
    assert out["scores"] == on_disk["history"][-1]["scores"] and "kept_below" in out    # this evaluation's own
    assert score(on_disk, "samples", "fid") == 172.56                          # what the table and report read
    last = on_disk["history"][-1]
    assert "not FID" in last["protocol"]["features"] and last["kept_below"]
    assert 0 < last["scores"]["samples"]["fid"] != 172.56
    assert last["protocol"]["versions"]["regularizer"] == f"moca: wae-bench {__version__}"
