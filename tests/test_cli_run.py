"""`wae-bench run` end to end on the embedded data, and its one-line errors."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers import run_cli


FAST = ["--quiet", "--no-eval", "--set", "max_steps=12", "--set", "log_every=5", "--set", "ckpt_every=5",
        "--set", "latent_dim=8"]




def test_run_writes_a_complete_run_directory_and_resume_is_a_no_op(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["run", "--reg", "moca", "--out", str(out), *FAST], capsys)
    assert code == 0, err
    assert "12 steps (max_steps: 0.522 of 30 epochs)" in stdout      # 23 steps an epoch, cut by max_steps
    assert " · cpu (eager) · " in stdout                              # step_mode auto on the CPU
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["regularizer"] == "moca" and cfg["config"]["arch"] == "tiny"
    assert cfg["config"]["reg"]["K"] == 1024 and cfg["total_steps"] == 12 and "torch" in cfg["versions"]
    assert cfg["source"] is None or len(cfg["source"].split("-")[0]) >= 7     # the git commit it was run at
    assert cfg["config"]["log"] == "jsonl" and not (out / "tensorboard").exists()     # no event files by default
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [5, 10, 12]
    assert {"loss", "rec", "moca/neg", "moca/pos", "lr", "img_per_s"} <= set(lines[0])
    for f in ("samples.png", "reconstructions.png", "interpolations.png"):
        assert (out / f).stat().st_size > 100
    ckpts = sorted(os.listdir(out / "checkpoints"))
    assert ckpts == ["step-00000010.pt", "step-00000012.pt"]          # keep_checkpoints = 2
    code, _, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("args, needle", [
    (["--reg", "mocha"], "unknown regularizer 'mocha'; did you mean 'moca'"),
    (["--arch", "resnet"], "unknown architecture 'resnet'"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--dataset", "cifar10"], "needs --data-root"),
    (["--dataset", "cifar10", "--data-root", "/nonexistent/dir"], "does not exist"),
    (["--arch", "a1", "--set", "image_size=48"], "cannot take 48x48 images"),
    (["--set", "reg.K=8"], "K (8) must be >= the global batch size (64)"),
    (["--set", "reg.tau=0"], "tau must be > 0"),
    (["--set", "reg.m0=2"], "m0 must be in [0, 1]"),
    (["--lambda", "-1"], "lambda must be >= 0"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--set", "reg.queue=5"], "unknown config key 'reg.queue'"),
    (["--set", "bogus=1"], "unknown config key 'bogus'"),
])
def test_bad_input_is_one_line(args, needle, tmp_path, capsys):
    code, _, err = run_cli(["run", "--out", str(tmp_path / "r"), *FAST, *args], capsys)
    assert code == 2
    assert err.strip().startswith("error:") and err.strip().count("\n") == 0, err
    assert needle in err


def test_existing_run_is_not_overwritten_and_unwritable_out(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(["run", "--out", str(out), *FAST], capsys)[0] == 0
    before = (out / "metrics.jsonl").read_text()
    code, _, err = run_cli(["run", "--out", str(out), *FAST, "--seed", "1"], capsys)
    assert code == 2 and "holds a run with other settings: that run has seed=0, this one seed=1" in err
    assert (out / "metrics.jsonl").read_text() == before
    code, _, err = run_cli(["run", "--resume", "--out", str(out), *FAST, "--seed", "1"], capsys)
    assert code == 2 and "seed changed" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["run", "--out", str(blocker / "sub"), *FAST], capsys)
    assert code == 2 and "cannot write to output directory" in err


def test_unreadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli(["run", "--out", str(out), *FAST, "--set", "keep_checkpoints=1"], capsys)[0] == 0
    (ck,) = (out / "checkpoints").iterdir()
    ck.write_bytes(ck.read_bytes()[:100])
    code, _, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 2 and "is unreadable (truncated or corrupt" in err and "restore the run from a copy" in err


def test_channels_last_computes_the_same_step(tmp_path, capsys):
    """Channels-last (NHWC) convolutions are other kernels of the same maths:
    the same first-step gradients and mean losses within float tolerance
    (not the same weights after training: rounding differs by CPU), and the
    CLI trains with them."""
    import torch

    from tests.helpers import assert_same_steps, batch, make_trainer

    nhwc, plain = make_trainer("moca", seed=0), make_trainer("moca", seed=0)
    nhwc.ae.to(memory_format=torch.channels_last)
    assert nhwc.ae.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert_same_steps(nhwc, plain, lambda s: batch(seed=s).contiguous(memory_format=torch.channels_last))
    out = tmp_path / "nhwc"
    code, stdout, err = run_cli(["run", "--out", str(out), *FAST, "--set", "expost=[]", "--channels-last"], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["config"]["channels_last"] is True
    assert " · cpu (eager, channels-last) · " in stdout


def test_source_revision_is_the_checkout_or_the_variable(monkeypatch, tmp_path):
    import subprocess

    from wae_bench.run import directory

    monkeypatch.delenv(directory.SOURCE_ENV, raising=False)
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(directory.__file__))
    rev = directory.source_revision()
    if here.returncode == 0:
        assert rev.split("-dirty")[0] == here.stdout.strip()
    else:
        assert rev is None
    monkeypatch.setenv(directory.SOURCE_ENV, "abc1234-dirty")
    assert directory.source_revision() == "abc1234-dirty"


def test_dirty_means_uncommitted_changes_in_the_code_paths_only(tmp_path):
    """claims 2: a regenerated table or a run written into the checkout does
    not make the revision ``-dirty``; a change under wae_bench/, regularizers/
    or pyproject.toml does."""
    import subprocess

    from wae_bench.run import directory

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    for name in ("wae_bench/run/x.py", "regularizers/r.py", "pyproject.toml", "docs/a.md",
                 "benchmarks/results/t/table.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    here = tmp_path / "wae_bench" / "run"
    clean = directory.git_revision(here)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "docs/a.md").write_text("b\n")
    (tmp_path / "benchmarks/results/t/table.md").write_text("b\n")
    (tmp_path / "wae_bench/untracked.py").write_text("b\n")
    assert directory.git_revision(here) == clean
    for name in ("wae_bench/run/x.py", "regularizers/r.py", "pyproject.toml"):
        (tmp_path / name).write_text("b\n")
        assert directory.git_revision(here) == f"{clean}-dirty", name
        git("checkout", "-q", "--", name)
    assert directory.git_revision(tmp_path / "docs") == clean      # (from anywhere in the checkout)


def test_sigmoid_decoder_output(tmp_path, capsys):
    """``decoder_output = "sigmoid"`` ends the decoder in a sigmoid (the RAE
    authors' nets): every reconstruction and sample lies in (0, 1); the run
    trains and resumes with it."""
    import torch

    from wae_bench.run.reload import load_model

    out = tmp_path / "sig"
    code, _, err = run_cli(["run", "--reg", "ae", "--out", str(out), *FAST, "--set", "expost=[]",
                            "--set", "decoder_output=sigmoid"], capsys)
    assert code == 0, err
    ae = load_model(out, "cpu").ae                     # rebuilt from config.json, strict load
    assert isinstance(ae.decoder[-1], torch.nn.Sigmoid)
    with torch.no_grad():
        y = ae.decode(10 * torch.randn(32, 8))
    assert 0 < y.min() and y.max() < 1


def test_run_scores_the_sampler_its_plugin_is_judged_by_unless_what_is_given(tmp_path, capsys):
    """rae-l2 is judged by its ex-post GMM (``Regularizer.sampler``): `run`
    without --what scores the prior samples and the GMM; an explicit --what
    is kept; a run that fits no GMM (expost=[]) says so in one note and
    scores the prior samples."""
    base = ["run", "--quiet", "--set", "max_steps=2", "--set", "latent_dim=8", "--features", "standin",
            "--fid-samples", "16"]

    def columns(name: str, *args: str) -> tuple[set, str]:
        out = tmp_path / name
        code, stdout, err = run_cli([*base, "--out", str(out), *args], capsys)
        assert code == 0, err
        return set(json.loads((out / "results.json").read_text())["scores"]), err

    assert columns("gmm", "--reg", "rae-l2")[0] == {"samples", "gmm"}
    assert columns("given", "--reg", "rae-l2", "--what", "samples")[0] == {"samples"}
    got, err = columns("unfitted", "--reg", "ae", "--set", "expost=[]")
    assert got == {"samples"}
    assert ("note: ae is judged by its gmm sampler, but this run fits no ex-post gmm density (expost=[]); scoring "
            "its prior samples only (add gmm to expost to score it)") in " ".join(err.split())


def test_split_val_without_a_holdout_is_refused_before_training(tmp_path, capsys):
    """`run --split val` scores the run's own hold-out: with holdout = 0 there
    is none, which is known before step 1 -- refused then, no run left."""
    out = tmp_path / "r"
    code, stdout, err = run_cli(["run", "--reg", "ae", "--out", str(out), "--quiet", "--set", "max_steps=2",
                                 "--set", "latent_dim=8", "--split", "val", "--features", "standin",
                                 "--fid-samples", "16"], capsys)
    assert code == 2 and err.strip().count("\n") == 0, err
    assert "the run held out no validation images (holdout = 0)" in err and "--set holdout=N" in err
    assert not out.exists() and "run directory" not in stdout      # nothing trained, nothing kept


def test_a_queue_longer_than_the_training_images_loaded_gets_one_note(tmp_path, capsys):
    """MoCA's K is sized by the dataset's declared size (CIFAR-10's 50,000:
    K = 30,000), which a small copy does not have: one note, the config as
    resolved; a K that fits says nothing."""
    from PIL import Image

    for split, n in (("train", 40), ("test", 8)):
        for i in range(n):
            (tmp_path / "c" / split / "x").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (i, 2 * i, 3 * i)).save(tmp_path / "c" / split / "x" / f"{i}.png")
    args = ["run", "--reg", "moca", "--dataset", "cifar10", "--data-root", str(tmp_path / "c"), "--arch", "tiny",
            "--batch-size", "8", "--quiet", "--no-eval", "--set", "max_steps=1", "--set", "latent_dim=8",
            "--set", "expost=[]"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "big")], capsys)
    assert code == 0, err
    assert ("note: moca's K = 30000 is larger than the 40 training images loaded; pass --set reg.K=N (in a bench "
            "--set reg.moca.K=N; about 0.6 × the images") in " ".join(err.split()), err
    assert json.loads((tmp_path / "big" / "config.json").read_text())["config"]["reg"]["K"] == 30000
    code, _, err = run_cli([*args, "--out", str(tmp_path / "fits"), "--set", "reg.K=24"], capsys)
    assert code == 0 and "is larger than the" not in err, err
