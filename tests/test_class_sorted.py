"""Subsets of a class-sorted dataset are drawn at random, never "the first N"
(folders and zips are read class by class; CIFAR-10's JPEG copy starts with
its 5,000 airplanes): the images the ex-post N / GMM densities are fitted
on, the reference images of the REC column, the pairs of the Interp column,
the reconstruction and interpolation grids, and the validation hold-out
each cover every class.  The folder here has 10 classes
in sorted order, each image a flat grey level that names its class."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wae_bench.pictures
import wae_bench.run.train
from wae_bench import expost
from wae_bench.data import holdout
from wae_bench.evaluate import evaluate_run
from wae_bench.metrics import generate

pytestmark = pytest.mark.usefixtures("single_thread")

CLASSES = 10


def class_of(images: torch.Tensor) -> set[int]:
    """The classes of uint8 or [0, 1] images (grey level 20·c + 10)."""
    x = images.float() * (255 if images.dtype != torch.uint8 else 1)
    return {int(round((v - 10) / 20)) for v in x.flatten(1).mean(1).tolist()}


def sorted_folder(root: Path, per_class: dict[str, int]) -> Path:
    for split, n in per_class.items():
        for c in range(CLASSES):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((8, 8, 3), 20 * c + 10, dtype=np.uint8)).save(d / f"{i:04d}.png")
    return root


def test_class_sorted_subsets_cover_every_class(tmp_path, monkeypatch):
    root = sorted_folder(tmp_path / "data", {"train": 30, "test": 10})
    monkeypatch.setattr(expost, "FIT_IMAGES", 100)               # 100 of 300: the first 100 are 4 classes
    seen: dict[str, list[torch.Tensor]] = {"fit": [], "grid": [], "rec": []}
    real_encode, real_grids, real_enc = expost.encode_all, wae_bench.pictures.write_grids, generate._encode

    def encode_all(ae, reg, images, limit=10000, batch=500):
        seen["fit"].append(images[:limit])
        return real_encode(ae, reg, images, limit, batch)

    def write_grids(ae, reg, x, *a, **kw):
        seen["grid"].append(x)
        return real_grids(ae, reg, x, *a, **kw)

    def encode(ae, reg, x, device):
        seen["rec"].append(x)
        return real_enc(ae, reg, x, device)

    real_grid = wae_bench.pictures.grid
    saved: dict[str, list[torch.Tensor]] = {}
    named = {16: "reconstructions.png", 12: "interpolations.png"}   # pictures.grids: 16 a row, 10 alphas + 2 ends

    def grid(images, nrow):      # the (upscaled) images of each grid: the mean grey level is kept
        saved.setdefault(named.get(nrow, "other"), []).append(images)
        return real_grid(images, nrow)

    monkeypatch.setattr(expost, "encode_all", encode_all)
    monkeypatch.setattr(wae_bench.pictures, "write_grids", write_grids)
    monkeypatch.setattr(wae_bench.pictures, "grid", grid)
    monkeypatch.setattr(generate, "_encode", encode)
    out = wae_bench.run.train.train_run({"regularizer": "ae", "dataset": "folder", "arch": "tiny", "data_root": str(root),
                                     "image_size": 8, "latent_dim": 4, "batch_size": 16, "max_steps": 2,
                                     "expost": ["gmm"], "log_every": 1}, tmp_path / "run", quiet=True)
    assert len(seen["fit"]) == 1 and len(seen["fit"][0]) == 100 and class_of(seen["fit"][0]) == set(range(CLASSES))
    assert class_of(seen["grid"][0]) == set(range(CLASSES))                      # what the grids draw from
    shown = saved["reconstructions.png"][0][0::2]                                 # (input, reconstruction) pairs
    assert len(shown) == 32 and class_of(shown) == set(range(CLASSES))
    ends = saved["interpolations.png"][0].view(8, 12, *shown.shape[1:])[:, [0, -1]].flatten(0, 1)
    assert len(class_of(ends)) >= 8                                               # x_a and x_b of the 8 pairs
    info = json.loads((out / "config.json").read_text())["expost_fit"]
    assert info["images"] == 100 and info["of"] == 300 and "random" in info["subset"]

    res = evaluate_run(out, what=["rec", "gmm"], fid_samples=40, features="standin", quiet=True)
    rec = torch.cat(seen["rec"])
    assert len(rec) == 40 and len(class_of(rec)) >= 8                           # the first 40 are 4 classes
    assert "seeded random subset" in res["protocol"]["generated"]["rec"]["latents"]
    assert res["protocol"]["generated"]["gmm"]["fitted_on"] == info
    assert class_of(seen["grid"][-1]) == set(range(CLASSES))                     # the evaluation's grids too
    seen["rec"].clear()
    evaluate_run(out, what=["interp"], fid_samples=20, features="standin", quiet=True)
    assert len(class_of(torch.cat(seen["rec"][0::2]))) >= 8                      # x_a of 20 pairs: not 2 classes

    held = holdout.indices(300, 50, "folder")
    assert {int(i) // 30 for i in held} == set(range(CLASSES))                   # the validation hold-out
