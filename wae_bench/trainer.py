"""The training step and loop; the only place that calls ``backward()`` and
``optimizer.step()``.

One iteration (order documented in :mod:`wae_bench.regularizer`)::

    z, x_hat = ae(x, reg.constrain)                       # Enc, constraint, Dec
    aux = reg.aux_loss(z.detach()); aux.backward(); aux_opt.step()   # if any (WAE Alg. 1)
    loss = ||x - x_hat||² + reg.penalty(x, z).loss        # MoCA Eq. 5 / WAE Eq. 4
    loss.backward(); opt.step()
    reg.after_step(...)                                   # EMA, enqueue
    meter.add(...); t += 1                                # device-side, no sync

Nothing in :meth:`Trainer.step` reads a tensor on the host; metrics and the
non-finite guard are read every ``log_every`` steps by :meth:`Meter.read`.
"""
from __future__ import annotations

import contextlib
import random
import signal
import time
from typing import Callable

import torch
from torch import Tensor, nn

from wae_bench.errors import WaeError
from wae_bench.losses import reconstruction
from wae_bench.regularizer import Context, Regularizer


class Meter:
    """Device-side running sums of named scalars plus a non-finite guard:
    ``first_bad[i]`` is the first step at which term ``i`` was not finite.
    Its tensors are created once and then only changed in place (reset,
    load), so a captured CUDA graph keeps writing into the tensors read here."""

    def __init__(self, device: torch.device):
        self.device, self.names = device, None
        self.sums = self.count = self.first_bad = None

    def add(self, terms: dict[str, Tensor], t: Tensor) -> None:
        vals = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if self.names is None:
            self._create(list(terms))
        finite = torch.isfinite(vals)
        self.sums.add_(torch.where(finite, vals, torch.zeros_like(vals)))
        self.count.add_(1)
        self.first_bad.copy_(torch.where(~finite & (self.first_bad < 0), t, self.first_bad))

    def _create(self, names: list[str]) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=self.device)
        self.count = torch.zeros((), device=self.device)
        self.first_bad = torch.full((len(names),), -1, dtype=torch.long, device=self.device)

    def reset(self) -> None:
        self.sums.zero_()
        self.count.zero_()

    def read(self) -> tuple[dict[str, float], dict[str, int]]:
        """(means since the last read, {term: first non-finite step}); syncs."""
        if self.names is None:
            return {}, {}
        means = (self.sums / self.count.clamp(min=1)).tolist()
        bad = {n: s for n, s in zip(self.names, self.first_bad.tolist()) if s >= 0}
        self.reset()
        return dict(zip(self.names, means)), bad

    def state_dict(self) -> dict:
        if self.names is None:
            return {}
        return {"names": self.names, "sums": self.sums, "count": self.count, "first_bad": self.first_bad}

    def load_state_dict(self, s: dict) -> None:
        if not s:
            return
        if self.names != list(s["names"]):
            self._create(list(s["names"]))
        for mine, saved in ((self.sums, s["sums"]), (self.count, s["count"]), (self.first_bad, s["first_bad"])):
            mine.copy_(saved)


def average_gradients(opt: torch.optim.Optimizer) -> None:
    """Average the gradients of ``opt``'s parameters over all processes (one
    flattened all-reduce), as DDP does for the autoencoder."""
    import torch.distributed as td

    grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    td.all_reduce(flat)
    flat /= td.get_world_size()
    torch._foreach_copy_(grads, [f.view_as(g) for f, g in zip(flat.split([g.numel() for g in grads]), grads)])


class NonFinite(WaeError):
    """A loss term or parameter went NaN/inf; raised before any checkpoint of
    that state is written."""


class Trainer:
    """Owns the optimisers and the step counter ``t`` (a device tensor)."""

    def __init__(self, ae: nn.Module, reg: Regularizer, *, lr: float, total_steps: int,
                 precision: str = "fp32", model: nn.Module | None = None, ctx: Context | None = None):
        self.ae, self.reg = ae, reg
        self.model = model if model is not None else ae   # a DDP wrapper under torchrun
        self.device = next(ae.parameters()).device
        self.T = total_steps
        self.t = torch.zeros((), dtype=torch.long, device=self.device)
        self.ctx = ctx if ctx is not None else Context(t=self.t, T=total_steps)
        self.ctx.t, self.ctx.T = self.t, total_steps
        wd = reg.decoder_weight_decay()
        groups = [{"params": list(ae.encoder.parameters()), "weight_decay": 0.0},
                  {"params": list(ae.decoder.parameters()), "weight_decay": wd}]
        # fused Adam on CUDA: one multi-tensor kernel per step (capturable with a tensor lr)
        self.opt = torch.optim.Adam(groups, lr=lr, fused=True if self.device.type == "cuda" else None)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # static shapes: let cuDNN pick each conv's algorithm
        self.aux_opt = reg.make_aux_optimizer()
        self.base_lr = lr
        # no cast cache: each weight is cast once per step anyway, and a cache
        # that outlives a CUDA-graph capture would hold graph-pool tensors
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False)) \
            if precision == "bf16" else contextlib.nullcontext
        self.meter = Meter(self.device)
        self.set_to_none = True

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
        """One training iteration on batch ``x`` (float, [0, 1]); capture-safe."""
        ctx, reg = self.ctx, self.reg
        with self.autocast():
            z, x_hat = self.model(x, reg.constrain)
        terms = {}
        if self.aux_opt is not None:
            with self.autocast():
                aux = reg.aux_loss(z.detach(), ctx)
            self.aux_opt.zero_grad(set_to_none=self.set_to_none)
            aux.backward()
            if ctx.world_size > 1:   # the plugin's own module is synchronised like the autoencoder
                average_gradients(self.aux_opt)
            self.aux_opt.step()
            terms["aux"] = aux
        with self.autocast():
            rec = reconstruction(x_hat, x)
            out = reg.penalty(x, z, self.ae, ctx)
        loss = rec + out.loss
        self.opt.zero_grad(set_to_none=self.set_to_none)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            reg.after_step(x, z.detach(), out, self.ae, ctx)
        self.meter.add({"loss": loss, "rec": rec, "reg": out.loss, **terms,
                        **{f"{reg.name}/{k}": v for k, v in out.terms.items()}}, self.t)
        self.t += 1

    # -- state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"ae": self.ae.state_dict(), "reg": self.reg.state_dict(), "opt": self.opt.state_dict(),
                "aux_opt": self.aux_opt.state_dict() if self.aux_opt else None,
                "t": int(self.t), "meter": self.meter.state_dict(), **self.rng_dict()}

    def rng_dict(self) -> dict:
        """This process's random state: the global RNGs and the plugins'
        private generators (one per rank under DDP)."""
        return {"rng": rng_state(), "generators": {k: g.get_state() for k, g in self._generators().items()}}

    def load_rng(self, s: dict) -> None:
        set_rng_state(s["rng"])
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
        self.load_rng(s)

    def _generators(self) -> dict[str, torch.Generator]:
        return _generators({"ae": self.ae, "reg": self.reg})

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
            raise NonFinite(f"non-finite {first[0]!r} at step {step + 1}{also}; lower --lr or --lambda")
        named = [(f"{owner} parameter {n!r}", p) for owner, mod in (("autoencoder", self.ae), ("regularizer", self.reg))
                 for n, p in mod.named_parameters()]
        if not named:
            return
        ok = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
        for (what, _), good in zip(named, ok):
            if not good:
                raise NonFinite(f"non-finite {what} by step {int(self.t)}; lower --lr or --lambda")


def _specificity(term: str) -> tuple[int, str]:
    order = {"loss": 4, "reg": 3, "rec": 2, "aux": 1}
    return order.get(term, 0), term


def _generators(mods: dict[str, nn.Module]) -> dict[str, torch.Generator]:
    """Private ``torch.Generator`` attributes of the modules (e.g. a plugin's
    projection directions), by ``owner.module.attr``; they are not in
    ``state_dict()``, so the trainer saves them with the RNG states."""
    out = {}
    for owner, mod in mods.items():
        for mname, m in mod.named_modules():
            for attr, v in vars(m).items():
                if isinstance(v, torch.Generator):
                    out[".".join(filter(None, (owner, mname, attr)))] = v
    return out


def rng_state() -> dict:
    """Every global RNG: Python's ``random``, NumPy's legacy global, torch CPU
    and (if initialised) CUDA; as tensors and plain values (safe to load)."""
    import numpy as np

    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "python": list(mt), "python_version": version, "python_gauss": gauss,
          "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                    "gauss": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    import numpy as np

    torch.set_rng_state(st["torch"])
    random.setstate((st["python_version"], tuple(st["python"]), st.get("python_gauss")))
    if "numpy" in st:
        n = st["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops between steps and saves."""

    def __init__(self):
        self.raised: str | None = None

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.raised:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(trainer: Trainer, batch: Callable[[int], Tensor], *, start: int, total: int, steps_per_epoch: int,
        lr_halve_every: int, log_every: int, ckpt_every: int,
        on_log: Callable[[int, dict], None], on_ckpt: Callable[[int], None],
        agree: Callable[..., tuple[bool, ...]] | None = None, ckpt_minutes: float = 0.0,
        clock: Callable[[], float] = time.monotonic) -> str | None:
    """Run steps ``start..total-1``; returns the signal name if stopped early.

    Checkpoints: every ``ckpt_every`` steps (0: off), at the first log step
    ``ckpt_minutes`` or more after the last checkpoint (0: off; on a GPU a
    step takes milliseconds, so a step count alone would write hundreds of
    MB every few seconds), and at the end.
    The meter (and with it the non-finite guard) is read every ``log_every``
    steps and before every checkpoint, so no checkpoint holds a state after a
    non-finite step.  A SIGINT/SIGTERM stops after the current step with a
    checkpoint; under DDP ``agree`` (one all-reduce: "did any rank stop /
    find a checkpoint due?") is consulted at log steps only, so every rank
    stops, and checkpoints by time, at the same step."""
    trainer.ae.train(), trainer.reg.train()
    last_ckpt = clock()
    with StopFlag() as stop:
        epoch = None
        for s in range(start, total):
            if s // steps_per_epoch != epoch:
                epoch = s // steps_per_epoch
                halvings = epoch // lr_halve_every if lr_halve_every else 0
                trainer.set_lr(trainer.base_lr * 0.5 ** halvings)
            trainer.step(batch(s))
            done = s + 1
            at_log = done % log_every == 0
            due = ckpt_minutes > 0 and at_log and clock() - last_ckpt >= 60 * ckpt_minutes
            stopping = stop.raised is not None
            if agree is not None:
                stopping, due = agree(stopping, due) if at_log else (False, False)
            last = done == total or stopping
            ckpt = due or last or (ckpt_every > 0 and done % ckpt_every == 0)
            if at_log or ckpt:
                means, bad = trainer.meter.read()
                trainer.check_finite(bad)
                on_log(done, {"epoch": epoch, "lr": float(trainer.opt.param_groups[0]["lr"]), **means})
            if ckpt:
                on_ckpt(done)
                last_ckpt = clock()
            if stopping:
                return stop.raised or "SIGTERM"   # (another rank's signal)
    return None
