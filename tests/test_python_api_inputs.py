"""The Python API (docs/python-api.md) beyond the page's cells: what a
notebook tries next. A run's folder given as anything else (a number, a
checkpoint, its config.json, a plain file, a lone checkpoint) refused in one
line by load_model, evaluate_run and load_results alike
(:func:`wae_bench.run.reload.run_path`); a results.json that is no object or
of a newer format refused by load_results; a loaded run's one-call latents,
images and samples (:meth:`~wae_bench.run.reload.Loaded.encode`,
``decode``, ``sample``: prior and ex-post); the entry points importable from
the package; a benchmark folder's rows from its path."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wae_bench.errors import WaeError

pytestmark = pytest.mark.usefixtures("single_thread_module")

ROOT = Path(__file__).resolve().parents[1]
TINY = {"dataset": "digits", "image_size": 8, "latent_dim": 4, "batch_size": 16, "max_steps": 3, "device": "cpu"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A MoCA run without ex-post densities and an RAE one with both (a few steps, 8-px digits)."""
    from wae_bench.run.train import train_run

    root = tmp_path_factory.mktemp("runs")
    moca = train_run({**TINY, "regularizer": "moca", "reg": {"K": 32}, "expost": []}, root / "moca", quiet=True)
    rae = train_run({**TINY, "regularizer": "rae-l2"}, root / "rae", quiet=True)
    return moca, rae


def _one_line(call, *args, **kw) -> str:
    with pytest.raises(WaeError) as e:
        call(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


# -- a run's folder, and what is not one ----------------------------------------------------
def _callers():
    from wae_bench.evaluate import evaluate_run, load_results
    from wae_bench.run.reload import load_model

    return [lambda d: load_model(d, device="cpu"), lambda d: evaluate_run(d, features="standin", quiet=True),
            load_results]


def test_a_file_of_a_run_names_the_run_folder(runs):
    moca = runs[0]
    (ckpt,) = (moca / "checkpoints").glob("step-*.pt")
    for call in _callers():
        for f in (ckpt, moca / "config.json", str(ckpt)):
            assert _one_line(call, f) == (f"{str(f)!r} is a file of the run {str(moca)!r}; pass the run directory: "
                                          f"{moca}")


def test_no_path_a_plain_file_and_a_lone_checkpoint_are_one_line_each(runs, tmp_path):
    (ckpt,) = (runs[0] / "checkpoints").glob("step-*.pt")
    lone, plain = tmp_path / "copied.pt", tmp_path / "notes.txt"
    shutil.copy(ckpt, lone), plain.write_text("x")
    for call in _callers():
        assert _one_line(call, 3).startswith("a run directory is a str or pathlib.Path, got int 3; pass the folder "
                                             "train_run returned")
        assert _one_line(call, plain) == (f"{str(plain)!r} is a file, not a run directory; pass the --out of a "
                                          f"`wae-bench run`")
        assert "a checkpoint on its own loads from DIR/checkpoints/step-N.pt" in _one_line(call, lone)
        assert "does not exist" in _one_line(call, tmp_path / "nowhere")


def test_a_lone_checkpoint_in_a_checkpoints_folder_of_its_own_loads_on_the_cpu(runs, tmp_path):
    """What the page says of a checkpoint copied without its run folder (one
    that trained on a GPU too: its settings say cuda, its tensors load onto
    the CPU)."""
    from wae_bench.run.reload import load_model

    (ckpt,) = (runs[0] / "checkpoints").glob("step-*.pt")
    state = torch.load(ckpt, weights_only=True)
    state["config"]["device"] = "cuda"
    (tmp_path / "lone" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "lone" / "checkpoints" / ckpt.name)
    m = load_model(tmp_path / "lone", device="auto" if not torch.cuda.is_available() else "cpu")
    assert m.device.type == "cpu" and m.step == 3 and m.plan.cfg.device == "cuda"
    assert torch.equal(m.sample(5), load_model(runs[0], device="cpu").sample(5))


@pytest.mark.parametrize("content, needle", [
    ("[1]", "is unreadable (not a JSON object); move it aside"),
    ('{"format": "wae-bench-results/9", "scores": {}, "protocol": {"x": 1}}', "has format 9 (written by a newer "
                                                                               "wae-bench)"),
    ('{"scores": {"samples": {"fid": 3}}}', "has scores without their protocol"),
    ('{"scores": [], "protocol": {"x": 1}}', "has scores without their protocol"),
])
def test_load_results_refuses_a_file_that_is_no_results_in_one_line(tmp_path, content, needle):
    from wae_bench.evaluate import load_results

    (tmp_path / "results.json").write_text(content)
    assert needle in _one_line(load_results, tmp_path)


# -- one call each: latents, images, samples ----------------------------------------------
def test_encode_decode_sample_are_the_runs_steps(runs):
    """encode = constrain(Enc(x)) of uint8 or [0, 1] float images; decode =
    Dec(constrain(z)) clamped; sample = the first n of the evaluation's
    column (generate.columns, seeded by index: a prefix of more, another
    seed other images)."""
    from wae_bench.data.batcher import to_float, to_uint8
    from wae_bench.metrics import generate
    from wae_bench.run.build import load_test
    from wae_bench.run.reload import load_model

    m = load_model(runs[0], device="cpu")
    test = load_test(m.plan).images[:10]
    assert m.image_shape == (1, 8, 8) and m.device == torch.device("cpu")
    with torch.no_grad():
        want = m.reg.constrain(m.ae.encode(to_float(test)))
    z = m.encode(test, batch_size=3)
    assert torch.allclose(z, want) and torch.allclose(m.encode(to_float(test)), want)
    assert torch.allclose(z.norm(dim=1), torch.ones(10), atol=1e-5) and not z.requires_grad
    with torch.no_grad():
        assert torch.allclose(m.decode(z), m.ae.decode(z).clamp(0, 1))
    x = m.sample(20, batch_size=7)
    (col,) = generate.columns(["samples"], m.ae, m.reg, {}, test, 20, 0, m.device)
    assert torch.equal(to_uint8(x), generate.images(m.ae, col, 20)) and x.dtype == torch.float32
    assert torch.equal(x[:5], m.sample(5)) and not torch.equal(x[:5], m.sample(5, seed=1))


def test_sample_draws_the_ex_post_densities_of_a_run_that_fitted_them(runs):
    from wae_bench.data.batcher import to_uint8
    from wae_bench.metrics import generate
    from wae_bench.run.reload import load_model

    m = load_model(runs[1], device="cpu")
    for what in ("n", "gmm"):
        x = m.sample(12, what=what)
        (col,) = generate.columns([what], m.ae, m.reg, m.expost, None, 12, 0, m.device)
        assert tuple(x.shape) == (12, 1, 8, 8) and torch.equal(to_uint8(x), generate.images(m.ae, col, 12))


@pytest.mark.parametrize("call, needle", [
    (lambda m, t: m.sample(4, what="gmm"), "has no ex-post 'gmm' density (it was trained with expost=[]); sample "
                                           "what='samples', or train with \"expost\": [\"n\", \"gmm\"]"),
    (lambda m, t: m.sample(4, what="rec"), "sample draws what='samples' (the prior), 'n' or 'gmm'"),
    (lambda m, t: m.sample(0), "n must be a whole number >= 1, got 0"),
    (lambda m, t: m.encode(t.float()), "images are torch.float32 with values in [0, "),
    (lambda m, t: m.encode(t.float().div(255).index_fill(0, torch.tensor([1]), float("nan"))), "images are "
                                                                                              "torch.float32 with"),
    (lambda m, t: m.encode(t.long()), "images are torch.int64; pass N×1×8×8 images"),
    (lambda m, t: m.encode(t.permute(0, 2, 3, 1)), "(N×H×W×C: x.permute(0, 3, 1, 2))"),
    (lambda m, t: m.encode(t.expand(-1, 3, -1, -1)), "images have shape (4, 3, 8, 8) but the run takes N×1×8×8"),
    (lambda m, t: m.encode(t.numpy()), "images are a ndarray, not a torch.Tensor"),
    (lambda m, t: m.decode(torch.zeros(3, 5)), "decode takes float N×4 latents (the run's latent_dim is 4), got "
                                               "shape (3, 5)"),
])
def test_a_loaded_runs_calls_refuse_bad_input_in_one_line(runs, call, needle):
    from wae_bench.run.build import load_test
    from wae_bench.run.reload import load_model

    m = load_model(runs[0], device="cpu")
    assert needle in _one_line(call, m, load_test(m.plan).images[:4])


# -- the package's entry points, a benchmark's rows ---------------------------------------------
def test_the_pages_functions_import_from_the_package_without_loading_torch_first():
    code = ("import sys, wae_bench; assert 'torch' not in sys.modules; "
            "from wae_bench import train_run, evaluate_run, load_results, load_model, read_metrics, fid_of; "
            "from wae_bench.run.reload import load_model as lm; assert load_model is lm; "
            "assert set(wae_bench.__all__) <= set(dir(wae_bench))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
    import wae_bench

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        wae_bench.nope


def test_cell_rows_takes_a_folders_path(tmp_path):
    from wae_bench.bench.export import cell_rows
    from wae_bench.bench.folder import ResultsDir

    bench = ROOT / "benchmarks" / "results" / "digits-d-lambda"
    assert cell_rows(str(bench)) == cell_rows(ResultsDir(bench)) and cell_rows(bench)
    assert "is not a benchmark results folder" in _one_line(cell_rows, tmp_path)
