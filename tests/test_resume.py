"""Exact resume: a run killed with SIGKILL mid-training
and continued with ``--resume`` ends bit-identical to the same run never
interrupted -- weights, batch-norm statistics, Adam states, plugin state
(MoCA's momentum encoder, queue and pointer; a discriminator and its own
optimiser; a private generator), meter, the run's generator and the ex-post
density.

The uninterrupted reference runs in this process while the victim runs as a
``python -m wae_bench`` child (both one intra-op thread, so the two cores run
them side by side); the victim is resumed in this process.
"""
from __future__ import annotations

import json
import random
import signal

import numpy as np
import pytest
import torch

from tests.helpers import batch, make_trainer
from tests.reliability_helpers import (TINY, cli, diff_states, final_state, kill_when, logged_step, one_thread,
                                       start)
from tests.reliability_helpers import probe_plugin as probe_plugin  # noqa: F401 (a fixture)
from wae_bench.run import checkpoint
from wae_bench.registry import REGULARIZERS
from wae_bench.step.rng import generator_state, load_generator, run_generator

T, CKPT, LOG = 120, 40, 10
STEPS = ["--set", f"max_steps={T}", "--set", f"ckpt_every={CKPT}", "--set", f"log_every={LOG}",
         "--set", 'expost=["n"]']
TIMING = ("img_per_s", "time")
# Plugins with state beyond MoCA's, once their authors have added them.
EXTRA = [n for n in ("wae-gan",) if n in REGULARIZERS]


def _metrics(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k not in TIMING} for ln in lines]


@pytest.mark.parametrize("reg", ["moca", "probe", *EXTRA])
def test_sigkill_mid_training_then_resume_is_bit_identical(reg, tmp_path, capsys, request):
    path = [request.getfixturevalue("probe_plugin")] if reg == "probe" else None
    args = ["run", "--reg", reg, *TINY, *STEPS]
    ref, victim = tmp_path / "ref", tmp_path / "victim"
    # Killed once a log line past the first checkpoint exists: between two
    # checkpoints, mid-epoch (23 steps an epoch), so steps are redone on resume.
    proc = start([*args, "--out", victim], pythonpath=path)
    killer = kill_when(proc, lambda: logged_step(victim) > CKPT, signal.SIGKILL)
    with one_thread():
        code, _, err = cli([*args, "--out", ref], capsys)
    assert code == 0, err
    proc.wait(timeout=600)
    killer.join()
    assert proc.returncode == -signal.SIGKILL, (f"victim not killed (status {proc.returncode}, signal sent: "
                                                f"{killer.fired}, last logged step {logged_step(victim)}): "
                                                f"{proc.stderr.read()}")
    left = checkpoint.checkpoints(victim)
    assert left and max(int(p.stem.split("-")[1]) for p in left) < T, f"victim ran to the end: {left}"
    assert not checkpoint.load(left[-1]).get("finished")

    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", victim, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    a, b = final_state(ref), final_state(victim)
    assert diff_states(a, b) == []
    # the comparison covers every piece of state a resume must restore
    assert {"ae", "reg", "opt", "aux_opt", "generator", "meter", "expost", "generators", "config", "versions"} <= set(a)
    assert "rng" not in a          # the process-global generators are no part of a run
    assert a["t"] == T and a["expost"]["n"]["means"].isfinite().all()
    if reg == "moca":
        assert {"enc_k.0.weight", "queue", "ptr"} <= set(a["reg"]) and int(a["reg"]["ptr"]) == T * 64 % 1024
        assert any(k.endswith("running_mean") for k in a["reg"])          # the EMA encoder's BN statistics
    if reg == "probe":
        assert a["aux_opt"]["state"] and "reg.gen" in a["generators"] and int(a["reg"]["calls"]) == T
        assert {int(s["step"]) for s in a["aux_opt"]["state"].values()} == {3 * T}     # aux_steps = 3
        assert {"aux", "probe/d_p", "probe/d_q"} <= set(_metrics(ref)[-1])              # aux_loss()'s parts
    assert any(k.endswith("running_var") for k in a["ae"])
    # the metric log is the uninterrupted one too (the meter is part of the state)
    assert _metrics(victim) == _metrics(ref)
    # and the final checkpoint is the same file, byte for byte (`cmp`, as docs/resume.md says)
    assert checkpoint.latest(victim)[0].read_bytes() == checkpoint.latest(ref)[0].read_bytes()
    assert not list((victim / "checkpoints").glob(".*.tmp"))


def test_equal_states_make_equal_checkpoint_files(tmp_path):
    """A resumed run's state holds strings loaded from its checkpoint where an
    uninterrupted run's holds the same strings built afresh: other objects,
    which pickle wrote as other references, so the two final checkpoints
    differed in bytes (`cmp`) though equal once loaded."""
    fresh = {"config": {"regularizer": "moca", "reg": {"K": 4}}, "reg": {"queue": torch.zeros(2)}}
    loaded = checkpoint.load(checkpoint.save(tmp_path / "a.pt", fresh))      # its strings: new objects
    loaded.pop("format")
    loaded["config"] = {"".join(["regu", "larizer"]): "".join(["mo", "ca"]), "reg": {"K": 4}}
    assert checkpoint.save(tmp_path / "b.pt", fresh).read_bytes() == \
        checkpoint.save(tmp_path / "c.pt", loaded).read_bytes()


def test_trainer_state_round_trip_through_a_file(tmp_path, probe_plugin):
    """Unit level: save at step 3, load into a fresh trainer and process, step
    on: identical to stepping on without the round trip (probe plugin: the
    run's generator, a private generator, an auxiliary optimiser; the global
    generators scrambled in between do not matter)."""
    x = batch(B=8, size=8)
    a = make_trainer("probe")
    for _ in range(3):
        a.step(x)
    checkpoint.save(tmp_path / "s.pt", a.state_dict())
    state = checkpoint.load(tmp_path / "s.pt")
    for _ in range(3):
        a.step(x)
    # scramble everything a fresh process would have differently
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    b = make_trainer("probe", seed=7)
    b.reg.gen.manual_seed(5)
    b.load_state_dict(state)
    for _ in range(3):
        b.step(x)
    assert diff_states(a.state_dict(), b.state_dict()) == []


def test_generator_state_round_trips_and_a_missing_one_is_said(capsys):
    g = run_generator(3)
    st = generator_state(g)
    first = torch.rand(5, generator=g)
    h = run_generator(99)
    load_generator(h, st)
    assert torch.equal(torch.rand(5, generator=h), first)
    assert capsys.readouterr().err == ""
    # a checkpoint written before runs had their own generator, or on another device type
    before = h.get_state()
    load_generator(h, None)
    load_generator(h, {"device": "cuda", "state": torch.zeros(16, dtype=torch.uint8)})
    assert torch.equal(h.get_state(), before)
    err = capsys.readouterr().err
    assert err.count("random draws after the resume differ") == 2 and "older wae-bench" in err


def test_changed_config_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["run", *TINY, "--set", "max_steps=4", "--set", "ckpt_every=2", "--set", "expost=[]"]
    with one_thread():
        assert cli([*base, "--out", out], capsys)[0] == 0
        before = {p.name: p.read_bytes() for p in checkpoint.checkpoints(out)}
        code, _, err = cli(["run", "--resume", "--out", out, *TINY, "--set", "max_steps=6"], capsys)
        assert code == 2 and "max_steps changed" in err and "--force" in err
        assert {p.name: p.read_bytes() for p in checkpoint.checkpoints(out)} == before
        # settings that cannot change the result are accepted as they are
        assert cli(["run", "--resume", "--out", out, *TINY, "--set", "log_every=1"], capsys)[0] == 0
        # --force: the run goes on to the new length
        code, _, err = cli(["run", "--resume", "--force", "--out", out, *TINY, "--set", "max_steps=6"], capsys)
        assert code == 0, err
    state = final_state(out)
    assert state["t"] == 6 and state["config"]["max_steps"] == 6


def test_a_run_older_than_an_option_resumes_with_its_default(tmp_path, capsys):
    """A config.json written before an option existed (no ``decoder_output``,
    no ``holdout`` key) resumes: the missing option is its default, the
    behaviour of the version that wrote it; giving it another value still counts as a change."""
    out = tmp_path / "run"
    with one_thread():
        assert cli(["run", *TINY, "--set", "max_steps=4", "--set", "ckpt_every=2", "--set", "expost=[]",
                    "--out", out], capsys)[0] == 0
        cfg_path = out / "config.json"
        saved = json.loads(cfg_path.read_text())
        cfg = saved.get("config", saved)
        for key in ("decoder_output", "holdout"):
            cfg.pop(key)
        cfg_path.write_text(json.dumps(saved))
        code, _, err = cli(["run", "--resume", "--out", out, *TINY, "--set", "decoder_output=sigmoid"], capsys)
        assert code == 2 and "decoder_output changed" in err
        code, _, err = cli(["run", "--resume", "--out", out, *TINY], capsys)
        assert code == 0, err


def _image_folder(root, n_train: int, n_test: int = 4):
    """A ``--dataset folder`` root of distinct 8×8 PNGs: ``train/c0/``, ``test/c0/``."""
    from PIL import Image

    for split, n in (("train", n_train), ("test", n_test)):
        (root / split / "c0").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = np.random.default_rng([i, split == "test"]).integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / "c0" / f"{i:03d}.png")
    return root


def test_a_resume_on_changed_data_is_refused_and_config_json_keeps_the_data_it_started_on(tmp_path, capsys):
    """ops 1: images added to the data folder (or one replaced) after the run
    started: the resume is refused in one line naming the counts, nothing of
    the run changes; the data restored (even in another folder), it resumes;
    --force resumes with a warning and config.json keeps the starting numbers."""
    data = _image_folder(tmp_path / "data", 12)
    out = tmp_path / "run"
    flags = ["--dataset", "folder", "--data-root", data, "--arch", "tiny", "--set", "image_size=8",
             "--set", "latent_dim=16", "--batch-size", "4", "--quiet", "--no-eval", "--set", "holdout=2",
             "--set", "expost=[]", "--set", "ckpt_every=2", "--set", "max_steps=4"]
    with one_thread():
        assert cli(["run", *flags, "--out", out], capsys)[0] == 0
        rec = json.loads((out / "config.json").read_text())
        assert rec["data_fingerprint"]["holdout_of"] == 12 and rec["n_train"] == 10 and rec["n_test"] == 4
        files = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        _image_folder(data, 20)                                     # 8 more training images
        code, _, err = cli(["run", "--resume", "--out", out, "--no-eval", "--quiet"], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert f"the data in '{data}' changed since this run started (train split 12 -> 20 images)" in err
        assert "restore it" in err and "--force" in err
        assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
        for p in sorted((data / "train" / "c0").iterdir())[12:]:
            p.unlink()
        moved = data.rename(tmp_path / "moved")                    # the folder may move; its contents may not
        code, _, err = cli(["run", "--resume", "--out", out, "--data-root", moved, "--no-eval", "--quiet"], capsys)
        assert code == 0, err
        first = moved / "train" / "c0" / "000.png"
        first.write_bytes((moved / "train" / "c0" / "001.png").read_bytes())    # same count, other contents
        code, _, err = cli(["run", "--resume", "--out", out, "--data-root", moved, "--no-eval", "--quiet"], capsys)
        assert code == 2 and "the same 12 images in number, other contents" in err, err
        _image_folder(moved, 20)
        code, _, err = cli(["run", "--resume", "--force", "--out", out, "--data-root", moved, "--no-eval",
                            "--set", "max_steps=6"], capsys)
        assert code == 0 and "warning: the data in" in err and "resuming anyway (--force)" in err, err
    after = json.loads((out / "config.json").read_text())
    assert final_state(out)["t"] == 6
    for key in ("n_train", "n_test", "holdout", "data_fingerprint"):
        assert after[key] == rec[key], key


def test_a_run_from_before_the_fingerprint_compares_its_counts(tmp_path, capsys):
    """A config.json without ``data_fingerprint`` (an older run): the same data
    resumes, and a changed number of images is still refused; the record is not rewritten."""
    out = tmp_path / "run"
    base = ["run", *TINY, "--set", "max_steps=4", "--set", "ckpt_every=2", "--set", "expost=[]"]
    with one_thread():
        assert cli([*base, "--out", out], capsys)[0] == 0
        rec = json.loads((out / "config.json").read_text())
        del rec["data_fingerprint"]
        (out / "config.json").write_text(json.dumps(rec))
        code, _, err = cli(["run", "--resume", "--out", out, *TINY], capsys)
        assert code == 0, err
        assert "data_fingerprint" not in json.loads((out / "config.json").read_text())
        rec["n_train"] += 1
        (out / "config.json").write_text(json.dumps(rec))
        code, _, err = cli(["run", "--resume", "--out", out, *TINY], capsys)
    assert code == 2 and f"train split {rec['n_train']} -> {rec['n_train'] - 1} images" in err, err


@pytest.mark.slow
@pytest.mark.skipif("wae-gan" not in REGULARIZERS, reason="needs the wae-gan plugin")
def test_ddp_sigterm_then_resume_is_bit_identical(tmp_path):
    """torchrun, 2 CPU processes (gloo): SIGTERM to the launcher, every rank
    stops at the same (agreed) step with a checkpoint holding each rank's
    random state, rank 0 alone says so; the resumed run equals the
    uninterrupted one.  ~30 s."""
    import subprocess
    import sys

    from tests.reliability_helpers import env

    args = ["run", "--reg", "wae-gan", *TINY, "--batch-size", "32", *STEPS]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "wae_bench"]
    ref, victim = tmp_path / "ref", tmp_path / "victim"
    procs = [subprocess.Popen([*launch, *args, "--out", str(d)], env=env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for d in (ref, victim)]
    killer = kill_when(procs[1], lambda: logged_step(victim) > CKPT, signal.SIGTERM)
    errs = [p.communicate(timeout=300)[1] for p in procs]
    killer.join()
    assert procs[0].returncode == 0
    # one stop line (rank 0's), whose command is the torchrun launch again (ops 4)
    stops = [ln for ln in errs[1].splitlines() if ln.startswith("stopped by SIGTERM")]
    assert len(stops) == 1 and "rerunning your torchrun command (2 processes) with --resume --out" in stops[0], \
        errs[1][-2000:]
    left = checkpoint.checkpoints(victim)
    assert left and not checkpoint.load(left[-1]).get("finished")
    assert len(checkpoint.load(left[-1])["rng_ranks"]) == 2
    r = subprocess.run([*launch, "run", "--resume", "--out", str(victim), "--quiet", "--no-eval"], env=env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert diff_states(final_state(ref), final_state(victim)) == []
