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
  (or architecture) and process, since the run still trains, but its result
  then depends on the cells run alongside it (``bench --concurrent``) and a
  resume is not exact.  A draw in the autoencoder's forward (the encoder or
  the decoder, outside the plugin's ``constrain``), or in a module of the
  architecture plugin's own classes wherever it runs (a copy of the encoder
  in the plugin), is the architecture's and names it; every other draw in
  the step is the plugin's.  Host-side states only: no sync.
- A parameter of the plugin got a gradient in the step but is in neither
  the trainer's optimiser (the encoder's and decoder's) nor the one
  :meth:`~wae_bench.regularizer.Regularizer.make_aux_optimizer` returns
  (a critic trained through ``penalty()``): nothing would ever step it,
  and the run would train against a critic that never moves.  Reads
  ``.grad is None`` only: no sync.

The first step is always eager: a CUDA graph is captured after warm-up
steps (:class:`~wae_bench.step.graph.CapturedStep`), so nothing here runs
inside a capture; later steps get :data:`LATER`, whose methods do nothing.
"""
from __future__ import annotations

import contextlib
import random
from typing import Callable, Iterator

import numpy as np
import torch
from rich.markup import escape
from torch import Tensor, nn

from wae_bench.nets.contract import label as arch_label, own_classes
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


def unoptimised(reg: nn.Module, opts: tuple[torch.optim.Optimizer | None, ...]) -> list[str]:
    """The names of ``reg``'s parameters that hold a gradient but are in no
    optimiser of ``opts`` (None: none), in ``named_parameters`` order."""
    held = {id(p) for opt in opts if opt is not None for g in opt.param_groups for p in g["params"]}
    return [n for n, p in reg.named_parameters() if p.grad is not None and id(p) not in held]


def and_list(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else items[0]


class FirstStep:
    """The checks of plugin ``name``'s first step on ``device`` (made before
    the step begins: the global generators' states then); ``arch``: the
    architecture whose net the step runs (None: not known)."""

    def __init__(self, name: str, device: torch.device, rank: int = 0, arch: str | None = None,
                 nets: tuple[nn.Module, ...] = ()):
        self.name, self.device, self.rank, self.arch = name, device, rank, arch
        self.rng = global_rng_states(device)
        self.drawn: dict[str, list[str]] = {"plugin": [], "architecture": []}
        self.version = 0
        self.owner, self.depth = "architecture", 0   # whose the draws outside the net's own modules are
        self.hooks = self._watch_net(nets)

    def _watch_net(self, nets: tuple[nn.Module, ...]) -> list:
        """Hooks on each module of ``nets`` (the autoencoder and the plugin)
        of a class of the architecture plugin's own (the first net's), eager
        ones only: a draw in their forward is the architecture's, also where
        the plugin runs a copy of the net (MoCA's key encoder)."""
        if not nets:
            return []
        classes = own_classes(nets[0])
        # (none inside a compiled module: Dynamo would trace the hooks' state reads, breaking its graphs)
        compiled = {id(sub) for root in nets for m in root.modules()
                    if getattr(m, "_compiled_call_impl", None) is not None for sub in m.modules()}

        def enter(module, args):
            if self.depth == 0:
                self._mark(self.owner)
            self.depth += 1

        def leave(module, args, out):
            self.depth -= 1
            if self.depth == 0:
                self._mark("architecture")

        return [h for root in nets for m in root.modules()
                if type(m) in classes and id(m) not in compiled
                for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]

    def _mark(self, owner: str) -> None:
        """The global draws since the last mark are ``owner``'s."""
        self.drawn[owner] += [w for w in drawn_from(self.rng, self.device) if w not in self.drawn[owner]]
        self.rng = global_rng_states(self.device)

    def constrain(self, fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """The plugin's ``constrain`` for the autoencoder's forward: the draws
        before it (the encoder's) are the architecture's, its own the plugin's."""
        def constrain(f: Tensor) -> Tensor:
            self._mark("architecture")
            out = fn(f)
            self._mark("plugin")
            return out
        return constrain

    def forwarded(self) -> None:
        """After the autoencoder's forward: the draws since ``constrain`` (the
        decoder's) are the architecture's; later ones the plugin's (but in the net's own modules)."""
        self._mark("architecture")
        self.owner = "plugin"

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

    def trained(self, reg: nn.Module, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer | None) -> None:
        """After the step's ``backward()`` passes: refuse a parameter of
        ``reg`` that holds a gradient but is in neither the autoencoder's
        optimiser ``opt`` nor the plugin's ``aux_opt``."""
        names = unoptimised(reg, (opt, aux_opt))
        if not names:
            return
        shown = and_list(names[:3] + ([f"{len(names) - 3} more"] if len(names) > 3 else []))
        them, they, s, plural = ("it", "it", "s", "") if len(names) == 1 else ("them", "they", "", "s")
        if aux_opt is None:
            held, fix = ("make_aux_optimizer() returns None",
                         f"return an optimiser over {them} from make_aux_optimizer() and train {them} in aux_loss()")
        else:
            held, fix = (f"make_aux_optimizer()'s optimiser does not hold {them}",
                         f"add {them} to make_aux_optimizer()'s optimiser")
        raise BrokenStep(f"plugin {self.name!r}: its parameter{plural} {shown} get{s} a gradient in a step, but no "
                         f"optimiser steps {them} (the trainer's Adam holds only the encoder and decoder, and {held}), "
                         f"so {they} never train{s}; {fix}, or freeze a fixed one (p.requires_grad_(False), or a "
                         f"buffer)")

    def release(self) -> None:
        """Remove the hooks on the nets (after the step, also one that raised); idempotent."""
        for h in self.hooks:
            h.remove()
        self.hooks = []

    def done(self) -> None:
        """After the step: warn (once per plugin or architecture and process)
        of each that drew from a global generator."""
        self._mark("plugin")
        self.release()
        if self.rank != 0 or _SILENT[0]:
            return
        arch, drawn = f"architecture:{self.arch}", self.drawn["architecture"]
        if drawn and arch not in _WARNED:
            _WARNED.add(arch)
            who = arch_label(self.arch) if self.arch else "the autoencoder"
            notice(escape(f"warning: {who} drew from {', '.join(drawn)} in its forward: its results depend on the "
                          f"cells run alongside it (bench --concurrent) and a resume is not exact; make the net "
                          f"deterministic, or draw from a torch.Generator kept as an attribute of the net "
                          f"(saved in every checkpoint)"))
        drawn = self.drawn["plugin"]
        if drawn and self.name not in _WARNED:
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

    def release(self) -> None:
        pass

    def constrain(self, fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        return fn

    def forwarded(self) -> None:
        pass

    def watch(self, z: Tensor) -> None:
        pass

    def kept(self, z: Tensor, hook: str) -> None:
        pass

    def trained(self, reg: nn.Module, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer | None) -> None:
        pass

    def done(self) -> None:
        pass


LATER = _Later()
