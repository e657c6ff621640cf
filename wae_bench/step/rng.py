"""The random state of a run: its own ``torch.Generator`` (the step context's
:attr:`~wae_bench.regularizer.Context.generator`, on the run's device), the
plugins' private ``torch.Generator`` attributes, and how both go into a
checkpoint.

Randomness belongs to a run, not to the process: every draw inside a
training step (prior samples, projection directions, probes) comes from the
run's generator, seeded from the run's seed (and the process's rank under
DDP).  So several runs in one process (``bench --concurrent``) draw exactly
what each would draw alone, a resumed run continues its own stream, and the
process-global generators are used only while building a run (the initial
weights, :func:`seed_everything`); a library call that builds one
(:func:`~wae_bench.run.train.train_run`, :func:`~wae_bench.evaluate.evaluate_run`)
gives the caller's global generators back as it found them
(:func:`global_generators_kept`).

CUDA graphs: a captured step's draws read the generator's seed and offset
from device tensors that each replay refreshes from the generator's host
state and then advances by the graph's total offset increment, so replays
draw what eager steps would (torch's "CUDA Graph-safe RNG states";
:class:`~wae_bench.step.graph.CapturedStep` registers the run's generators
with its graph through ``CUDAGraph.register_generator_state``).
"""
from __future__ import annotations

import contextlib
import hashlib
import random
from typing import Iterator

import numpy as np
import torch
from torch import nn

from wae_bench.progress import notice


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (torch, Python, NumPy) before a run's nets and
    plugin are built, so that the initial weights are a function of the seed."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)


@contextlib.contextmanager
def global_generators_kept() -> Iterator[None]:
    """The block may reseed the process-global generators (:func:`seed_everything`);
    after it (also after an error or a stop) torch's CPU generator, NumPy's
    and Python's ``random`` are back in the state they were in before it, and
    so are the CUDA generators if CUDA was initialised before it.  Where it
    was not, and the block left it so, a CUDA seeding the block queued (torch
    seeds CUDA lazily, at its initialisation) is taken back too; a block that
    initialises CUDA leaves the CUDA generators as the run seeded them."""
    cpu, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    tracker = getattr(torch.cuda, "_lazy_seed_tracker", None) if cuda is None else None
    queued = dict(vars(tracker)) if tracker is not None else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        np.random.set_state(np_state)
        random.setstate(py_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        elif queued is not None and not torch.cuda.is_initialized():
            vars(tracker).update(queued)


def stream_seed(seed: int, rank: int = 0) -> int:
    """The seed of a run's generator: a hash of the run's seed and rank (a
    stream of its own, unrelated to the other seeded streams of a run)."""
    h = hashlib.sha256(f"wae-bench/step/{seed}/{rank}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def run_generator(seed: int, device: torch.device | str = "cpu", rank: int = 0) -> torch.Generator:
    """The run's own generator on ``device``: every draw inside a step uses it."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, rank))


def module_generators(mods: dict[str, nn.Module]) -> dict[str, torch.Generator]:
    """Private ``torch.Generator`` attributes of the modules (e.g. a plugin's
    projection directions), by ``owner.module.attr``; they are not in
    ``state_dict()``, so the trainer saves them with the run's generator."""
    out = {}
    for owner, mod in mods.items():
        for mname, m in mod.named_modules():
            for attr, v in vars(m).items():
                if isinstance(v, torch.Generator):
                    out[".".join(filter(None, (owner, mname, attr)))] = v
    return out


def generator_state(g: torch.Generator) -> dict:
    """A generator's state as a checkpoint holds it (a CPU byte tensor and its device type)."""
    return {"device": g.device.type, "state": g.get_state()}


def load_generator(g: torch.Generator, saved: dict | None, what: str = "the run's generator") -> None:
    """Restore :func:`generator_state` into ``g``.  A checkpoint without it
    (written before runs had their own generator) or of another device type
    (the state of a CPU generator is not a CUDA one's) leaves ``g`` as it is,
    with a warning: the draws after the resume then differ from an
    uninterrupted run's."""
    if not saved:
        notice(f"[yellow]warning:[/] the checkpoint holds no state of {what} (written by an older "
               f"wae-bench); random draws after the resume differ from an uninterrupted run's")
        return
    if saved.get("device") != g.device.type:
        notice(f"[yellow]warning:[/] {what} was saved on {saved.get('device')}, this run draws on "
               f"{g.device.type}; random draws after the resume differ from an uninterrupted run's")
        return
    g.set_state(saved["state"])
