"""What the commands print (docs/cli.md): `--quiet` hides progress, not the
scores; `wae-bench list` shows the defaults of a dataset and marks those that
vary; picture grids upscale small images; a run prints no library warning;
an fp32 run on a GPU suggests bf16 once."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import numpy as np
import torch

from tests.helpers import make_trainer, run_cli
from wae_bench import pictures

FAST = ["--set", "max_steps=4", "--set", "latent_dim=8", "--set", "expost=[]", "--features", "standin",
        "--fid-samples", "16"]


def test_quiet_keeps_the_final_scores(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run_cli(["run", "--out", str(out), "--quiet", *FAST], capsys)
    assert code == 0, err
    assert "stand-in FID" in stdout and "samples (prior)" in stdout and "results:" in stdout
    assert "step 4/4" not in err and "eval:" not in err                  # no progress
    code, stdout, err = run_cli(["eval", str(out), "--quiet", "--features", "standin", "--fid-samples", "16"],
                                capsys)
    assert code == 0 and "stand-in FID" in stdout and "eval:" not in err, err


def test_list_shows_the_defaults_of_a_dataset_and_marks_those_that_vary(capsys):
    code, out, err = run_cli(["list"], capsys)
    assert code == 0, err
    assert "defaults on digits with tiny" in " ".join(out.split())      # the default run's
    assert "K=1024*" in out and "lambda=100.0*" in out and "tau=0.05 " in out   # tau: the same everywhere
    code, out, err = run_cli(["list", "--dataset", "cifar10"], capsys)
    assert code == 0, err
    assert "defaults on cifar10 with a1" in " ".join(out.split()) and "K=30000*" in out and "lambda=1000.0*" in out
    code, out, _ = run_cli(["list", "--dataset", "cifar10", "--arch", "a2"], capsys)
    assert code == 0 and "K=30000*" in out and "lambda=100.0*" in out   # MoCA: λ = 100 for A2 (App. A)
    code, _, err = run_cli(["list", "--dataset", "cifar100"], capsys)
    assert code == 2 and "unknown dataset 'cifar100'" in err and err.count("\n") == 1


@pytest.mark.parametrize("side, factor", [(8, 8), (16, 4), (32, 2), (48, 2), (64, 1)])
def test_small_images_are_upscaled_to_viewable_tiles(side, factor):
    x = torch.rand(2, 3, side, side)
    up = pictures.upscale(x)
    assert up.shape[-1] == side * factor >= pictures.MIN_TILE
    assert torch.equal(up[..., ::factor, ::factor], x)                   # nearest neighbour: the same pixels
    assert torch.equal(up[..., factor - 1::factor, factor - 1::factor], x)


def test_grey_images_are_saved_as_grey_pngs_with_the_pixels_of_the_colour_grid(tmp_path):
    """One channel stays one (a third of the bytes of make_grid's RGB copy),
    three stay three; the pixels are make_grid's."""
    from PIL import Image
    from torchvision.utils import make_grid

    x = torch.rand(6, 1, 8, 8)
    g = pictures.grid(x, nrow=3)
    rgb = make_grid(x, nrow=3, padding=2, pad_value=1.0).mul(255).round().to(torch.uint8)
    assert g.shape == (1, *rgb.shape[1:]) and torch.equal(g[0], rgb[0]) and torch.equal(rgb[0], rgb[2])
    grey = Image.open(pictures.save_grid(x, tmp_path / "grey.png", nrow=3))
    assert grey.mode == "L" and torch.equal(torch.from_numpy(np.asarray(grey).copy()), g[0])
    assert Image.open(pictures.save_grid(torch.rand(6, 3, 8, 8), tmp_path / "rgb.png", nrow=3)).mode == "RGB"


def test_a_models_grids_have_64_pixel_tiles():
    tr = make_trainer("moca", size=8)
    grids = pictures.grids(tr.ae, tr.reg, torch.rand(32, 3, 8, 8))
    assert set(grids) == set(pictures.GRID_NAMES)
    assert grids["samples"].shape == (3, 8 * 66 + 2, 8 * 66 + 2)       # 8 × 8 tiles of 64 px, 2-px gaps
    assert grids["reconstructions"].shape[-1] == 16 * 66 + 2 and grids["interpolations"].shape[-1] == 12 * 66 + 2
    assert grids["samples"].dtype == torch.uint8


def test_saved_reconstructions_and_interpolations_name_their_columns(tmp_path):
    """A white band on top labels each column (input / output; x_a, α, x_b),
    with text over every column; the grid's pixels are kept below it."""
    from PIL import Image

    tr = make_trainer("moca", size=8)
    x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    grids = pictures.grids(tr.ae, tr.reg, x)
    pictures.write_grids(tr.ae, tr.reg, x, tmp_path)
    assert pictures.column_labels("interpolations", 12)[:3] == ["x_a", "α=1.00", "α=0.89"]
    for name, columns in (("reconstructions", 16), ("interpolations", 12), ("samples", 0)):
        png = torch.from_numpy(np.asarray(Image.open(tmp_path / f"{name}.png")).copy()).permute(2, 0, 1)
        band = pictures.LABEL_BAND if columns else 0
        assert torch.equal(png[:, band:], grids[name]), name
        if columns:
            ink = (png[:, :band].amin(0) < 128).any(0)                 # dark text pixels, by x
            assert all(ink[2 + 66 * i: 2 + 66 * (i + 1)].any() for i in range(columns)), name


def test_the_run_header_says_the_image_size_it_trains_at(tmp_path, capsys):
    """A resize (digits' 8 px trained at 16) was invisible: the header named
    the data and its counts, not the size the images are trained at."""
    code, stdout, err = run_cli(["run", "--out", str(tmp_path / "r"), "--no-eval", "--set", "image_size=16",
                                 "--set", "max_steps=1", "--set", "expost=[]"], capsys)
    assert code == 0, err
    (header,) = [line for line in stdout.splitlines() if "M params) · digits [" in line]
    assert "] 16×16, 1,500 train / 297 test · batch 64" in header, header


def test_a_run_prints_no_library_warning(tmp_path):
    """A default-style run in a fresh process, Python's default warning filters."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    r = subprocess.run([sys.executable, "-m", "wae_bench", "run", "--out", str(tmp_path / "r"), *FAST,
                        "--what", "samples,rec"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "warn" not in r.stderr.lower(), r.stderr


def test_bf16_is_suggested_once_per_process(capsys, monkeypatch):
    from wae_bench.run import train

    monkeypatch.setattr(train, "_SAID", set())
    train._suggest_bf16()
    train._suggest_bf16()
    err = capsys.readouterr().err
    assert err.count("--precision bf16") == 1 and err.count("\n") == 1 and "opt-in" in err
