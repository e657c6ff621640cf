"""wae-bench as a Python library (docs/python-api.md): the page's python
blocks run in order, as a notebook runs its cells, on a tiny MoCA run on the
embedded digits with the stand-in features (no Inception weights), and so
does the in-process plugin cell of docs/plugins.md, twice; the training
log's reader (:func:`wae_bench.run.directory.read_metrics`); and the FID of
one's own tensors (:func:`wae_bench.metrics.fid_of`) against the path
`wae-bench eval` takes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wae_bench.errors import WaeError
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS
from wae_bench.run.directory import read_metrics

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[1]
PAGE, PLUGINS = ROOT / "docs" / "python-api.md", ROOT / "docs" / "plugins.md"


def python_blocks(page: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)]


@pytest.fixture
def registries(monkeypatch):
    """The registries (entry points loaded) restored after the test: what
    the page registers does not outlive it."""
    for reg in (REGULARIZERS, ARCHITECTURES, DATASETS):
        reg.names()
        monkeypatch.setattr(reg, "_items", dict(reg._items))
        monkeypatch.setattr(reg, "_dists", dict(reg._dists))


# -- the page, run as a notebook ------------------------------------------------------------
def test_the_pages_blocks_run_in_order_as_a_notebooks_cells(tmp_path, monkeypatch, registries, capsys):
    """The in-process plugin cell of docs/plugins.md, run twice (the second
    class replaces the first, quietly), then every python block of
    docs/python-api.md in order in one namespace (a notebook's
    ``__main__``); then what the page says of the values they leave, and
    the lines plugins.md shows for a clash, a built-in's name and a run
    reloaded where nothing registers its plugin."""
    import torch

    from wae_bench.run.reload import load_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")     # the committed results folder a block reads
    ns = {"__name__": "__main__"}
    (cell,) = [b for b in python_blocks(PLUGINS) if "REGULARIZERS.register" in b]
    for _ in range(2):
        exec(compile(cell, "docs/plugins.md", "exec"), ns)
        assert REGULARIZERS.get("pull") is ns["Pull"]
    blocks = python_blocks(PAGE)
    assert len(blocks) == 9
    for i, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/python-api.md, block {i}", "exec"), ns)

    run_dir, test, z, x_hat, samples = (ns[k] for k in ("run_dir", "test", "z", "x_hat", "samples"))
    assert run_dir == Path("runs/moca-digits") and (run_dir / "results.json").is_file()
    assert "NOT FID" in ns["results"]["protocol"]["warning"]
    assert test.dtype == torch.uint8 and tuple(test.shape) == (297, 1, 16, 16)
    assert tuple(z.shape) == (8, 16) and torch.allclose(z.norm(dim=1), torch.ones(8), atol=1e-5)
    assert tuple(x_hat.shape) == (8, 1, 16, 16) and 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    assert tuple(samples.shape) == (500, 1, 16, 16)
    m, x = ns["m"], ns["x"]                         # the one-call block: its names replace the cell's before
    assert tuple(x.shape) == (64, 1, 16, 16) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert torch.equal(x, m.sample(128)[:64]) and torch.equal(z, m.encode(test[:8]))
    assert torch.allclose(ns["x_hat"], m.decode(z)) and m.image_shape == (1, 16, 16)
    assert "pull" in REGULARIZERS.names() and ns["moca"] is REGULARIZERS.get("moca")
    assert "lambda_=100.0, K=1024" in capsys.readouterr().out          # the digits' defaults, not the paper's
    assert ns["table"] and ns["table"][0]["regularizer"]
    assert {"cell", "regularizer", "axes", "state"} <= set(ns["cells"][0])
    assert [r["step"] for r in ns["log"]] == [10, 20, 30]
    assert {"step", "epoch", "lr", "loss", "rec", "reg", "moca/pos", "moca/neg", "img_per_s", "time"} <= set(
        ns["log"][-1])
    assert read_metrics(ns["pull_dir"])[-1]["step"] == 10

    import random

    import numpy as np

    def draws(load: bool):                        # a script's own draws from the global generators
        torch.manual_seed(123), random.seed(123), np.random.seed(123)
        if load:
            load_model(run_dir, device="cpu")     # builds the nets, which seeds the generators inside
        return torch.rand(3).tolist(), random.random(), float(np.random.rand())
    assert draws(load=True) == draws(load=False)  # load_model left them as they were

    text = " ".join(PLUGINS.read_text().split())
    with pytest.raises(WaeError) as e:
        REGULARIZERS.add("pull", type("Other", (ns["Pull"],), {"__doc__": "another"}))
    assert str(e.value) in text
    with pytest.raises(WaeError) as e:
        REGULARIZERS.add("moca", ns["Pull"], replace=True)
    assert str(e.value) in text
    del REGULARIZERS._items["pull"]                 # a process that has not run the cell
    with pytest.raises(WaeError, match="regularizer 'pull' was registered in-process by module __main__") as e:
        load_model(ns["pull_dir"], device="cpu")
    assert "\n" not in str(e.value)


# -- the training log ---------------------------------------------------------------------
def _log(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_read_metrics_gives_one_dict_a_line_and_skips_a_torn_last_line(tmp_path):
    recs = [{"step": 5, "loss": 1.5, "moca/neg": 0.25}, {"step": 10, "loss": 1.25, "moca/neg": 0.5}]
    _log(tmp_path / "metrics.jsonl", recs)
    assert read_metrics(tmp_path) == recs
    _log(tmp_path / "metrics.jsonl", recs, tail='{"step": 15, "lo')     # killed mid-append
    assert read_metrics(str(tmp_path)) == recs
    _log(tmp_path / "metrics.jsonl", recs, tail="\n\n")                 # blank lines are no records
    assert read_metrics(tmp_path) == recs


def test_read_metrics_refuses_a_missing_file_and_a_damaged_middle_line_in_one_line(tmp_path):
    with pytest.raises(WaeError) as e:
        read_metrics(tmp_path / "nowhere")
    assert "metrics.jsonl' not found" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "metrics.jsonl").write_text('{"step": 5}\n{"step": 1\n{"step": 15}\n')
    with pytest.raises(WaeError) as e:
        read_metrics(tmp_path)
    assert str(e.value).startswith("line 2 of ") and "delete that line" in str(e.value)
    assert "\n" not in str(e.value)


# -- the FID of one's own tensors ---------------------------------------------------------
def _images(n: int, seed: int, c: int = 3, s: int = 8, top: int = 256):
    import torch

    return torch.randint(0, top, (n, c, s, s), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_fid_of_is_the_number_the_evaluation_path_gives(recwarn):
    """fid_of against make_extractor -> extract -> statistics ->
    frechet_distance called one by one (evaluate.py's path), on the stand-in
    features; float images in [0, 1] score as the uint8 ones they round to."""
    import torch

    from wae_bench.metrics import fid_of
    from wae_bench.metrics import fid as F
    from wae_bench.metrics.features import extract, make_extractor

    a, b = _images(200, 0), _images(160, 1, top=200)
    ext = make_extractor("standin", torch.device("cpu"))
    internal = F.frechet_distance(*(F.statistics(extract(ext, x, 64)[ext.layer]) for x in (a, b)))
    got = fid_of(a, b, features="standin", device="cpu", batch_size=37)
    assert got == pytest.approx(internal, rel=1e-5) and got > 0
    assert fid_of(a.float() / 255, b.double() / 255, features="standin") == pytest.approx(internal, rel=1e-5)
    assert fid_of(a, a, features="standin") == pytest.approx(0.0, abs=1e-3)
    g1, g2 = _images(150, 2, c=1), _images(150, 3, c=1)            # grayscale: repeated to 3 channels
    assert fid_of(g1, g2, features="standin") == pytest.approx(
        fid_of(g1.expand(-1, 3, -1, -1), g2.expand(-1, 3, -1, -1), features="standin"), rel=1e-6)
    assert not [w for w in recwarn if "fewer than the" in str(w.message)]   # 150 >= 128 stand-in dimensions
    with pytest.warns(UserWarning, match=r"FID from 20 images \(fewer than the 128 feature dimensions"):
        fid_of(a[:20], b, features="standin")


@pytest.mark.parametrize("images, needle", [
    ("float_above", "images is torch.float32 with values in [0, 2]; float images must be in [0, 1]"),
    ("float_255", "images is torch.float32 with values in [0, 255]; float images must be in [0, 1] (a decoder's "
                  "output: .clamp(0, 1); 0..255 floats: .div(255)), or pass uint8 in 0..255"),
    ("nan", "images holds NaN or infinite values; pass uint8 (N, C, H, W) images in 0..255, or float ones in "
            "[0, 1], C = 1 or 3"),
    ("int64", "images is torch.int64; pass uint8 (N, C, H, W) images in 0..255"),
    ("nhwc", "images has shape (4, 8, 8, 3); pass uint8 (N, C, H, W) images in 0..255, or float ones in [0, 1], "
             "C = 1 or 3 (N×H×W×C: x.permute(0, 3, 1, 2))"),
    ("one", "images holds 1 image(s); FID needs at least 2 a side"),
    ("numpy", "images is a ndarray, not a torch.Tensor; pass uint8"),
    ("sizes", "images are 3×8×8 but reference 3×16×16; FID compares images of one size and channel count"),
    ("features", "unknown features 'tiny'; choose one of: inception, standin"),
])
def test_fid_of_refuses_bad_input_in_one_line_before_any_features(images, needle, monkeypatch):
    import torch

    from wae_bench.metrics import fid_of
    from wae_bench.metrics import features

    monkeypatch.setattr(features, "extract", lambda *a, **k: pytest.fail("features of unchecked input"))
    x, ref, kw = _images(4, 0), _images(4, 1), {"features": "standin"}
    x = {"float_above": x.float() / 127.5, "float_255": x.float(), "nan": x.float().div(255).index_fill(0,
         torch.tensor([1]), float("nan")), "int64": x.long(), "nhwc": x.permute(0, 2, 3, 1), "one": x[:1],
         "numpy": x.numpy()}.get(images, x)
    if images == "sizes":
        ref = _images(4, 1, s=16)
    if images == "features":
        kw["features"] = "tiny"
    with pytest.raises(WaeError) as e:
        fid_of(x, ref, **kw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_fid_of_with_inception_and_no_weights_names_how_to_get_them():
    from wae_bench.metrics import fid_of
    from wae_bench.metrics.weights import WeightsMissing

    with pytest.raises(WeightsMissing) as e:       # (the suite is offline, with no weights provisioned)
        fid_of(_images(4, 0), _images(4, 1))
    assert "fid-weights" in str(e.value) and "\n" not in str(e.value)
