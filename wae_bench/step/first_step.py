"""What the trainer checks of a plugin on its first (eager) step, beside its
return value (:func:`~wae_bench.regularizer.check_penalty`): the contract
points that break a run quietly or far from their cause, for a plugin whose
author skipped ``wae-bench check-plugin`` (:mod:`wae_bench.plugin_check`).

- ``aux_loss()`` or ``penalty()`` modified ``z`` in place (``z.div_``,
  ``z.clamp_``, ``z[...] = ...``): autograd would later fail in the
  trainer's ``backward()`` with a message naming neither the plugin nor its
  line.  ``aux_loss`` gets ``z.detach()``, which shares storage and version
  counter with ``z``.  Read from ``z._version``, a host integer: no sync.
- The step drew from a process-global generator (torch's CPU or CUDA
  default generator, NumPy's, Python's ``random``) rather than
  ``ctx.generator`` (:mod:`wae_bench.step.rng`): a warning, once per plugin
  and process, since the run still trains, but its result then depends on
  the cells run alongside it (``bench --concurrent``) and a resume is not
  exact.  Host-side states only: no sync.

The first step is always eager: a CUDA graph is captured after warm-up
steps (:class:`~wae_bench.step.graph.CapturedStep`), so nothing here runs
inside a capture; later steps get :data:`LATER`, whose methods do nothing.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch
from rich.markup import escape
from torch import Tensor

from wae_bench.progress import notice
from wae_bench.regularizer import BrokenStep

_WARNED: set[str] = set()   # plugins already warned about in this process
_SILENT = [False]            # inside draws_unwarned()


def global_rng_states(device: torch.device) -> dict[str, object]:
    """The process-global generators' states, by how a message names them."""
    states = {"torch's global generator": torch.get_rng_state(),
              "NumPy's global generator": np.random.get_state(),
              "Python's random module": random.getstate()}
    if device.type == "cuda":
        states["torch's global CUDA generator"] = torch.cuda.get_rng_state(device)
    return states


def drawn_from(before: dict[str, object], device: torch.device) -> list[str]:
    """The global generators whose state moved since ``before`` (:func:`global_rng_states`)."""
    return [what for what, s in global_rng_states(device).items() if not _same(s, before[what])]


def _same(a: object, b: object) -> bool:
    if isinstance(a, Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple) and isinstance(b, tuple):   # NumPy's state holds an array
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


class FirstStep:
    """The checks of plugin ``name``'s first step on ``device`` (made before
    the step begins: the global generators' states then)."""

    def __init__(self, name: str, device: torch.device, rank: int = 0):
        self.name, self.device, self.rank = name, device, rank
        self.rng = global_rng_states(device)
        self.version = 0

    def watch(self, z: Tensor) -> None:
        """Before a hook that gets ``z``: its version now."""
        self.version = z._version

    def kept(self, z: Tensor, hook: str) -> None:
        """After ``hook`` ran: refuse a ``z`` it modified in place."""
        if z._version != self.version:
            shared = (" (the z it gets is z.detach(), which shares storage with the trained latent)"
                      if hook == "aux_loss" else "")
            raise BrokenStep(f"plugin {self.name!r}: {hook}() modified z in place{shared}, e.g. z.div_, z.clamp_, "
                           f"z[...] = ...; compute a new tensor (z = z / ...) instead")

    def done(self) -> None:
        """After the step: warn (once per plugin and process) if it drew from a global generator."""
        drawn = drawn_from(self.rng, self.device)
        if drawn and self.rank == 0 and not _SILENT[0] and self.name not in _WARNED:
            _WARNED.add(self.name)
            notice(escape(f"warning: plugin {self.name!r} drew from {', '.join(drawn)} in a training step: its "
                          f"results depend on the cells run alongside it (bench --concurrent) and a resume is not "
                          f"exact; draw from ctx.generator (see wae-bench check-plugin {self.name})"))


@contextlib.contextmanager
def draws_unwarned() -> Iterator[None]:
    """No global-draw warning in the block: ``wae-bench check-plugin`` reports
    such a draw as the failure of its own ``randomness`` check."""
    _SILENT[0] = True
    try:
        yield
    finally:
        _SILENT[0] = False


class _Later:
    """The checks of every later step: none."""

    def watch(self, z: Tensor) -> None:
        pass

    def kept(self, z: Tensor, hook: str) -> None:
        pass

    def done(self) -> None:
        pass


LATER = _Later()
