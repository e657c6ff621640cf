"""Build a run from its config -- the one place that does it.

1. :func:`resolve`: the config against the registries, every ``None``
   default filled in and the regularizer's settings validated into its own
   config object (:class:`Plan`; ``plan.cfg.reg`` is the object the plugin is
   built with, so ``--lambda`` reaches the loss through that one object).
2. :func:`build_model`: seeded nets and plugin, attached, on the device.
3. :func:`build_run`: those plus the memory layout, ``compile``, the
   (DDP-wrapped) :class:`~wae_bench.step.trainer.Trainer` and the run's own
   random stream per rank (:class:`Run`); :meth:`Run.capture` makes the step a CUDA
   graph where :meth:`Plan.fast` says so (``step_mode`` "graph", or "auto"
   on a single CUDA device).
4. :func:`batches` and :func:`total_steps`: ``batch_size`` makes the batcher,
   and the batcher's steps per epoch make the step count.

`wae-bench run` (:mod:`wae_bench.run.train`), the reload for evaluation
(:mod:`wae_bench.run.reload`), ``benchmarks/speed.py``,
``benchmarks/kernel_count.py``, the plugin checks (:func:`stand_in_trainer`) and the
tests all build through here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from wae_bench import worded
from wae_bench.config import TrainConfig, from_dict, key_of, merge, to_dict
from wae_bench.data import Batcher, DatasetSpec, ImageSet, holdout, load_split
from wae_bench.errors import WaeError
from wae_bench.nets import ArchSpec, Autoencoder, build_arch
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS
from wae_bench.regularizer import Regularizer, Setup, check_aux_steps
from wae_bench.step.compile import compile_nets
from wae_bench.step.distributed import Dist
from wae_bench.step.graph import FastPath, capture_step, fast_path
from wae_bench.step.rng import global_generators_kept, run_generator, seed_everything
from wae_bench.step.trainer import Trainer


@dataclass
class Plan:
    """A config resolved against its dataset, architecture and regularizer."""

    cfg: TrainConfig          # every default filled in; ``cfg.reg`` is the plugin's Config object
    data: DatasetSpec
    arch: ArchSpec
    reg_cls: type[Regularizer]
    world_size: int = 1
    # Defaults this run uses that measurement has not settled (the plugin's
    # :meth:`~wae_bench.regularizer.Regularizer.provisional`, less the user's settings)
    provisional: dict[str, str] = dataclasses.field(default_factory=dict)

    def setup(self, total_steps: int) -> Setup:
        """The static facts the plugin is sized by (:class:`~wae_bench.regularizer.Setup`)."""
        c = self.cfg
        return Setup(total_steps=total_steps, batch_size=c.batch_size, world_size=self.world_size,
                     latent_dim=c.latent_dim, arch=self.arch.name, dataset=self.data.name)

    def aux_steps(self) -> int:
        """The run's effective :attr:`~wae_bench.regularizer.Regularizer.aux_steps`
        (auxiliary steps per iteration), recorded in ``config.json`` and
        compared on resume like a setting (a plugin whose default changes
        would otherwise resume an old run with another count): the plugin
        class's, or where a property gives it (read from the plugin's
        Config), that of the plugin built from this plan's settings (its
        ``__init__`` alone, the global generators kept as they were)."""
        steps = getattr(self.reg_cls, "aux_steps", 1)
        if isinstance(steps, property):
            with global_generators_kept():
                steps = self.reg_cls(self.cfg.reg, self.setup(0)).aux_steps
            check_aux_steps(self.cfg.regularizer, steps, self.reg_cls)
        return steps

    def fast(self, device: torch.device) -> FastPath:
        """The step mode and memory layout on ``device`` (``auto`` resolved;
        :func:`~wae_bench.step.graph.fast_path`)."""
        return fast_path(self.cfg.step_mode, self.cfg.channels_last, device.type, self.world_size)


def stand_in_data(image_size: int, channels: int = 3, arch: str = "tiny") -> DatasetSpec:
    """A dataset without images, for runs fed their own batches (tests,
    benchmarks); no plugin has defaults for it, so each runs at its Config's."""
    def load(*args):
        raise WaeError("the stand-in dataset has no images; feed the trainer batches directly")

    return DatasetSpec("stand-in", "batches fed by the caller", load, image_size, channels, arch)


def stand_in_batch(B: int = 8, size: int = 8, seed: int = 1, channels: int = 3) -> Tensor:
    """``B`` random images in [0, 1] of ``size``×``size`` for a stand-in run,
    the same for the same ``seed`` (drawn from a generator of their own)."""
    return torch.rand(B, channels, size, size, generator=torch.Generator().manual_seed(seed))


def stand_in_trainer(name: str, reg_cfg: dict | None = None, *, B: int = 8, size: int = 8, d: int = 6,
                     T: int = 20, seed: int = 0, lr: float = 1e-3, channels: int = 3, device: str = "cpu",
                     dist: Dist | None = None, **cfg) -> Trainer:
    """The trainer of a tiny run of plugin ``name`` (the ``tiny`` net on
    :func:`stand_in_data`, ``d`` latents, batches of ``B``; seconds on a
    CPU), built as every run is (:func:`resolve`, :func:`build_run`), for
    the plugin checks (:mod:`wae_bench.plugin_check`), the tests and the
    benchmarks; ``reg_cfg``: the plugin's settings (a queue ``K``, where the
    plugin has one, defaults to 4 batches); ``cfg``: more TrainConfig keys
    (precision, channels_last, compile)."""
    fields = REGULARIZERS.get(name).Config.__dataclass_fields__
    base = {"K": 4 * B} if "K" in fields else {}
    config = TrainConfig(regularizer=name, image_size=size, latent_dim=d, batch_size=B, lr=lr, seed=seed,
                         device=device, reg={**base, **(reg_cfg or {})}, **cfg)
    plan = resolve(config, dist.world_size if dist else 1, data=stand_in_data(size, channels))
    return build_run(plan, channels=channels, total_steps=T, dist=dist).trainer


def resolve(cfg: TrainConfig, world_size: int = 1, data: DatasetSpec | None = None) -> Plan:
    """Fill every ``None`` default and validate the regularizer's settings
    (its ``defaults(setup)``, then the user's ``reg`` table).  ``data``
    (:func:`stand_in_data`) replaces the registered ``cfg.dataset`` where no
    data is loaded."""
    data = data or DATASETS.get(cfg.dataset)
    arch = ARCHITECTURES.get(cfg.arch or data.arch)
    reg_cls = REGULARIZERS.get(cfg.regularizer)
    if not (isinstance(reg_cls, type) and issubclass(reg_cls, Regularizer)):
        raise WaeError(f"regularizer {cfg.regularizer!r} is not a wae_bench.Regularizer subclass; fix the plugin")
    size = cfg.image_size or data.image_size
    arch.check_size(size)
    cfg = dataclasses.replace(cfg, dataset=data.name, arch=arch.name, image_size=size,
                              epochs=cfg.epochs or data.epochs)
    plan = Plan(cfg, data, arch, reg_cls, world_size)
    user = cfg.reg if isinstance(cfg.reg, dict) else to_dict(cfg.reg)
    where = f"reg.{cfg.regularizer}." if worded.now().bench else "reg."   # (a bench's key: [reg.NAME] KEY)
    reg_cfg = from_dict(reg_cls.Config, merge(reg_cls.defaults(plan.setup(0)), user), where=where,
                        owner=f"regularizer {cfg.regularizer!r}")
    plan.cfg = dataclasses.replace(cfg, reg=reg_cfg)
    given = {key_of(k) for k in user}
    plan.provisional = {k: why for k, why in reg_cls.provisional(plan.setup(0)).items() if key_of(k) not in given}
    return plan


def load_data(plan: Plan) -> tuple[ImageSet, ImageSet]:
    """The images trained on (the training split less the ``holdout``
    validation images, :mod:`wae_bench.data.holdout`) and the test split."""
    return load_train(plan)[0], load_test(plan)


def load_train(plan: Plan, *, val: bool = False) -> tuple[ImageSet, ImageSet | None]:
    """The images trained on and, with ``val``, the validation split: the
    ``holdout`` training images the run never trained on (else None); the
    training split is decoded once for both."""
    c = plan.cfg
    if val:
        check_val(c)
    train = load_split(plan.data, c.data_root, "train", c.image_size, c.download)
    if not c.holdout:
        return train, None
    kept, held_out = holdout.split(train, c.holdout, plan.data.name, batch=c.batch_size * plan.world_size)
    return kept, held_out if val else None


def check_val(cfg: TrainConfig) -> None:
    """A run scored on the validation split must have held one out
    (`run --split val` checks this before training, not after)."""
    if not cfg.holdout:
        raise WaeError("the run held out no validation images (holdout = 0); score the test split, or train "
                       "with --set holdout=N to hold out N training images")


# The import names of the ex-post fit after training (:func:`wae_bench.expost.fit`: scikit-learn's
# GaussianMixture, under threadpoolctl's limits).
EXPOST_MODULES = ("sklearn", "threadpoolctl")


def optional_modules(cfg: dict) -> list[tuple[str, str]]:
    """The modules a run of config ``cfg`` (a dict, as ``config.json`` and
    :func:`wae_bench.bench.grid.resolve_all` hold it) imports for work its
    settings ask for, each with the key that asks: the embedded digits are
    scikit-learn's (``dataset``), the ex-post fit after training
    (``expost``: :data:`EXPOST_MODULES`), ``log = "tensorboard"``.  What a
    run or a bench checks before its first step, not after its last."""
    out = [("sklearn", "dataset")] if cfg["dataset"] == "digits" else []
    out += [(module, "expost") for module in EXPOST_MODULES] if cfg["expost"] else []
    return out + ([("tensorboard", "log")] if cfg["log"] == "tensorboard" else [])


def load_test(plan: Plan) -> ImageSet:
    """The test split (a download fetched it with the training split)."""
    c = plan.cfg
    return load_split(plan.data, c.data_root, "test", c.image_size, False)


def load_val(plan: Plan) -> ImageSet:
    """The validation split: the ``holdout`` training images the run never trained on."""
    return load_train(plan, val=True)[1]


def pick_device(name: str, dist: Dist | None = None) -> torch.device:
    """``auto`` (CUDA if there is one), ``cpu``, ``cuda``, ``cuda:N``; under
    torchrun, the process's own device (the GPU of its ``LOCAL_RANK``, or
    the CPU where torch sees no GPU): ``auto`` or that device's type; any
    other, an indexed one too (``cuda:0`` is rank 0's own device but not
    rank 1's), is refused on every process alike rather than ignored."""
    if dist is not None and dist.enabled:
        if name not in ("auto", dist.device.type):
            raise WaeError(f"{worded.flag_or_arg(f'--device {name}', f'device={name!r}')} under torchrun, where each "
                           f"process trains on its own device (here {dist.device}: the GPU of its LOCAL_RANK, or the "
                           f"CPU where torch sees no GPU); drop it (device auto)")
        return dist.device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise WaeError(f"bad device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WaeError(f"device {name!r} asked for but no CUDA GPU is available; use --device cpu")
    return dev


def batches(plan: Plan, images: Tensor, device: torch.device,
            dist: Dist | None = None) -> tuple[Batcher, Callable[[int], Tensor]]:
    """The batcher of the training images (``batch_size`` per process) and
    ``batch(step)``: that step's batch on ``device``, in the run's memory layout."""
    c, dist = plan.cfg, dist or Dist()
    batcher = Batcher(images, c.batch_size, c.seed, dist.rank, dist.world_size,
                      device if c.data_on_device else None)
    fetch = batcher.batch if c.data_on_device else (lambda s: batcher.batch(s).to(device, non_blocking=True))
    if not plan.fast(device).channels_last:
        return batcher, fetch
    return batcher, (lambda s: fetch(s).contiguous(memory_format=torch.channels_last))


def total_steps(cfg: TrainConfig, batcher: Batcher) -> int:
    """``epochs`` of the batcher's steps, capped at ``max_steps`` (0: no cap)."""
    total = batcher.steps_per_epoch * cfg.epochs
    return min(total, cfg.max_steps) if cfg.max_steps else total


def build_model(plan: Plan, channels: int, total_steps: int, device: torch.device,
                sync_bn: bool = False) -> tuple[Autoencoder, Regularizer]:
    """The autoencoder and the plugin (attached), seeded by ``cfg.seed`` so
    that every rank starts from the same weights, on ``device``."""
    c = plan.cfg
    seed_everything(c.seed)
    ae = build_arch(plan.arch, c.image_size, channels, c.latent_dim)
    if c.decoder_output == "sigmoid":   # Dec ends in a sigmoid, as the RAE authors' nets (images in [0, 1])
        ae.decoder = torch.nn.Sequential(ae.decoder, torch.nn.Sigmoid())
    if sync_bn:   # before attach: MoCA's key encoder copies the synchronised batch norm too
        if device.type != "cuda":
            raise WaeError("sync_bn needs CUDA devices (NCCL); drop --set sync_bn=true on the CPU")
        ae = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ae)
    reg = plan.reg_cls(c.reg, plan.setup(total_steps))
    reg.name = c.regularizer   # the terms are logged as NAME/TERM under the name the run asked for, whatever the
    reg.attach(ae)             # class's (one class may be registered under several names)
    return ae.to(device), reg.to(device)


@dataclass
class Run:
    """The trained objects of one run, as :func:`build_run` makes them."""

    plan: Plan
    ae: Autoencoder
    reg: Regularizer
    trainer: Trainer
    dist: Dist
    fast: FastPath

    def capture(self, example: Tensor) -> None:
        """In graph mode: replace the trainer's step by its CUDA graph,
        captured on ``example`` (after any checkpoint is loaded)."""
        if self.fast.step_mode == "graph":
            self.trainer.step = capture_step(self.trainer, example, world_size=self.dist.world_size)


def build_run(plan: Plan, *, channels: int, total_steps: int, device: torch.device | None = None,
              dist: Dist | None = None) -> Run:
    """Nets, plugin and trainer of a run of ``total_steps`` steps: channels-last
    where :meth:`Plan.fast` says so, compiled if asked (before the DDP wrap),
    and the step context with the run's own generator on ``device``, seeded
    by the run's seed and this process's rank
    (:func:`~wae_bench.step.rng.run_generator`)."""
    c, dist = plan.cfg, dist or Dist()
    device = pick_device(c.device, dist) if device is None else device
    fast = plan.fast(device)
    ae, reg = build_model(plan, channels, total_steps, device, sync_bn=c.sync_bn and dist.enabled)
    if fast.channels_last:   # NHWC convolutions (tensor cores like them); same maths
        ae, reg = ae.to(memory_format=torch.channels_last), reg.to(memory_format=torch.channels_last)
    compile_nets(ae, reg, c.compile)
    ctx = dist.context(total_steps, generator=run_generator(c.seed, device, dist.rank))
    trainer = Trainer(ae, reg, lr=c.lr, total_steps=total_steps, precision=c.precision,
                      model=dist.wrap(ae), ctx=ctx)
    if trainer.aux_steps != plan.aux_steps():
        raise WaeError(f"plugin {c.regularizer!r}: aux_steps = {trainer.aux_steps} on the built plugin but "
                       f"{plan.aux_steps()} on its class, so a run cannot record it; declare aux_steps as a class "
                       f"attribute, or a property reading the plugin's Config, not set it in __init__")
    return Run(plan, ae, reg, trainer, dist, fast)
