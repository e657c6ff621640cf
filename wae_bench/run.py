"""A run directory: resolve a config, build the objects, train, resume, finish.

Layout of ``RUN_DIR``::

    config.json            resolved config, library versions
    metrics.jsonl          one line per log interval
    checkpoints/step-N.pt  the last ``keep_checkpoints`` checkpoints
    samples.png  reconstructions.png  interpolations.png
    results.json           scores with their protocol (``wae-bench eval``)
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from wae_bench import __version__, checkpoint
from wae_bench.config import LOCATION_KEYS, TrainConfig, from_dict, to_dict
from wae_bench.data import DatasetSpec, ImageSet, holdout, load_split
from wae_bench.errors import WaeError
from wae_bench.nets import ArchSpec, Autoencoder, build_arch
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS
from wae_bench.regularizer import Regularizer, Setup



def versions() -> dict[str, str]:
    import torchvision

    return {"wae_bench": __version__, "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__), "python": platform.python_version()}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise WaeError(f"bad device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WaeError(f"device {name!r} asked for but no CUDA GPU is available; use --device cpu")
    return dev


@dataclass
class Plan:
    """A config resolved against its dataset, architecture and regularizer."""

    cfg: TrainConfig
    data: DatasetSpec
    arch: ArchSpec
    reg_cls: type[Regularizer]
    reg_cfg: Any


def resolve(cfg: TrainConfig, world_size: int = 1) -> Plan:
    """Fill every ``None`` default and validate the regularizer's settings."""
    data = DATASETS.get(cfg.dataset)
    arch = ARCHITECTURES.get(cfg.arch or data.arch)
    reg_cls = REGULARIZERS.get(cfg.regularizer)
    if not (isinstance(reg_cls, type) and issubclass(reg_cls, Regularizer)):
        raise WaeError(f"regularizer {cfg.regularizer!r} is not a wae_bench.Regularizer subclass; fix the plugin")
    size = cfg.image_size or data.image_size
    arch.check_size(size)
    cfg = dataclasses.replace(cfg, arch=arch.name, image_size=size, epochs=cfg.epochs or data.epochs)
    setup = Setup(total_steps=0, batch_size=cfg.batch_size, world_size=world_size, latent_dim=cfg.latent_dim,
                  arch=arch.name, dataset=data.name)
    user = dict(cfg.reg)
    defaults = {**reg_cls.defaults(setup)}
    reg_cfg = from_dict(reg_cls.Config, {**defaults, **user}, where="reg.")
    cfg = dataclasses.replace(cfg, reg=to_dict(reg_cfg))
    return Plan(cfg, data, arch, reg_cls, reg_cfg)


def load_data(plan: Plan) -> tuple[ImageSet, ImageSet]:
    """The images trained on (the training split less the ``holdout``
    validation images, :mod:`wae_bench.data.holdout`) and the test split."""
    c = plan.cfg
    train = load_split(plan.data, c.data_root, "train", c.image_size, c.download)
    test = load_split(plan.data, c.data_root, "test", c.image_size, False)  # (a download fetched both splits)
    if c.holdout:
        train = holdout.split(train, c.holdout, plan.data.name)[0]
    return train, test


def load_val(plan: Plan) -> ImageSet:
    """The validation split: the ``holdout`` training images the run never trained on."""
    c = plan.cfg
    if not c.holdout:
        raise WaeError("the run held out no validation images (holdout = 0); score the test split, or train "
                       "with --set holdout=N to hold out N training images")
    train = load_split(plan.data, c.data_root, "train", c.image_size, False)
    return holdout.split(train, c.holdout, plan.data.name)[1]


def total_steps(cfg: TrainConfig, n_train: int, world_size: int = 1) -> tuple[int, int]:
    spe = n_train // (cfg.batch_size * world_size)
    if spe == 0:
        raise WaeError(f"the training set has {n_train} images, fewer than one batch of "
                       f"{cfg.batch_size * world_size}; lower --batch-size")
    total = spe * cfg.epochs
    return spe, min(total, cfg.max_steps) if cfg.max_steps else total


def build(plan: Plan, channels: int, T: int, device: torch.device, world_size: int = 1,
          sync_bn: bool = False) -> tuple[Autoencoder, Regularizer]:
    c = plan.cfg
    seed_everything(c.seed)  # equal initial weights on every rank; a reproducible run
    ae = build_arch(plan.arch, c.image_size, channels, c.latent_dim)
    if sync_bn:   # before attach: MoCA's key encoder copies the synchronised batch norm too
        if device.type != "cuda":
            raise WaeError("sync_bn needs CUDA devices (NCCL); drop --set sync_bn=true on the CPU")
        ae = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ae)
    setup = Setup(total_steps=T, batch_size=c.batch_size, world_size=world_size, latent_dim=c.latent_dim,
                  arch=plan.arch.name, dataset=plan.data.name)
    reg = plan.reg_cls(plan.reg_cfg, setup)
    reg.attach(ae)
    return ae.to(device), reg.to(device)


def seed_everything(seed: int) -> None:
    """Seed every global RNG a plugin might draw from (torch, Python, NumPy);
    their states are saved in each checkpoint (:func:`wae_bench.trainer.rng_state`)."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class RunDir:
    """Files of one run; every write is atomic (:mod:`wae_bench.checkpoint`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def saved_config(self) -> dict | None:
        if not self.config_path.is_file():
            return None
        try:
            return json.loads(self.config_path.read_text())["config"]
        except (json.JSONDecodeError, KeyError, OSError) as e:
            raise WaeError(f"{str(self.config_path)!r} is unreadable ({e}); restore it or start a new --out") from None

    def write_config(self, cfg: TrainConfig, extra: dict) -> None:
        checkpoint.write_json(self.config_path, {"config": to_dict(cfg), "versions": versions(), **extra})

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Drop metric lines written after the checkpoint we resume from (and a
        line torn by a kill mid-append)."""
        p = self.path / "metrics.jsonl"
        if p.is_file():
            keep = [ln for ln in p.read_text(errors="replace").splitlines() if _step_of(ln) <= step]
            checkpoint.write_text(p, "".join(ln + "\n" for ln in keep))


def _step_of(line: str) -> float:
    """The ``step`` of a metrics line; infinity for a torn or foreign line."""
    try:
        rec = json.loads(line)
        return float(rec["step"]) if isinstance(rec, dict) and isinstance(rec.get("step"), int) else float("inf")
    except (json.JSONDecodeError, KeyError):
        return float("inf")


def check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise WaeError(f"cannot write to output directory {str(path)!r} ({e.strerror or e}); "
                       f"choose another --out") from None


@contextlib.contextmanager
def output_dir(path: Path, main: bool = True) -> Iterator[None]:
    """Make (and check) the output folder up front, so an unwritable ``--out``
    fails before data loading; if the block then fails while the folders this
    made are still empty (bad data, bad settings), remove them again: a bad
    input leaves nothing behind."""
    made = [p for p in (path, *path.parents) if not p.exists()]
    if main:
        check_writable(path)
    try:
        yield
    except BaseException:
        for p in made if main else []:
            try:
                p.rmdir()          # only ever removes an empty folder
            except OSError:
                break
        raise


def default_out(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{cfg.regularizer}-{cfg.arch}-{cfg.dataset}-s{cfg.seed}"


def config_for(overrides: dict, run: RunDir | None, resume: bool, force: bool) -> TrainConfig:
    """The config of a new run (``overrides`` on the defaults), or of a resumed
    run (the saved config; overrides that change the result are refused unless
    ``force``)."""
    if not resume:
        return from_dict(TrainConfig, overrides)
    saved = run.saved_config() if run else None
    if saved is None:
        raise WaeError(f"nothing to resume in {str(run.path) if run else '?'!r} (no config.json); drop --resume "
                       f"to start a new run there")
    merged = {**saved, **{k: v for k, v in overrides.items() if k != "reg"}}
    merged["reg"] = {**saved.get("reg", {}), **overrides.get("reg", {})}
    cfg = from_dict(TrainConfig, merged)
    changed = [k for k, v in to_dict(resolve(cfg).cfg).items() if k not in LOCATION_KEYS and saved.get(k) != v]
    if changed and not force:
        raise WaeError(f"--resume with a different config ({', '.join(changed)} changed) would not reproduce the "
                       f"run; drop those options, or pass --force to resume anyway")
    return cfg
