"""The plugin contract: what a latent regularizer may do inside a training step.

WAE (Tolstikhin et al. 2018, Thm. 1) minimises reconstruction error subject to
``Q_Z = Enc#P_X`` matching a prior ``P_Z``; a regularizer is the relaxation of
that constraint.  One base class hosts every plugin without special cases in
the trainer (:mod:`wae_bench.step.trainer`), which owns every ``backward()`` and
optimiser step, in this fixed order per iteration ``t``:

1. ``z = constrain(Enc(x))`` and ``x_hat = Dec(z)`` (one forward).
2. Auxiliary steps, if :meth:`Regularizer.make_aux_optimizer` returns an
   optimiser (WAE-GAN's discriminator, WAE Algorithm 1): ``aux_loss(z.detach(),
   ctx)`` (a scalar tensor, or a :class:`RegOut` whose ``terms`` are logged) is
   backpropagated and that optimiser steps, :attr:`Regularizer.aux_steps`
   times per iteration (1: WAE Algorithm 1; WGAN-GP's critic takes 5), each
   call on the same latents with fresh draws from ``ctx.generator``.  (An
   ``aux_loss`` without one is never called; a parameter of the plugin that
   gets a gradient must be in that optimiser.)
3. Autoencoder step: ``loss = ||x - x_hat||^2 (summed over pixels, averaged
   over the batch) + penalty(x, z, ae, ctx).loss``; Adam steps the encoder and decoder.
4. ``after_step(x, z, out, ae, ctx)`` under ``no_grad`` (MoCA's EMA update and enqueue).

The trainer owns the learning rate of every optimiser, the plugin's too: each
param group gets the run's lr × its ``lr_scale`` key (default 1) and follows
the schedule.  Everything a plugin runs in steps 1-4 must be *capture-safe*:
no ``.item()``, no Python branching on tensor values, static shapes,
schedules computed from the device tensor ``ctx.t``, no Python-side state
that changes per step (counters, lists).  That lets the whole step be
replayed as a CUDA graph.  Every random draw comes from the run's generator
``ctx.generator``.  State lives in buffers and sub-modules, so checkpoints
carry it.  ``x`` and ``z`` are never modified in place (not even the detached
``z`` of steps 2 and 4: it shares storage with the trained latent).
"""
from __future__ import annotations

import difflib
import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wae_bench.config import RegularizerConfig, check, from_dict, key_of, to_dict  # (RegularizerConfig: the base of every plugin's Config)
from wae_bench.errors import WaeError


PRIORS = ("gaussian", "sphere")          # Regularizer.prior: constrain() and sample_prior() know these
SAMPLERS = ("samples", "n", "gmm")        # Regularizer.sampler: prior samples or an ex-post density (expost.COMPONENTS)


def check_declared(name: str, cls: type) -> None:
    """Refuse, naming the plugin, a class attribute outside what the framework
    knows: ``prior`` not in :data:`PRIORS`, ``sampler`` not in :data:`SAMPLERS`
    (a misspelt one would silently be a Gaussian prior, or no picture and no
    score), ``aux_steps`` not a whole number >= 1 (:func:`check_aux_steps`;
    a property, read from the plugin's Config, is checked when a run is
    built); and a class that is not a :class:`Regularizer`, sets no
    ``name``, misses a hook or declares a Config that is no dataclass
    (:func:`check_shape`).  The registry calls it on every plugin it loads."""
    check_shape(name, cls)
    for attr, allowed in (("prior", PRIORS), ("sampler", SAMPLERS)):
        value = getattr(cls, attr, None)
        if value not in allowed:
            raise WaeError(f"plugin {name!r}: {attr} = {value!r} is not one of {', '.join(allowed)}; "
                           f"set one of them in class {getattr(cls, '__qualname__', cls)}")
    steps = getattr(cls, "aux_steps", 1)
    if not isinstance(steps, property):
        check_aux_steps(name, steps, cls)


def check_shape(name: str, cls: type) -> None:
    """Refuse, naming the plugin and the fix, the slips of a newcomer's
    class that would otherwise train wrong without a word or fail later as
    if wae-bench were at fault: not a :class:`Regularizer` subclass; no
    ``name`` (a run logs the terms as ``NAME/TERM`` and names the plugin by
    it); a hook whose signature does not take what wae-bench passes it; a
    public method whose name is a near miss of a hook the class does not
    override (``penalti``, ``after_steps``: never called); a ``Config``
    with fields of its own that is not itself a dataclass (a missing
    ``@dataclass``: the base's defaults are used, ``--set reg.KEY`` refuses
    a new field and no run records it) or not a :class:`RegularizerConfig`
    (``--lambda`` would be refused as no setting of it)."""
    if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
        raise WaeError(_not_a_regularizer(name, cls))
    where = f"in class {cls.__qualname__}"
    if not cls.name:
        raise WaeError(f"plugin {name!r}: the class sets no name (a run logs its terms as NAME/TERM); set "
                       f"name = {name!r} {where}")
    hooks = _methods(Regularizer, vars(Regularizer))
    missing = [h for h in hooks if inspect.getattr_static(cls, h) is vars(Regularizer)[h]]
    methods = _methods(cls, set(dir(cls)) - set(dir(Regularizer)))
    for h in hooks:
        if h not in missing and callable(getattr(cls, h)):
            given = [p.name for p in inspect.signature(getattr(Regularizer, h)).parameters.values()]
            try:
                inspect.signature(getattr(cls, h)).bind(*given)   # (a classmethod's cls is bound: not in given)
            except TypeError:
                of_class = isinstance(vars(Regularizer)[h], classmethod)
                full = ["cls", *given] if of_class else given
                raise WaeError(f"plugin {name!r}: {h}{inspect.signature(getattr(cls, h))} does not take the "
                               f"arguments a run passes it; define it as {'@classmethod ' if of_class else ''}"
                               f"{h}({', '.join(full)}) {where}") from None
    for m in methods:
        close = difflib.get_close_matches(m, missing, n=1, cutoff=0.85)
        if close:
            raise WaeError(f"plugin {name!r}: {m}() is not a hook of Regularizer's, so nothing calls it; rename "
                           f"it to {close[0]}() (or, a helper of your own, to _{m}()) {where}")
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, RegularizerConfig)):
        what = config.__qualname__ if isinstance(config, type) else repr(config)
        raise WaeError(f"plugin {name!r}: its Config {what} is not a subclass of RegularizerConfig, so --lambda "
                       f"(reg.lambda, the weight every regularizer has) is no setting of it; define it as class "
                       f"{what if isinstance(config, type) else 'NameConfig'}(RegularizerConfig) (from "
                       f"wae_bench.regularizer)")
    own = inspect.get_annotations(config)
    if own and "__dataclass_fields__" not in vars(config):
        raise WaeError(f"plugin {name!r}: its Config {config.__qualname__} is not a dataclass, so its fields "
                       f"({', '.join(own)}) are no settings of its own: their defaults are not used, --set reg.KEY "
                       f"refuses a new one and no run records it; decorate the class with @dataclass (from "
                       f"dataclasses)")


def _not_a_regularizer(name: str, obj: object) -> str:
    """Why ``obj``, registered as ``name``, is no plugin, and the fix for
    what it most likely is: a module or a Config class (an entry point
    whose target misses ``:Class`` or names the Config), another class."""
    if inspect.ismodule(obj):
        return (f"regularizer {name!r} is the module {obj.__name__}, not a class; point the entry point at the "
                f"class: \"{obj.__name__}:CLASS\" (module:attribute), and reinstall the plugin's package")
    if isinstance(obj, type) and issubclass(obj, RegularizerConfig):
        return (f"regularizer {name!r} is class {obj.__qualname__}, a Config, not the plugin; point the entry "
                f"point (or the registration) at the Regularizer subclass whose Config it is")
    what = f"class {obj.__qualname__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
    return f"regularizer {name!r} is {what}, not a subclass of wae_bench.regularizer.Regularizer; subclass it"


def _methods(cls: type, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are public methods of ``cls`` (not nested classes, properties or values)."""
    return sorted(n for n in names if not n.startswith("_") and callable(getattr(cls, n, None))
                  and not isinstance(getattr(cls, n), type))


def check_aux_steps(name: str, steps: object, cls: type) -> None:
    """Refuse, naming the plugin, an :attr:`Regularizer.aux_steps` that is
    not a whole number >= 1 (0 would never train the critic, a float or a
    bool is a slip): the trainer runs that many auxiliary steps per
    iteration as a static loop, so it must be a Python int."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise WaeError(f"plugin {name!r}: aux_steps = {steps!r} is not a whole number >= 1; set aux_steps to the "
                       f"number of auxiliary (critic) steps per iteration, e.g. 1 (WAE Algorithm 1) or 5 (WGAN-GP's "
                       f"n_critic), in class {getattr(cls, '__qualname__', cls)}")


@dataclass
class RegOut:
    """What :meth:`Regularizer.penalty` returns, and :meth:`Regularizer.aux_loss` may.

    ``loss`` is the λ-weighted scalar added to the reconstruction loss (of
    ``aux_loss``: the auxiliary loss); ``terms`` are unweighted scalars for
    the metrics log, as ``NAME/term``; ``carry`` holds tensors handed on to
    :meth:`Regularizer.after_step` (e.g. MoCA's keys; penalty's only).
    """

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    carry: dict[str, Tensor] = field(default_factory=dict)


class BrokenStep(WaeError):
    """A plugin's hook broke the step contract in a way every later step
    repeats (e.g. it modified ``z`` in place: :mod:`wae_bench.step.first_step`)."""


class BrokenPenalty(BrokenStep):
    """:meth:`Regularizer.penalty` returned a value that breaks the contract (:func:`check_penalty`)."""


class BrokenAux(BrokenStep):
    """:meth:`Regularizer.aux_loss` returned a value that breaks the contract (:func:`check_aux`)."""


def _kind(v: object) -> str:
    """What a hook returned, for a message: ``a tensor of shape (8,)``, ``RegOut``, ``float``."""
    return f"a tensor of shape {tuple(v.shape)}" if isinstance(v, Tensor) else type(v).__name__


def _check_terms(name: str, hook: str, terms: object, error: type[BrokenStep]) -> None:
    """Refuse ``terms`` of ``hook``'s RegOut that are not ``{name: scalar (0-d) tensor}``."""
    items = terms.items() if isinstance(terms, dict) else [(None, terms)]
    bad = [(k, v) for k, v in items if not (isinstance(v, Tensor) and v.dim() == 0)]
    if bad:
        where = "terms" if bad[0][0] is None else f"terms[{bad[0][0]!r}]"
        raise error(f"plugin {name!r}: {hook}() returned RegOut with {where} = {_kind(bad[0][1])}; terms must "
                    f"be {{name: scalar (0-d) tensor}}, e.g. terms={{'mmd': mmd}}")


def check_penalty(name: str, out: object) -> None:
    """Refuse, naming the plugin, a :meth:`Regularizer.penalty` return value
    that breaks the contract: not a :class:`RegOut`, a loss that is not a
    scalar (0-d) tensor, or terms that are not a table of scalar tensors.
    Reads only types and shapes (no host sync: capture-safe); the trainer
    checks the first step's only."""
    fix = "return RegOut(loss=..., terms={...}) (wae_bench.regularizer.RegOut) with a scalar (0-d) tensor loss"
    if not isinstance(out, RegOut):
        raise BrokenPenalty(f"plugin {name!r}: penalty() returned {_kind(out)}; {fix}")
    if not (isinstance(out.loss, Tensor) and out.loss.dim() == 0):
        raise BrokenPenalty(f"plugin {name!r}: penalty() returned RegOut with loss = {_kind(out.loss)}; {fix} "
                       f"(reduce it, e.g. .mean())")
    _check_terms(name, "penalty", out.terms, BrokenPenalty)


def check_aux(name: str, aux: object) -> None:
    """Refuse, naming the plugin, a :meth:`Regularizer.aux_loss` return value
    that breaks the contract: neither a tensor nor a :class:`RegOut` (whose
    ``loss`` is then the auxiliary loss and whose ``terms`` are logged; a
    ``carry``, which only penalty()'s reaches after_step(), is refused), a
    loss that is not a one-element tensor (a 0-d scalar; a shape-(1,)
    tensor, which ``backward()`` takes too, is accepted as plugins have
    returned it), or one without gradient (computed under ``no_grad``, or
    detached), which ``backward()`` could not differentiate -- else torch's
    own error names neither the plugin nor the fix.  Reads only types,
    shapes and the ``requires_grad`` flag (no host sync: capture-safe); the
    trainer checks the first step's only, before its ``backward()``."""
    fix = ("return the auxiliary loss as a scalar (0-d) tensor that depends on the parameters of "
           "make_aux_optimizer(), or RegOut(loss=..., terms={...}) to log its parts")
    loss, what = (aux.loss, "RegOut with loss = ") if isinstance(aux, RegOut) else (aux, "")
    if not (isinstance(loss, Tensor) and loss.numel() == 1):
        reduce = " (reduce it, e.g. .mean())" if isinstance(loss, Tensor) else ""
        raise BrokenAux(f"plugin {name!r}: aux_loss() returned {what}{_kind(loss)}; {fix}{reduce}")
    if not loss.requires_grad:
        raise BrokenAux(f"plugin {name!r}: aux_loss() returned {'RegOut with a loss' if what else 'a tensor'} "
                        f"without gradient (computed under torch.no_grad(), or detached); {fix}")
    if isinstance(aux, RegOut):
        _check_terms(name, "aux_loss", aux.terms, BrokenAux)
        if aux.carry:
            raise BrokenAux(f"plugin {name!r}: aux_loss() returned RegOut with carry {sorted(aux.carry)}, which "
                            f"nothing receives (after_step() gets penalty()'s RegOut); hand it on from penalty() "
                            f"instead")


def aux_parts(aux: Tensor | RegOut) -> tuple[Tensor, dict[str, Tensor]]:
    """An :meth:`Regularizer.aux_loss` return value (:func:`check_aux`) as
    (the loss, its terms to log): a bare tensor has none."""
    return (aux.loss, aux.terms) if isinstance(aux, RegOut) else (aux, {})


def check_terms_apart(name: str, aux_terms: Iterable[str], penalty_terms: Iterable[str]) -> None:
    """Refuse, naming the plugin, a term name that both ``aux_loss()`` and
    ``penalty()`` log (one metrics key, ``NAME/term``, would hold either)."""
    penalty = set(penalty_terms)
    both = [k for k in aux_terms if k in penalty]
    if both:
        raise BrokenAux(f"plugin {name!r}: aux_loss() and penalty() both log a term {both[0]!r} (one metrics key "
                        f"{name}/{both[0]}); give them different names in their RegOut terms")


def _identity(t: Tensor) -> Tensor:
    return t


@dataclass
class Setup:
    """Static facts a plugin may size itself by (known before the first step)."""

    total_steps: int
    batch_size: int           # per process
    world_size: int = 1
    latent_dim: int = 128
    arch: str = ""
    dataset: str = ""


@dataclass
class Context:
    """Per-step view the trainer hands to plugins.

    ``t`` is the 0-based iteration as a 0-d device tensor (capture-safe),
    ``T`` the total number of iterations.  ``generator`` is the run's own
    random stream on its device (:mod:`wae_bench.step.rng`): **every random
    draw inside a step uses it** (``torch.randn(..., generator=ctx.generator)``,
    :meth:`Regularizer.sample_prior`), never a process-global generator, so
    that runs sharing a process, resumed runs and CUDA-graph replays draw what
    the run alone would; it is saved in every checkpoint.  ``gather``
    concatenates a tensor over all processes along dim 0 *with* gradient;
    ``gather_nograd`` without (both are the identity in a single process; see
    :mod:`wae_bench.step.distributed`).
    """

    t: Tensor
    T: int
    gather: Callable[[Tensor], Tensor] = _identity
    gather_nograd: Callable[[Tensor], Tensor] = _identity
    rank: int = 0
    world_size: int = 1
    generator: torch.Generator | None = None


class Divergence(nn.Module):
    """A pure penalty function (e.g. :func:`wae_bench.losses.sinkhorn`)
    held as a parameter-free sub-module, its fixed arguments bound, so that the
    ``compile`` option compiles it with the nets (:meth:`Regularizer.compile_targets`).
    Eager, it is the function itself; it adds nothing to checkpoints.  A small
    penalty is hundreds of tiny kernels (geomloss's Sinkhorn loop: ~500 at
    batch 64); compiled, Inductor fuses them."""

    def __init__(self, fn: Callable[..., object], **fixed):
        super().__init__()
        self.fn = functools.partial(fn, **fixed)

    def forward(self, *args: Tensor):
        return self.fn(*args)

    def extra_repr(self) -> str:
        return f"{self.fn.func.__name__}, {self.fn.keywords}"


class Regularizer(nn.Module):
    """Base class of every latent regularizer plugin.

    Subclasses set ``name``, ``paper`` and ``Config`` (a dataclass whose
    defaults are the paper's, subclassing :class:`~wae_bench.config.RegularizerConfig`), and
    implement :meth:`penalty`.  Optional hooks have do-nothing defaults.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[RegularizerConfig]] = RegularizerConfig
    prior: ClassVar[Literal["gaussian", "sphere"]] = "gaussian"    # one of PRIORS (check_declared)
    # torch.compile cannot differentiate a compiled graph twice; a plugin whose
    # step differentiates the encoder or decoder twice (RAE-GP's decoder
    # gradient) sets False (then nothing is compiled).  One that differentiates
    # a module of its own twice (a WGAN-GP critic) leaves it out of
    # compile_targets() instead, keeping the nets compiled.
    compilable: ClassVar[bool] = True
    # The images a generative model of this plugin is judged by, and so what a
    # tuning run is scored on: prior samples, or an ex-post density ("n",
    # "gmm") where the prior is only a placeholder (the RAE family); one of SAMPLERS.
    sampler: ClassVar[Literal["samples", "n", "gmm"]] = "samples"
    # Auxiliary steps per iteration (the critic's n_critic): aux_loss() and
    # make_aux_optimizer()'s step, this many times per iteration before the
    # autoencoder's step (1: WAE Algorithm 1; WGAN-GP takes 5); a whole number
    # >= 1 (check_aux_steps).  A plugin that wants it tunable declares a
    # Config field and returns it from an ``aux_steps`` property.
    aux_steps: ClassVar[int] = 1
    # Settings the tuning protocol searches by default, each with the decades
    # below and above its default value to cover (see :meth:`tuning_grid`).
    tuning_spans: ClassVar[dict[str, tuple[float, float]]] = {}

    def __init__(self, cfg: RegularizerConfig, setup: Setup):
        super().__init__()
        self.cfg = cfg
        self.setup_info = setup

    # -- construction -----------------------------------------------------
    @classmethod
    def defaults(cls, setup: Setup) -> dict:
        """Config overrides that depend on the architecture or dataset (e.g.
        MoCA's λ = 1000 for a1, 100 for a2); the user's settings win."""
        return {}

    @classmethod
    def provisional(cls, setup: Setup) -> dict[str, str]:
        """Defaults for this ``setup`` that measurement has not settled yet,
        each with why (``{"lambda_": "the paper's value, ..."}``): `wae-bench
        list` marks them and a run that uses one says so once.  Empty by
        default; a setting the user gives is never flagged."""
        return {}

    @classmethod
    def tuning_grid(cls, setup: Setup) -> dict[str, list]:
        """The axes the tuning protocol searches (a bench spec's ``[tune]``,
        :mod:`wae_bench.bench.tune`) and their default values, e.g.
        ``{"reg.lambda": [30, 100, ..., 30000]}``; empty: nothing to tune.

        By default, for each setting of :attr:`tuning_spans`, half-decade steps
        (:func:`log_grid`) around its default for this ``setup`` -- wide
        enough to cover every unit convention of the paper's value."""
        if not cls.tuning_spans:
            return {}
        values = to_dict(from_dict(cls.Config, cls.defaults(setup)))
        out = {}
        for key, span in cls.tuning_spans.items():
            below, above = _span(cls, key, span)
            if key not in values:
                close = [key_of(key)] if key_of(key) in values else difflib.get_close_matches(key, values, n=1)
                hint = (f"; tuning_spans spells the field {key} as {close[0]!r}" if close and close[0] == key_of(key)
                        else f"; did you mean {close[0]!r}?" if close else "")
                raise WaeError(f"{cls.name}: {key!r} in tuning_spans is not a setting of {cls.name} (its settings: "
                               f"{', '.join(values)}){hint}")
            center = values[key]
            check(isinstance(center, (int, float)) and center > 0,
                  f"{cls.name}: cannot tune {key!r} around its default {center!r}; give [reg.{cls.name}.tune] "
                  f"values for it in the spec")
            out[f"reg.{key}"] = log_grid(center, below, above)
        return out

    @classmethod
    def memory(cls, cfg: RegularizerConfig, setup: Setup) -> dict[str, int]:
        """Bytes of the large state the plugin allocates when it is built, by a
        description that names the settings sizing it (MoCA: ``{"its queue of
        reg.K × latent_dim float32": K·d·4}``), so that a run that cannot fit is
        refused before anything is allocated (:mod:`wae_bench.run.memory`,
        which adds it to the autoencoder's own estimate); state too small to
        matter need not be declared.  Default: nothing."""
        return {}

    def attach(self, ae: nn.Module) -> None:
        """Called once the autoencoder exists (before the optimiser is made):
        copy an encoder (MoCA), wrap the decoder (RAE-SN), ..."""

    def compile_targets(self) -> list[nn.Module]:
        """The plugin's own modules that ``compile`` should compile besides
        the encoder and decoder: by default its direct sub-modules (MoCA's key
        encoder, WAE-GAN's discriminator, a :class:`Divergence`).  Leave out a
        module the step differentiates twice (``torch.autograd.grad(...,
        create_graph=True)`` through it): a compiled one cannot be (``[]``:
        the plugin's modules eager, the nets compiled)."""
        return list(self.children())

    def decoder_weight_decay(self) -> float:
        """L2 weight decay on the decoder's parameters (RAE-L2); 0 = none."""
        return 0.0

    # -- the latent space ---------------------------------------------------
    def constrain(self, f: Tensor) -> Tensor:
        """Map the encoder's raw output onto the latent space (identity, or
        the unit sphere for ``prior = "sphere"``)."""
        return F.normalize(f, dim=1) if self.prior == "sphere" else f

    def sample_prior(self, n: int, device: torch.device | str = "cpu",
                     generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents from the prior P_Z: N(0, σ_z² I), or for the sphere
        ``z/|z|`` with ``z ~ N(0, I)`` (MoCA's sampling rule), drawn from
        ``generator`` (inside a step: ``ctx.generator``; on ``device``).
        σ_z is the Config field named ``sigma_z`` (1 without one;
        :class:`wae_bench.priors.GaussianPriorConfig` declares it)."""
        d = self.setup_info.latent_dim
        e = torch.randn(n, d, device=device, generator=generator)
        if self.prior == "sphere":
            return F.normalize(e, dim=1)
        return e * getattr(self.cfg, "sigma_z", 1.0)

    # -- one step -------------------------------------------------------------
    def penalty(self, x: Tensor, z: Tensor, ae: nn.Module, ctx: Context) -> RegOut:
        """The λ-weighted penalty of the latents ``z`` of the batch ``x``
        (step 3), a :class:`RegOut`: the one hook every plugin defines.  This
        base refuses, naming the plugin and the fix, in the step's one line."""
        from wae_bench.plugin_fault import registered_name

        raise BrokenPenalty(f"plugin {registered_name(type(self))!r}: class {type(self).__qualname__} defines no "
                            f"penalty(self, x, z, ae, ctx), the hook every plugin implements; define it, returning "
                            f"RegOut(loss=..., terms={{...}})")

    def make_aux_optimizer(self) -> torch.optim.Optimizer | None:
        """An optimiser over the plugin's own trained parameters (WAE-GAN's
        discriminator), stepped by the trainer on :meth:`aux_loss`; None if
        the plugin has no auxiliary step (then :meth:`aux_loss` is never called).

        The trainer owns its learning rate, as the autoencoder's: every param
        group gets the run's lr × the group's ``lr_scale`` key (default 1) and
        follows the schedule, whatever ``lr`` it was built with.  For a
        discriminator at half the autoencoder's rate give
        ``[{"params": self.D.parameters(), "lr_scale": 0.5}]``, not ``lr=...``
        (`wae-bench check-plugin` fails a group whose lr is not the run's lr ×
        its lr_scale).  Other settings (Adam's betas) are kept.  It must hold
        every parameter of the plugin that gets a gradient in a step: the
        trainer's own optimiser holds only the encoder's and decoder's, and
        the first step refuses one in neither (:mod:`wae_bench.step.first_step`)."""
        return None

    def aux_loss(self, z: Tensor, ctx: Context) -> Tensor | RegOut:
        """Loss of the auxiliary step on *detached* latents ``z`` (they share
        storage with the trained ones: never modify them in place): a scalar
        (0-d) tensor depending on the parameters of :meth:`make_aux_optimizer`,
        or a :class:`RegOut` of that loss and its ``terms`` to log (as
        ``NAME/term``, like penalty()'s; no ``carry``; :func:`check_aux`).
        Called :attr:`aux_steps` times per iteration, on the same ``z``, each
        call drawing afresh from ``ctx.generator``."""
        raise NotImplementedError

    def after_step(self, x: Tensor, z: Tensor, out: RegOut, ae: nn.Module, ctx: Context) -> None:
        """Work after the optimiser step, under ``no_grad`` (EMA, enqueue)."""


def _span(cls: type, key: str, span: object) -> tuple[float, float]:
    """``tuning_spans[key]`` of plugin ``cls`` as (decades below, decades
    above) its default (:func:`log_grid`), else refused naming the entry
    and the form it takes."""
    ok = (isinstance(span, (tuple, list)) and len(span) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in span))
    if not ok:
        raise WaeError(f"{cls.name}: tuning_spans[{key!r}] = {span!r} is not (decades below, decades above) its "
                       f"default; write it as two numbers >= 0, e.g. tuning_spans = {{{key!r}: (1.5, 1.5)}}, in "
                       f"class {cls.__qualname__}")
    return float(span[0]), float(span[1])


def log_grid(center: float, below: float = 1.5, above: float = 1.5) -> list[float]:
    """Half-decade steps (×1, ×3, ×10, ...) from ``below`` decades under
    ``center`` to ``above`` decades over it: ``log_grid(1000)`` is
    ``[30, 100, 300, 1000, 3000, 10000, 30000]`` (three decades)."""
    ks = range(-round(2 * below), round(2 * above) + 1)
    return [float(f"{center * 10.0 ** (k // 2) * (3 if k % 2 else 1):.3g}") for k in ks]
