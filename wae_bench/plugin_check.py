"""Check a regularizer plugin against the step contract
(:mod:`wae_bench.regularizer`) on tiny CPU runs, in seconds.

What the contract asks of a plugin, each as a plain function of its
registered name (:data:`CHECKS`, in this order):

- :func:`builds`: it declares a known ``prior`` and ``sampler`` and a tiny run
  of it can be built (``tiny`` net, stand-in data);
- :func:`finite_step`: three steps give finite loss terms and move the
  encoder (and the trainer's first step finds no plugin parameter that gets
  a gradient but is in no optimiser, :mod:`wae_bench.step.first_step`);
- :func:`penalty_reaches_encoder`: ``penalty()`` returns a :class:`RegOut`
  with a finite scalar loss and scalar terms, and ``reconstruction + loss``
  backpropagates into the encoder;
- :func:`state_round_trips`: no plain attribute of the plugin holds a
  module, parameter, tensor that requires grad or optimiser (no checkpoint
  would carry it), a step changes none, and a run resumed from a checkpoint
  trains on as the original does (all state in buffers and sub-modules);
- :func:`draws_only_from_run_generator`: a step leaves torch's, Python's and
  NumPy's global generators as they were (every draw from ``ctx.generator``);
- :func:`aux_step_touches_only_its_own`: an auxiliary step (WAE Algorithm 1's
  discriminator step) returns a scalar loss with gradient, or a RegOut of
  one (:func:`~wae_bench.regularizer.check_aux`), and moves the plugin's own
  parameters and nothing else, at the lr the trainer gives it (an
  ``aux_loss``, or ``aux_steps`` > 1, needs ``make_aux_optimizer``);
- :func:`capture_safe`: a step reads no tensor on the host (``item``,
  ``tolist``, ``bool``/``float``/``int`` of a tensor: what breaks CUDA-graph
  capture), torch's own CPU Adam excepted;
- :func:`tuning_grid_is_a_bench_grid`: ``tuning_grid(setup)`` gives axes a
  bench spec's ``[tune]`` accepts (checked by the bench's own code);
- :func:`documented`: ``paper``, class and Config docstrings, for
  ``wae-bench list``;

and, asked for (``check-plugin --compile``: Inductor's cold compile takes
tens of seconds on a CPU), :func:`compiled_steps`: three steps of a run
compiled as ``--compile default`` compiles it, finite, the encoder moving,
a compile failure the plugin's one line.

A check returns None when the plugin passes, a reason when it does not apply
(a skip), and raises :class:`ContractBroken` -- one line naming the plugin,
what broke and the fix -- when it fails (or the trainer's own WaeError, e.g.
:class:`~wae_bench.regularizer.BrokenStep`); an exception of the plugin's
own propagates.  :func:`run_checks` runs them all and turns each failure into an
:class:`Outcome`; ``wae-bench check-plugin`` (:mod:`wae_bench.cli.check_plugin`)
prints those, and ``tests/test_contract.py`` runs the same functions over
every registered plugin.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import random
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from wae_bench.config import from_dict, merge
from wae_bench.errors import WaeError
from wae_bench.plugin_fault import double_backward
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import BrokenStep, Regularizer, aux_parts, check_aux, check_declared, check_penalty
from wae_bench.run import checkpoint
from wae_bench.run.build import stand_in_batch as batch, stand_in_trainer as trainer
from wae_bench.step.first_step import and_list, drawn_from, global_rng_states
from wae_bench.step.trainer import Trainer

CPU = torch.device("cpu")   # where the checks' tiny runs train


class ContractBroken(WaeError):
    """A plugin broke the step contract; ``str(e)``: the plugin, what broke, the fix."""


def _broken(name: str, what: str, fix: str) -> ContractBroken:
    return ContractBroken(f"plugin {name!r}: {what}; {fix}")


# -- the checks -----------------------------------------------------------------------------
def builds(name: str) -> None:
    """``name`` declares a known ``prior`` and ``sampler``
    (:func:`~wae_bench.regularizer.check_declared`, as the registry checks
    what it loads) and a tiny run of it builds (its Config, ``__init__``,
    ``attach``, ``make_aux_optimizer``)."""
    check_declared(name, REGULARIZERS.get(name))
    trainer(name)


def finite_step(name: str) -> None:
    """Three steps on tiny data: every logged term is finite and the encoder's
    weights moved."""
    _three_finite_steps(name, trainer(name))


def _three_finite_steps(name: str, tr: Trainer) -> None:
    """Three steps of ``tr`` on tiny data: every logged term is finite and the encoder's weights moved."""
    before = [p.detach().clone() for p in tr.ae.encoder.parameters()]
    for s in range(3):
        tr.step(batch(seed=s))
    means, bad = tr.meter.read()
    bad = sorted({*bad, *(k for k, v in means.items() if not np.isfinite(v))})
    if bad:
        raise _broken(name, f"3 steps on tiny data gave non-finite loss terms {bad}",
                      "keep the penalty finite (guard divisions and logs, e.g. x.clamp_min(1e-12))")
    if all(torch.equal(a, b) for a, b in zip(before, tr.ae.encoder.parameters())):
        raise _broken(name, "3 steps left the encoder's weights unchanged",
                      "let the trainer's optimiser step the encoder: do not detach z in constrain() or "
                      "overwrite the encoder's parameters")


def penalty_reaches_encoder(name: str) -> None:
    """``penalty()`` returns a RegOut with a finite scalar loss and scalar
    terms (:func:`~wae_bench.regularizer.check_penalty`) that carries a
    gradient (a loss of a detached ``z``, or computed under ``no_grad``,
    trains as the plain autoencoder, without a word: reconstruction alone
    moves the encoder), and the gradient of reconstruction + loss reaches
    the encoder."""
    tr = trainer(name)
    x = batch()
    z, x_hat = tr.ae(x, tr.reg.constrain)
    out = tr.reg.penalty(x, z, tr.ae, tr.ctx)
    check_penalty(name, out)
    if not torch.isfinite(out.loss):
        raise _broken(name, f"penalty() returned a non-finite loss ({out.loss}) on tiny data",
                      "keep the penalty finite (guard divisions and logs, e.g. x.clamp_min(1e-12))")
    if not out.loss.requires_grad:
        raise _broken(name, "penalty()'s loss carries no gradient (computed from a detached z, under "
                            "torch.no_grad() or as a constant), so it regularises nothing",
                      "compute it from the z penalty() is given, without .detach() or no_grad (a plugin that "
                      "regularises only in attach() or decoder_weight_decay() returns 0 * z.sum())")
    loss = ((x_hat - x) ** 2).sum() + out.loss
    loss.backward()
    grads = [p.grad for p in tr.ae.encoder.parameters() if p.grad is not None]
    if not (grads and any(g.abs().sum() > 0 for g in grads)):
        raise _broken(name, "no gradient of reconstruction + penalty reaches the encoder",
                      "compute the penalty from the z it is given, without detaching it, and keep "
                      "constrain() differentiable")


@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Torch's, Python's and NumPy's global generators as they were on entry, on exit."""
    state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(state[0])
        random.setstate(state[1])
        np.random.set_state(state[2])


def _first_difference(a: dict, b: dict) -> str | None:
    if a.keys() != b.keys():
        return f"its keys differ: {sorted(a.keys() ^ b.keys())[:3]}"
    for k in a:   # (NaN equals NaN here: a non-finite step is finite-step's failure, not this check's)
        if not torch.allclose(a[k].double(), b[k].double(), rtol=1e-5, atol=1e-7, equal_nan=True):
            return f"{k!r} differs"
    return None


_MODULE_ATTRIBUTES = frozenset(vars(nn.Module()))   # what nn.Module itself keeps (its parameters, buffers, ...)


def _snapshot(v: object) -> object:
    """``v`` as a value to compare after a step: tensors and arrays by their
    bytes, containers and dataclasses element-wise, scalars as they are;
    modules and generators (checkpointed elsewhere) and other objects by
    identity."""
    if isinstance(v, Tensor):
        t = v.detach().cpu().contiguous().reshape(-1)
        return ("tensor", str(v.dtype), tuple(v.shape), t.view(torch.uint8).numpy().tobytes())
    if isinstance(v, np.ndarray):
        return ("array", str(v.dtype), v.shape, v.tobytes())
    if v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
        return v
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_snapshot(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((repr(k), _snapshot(x)) for k, x in v.items()))
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (type(v), tuple(_snapshot(getattr(v, f.name)) for f in dataclasses.fields(v)))
    return ("object", id(v))


def _plain_attributes(reg: nn.Module) -> dict[str, object]:
    """The plugin's attributes that are neither sub-modules, parameters nor
    buffers (a checkpoint carries none of them), as :func:`_snapshot` s."""
    return {k: _snapshot(v) for k, v in vars(reg).items() if k not in _MODULE_ATTRIBUTES}


def _held(v: object, path: str, seen: set[int], depth: int = 0) -> Iterator[tuple[str, object]]:
    """Each module, tensor or optimiser in ``v`` (itself, or inside lists,
    tuples, sets, dicts and dataclasses, a few levels deep), with its path
    from ``path`` (``self.fs[0]``)."""
    if id(v) in seen or depth > 4:
        return
    seen.add(id(v))
    if isinstance(v, (nn.Module, Tensor, torch.optim.Optimizer)):
        yield path, v
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from _held(x, f"{path}[{i}]", seen, depth + 1)
    elif isinstance(v, (set, frozenset)):
        for x in v:
            yield from _held(x, f"{path} (a set)", seen, depth + 1)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _held(x, f"{path}[{k!r}]", seen, depth + 1)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        for f in dataclasses.fields(v):
            yield from _held(getattr(v, f.name), f"{path}.{f.name}", seen, depth + 1)


_UNREGISTERED = {   # kind: (what is wrong with it, the fix)
    "module": ("that is not registered, so no checkpoint carries it and .to(device) does not move it",
               "keep modules in nn.ModuleList / nn.ModuleDict, or assign each to self"),
    "parameter": ("that is not registered, so no checkpoint carries it and .to(device) does not move it",
                  "keep parameters in nn.ParameterList / nn.ParameterDict, or assign each to self"),
    "tensor": ("that requires grad but is neither a parameter nor a buffer, so no optimiser trains it and no "
               "checkpoint carries it", "make a trained tensor an nn.Parameter (in make_aux_optimizer()'s "
                                        "optimiser) and a fixed one a buffer (self.register_buffer(...))"),
    "optimiser": ("that the trainer neither steps nor checkpoints (a checkpoint carries only the optimiser "
                  "make_aux_optimizer() returns)",
                  "return it from make_aux_optimizer() and let the trainer step it on aux_loss(), aux_steps "
                  "times per iteration (WGAN's n_critic: aux_steps = 5)"),
}


def unregistered_state(tr: Trainer) -> list[tuple[str, str]]:
    """Each plain attribute of ``tr.reg`` that is, or holds, a module, a
    parameter, a leaf tensor that requires grad or an optimiser that no
    checkpoint carries (not a module or tensor of the autoencoder or of the
    plugin, not one of the trainer's optimisers): ``(what, fix)``.  The
    resume comparison of :func:`state_round_trips` would find only its
    symptom (a weight differing one step after a resume), while the
    attribute diff compares such objects by identity."""
    nets = (tr.ae, tr.reg)
    kept = {id(o) for n in nets for o in (*n.modules(), *n.parameters(), *n.buffers())}
    kept |= {id(o) for o in (tr.opt, tr.aux_opt) if o is not None}
    seen: set[int] = set()
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for k, v in vars(tr.reg).items():
        if k in _MODULE_ATTRIBUTES:
            continue
        for path, o in _held(v, f"self.{k}", seen):
            if id(o) in kept:
                continue
            kind = ("optimiser" if isinstance(o, torch.optim.Optimizer) else "module" if isinstance(o, nn.Module)
                    else "parameter" if isinstance(o, nn.Parameter)
                    else "tensor" if o.requires_grad and o.is_leaf else None)
            if kind is None or (k, kind) in out:
                continue
            what = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({type(o).__name__}"
            what = f"self.{k} is {what})" if path == f"self.{k}" else f"self.{k} holds {what}, as {path})"
            out[(k, kind)] = (f"{what} {_UNREGISTERED[kind][0]}", _UNREGISTERED[kind][1])
    return list(out.values())


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)[:40]


def _changed(reg: nn.Module, before: dict[str, object]) -> list[str]:
    """Each plain attribute of ``reg`` that differs from ``before``, described
    (``self.calls (an int: 1 -> 2)``, ``self.mu (a tensor of shape (6,))``)."""
    after = _plain_attributes(reg)
    out = []
    for k in sorted(before.keys() | after.keys()):
        if k in before and k in after and before[k] == after[k]:
            continue
        v = getattr(reg, k, None)
        kind = type(v).__name__
        if k not in after:
            out.append(f"self.{k} (deleted)")
        elif isinstance(v, Tensor):
            out.append(f"self.{k} (a tensor of shape {tuple(v.shape)})")
        elif isinstance(v, (bool, int, float, str)) and isinstance(before.get(k), (bool, int, float, str)):
            out.append(f"self.{k} (a{'n' * (kind[0] in 'aeiou')} {kind}: {_short(before[k])} -> {_short(v)})")
        else:
            out.append(f"self.{k} (a{'n' * (kind[0] in 'aeiou')} {kind})")
    return out


def state_round_trips(name: str) -> None:
    """No plain attribute of the plugin holds state a checkpoint would not
    carry (:func:`unregistered_state`: a module in a list, a private
    optimiser).  A step leaves the plugin's plain attributes (neither sub-modules,
    parameters nor buffers: a checkpoint does not carry them, and a CUDA-graph
    replay does not run the Python that updates them) as they were.  And: two
    steps, a checkpoint saved and loaded (``weights_only``) into a run built
    from another seed, then one more step of each on the same batch: the
    autoencoder's and the plugin's ``state_dict`` agree (within float
    tolerance: multi-threaded CPU kernels may differ in the last bits; the
    bit-exact resume is tests/test_resume.py's).  Both steps see the same
    global generators, so a global draw fails :func:`draws_only_from_run_generator`,
    not this check."""
    a = trainer(name, seed=0)
    for s in range(2):
        a.step(batch(seed=s))
    hidden = unregistered_state(a)
    if hidden:
        raise _broken(name, and_list([w for w, _ in hidden]), "; ".join(dict.fromkeys(f for _, f in hidden)))
    with tempfile.TemporaryDirectory(prefix="wae-bench-check-") as tmp:
        path = Path(tmp) / "c.pt"
        checkpoint.save(path, a.state_dict())
        state = checkpoint.load(path)                   # weights_only
    b = trainer(name, seed=123)                         # another init and run generator
    b.load_state_dict(state)
    plain = _plain_attributes(a.reg)
    with _global_rng_kept():
        a.step(batch(seed=9))
    changed = _changed(a.reg, plain)
    if changed:
        raise _broken(name, f"{and_list(changed)} changed during a step, but a checkpoint does not carry a plain "
                            f"attribute and a CUDA-graph replay does not run the Python that updates it",
                      "keep per-step state in a buffer (self.register_buffer(...), updated in place) or derive "
                      "it from ctx.t")
    b.step(batch(seed=9))
    for part, sa, sb in (("the autoencoder's", a.ae.state_dict(), b.ae.state_dict()),
                         ("the plugin's", a.reg.state_dict(), b.reg.state_dict())):
        diff = _first_difference(sa, sb)
        if diff:
            raise _broken(name, f"a run resumed from a checkpoint trains differently ({part} state_dict: "
                                f"{diff} one step after the resume)",
                          "keep every piece of state in a buffer (self.register_buffer(...)), a parameter or "
                          "a sub-module, not a plain tensor attribute, so that the checkpoint carries it")


def draws_only_from_run_generator(name: str, reg_cfg: dict | None = None,
                                  expect_draws: bool | None = None) -> None:
    """Two steps leave the process-global generators (torch, Python, NumPy)
    as they were: every draw comes from ``ctx.generator``, so runs sharing a
    process draw what each would alone and a resume is exact.  With
    ``expect_draws`` True (False) the run's generator must (must not) have
    moved; None (a plugin that declares nothing): either."""
    tr = trainer(name, reg_cfg)
    before = global_rng_states(CPU)
    g0 = tr.ctx.generator.get_state()
    for s in range(2):
        tr.step(batch(seed=s))
    fix = ("draw from the run's generator: torch.randn(..., generator=ctx.generator), "
           "self.sample_prior(n, z.device, ctx.generator)")
    moved_global = drawn_from(before, CPU)
    drew = [what for what in ("torch's global generator", "Python's random module", "NumPy's global generator")
            if what in moved_global]
    if drew:
        raise _broken(name, f"a step drew from {and_list(drew)}", fix)
    moved = not torch.equal(tr.ctx.generator.get_state(), g0)
    if expect_draws is not None and moved != expect_draws:
        raise _broken(name, f"a step {'did not draw' if expect_draws else 'drew'} from ctx.generator, "
                            f"expected {'to' if expect_draws else 'not to'}",
                      "update the expectation if the plugin's sampling changed")


def aux_step_touches_only_its_own(name: str) -> str | None:
    """One auxiliary step (``aux_loss`` on detached latents, the plugin's own
    optimiser) returns a scalar loss with gradient, or a RegOut of one
    (:func:`~wae_bench.regularizer.check_aux`, as the trainer's first step
    checks it), moves the plugin's own parameters and not the autoencoder's,
    and each of the optimiser's param groups was built with the lr the
    trainer gives it (the run's lr × its ``lr_scale``: the trainer owns every
    lr); skipped (returns why) for a plugin without an auxiliary step, failed
    for one that overrides ``aux_loss`` or asks for ``aux_steps`` > 1 without
    an optimiser (the trainer keys the auxiliary step on
    ``make_aux_optimizer``, so it would never run)."""
    tr = trainer(name)
    if tr.aux_opt is None:
        fix = ("return an optimiser over the plugin's own parameters from make_aux_optimizer(), "
               "e.g. torch.optim.Adam([{'params': self.D.parameters(), 'lr_scale': 1.0}])")
        if type(tr.reg).aux_loss is not Regularizer.aux_loss:
            raise _broken(name, "it overrides aux_loss() but make_aux_optimizer() returns None, so the trainer "
                                "never runs the auxiliary step (what aux_loss() trains is never trained)", fix)
        if tr.aux_steps != 1:
            raise _broken(name, f"it sets aux_steps = {tr.aux_steps} but make_aux_optimizer() returns None, so no "
                                f"auxiliary step runs", f"{fix}, and train it in aux_loss(); or drop aux_steps")
        return f"{name} has no auxiliary optimiser (make_aux_optimizer() returns None)"
    aux_params = {id(p) for g in tr.aux_opt.param_groups for p in g["params"]}
    ae_params = {id(p) for g in tr.opt.param_groups for p in g["params"]}
    if not aux_params or aux_params & ae_params:
        raise _broken(name, "make_aux_optimizer() optimises " + ("nothing" if not aux_params else
                                                                 "parameters of the autoencoder"),
                      "give it only the plugin's own parameters (e.g. self.disc.parameters())")
    own = [p for p in tr.reg.parameters() if id(p) in aux_params]
    ae_before = [p.detach().clone() for p in tr.ae.parameters()]
    aux_before = [p.detach().clone() for p in own]
    z, _ = tr.ae(batch(), tr.reg.constrain)
    tr.aux_opt.zero_grad()
    aux = tr.reg.aux_loss(z.detach(), tr.ctx)
    check_aux(name, aux)
    aux_parts(aux)[0].backward()
    tr.aux_opt.step()
    if not all(torch.equal(a, b) for a, b in zip(ae_before, tr.ae.parameters())):
        raise _broken(name, "the auxiliary step changed the autoencoder's weights",
                      "compute aux_loss() from the detached z it is given and the plugin's own modules only")
    if not any(not torch.equal(a, b) for a, b in zip(aux_before, own)):
        raise _broken(name, "the auxiliary step left the plugin's own parameters unchanged",
                      "make aux_loss() depend on the parameters that make_aux_optimizer() optimises, "
                      "and make those sub-modules of the plugin")
    _aux_lr_is_the_trainers(name, tr)
    return None


def _aux_lr_is_the_trainers(name: str, tr: Trainer) -> None:
    """Each param group of ``tr.aux_opt`` was built with ``lr`` = the run's lr
    × its ``lr_scale`` (what :meth:`Trainer.set_lr` sets before the first
    step), or with the optimiser's own default lr (nothing set: the
    documented ``Adam([{"params": ..., "lr_scale": 0.2}])``, an RMSprop's
    0.01 left as it is; an explicit ``lr=`` of that value is not told
    apart): else the plugin's own lr setting silently does nothing."""
    default = inspect.signature(type(tr.aux_opt).__init__).parameters.get("lr")
    for i, g in enumerate(tr.aux_opt.param_groups):
        lr, scale = float(g["lr"]), g.get("lr_scale", 1.0)
        unset = default is not None and isinstance(default.default, float) and lr == default.default
        if not (unset or math.isclose(lr, tr.base_lr * scale, rel_tol=1e-6)):
            group = f" in param group {i}" if len(tr.aux_opt.param_groups) > 1 else ""
            raise _broken(name, f"make_aux_optimizer() set lr={lr:g}{group}, but the trainer sets every group's lr "
                                f"to the run's lr × the group's 'lr_scale' (here {tr.base_lr:g} × {scale:g}) and "
                                f"follows the schedule, so that lr is never used",
                          f"give {{'params': ..., 'lr_scale': {lr / tr.base_lr:g}}} instead (lr_scale "
                          f"{lr / tr.base_lr:g} is lr={lr:g} at this run's lr {tr.base_lr:g})")


# -- capture safety -------------------------------------------------------------------------
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")
HOOKS = ("constrain", "aux_loss", "penalty", "after_step")   # the plugin's code inside a step


class _Reads:
    """Host reads of tensor values seen inside :func:`no_host_reads`, and which
    plugin hook (:data:`HOOKS`) was running at each."""

    def __init__(self):
        self.allowed = False
        self.hooks: list[str] = []
        self.seen: list[tuple[str, str | None, str]] = []   # (Tensor method, hook, file:line)


_READS = _Reads()


def _where(frames: list[traceback.FrameSummary]) -> str:
    """The innermost of ``frames`` outside torch and this module, as ``file:line``."""
    torch_dir = str(Path(torch.__file__).parent)
    for f in reversed(frames):
        if not f.filename.startswith(torch_dir) and f.filename != __file__:
            return f"{Path(f.filename).name}:{f.lineno}"
    return "?"


def _host_read_error(name: str, method: str, hook: str | None, where: str) -> ContractBroken:
    who = f"{hook}()" if hook else "the training step"
    fix = ("branch with torch.where (or compute both sides) instead of an `if` on a tensor value"
           if method == "__bool__" else "keep values as tensors, log them via RegOut.terms")
    return ContractBroken(f"plugin {name!r}: {who} reads a tensor on the host (Tensor.{method}, at {where}) "
                          f"inside the step; this breaks CUDA-graph capture — {fix}")


@contextlib.contextmanager
def no_host_reads(name: str = "?") -> Iterator[_Reads]:
    """Make every host read of a tensor value (:data:`HOST_READS`) raise
    :class:`ContractBroken` and be recorded (what breaks CUDA graphs); reads
    inside :func:`allowed` pass."""
    saved = {n: getattr(torch.Tensor, n) for n in HOST_READS}

    def guard(method: str):
        def read(self, *a, **k):
            if _READS.allowed:
                return saved[method](self, *a, **k)
            hook, where = (_READS.hooks[-1] if _READS.hooks else None), _where(traceback.extract_stack()[:-1])
            _READS.seen.append((method, hook, where))
            raise _host_read_error(name, method, hook, where)
        return read
    _READS.seen.clear()
    try:
        for n in saved:
            setattr(torch.Tensor, n, guard(n))
        yield _READS
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def allowed(fn: Callable) -> Callable:
    """``fn`` whose host reads :func:`no_host_reads` lets pass (torch's own
    non-capturable CPU Adam; capturable on the GPU)."""
    def call(*a, **k):
        _READS.allowed = True
        try:
            return fn(*a, **k)
        finally:
            _READS.allowed = False
    return call


def _tracking_hooks(tr: Trainer) -> None:
    """Wrap the plugin's step hooks of ``tr`` so a host read names the hook it came from."""
    def tracked(hook: str, fn: Callable) -> Callable:
        def call(*a, **k):
            _READS.hooks.append(hook)
            try:
                return fn(*a, **k)
            finally:
                _READS.hooks.pop()
        return call
    for hook in HOOKS:
        object.__setattr__(tr.reg, hook, tracked(hook, getattr(tr.reg, hook)))


def capture_safe(name: str) -> None:
    """A step (after a first one that may size lazily-built state) reads no
    tensor on the host, torch's CPU Adam of either optimiser excepted (its
    capturable form runs on the GPU).  A read the plugin catches still fails."""
    tr = trainer(name)
    tr.step(batch(seed=0))
    for opt in filter(None, (tr.opt, tr.aux_opt)):
        opt.step = allowed(opt.step)
    _tracking_hooks(tr)
    with no_host_reads(name) as reads:
        try:
            tr.step(batch(seed=1))
        except ContractBroken:
            pass
    if reads.seen:
        raise _host_read_error(name, *reads.seen[0])


# -- under torch.compile ----------------------------------------------------------------------
def compiled_steps(name: str) -> str | None:
    """Three steps of a tiny run compiled as a run with ``--compile default``
    compiles it (:func:`~wae_bench.step.compile.compile_nets`, called by
    :func:`~wae_bench.run.build.build_run`: the encoder, the decoder and the
    plugin's ``compile_targets()``) give finite terms and move the encoder,
    as :func:`finite_step` asks of eager ones, and pass the trainer's
    first-step checks.  torch.compile's refusal of a double backward (a
    gradient penalty through a compiled critic) is the plugin's line with
    its fix (:func:`~wae_bench.plugin_fault.double_backward`), another
    error of torch.compile's names the plugin and the ways out.  Skipped
    (returns why) for a plugin that sets ``compilable = False``: a run
    with ``--compile`` trains it eagerly."""
    cls = REGULARIZERS.get(name)
    if not cls.compilable:
        return f"{name} sets compilable = False: a run with --compile trains it eagerly"
    try:
        _three_finite_steps(name, trainer(name, compile="default"))
    except WaeError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.compile's errors are translated, the plugin's own re-raised
        line = double_backward(e, cls)
        if line is not None:
            raise ContractBroken(line) from None
        if not isinstance(e, torch._dynamo.exc.TorchDynamoException):
            raise
        raise _broken(name, f"torch.compile failed on a step of it ({type(e).__name__}: {_one_line(e)})",
                      "leave the module it fails on out of compile_targets() (return [] to keep every module of "
                      "the plugin eager), or set compilable = False where it is the encoder or decoder; or train "
                      "with --compile none") from None


# -- tuning ---------------------------------------------------------------------------------
def tuning_grid_is_a_bench_grid(name: str) -> str | None:
    """``tuning_grid(setup)`` of a tiny run gives axes that a bench spec's
    ``[tune]`` accepts, checked by the bench's own code
    (:func:`~wae_bench.bench.spec.flatten_axes`,
    :func:`~wae_bench.bench.spec.check_tuned_axis`), each ``reg.KEY`` value
    one the plugin's Config takes (as a tuning cell is resolved); skipped
    (returns why) when it is empty."""
    from wae_bench.bench.spec import BenchInfo, Spec, check_tuned_axis, flatten_axes

    tr = trainer(name)
    cls, setup = type(tr.reg), tr.reg.setup_info
    where = f"{name}.tuning_grid: "
    try:
        axes = flatten_axes(cls.tuning_grid(setup), where)
        spec = Spec(BenchInfo(name="check-plugin", datasets=[setup.dataset], regularizers=[name]))
        for key, values in axes.items():
            check_tuned_axis(spec, name, key, where)
            for v in values if key.startswith("reg.") else ():
                from_dict(cls.Config, merge(cls.defaults(setup), {key[4:]: v}), where="reg.")
    except WaeError as e:
        raise ContractBroken(f"plugin {name!r}: a bench cannot tune it by its tuning_grid(): {e}") from None
    if not axes:
        return f"{name} has nothing to tune (tuning_grid() is empty: no tuning_spans)"
    return None


# -- documentation --------------------------------------------------------------------------
def documented(name: str, module_docstring: bool = False) -> None:
    """``wae-bench list`` has what to show: a ``paper``, a class docstring and
    a Config docstring (its settings; not the dataclass's generated
    signature); with ``module_docstring`` (this repository's rule for its
    built-ins, DESIGN.md) also a module docstring citing the paper."""
    cls = REGULARIZERS.get(name)
    config = type(cls.Config())
    doc = (config.__doc__ or "").strip()
    mod = __import__(cls.__module__, fromlist=["_"])
    gaps = [(what, fix) for missing, what, fix in (
        (not (cls.paper or "").strip(), "its class has no paper",
         "set paper = 'Author et al. YEAR, Eq. N' (wae-bench list shows it)"),
        (not (cls.__doc__ or "").strip(), f"class {cls.__qualname__} has no docstring",
         "say in one line what its penalty is"),
        (not doc or doc.startswith(f"{config.__name__}("),    # (a dataclass without one gets its signature)
         f"its Config {config.__qualname__} has no docstring",
         "document each setting there, e.g. \"lambda_: weight of the penalty\""),
        (module_docstring and not (mod.__doc__ or "").strip(), f"module {cls.__module__} has no docstring",
         "cite the paper and the equation or algorithm it implements there")) if missing]
    if gaps:
        raise _broken(name, and_list([w for w, _ in gaps]), "; ".join(f for _, f in gaps))


# -- running them ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    key: str                               # short name, printed
    what: str                              # what passing means, one line
    run: Callable[[str], str | None]       # None: pass; a string: skipped, why
    steps: bool = False                    # runs a step's hooks (penalty(), aux_loss())


CHECKS: tuple[Check, ...] = (
    Check("builds", "a known prior and sampler; a tiny run of it builds", builds),
    Check("finite-step", "3 steps: finite losses, the encoder moves", finite_step, steps=True),
    Check("penalty", "a scalar RegOut whose gradient reaches the encoder", penalty_reaches_encoder, steps=True),
    Check("state", "no plain attribute changes; a resumed run trains on alike", state_round_trips, steps=True),
    Check("randomness", "draws only from ctx.generator, no global generator", draws_only_from_run_generator,
          steps=True),
    Check("aux-step", "the auxiliary step moves only the plugin's own parameters, at the trainer's lr",
          aux_step_touches_only_its_own, steps=True),
    Check("capture-safe", "no host read of a tensor inside a step", capture_safe, steps=True),
    Check("tuning", "tuning_grid() gives axes a bench can tune", tuning_grid_is_a_bench_grid),
    Check("documented", "a paper, class and Config docstrings", documented),
)
# asked for by check-plugin --compile (tens of seconds a plugin on a CPU: Inductor's cold compile)
COMPILED = Check("compile", "3 steps compiled as --compile default: finite losses, the encoder moves",
                 compiled_steps, steps=True)


def checks(compile: bool = False) -> tuple[Check, ...]:
    """The checks :func:`run_checks` runs: :data:`CHECKS`, then with
    ``compile`` :data:`COMPILED`."""
    return (*CHECKS, COMPILED) if compile else CHECKS


@dataclass
class Outcome:
    check: Check
    status: str                            # "pass", "skip", "FAIL"
    text: str = ""                         # why (skip, FAIL)
    error: BaseException | None = None     # the plugin's own exception, if it raised one
    broken_step: bool = False              # a step broke in a way every later step repeats


def run_check(name: str, check: Check) -> Outcome:
    """``check`` of plugin ``name``; a plugin's own exception is that check's failure."""
    try:
        skip = check.run(name)
    except WaeError as e:                  # the contract's own findings (ContractBroken, check_penalty)
        return Outcome(check, "FAIL", str(e), broken_step=check.steps and isinstance(e, BrokenStep))
    except Exception as e:  # noqa: BLE001 - the plugin's code raised: report it, do not crash
        return Outcome(check, "FAIL", f"plugin {name!r}: raised {type(e).__name__}: {_one_line(e)} (at "
                                      f"{_where(traceback.extract_tb(e.__traceback__))}); fix the plugin", e,
                       broken_step=check.steps)
    return Outcome(check, "skip", skip) if skip else Outcome(check, "pass")


def _one_line(e: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    return " ".join(str(e).split())[:200]


def run_checks(name: str, compile: bool = False) -> Iterator[Outcome]:
    """Every check of :func:`checks` (``compile``: with
    :data:`COMPILED`) on plugin ``name``, as it ends; after a
    failed ``builds`` (a plugin that fails to load, too) the others are not
    run, and after a step broke in a way every step repeats (the plugin's
    own exception, or :class:`~wae_bench.regularizer.BrokenStep`: penalty()'s
    return value, z modified in place) the later checks that run a step are
    not (each would repeat it).  An unknown name raises the
    registry's WaeError (did you mean ...)."""
    if name not in REGULARIZERS.broken:
        REGULARIZERS.get(name)
    built, broken_by = True, None
    for check in checks(compile):
        if not built:
            yield Outcome(check, "skip", "not run: it does not build")
            continue
        if broken_by and check.steps:
            yield Outcome(check, "skip", f"not run: a step breaks the contract (see {broken_by})")
            continue
        out = run_check(name, check)
        built = not (check is CHECKS[0] and out.status == "FAIL")
        broken_by = broken_by or (check.key if out.broken_step else None)
        yield out
