"""Whole-step CUDA graphs (wae_bench/step/graph.py): what the CPU can check.

The capture itself needs a GPU (covered by benchmarks/gpu_check.sh); here:
the warm-up that precedes a capture leaves no trace in the training state,
and without CUDA the step falls back to eager, saying so."""
from __future__ import annotations

import pytest
import torch

from wae_bench.step.graph import NoSideEffects, capture_step
from wae_bench.registry import REGULARIZERS
from tests.helpers import assert_trained_alike, batch, cuda_pair, make_trainer


def snapshot(tr):
    sd = {**{f"ae.{k}": v.clone() for k, v in tr.ae.state_dict().items()},
          **{f"reg.{k}": v.clone() for k, v in tr.reg.state_dict().items()}}
    return sd


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_warmup_leaves_no_trace(name):
    """...in the state tensors and in the run's generator: the warm-up's
    prior samples are drawn again by the first real steps."""
    a, b = make_trainer(name, seed=0), make_trainer(name, seed=0)
    with NoSideEffects(a):
        for s in range(3):
            a.step(batch(seed=100 + s))
    assert int(a.t) == 0
    before = snapshot(a)
    assert all(torch.equal(v, w) for v, w in zip(before.values(), snapshot(b).values()))
    assert torch.equal(a.ctx.generator.get_state(), b.ctx.generator.get_state())
    for s in range(3):            # then both train identically
        a.step(batch(seed=s))
        b.step(batch(seed=s))
    for (k, v), w in zip(snapshot(a).items(), snapshot(b).values()):
        assert torch.allclose(v.float(), w.float(), atol=1e-6, rtol=1e-5), k
    assert a.meter.read()[0].keys() == b.meter.read()[0].keys()


def test_graph_mode_falls_back_to_eager_on_cpu(capsys):
    tr = make_trainer("moca")
    step = capture_step(tr, batch())
    assert step == tr.step
    assert "needs a CUDA device" in capsys.readouterr().err


@pytest.mark.gpu(reason="CUDA graph capture needs a GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_captured_step_matches_eager_on_gpu(name, precision, monkeypatch):
    """Five replays of the captured step give the same mean losses and leave
    the same parameters as five eager steps, and the run's generator (prior
    samples, directions: registered with the graph) ends where the eager
    run's does."""
    a, b, x = cuda_pair(name, precision, monkeypatch)
    step = capture_step(a, x(0))
    for s in range(5):
        step(x(s))
        b.step(x(s))
    assert torch.equal(a.ctx.generator.get_state(), b.ctx.generator.get_state())
    assert_trained_alike(a, b, 5, 1e-4 if precision == "fp32" else 2e-3)


def test_tensor_learning_rate_is_halved_in_place_and_logged_as_a_number():
    """Graph mode keeps the lr as a device tensor (changed in place between
    replays); the loop must still halve it and log plain numbers."""
    import json

    from wae_bench.step.loop import fit

    tr = make_trainer("moca", lr=1e-3)
    for g in tr.opt.param_groups:
        g["lr"] = torch.tensor(1e-3)
    lr_tensor = tr.opt.param_groups[0]["lr"]
    logs = []
    fit(tr, lambda s: batch(seed=s), start=0, total=4, steps_per_epoch=2, lr_halve_every=1, log_every=2,
        ckpt_every=100, on_log=lambda step, m: logs.append(json.dumps(m)), on_ckpt=lambda step: None)
    assert tr.opt.param_groups[0]["lr"] is lr_tensor and float(lr_tensor) == pytest.approx(5e-4)
    assert [json.loads(x)["lr"] for x in logs] == [pytest.approx(1e-3), pytest.approx(5e-4)]


@pytest.mark.parametrize("asked, layout, device, world, want", [
    ("auto", None, "cuda", 1, ("graph", True)),       # the fast path by default on one GPU
    ("auto", None, "cpu", 1, ("eager", False)),
    ("auto", None, "cuda", 2, ("eager", False)),      # DDP: capture is not used
    ("auto", False, "cuda", 1, ("graph", False)),     # what is asked is kept
    ("eager", None, "cuda", 1, ("eager", True)),
    ("graph", None, "cuda", 1, ("graph", True)),
    ("graph", None, "cpu", 1, ("eager", False, "step_mode=graph needs a CUDA device")),   # what it trains in
    ("graph", None, "cuda", 2, ("eager", False, "step_mode=graph is not used with more than one process")),
    ("eager", True, "cpu", 1, ("eager", True)),
])
def test_fast_path_resolves_auto_by_device(asked, layout, device, world, want):
    from wae_bench.step.graph import FastPath, fast_path

    assert fast_path(asked, layout, device, world) == FastPath(*want)


def test_an_explicit_graph_on_the_cpu_is_shown_as_the_eager_step_it_is(tmp_path, capsys):
    """The run's header names the mode it trains in (before: "cpu (CUDA
    graph)", then a line saying it trains eagerly); config.json keeps the
    mode asked for."""
    import json

    from tests.reliability_helpers import TINY, cli

    code, out, err = cli(["run", "--reg", "ae", *[a for a in TINY if a != "--quiet"], "--set", "max_steps=1",
                          "--step-mode", "graph", "--out", tmp_path / "g"], capsys)
    text = " ".join((out + err).split())
    assert code == 0, text
    assert "cpu (eager; step_mode=graph needs a CUDA device)" in text and "CUDA graph" not in text, text
    assert text.count("needs a CUDA device") == 1
    assert json.loads((tmp_path / "g" / "config.json").read_text())["config"]["step_mode"] == "graph"


def test_a_plan_resolves_its_fast_path_for_a_cuda_device_without_one():
    """The defaults, resolved for a (not present) CUDA device and for the CPU;
    a run built from them on the CPU keeps the default layout."""
    from wae_bench.config import TrainConfig
    from wae_bench.run.build import resolve

    plan = resolve(TrainConfig())
    assert (plan.cfg.step_mode, plan.cfg.channels_last) == ("auto", None)     # saved as asked
    assert plan.fast(torch.device("cuda")).describe() == "CUDA graph, channels-last"
    assert plan.fast(torch.device("cpu")).describe() == "eager"
    assert resolve(TrainConfig(), world_size=2).fast(torch.device("cuda:1")).step_mode == "eager"
    tr = make_trainer("moca")
    assert not tr.ae.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
