"""`--log tensorboard` (docs/cli.md#tensorboard): scalars at every log step,
picture grids at every checkpoint, the resolved config as hparams with the
final scores -- read back with TensorBoard's own reader (EventAccumulator);
metrics.jsonl is written as always, a resume purges the events after its
checkpoint, and a missing package is a one-line error."""
from __future__ import annotations

import io
import json
import sys

import pytest

from tests.helpers import run_cli

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'wae-bench[tensorboard]'; "
                                          "the test extra installs it)")

FAST = ["--log", "tensorboard", "--quiet", "--set", "max_steps=8", "--set", "log_every=2", "--set", "ckpt_every=4",
        "--set", "latent_dim=8", "--set", "expost=[]", "--set", "image_size=8"]


def events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def jsonl(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_events_hold_scalars_grids_and_hparams_with_the_scores(tmp_path, capsys):
    from PIL import Image
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = tmp_path / "r"
    code, _, err = run_cli(["run", "--out", str(out), *FAST, "--features", "standin", "--fid-samples", "24",
                            "--what", "samples,rec"], capsys)
    assert code == 0, err
    ea, lines = events(out), jsonl(out)
    assert [e.step for e in ea.Scalars("train/loss")] == [r["step"] for r in lines] == [2, 4, 6, 8]
    for tag in ("loss", "rec", "reg", "moca/pos", "moca/neg", "lr", "img_per_s"):
        got = [e.value for e in ea.Scalars(f"train/{tag}")]
        assert got == pytest.approx([r[tag] for r in lines], rel=1e-6), tag
    for name in ("samples", "reconstructions", "interpolations"):
        imgs = ea.Images(name)
        assert [i.step for i in imgs] == [4, 8], name                     # each checkpoint, once
        png = Image.open(io.BytesIO(imgs[-1].encoded_image_string))
        assert png.size == Image.open(out / f"{name}.png").size           # the run's own grids, upscaled
    assert ea.Images("samples")[-1].width == 8 * (64 + 2) + 2             # 8-px digits as 64-px tiles
    hp = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    config = json.loads((out / "config.json").read_text())["config"]
    assert start.hparams["regularizer"].string_value == "moca"
    assert start.hparams["reg.K"].number_value == config["reg"]["K"] == 1024
    assert start.hparams["expost"].string_value == "[]" and start.hparams["step_mode"].string_value == "auto"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {"score/samples/fid", "score/rec/fid"}
    scores = json.loads((out / "results.json").read_text())["scores"]
    for col in ("samples", "rec"):
        (e,) = ea.Scalars(f"score/{col}/fid")
        assert e.step == 8 and e.value == pytest.approx(scores[col]["fid"], rel=1e-6)


def test_resume_purges_the_events_after_its_checkpoint(tmp_path, capsys):
    """Resumed from step 4 (the step-8 checkpoint lost): TensorBoard shows each
    step once, with the values metrics.jsonl holds after the resume."""
    out = tmp_path / "r"
    assert run_cli(["run", "--out", str(out), *FAST, "--no-eval"], capsys)[0] == 0
    first = {r["step"]: r["loss"] for r in jsonl(out)}
    (out / "checkpoints" / "step-00000008.pt").unlink()
    code, _, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    ea, lines = events(out), jsonl(out)
    assert len(list((out / "tensorboard").iterdir())) == 2                # one event file per session
    assert [(e.step, e.value) for e in ea.Scalars("train/loss")] == \
        [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in lines]
    assert [r["step"] for r in lines] == [2, 4, 6, 8] and {r["step"]: r["loss"] for r in lines} == first
    assert [i.step for i in ea.Images("samples")] == [4, 8]


def test_without_tensorboard_installed_it_is_one_line_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)                # as if not installed
    code, _, err = run_cli(["run", "--out", str(tmp_path / "r"), *FAST, "--no-eval"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "pip install 'wae-bench[tensorboard]'" in err and "drop --log tensorboard" in err
    assert not (tmp_path / "r").exists()
