"""Whole-step CUDA graphs: capture :meth:`Trainer.step` once, replay it.

At the paper's batch 64 the A1 step is launch-bound on a modern GPU (the same
time at batch 64 and 256), so capturing the whole iteration -- forward,
backward, both optimiser steps, the plugin's after-step work and the metric
sums -- as one CUDA graph removes the launch overhead.  This relies on the
contract's capture-safety (no host reads, static shapes, the step counter and
schedules as device tensors) and on capturable Adam with a tensor learning
rate (changed in place by :meth:`Trainer.set_lr` between replays).

Where capture is impossible (no CUDA device, more than one process) the step
stays eager: :func:`fast_path` resolves an explicit "graph" to it, saying why
(the run's header shows it), and :func:`capture_step` says so once.  ``step_mode = "auto"``
(the default) asks for it exactly where it is possible (:func:`fast_path`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from wae_bench.progress import console


@dataclass(frozen=True)
class FastPath:
    """How a run's step executes on its device: ``step_mode`` "graph" or
    "eager" (the effective mode), and the NHWC memory layout; ``not_graph``:
    why an explicit "graph" runs eagerly here (empty: it was not asked, or it
    is used)."""

    step_mode: str
    channels_last: bool
    not_graph: str = ""

    def describe(self) -> str:
        mode = "CUDA graph" if self.step_mode == "graph" else "eager"
        return ", ".join([f"{mode}; {self.not_graph}" if self.not_graph else mode,
                          *(["channels-last"] if self.channels_last else [])])


def fast_path(step_mode: str, channels_last: bool | None, device_type: str, world_size: int) -> FastPath:
    """Resolve ``auto`` (pure): on a single CUDA device the whole step is
    captured and the layout is channels-last; elsewhere (the CPU, several
    processes: capture is not used under DDP) it is eager in the default
    layout.  An explicit ``eager`` or ``channels_last`` is kept, and so is an
    explicit ``graph`` where a graph can be captured; elsewhere the step is
    eager and ``not_graph`` says why (what :func:`capture_step` would say),
    so that the run's header shows the mode it trains in.  The config keeps
    the value asked for."""
    single_gpu = device_type == "cuda" and world_size == 1
    mode = ("graph" if single_gpu else "eager") if step_mode == "auto" else step_mode
    why = "" if mode != "graph" or single_gpu else _NOT_GRAPH["device" if device_type != "cuda" else "processes"]
    return FastPath("eager" if why else mode, single_gpu if channels_last is None else bool(channels_last), why)


_NOT_GRAPH = {"device": "step_mode=graph needs a CUDA device",
              "processes": "step_mode=graph is not used with more than one process"}


def make_capturable(opt: torch.optim.Optimizer | None, device: torch.device) -> None:
    """Adam with device-side step counts and a tensor lr (before any state exists)."""
    if opt is None:
        return
    for g in opt.param_groups:
        g["capturable"] = True
        if not isinstance(g["lr"], Tensor):
            g["lr"] = torch.tensor(float(g["lr"]), device=device)
        for p in g["params"]:   # a resumed state keeps its step counts on the CPU
            st = opt.state.get(p, {})
            if isinstance(st.get("step"), Tensor):
                st["step"] = st["step"].to(p.device, torch.float32)


def _state_tensors(trainer) -> list[Tensor]:
    """Every tensor a step changes in place (not gradients)."""
    out = [trainer.t, *trainer.ae.state_dict(keep_vars=True).values(),
           *trainer.reg.state_dict(keep_vars=True).values()]
    out += trainer.meter.tensors()
    for opt in filter(None, (trainer.opt, trainer.aux_opt)):
        for st in opt.state.values():
            out += [v for v in st.values() if isinstance(v, Tensor)]
    return out


class NoSideEffects:
    """Run warm-up steps, then put every tensor back as it was, in place
    (tensor identity kept, as a captured graph needs), and every generator of
    the run (:meth:`Trainer.generators`) at its state before.  Optimiser state and
    meter sums created by the warm-up are reset to their initial values
    (zeros; step 0, no non-finite step), which is what a fresh Adam state
    holds (a meter the warm-up remade for other terms than a loaded
    checkpoint's starts its window afresh, with no non-finite step and no
    step-1 value seen)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __enter__(self):
        self.saved = {id(t): (t, t.detach().clone()) for t in _state_tensors(self.trainer)}
        self.rng = [(g, g.get_state()) for g in self.trainer.generators()]
        self.meter = [id(t) for t in self.trainer.meter.tensors()]
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for t in _state_tensors(self.trainer):
                if id(t) in self.saved:
                    t.copy_(self.saved[id(t)][1])
                else:
                    t.zero_()
            if [id(t) for t in self.trainer.meter.tensors()] != self.meter:   # made by the warm-up: none yet
                self.trainer.meter.unflag()
        for g, state in self.rng:
            g.set_state(state)


class CapturedStep:
    """``step(x)`` copies ``x`` into a static input and replays the graph, on
    the stream that is current when it is called (each cell of ``bench
    --concurrent`` replays on its own).

    The run's CUDA generators are registered with the graph before capture
    (``CUDAGraph.register_generator_state``): each replay then reads the
    generator's seed and offset as they are and advances the offset by what
    the whole step consumed, as eager steps would (so a checkpoint after N
    replays holds the generator state of N eager steps)."""

    def __init__(self, trainer, example: Tensor, warmup: int = 3):
        self.trainer = trainer
        self.x = example.clone()
        eager = trainer.step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), NoSideEffects(trainer):   # allocate grads, optimiser state, meter
            for _ in range(warmup):
                eager(self.x)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        for g in trainer.generators():
            if g.device.type == "cuda":
                self.graph.register_generator_state(g)
        with torch.cuda.graph(self.graph):
            eager(self.x)

    def __call__(self, x: Tensor) -> None:
        self.x.copy_(x, non_blocking=True)
        self.graph.replay()


def capture_step(trainer, example: Tensor, *, world_size: int = 1, warmup: int = 3) -> Callable[[Tensor], None]:
    """The captured step, or the eager one (with a one-time notice) where a
    CUDA graph cannot be used.  The warm-up leaves no trace in the state."""
    dev = trainer.device
    if dev.type != "cuda" or world_size > 1:
        console.print(f"[yellow]{_NOT_GRAPH['device' if dev.type != 'cuda' else 'processes']}; training eagerly[/]")
        return trainer.step
    make_capturable(trainer.opt, dev)
    make_capturable(trainer.aux_opt, dev)
    return CapturedStep(trainer, example, warmup)
