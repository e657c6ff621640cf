"""The training step; the only place that calls ``backward()`` and
``optimizer.step()``.

One iteration (order documented in :mod:`wae_bench.regularizer`)::

    z, x_hat = ae(x, reg.constrain)                       # Enc, constraint, Dec
    for _ in range(reg.aux_steps):                        # if any (WAE Alg. 1; WGAN's n_critic)
        aux = reg.aux_loss(z.detach()); aux.backward(); aux_opt.step()
    loss = ||x - x_hat||² + reg.penalty(x, z).loss        # MoCA Eq. 5 / WAE Eq. 4
    loss.backward(); opt.step()
    reg.after_step(...)                                   # EMA, enqueue
    meter.add(...); t += 1                                # device-side, no sync

Nothing in :meth:`Trainer.step` reads a tensor on the host; metrics and the
non-finite guard are read every ``log_every`` steps (:mod:`wae_bench.step.loop`)
through :meth:`Meter.read <wae_bench.step.meter.Meter.read>`, and the
divergence check (:class:`RecGrowth`) compares the means read there, with no
read of its own.  The first step,
always eager (a CUDA graph is captured after warm-up steps), also checks the
plugin: its return values (:func:`~wae_bench.regularizer.check_aux`,
:func:`~wae_bench.regularizer.check_penalty`, their terms' names apart), a ``z`` modified in place,
draws from process-global generators, those of the autoencoder's forward
told apart as the architecture's, a plugin parameter that gets a gradient
but is in no optimiser (:mod:`wae_bench.step.first_step`); host-side facts
only, no sync.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.distributed as td
from torch import Tensor, nn

from wae_bench import worded
from wae_bench.errors import WaeError
from wae_bench.losses import reconstruction
from wae_bench.regularizer import (Context, Regularizer, aux_parts, check_aux, check_aux_steps, check_penalty,
                                   check_terms_apart)
from wae_bench.step.first_step import LATER, FirstStep, _Later
from wae_bench.step.meter import Meter
from wae_bench.step.rng import generator_state, load_generator, module_generators, run_generator


def average_gradients(opt: torch.optim.Optimizer) -> None:
    """Average the gradients of ``opt``'s parameters over all processes (one
    flattened all-reduce), as DDP does for the autoencoder."""
    grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    td.all_reduce(flat)
    flat /= td.get_world_size()
    torch._foreach_copy_(grads, [f.view_as(g) for f, g in zip(flat.split([g.numel() for g in grads]), grads)])


@contextlib.contextmanager
def cudnn_benchmark_kept() -> Iterator[None]:
    """The block's CUDA trainers turn ``torch.backends.cudnn.benchmark`` on
    (:class:`Trainer`); after the block (also after an error or a stop) it is
    as it was before."""
    before = torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class NonFinite(WaeError):
    """A loss term or parameter went NaN/inf; raised before any checkpoint of
    that state is written."""


class Diverged(NonFinite):
    """The reconstruction loss, still finite, grew past a factor of its early
    value (:class:`RecGrowth`).  A :class:`NonFinite`, so it takes the same
    path: raised before any checkpoint of that state, a `wae-bench run` ends
    with its one line, a bench tuning cell records it as diverged."""


def _short(v: float, digits: int) -> str:
    """``8.5e12`` rather than ``8.5e+12`` (a message's number)."""
    return f"{v:.{digits}g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


class RecGrowth:
    """The divergence check independent of the metric: a run whose mean
    reconstruction loss over a log window (the ``rec`` term, ``||x - x_hat||²``:
    >= 0 and the same quantity for every regularizer, unlike the total loss,
    which a plugin such as WAE-GAN may make negative or oscillating) exceeds
    ``factor`` × its early value has diverged, finite or not.  A blow-up that
    stays finite (wae-mmd at lr 300: 146 at step 1, 1.9e14 at step 2, every
    sample one saturated pattern) would else be scored like a trained run.

    The early value is ``rec`` at step 1, the untrained net's error, which
    healthy training only lowers: a blow-up in the first steps (the case
    above) is inside the first log window, whose mean would hide it.  A
    checkpoint from before step-1 values were recorded has none: then the
    first window's mean after the resume is the early value.

    The factor (``train.diverge_factor``, default 1e4) sits far above any
    healthy run: no default run of a built-in regularizer on the embedded
    digits logs a window mean above its step-1 value (docs/resume.md,
    "Numerical guards", gives the measured ratios, all below 1), while a
    blow-up grows by many orders of magnitude (x1e12 above), so a factor
    this large finds it at the next log and never stops a run that merely
    trains badly.

    ``early`` = (value, first step, last step): state of the run, saved in
    its checkpoints with the meter's step-1 values, so a resumed run compares
    with what the uninterrupted run would.  It is recorded whatever the
    factor, so the setting decides only whether the check stops a run."""

    def __init__(self):
        self.early: tuple[float, int, int] | None = None

    def window(self, rec: float | None, step: int, steps: int, at_start: float | None) -> None:
        """Before a comparison: the early value, once -- ``at_start`` (``rec``
        at step 1, None where it was not seen), else ``rec``, the mean of the
        log window of ``steps`` steps to ``step`` (0: a window cut short by a
        stop, never the early value)."""
        if self.early is None:
            if at_start is not None:
                self.early = (at_start, 1, 1)
            elif rec is not None and steps > 0:
                self.early = (rec, step - steps + 1, step)

    def grown(self, rec: float | None, factor: float) -> bool:
        """``rec`` (a window's mean) is past ``factor`` × the early value (``factor`` 0: off)."""
        return bool(factor > 0 and rec is not None and self.early is not None and self.early[0] > 0
                    and rec > factor * self.early[0])

    def message(self, rec: float, step: int) -> str:
        early, first, last = self.early
        steps = f"step {first}" if first == last else f"steps {first}-{last}"
        return (f"reconstruction loss grew from {_short(early, 3)} ({steps}) to {_short(rec, 2)} at step {step} "
                f"(x{_short(rec / early, 2)}): the run diverged; lower the learning rate or λ")

    def state_dict(self) -> list | None:
        return None if self.early is None else list(self.early)

    def load_state_dict(self, s: list | None) -> None:
        self.early = None if s is None else (float(s[0]), int(s[1]), int(s[2]))


class Trainer:
    """Owns the optimisers, the step counter ``t`` (a device tensor) and the
    step context ``ctx``, whose ``generator`` is the run's random stream (the
    caller's, else one seeded from seed 0 on the nets' device)."""

    def __init__(self, ae: nn.Module, reg: Regularizer, *, lr: float, total_steps: int,
                 precision: str = "fp32", model: nn.Module | None = None, ctx: Context | None = None):
        self.ae, self.reg = ae, reg
        self.model = model if model is not None else ae   # a DDP wrapper under torchrun
        self.device = next(ae.parameters()).device
        self.t = torch.zeros((), dtype=torch.long, device=self.device)
        self.ctx = ctx if ctx is not None else Context(t=self.t, T=total_steps)
        self.ctx.t, self.ctx.T = self.t, total_steps
        if self.ctx.generator is None:
            self.ctx.generator = run_generator(0, self.device)
        wd = reg.decoder_weight_decay()
        groups = [{"params": list(ae.encoder.parameters()), "weight_decay": 0.0},
                  {"params": list(ae.decoder.parameters()), "weight_decay": wd}]
        # fused Adam on CUDA: one multi-tensor kernel per step (capturable with a tensor lr)
        self.opt = torch.optim.Adam(groups, lr=lr, fused=True if self.device.type == "cuda" else None)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # static shapes: let cuDNN pick each conv's algorithm
            #                                         (train_run puts it back after: cudnn_benchmark_kept)
        self.aux_opt = reg.make_aux_optimizer()
        self.plugin = reg.name or type(reg).__qualname__
        # read once: the step's auxiliary loop is static (the same count in every captured replay)
        self.aux_steps = reg.aux_steps
        check_aux_steps(self.plugin, self.aux_steps, type(reg))
        self.base_lr = lr
        # no cast cache: each weight is cast once per step anyway, and a cache
        # that outlives a CUDA-graph capture would hold graph-pool tensors
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False)) \
            if precision == "bf16" else contextlib.nullcontext
        self.meter = Meter(self.device)
        self.growth = RecGrowth()   # the reconstruction loss's first log window (the divergence check)
        self.checked = False   # the first step's checks done (check_aux, check_penalty, wae_bench.step.first_step)
        self.arch = getattr(ae, "arch_name", None)   # (set by wae_bench.nets.build_arch)

    def set_lr(self, lr: float) -> None:
        """Between steps; a tensor lr (capturable Adam in a CUDA graph) is
        changed in place so the captured graph sees it."""
        for opt in filter(None, (self.opt, self.aux_opt)):
            for g in opt.param_groups:
                value = lr * g.get("lr_scale", 1.0)
                if isinstance(g["lr"], Tensor):
                    g["lr"].fill_(value)
                else:
                    g["lr"] = value

    def step(self, x: Tensor) -> None:
        """One training iteration on batch ``x`` (float, [0, 1]); capture-safe
        (the plugin's first step, always eager, is checked: ``check``)."""
        check = LATER if self.checked else FirstStep(self.plugin, self.device, self.ctx.rank, self.arch,
                                                         (self.ae, self.reg))
        try:
            self._step(x, check)
        finally:   # (a first step that raised leaves no hook on the nets)
            check.release()

    def _step(self, x: Tensor, check: FirstStep | _Later) -> None:
        ctx, reg = self.ctx, self.reg
        with self.autocast():
            z, x_hat = self.model(x, check.constrain(reg.constrain))
        check.forwarded()
        aux_terms = self._aux_steps(z, check) if self.aux_opt is not None else {}
        check.watch(z)
        with self.autocast():
            rec = reconstruction(x_hat, x)
            out = reg.penalty(x, z, self.ae, ctx)
        check.kept(z, "penalty")
        if not self.checked:   # the plugin's return value, once (types and shapes: no host read)
            check_penalty(self.plugin, out)
            check_terms_apart(self.plugin, [k[len(reg.name) + 1:] for k in aux_terms if k != "aux"], out.terms)
        loss = rec + out.loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        check.trained(reg, self.opt, self.aux_opt)
        self.opt.step()
        with torch.no_grad():
            reg.after_step(x, z.detach(), out, self.ae, ctx)
        self.meter.add({"loss": loss, "rec": rec, "reg": out.loss, **aux_terms,
                        **{f"{reg.name}/{k}": v for k, v in out.terms.items()}}, self.t)
        self.t += 1
        check.done()
        self.checked = True

    def _aux_steps(self, z: Tensor, check: FirstStep | _Later) -> dict[str, Tensor]:
        """The iteration's :attr:`aux_steps` auxiliary steps (a static loop,
        captured whole): each calls ``aux_loss`` on the detached latents
        (drawing afresh from the run's generator), backpropagates it and
        steps the plugin's optimiser.  Returns what to log, averaged over the
        steps: ``aux`` and the terms of an aux_loss RegOut, as ``NAME/term``."""
        ctx, reg = self.ctx, self.reg
        sums: dict[str, Tensor] = {}
        for _ in range(self.aux_steps):
            check.watch(z)
            with self.autocast():
                aux = reg.aux_loss(z.detach(), ctx)
            check.kept(z, "aux_loss")
            if not self.checked:   # its return value, on the first step (types, shapes, requires_grad: no host read)
                check_aux(self.plugin, aux)
            loss, parts = aux_parts(aux)
            self.aux_opt.zero_grad(set_to_none=True)
            loss.backward()
            if ctx.world_size > 1:   # the plugin's own module is synchronised like the autoencoder
                average_gradients(self.aux_opt)
            self.aux_opt.step()
            for k, v in {"aux": loss, **{f"{reg.name}/{k}": v for k, v in parts.items()}}.items():
                sums[k] = sums[k] + v.detach() if k in sums else v.detach()
        return sums if self.aux_steps == 1 else {k: v / self.aux_steps for k, v in sums.items()}

    # -- state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"ae": self.ae.state_dict(), "reg": self.reg.state_dict(), "opt": self.opt.state_dict(),
                "aux_opt": self.aux_opt.state_dict() if self.aux_opt else None,
                "t": int(self.t), "meter": self.meter.state_dict(), "rec_early": self.growth.state_dict(),
                **self.rng_dict()}

    def rng_dict(self) -> dict:
        """The run's random state in this process: its generator and the
        plugins' private generators (one set per rank under DDP).  The
        process-global generators are not part of it: nothing in a step draws
        from them (:mod:`wae_bench.step.rng`)."""
        return {"generator": generator_state(self.ctx.generator),
                "generators": {k: g.get_state() for k, g in self._generators().items()}}

    def load_rng(self, s: dict) -> None:
        load_generator(self.ctx.generator, s.get("generator"))
        for k, g in self._generators().items():
            if k in s.get("generators", {}):
                g.set_state(s["generators"][k])

    def load_state_dict(self, s: dict) -> None:
        self.ae.load_state_dict(s["ae"])
        self.reg.load_state_dict(s["reg"])
        self.opt.load_state_dict(s["opt"])
        if self.aux_opt is not None and s.get("aux_opt") is not None:
            self.aux_opt.load_state_dict(s["aux_opt"])
        self.t.fill_(int(s["t"]))
        self.meter.load_state_dict(s.get("meter") or {})
        self.growth.load_state_dict(s.get("rec_early"))
        self.load_rng(s)

    def _generators(self) -> dict[str, torch.Generator]:
        return module_generators({"ae": self.ae, "reg": self.reg})

    def generators(self) -> list[torch.Generator]:
        """Every generator a step may draw from: the run's own, then the plugins' private ones."""
        return [self.ctx.generator, *self._generators().values()]

    def check_finite(self, bad: dict[str, int]) -> None:
        """Raise :class:`NonFinite` naming the first step and the term that went
        non-finite (the most specific one: a plugin's own term before ``reg``,
        ``reg``/``rec`` before the total ``loss``), or a parameter that did.
        One host sync for all parameters; called every ``log_every`` steps and
        before every checkpoint, so no checkpoint holds a non-finite state."""
        if bad:
            step = min(bad.values())
            first = sorted((n for n, s in bad.items() if s == step), key=_specificity)
            also = f" (also {', '.join(first[1:])})" if len(first) > 1 else ""
            raise NonFinite(f"non-finite {first[0]!r} at step {step + 1}{also}; {worded.lower_lr_or_lambda()}")
        named = [(f"{owner} parameter {n!r}", p) for owner, mod in (("autoencoder", self.ae), ("regularizer", self.reg))
                 for n, p in mod.named_parameters()]
        if not named:
            return
        ok = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
        for (what, _), good in zip(named, ok):
            if not good:
                raise NonFinite(f"non-finite {what} by step {int(self.t)}; {worded.lower_lr_or_lambda()}")


def _specificity(term: str) -> tuple[int, str]:
    order = {"loss": 4, "reg": 3, "rec": 2, "aux": 1}
    return order.get(term, 0), term
