"""Typed configuration: dataclasses validated on construction, unknown keys refused.

Every source of settings -- defaults, a TOML file (``--config``), ``--set
key=value`` and the CLI's own flags -- goes through :func:`from_dict`, so a bad
key or value gives the same one-line error wherever it came from.  The
resolved config is saved beside every checkpoint and result.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wae_bench.errors import WaeError

# Keys that are Python keywords are spelled with a trailing underscore in the
# dataclasses (``lambda_``) and may be written without it in TOML / --set.
_ALIASES = {"lambda": "lambda_"}


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except WaeError as e:
                errors.append(str(e))
        raise WaeError(errors[0] if errors else f"bad value for {where}{key}")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise WaeError(f"bad value {value!r} for {where}{key}: choose one of "
                           f"{', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise WaeError(f"bad value {value!r} for {where}{key}: expected a list")
        (inner,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(v, inner, key, where) for v in value]
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise WaeError(f"bad value {value!r} for {where}{key}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise WaeError(f"bad value {value!r} for {where}{key}: expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise WaeError(f"bad value {value!r} for {where}{key}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise WaeError(f"bad value {value!r} for {where}{key}: expected a string")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, where=f"{where}{key}.")
    if hint is dict or typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise WaeError(f"bad value {value!r} for {where}{key}: expected a table")
        return dict(value)
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad types are
    one-line :class:`WaeError`s naming the key (``where`` prefixes it)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for raw_key, value in data.items():
        key = _ALIASES.get(raw_key, raw_key)
        if key not in names:
            shown = [k.rstrip("_") if k.rstrip("_") in _ALIASES else k for k in names]
            raise WaeError(f"unknown config key {where + str(raw_key)!r}; valid keys: {', '.join(shown)}")
        kwargs[key] = _coerce(value, hints[key], raw_key, where)
    try:
        return cls(**kwargs)
    except WaeError:
        raise
    except (TypeError, ValueError) as e:
        raise WaeError(f"bad config for {where or cls.__name__}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain JSON/TOML-able data (``lambda_`` written ``lambda``)."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        key = f.name.rstrip("_") if f.name.rstrip("_") in _ALIASES else f.name
        out[key] = v
    return out


def check(cond: bool, message: str) -> None:
    """Raise a one-line config error unless ``cond`` holds."""
    if not cond:
        raise WaeError(message)


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax (numbers, booleans, lists, quoted strings),
    falling back to the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: typing.Iterable[str]) -> dict[str, Any]:
    """``["epochs=3", "reg.K=100"]`` -> ``{"epochs": 3, "reg": {"K": 100}}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise WaeError(f"bad --set {item!r}: write key=value, e.g. --set reg.K=4096")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise WaeError(f"bad --set {item!r}: {p!r} is not a table")
        node[parts[-1]] = parse_value(text.strip())
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise WaeError(f"config file {str(p)!r} not found; check the path given to --config")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise WaeError(f"malformed TOML in {str(p)!r}: {e}; fix the file") from None
    except UnicodeDecodeError:
        raise WaeError(f"config file {str(p)!r} is not UTF-8 text; pass a TOML file") from None


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``over`` wins (tables merge, other values replace)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


Precision = typing.Literal["fp32", "bf16"]
StepMode = typing.Literal["eager", "graph"]
CompileMode = typing.Literal["none", "default", "max-autotune-no-cudagraphs"]


# TrainConfig keys that say where things are or how often to save, not what is
# computed: a resumed run may change them, and a bench cell's identity ignores them.
LOCATION_KEYS = frozenset({"data_root", "download", "device", "data_on_device", "log_every", "ckpt_every",
                           "ckpt_minutes", "keep_checkpoints"})


@dataclass
class TrainConfig:
    """One training run.  ``None`` means "the dataset's / architecture's default",
    resolved by :func:`wae_bench.run.resolve` and saved resolved."""

    regularizer: str = "moca"
    arch: str | None = None
    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    data_variant: str | None = None
    image_size: int | None = None
    latent_dim: int = 128
    epochs: int | None = None
    max_steps: int = 0
    holdout: int = 0          # training images held out as the validation split (wae_bench.data.holdout); 0 = none
    batch_size: int = 64
    lr: float = 1e-3
    lr_halve_every: int = 60
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    step_mode: StepMode = "eager"
    channels_last: bool = False
    compile: CompileMode = "none"
    data_on_device: bool = True
    sync_bn: bool = False
    ckpt_every: int = 0
    ckpt_minutes: float = 10.0
    keep_checkpoints: int = 2
    log_every: int = 50
    expost: list[str] = field(default_factory=lambda: ["n", "gmm"])
    reg: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        check(self.epochs is None or self.epochs >= 1,
              f"epochs must be >= 1, got {self.epochs}; pass --epochs 1 or more")
        check(self.max_steps >= 0, f"max_steps must be >= 0 (0 = no cap), got {self.max_steps}")
        check(self.holdout >= 0, f"holdout must be >= 0 training images (0 = none), got {self.holdout}")
        check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.lr_halve_every >= 0, f"lr_halve_every must be >= 0 epochs (0 = never), got {self.lr_halve_every}")
        check(self.ckpt_every >= 0, f"ckpt_every must be >= 0 steps (0 = by time only), got {self.ckpt_every}")
        check(self.ckpt_minutes >= 0, f"ckpt_minutes must be >= 0 (0 = by step count only), got {self.ckpt_minutes}")
        check(self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        check(self.log_every >= 1, f"log_every must be >= 1 step, got {self.log_every}")
        check(self.image_size is None or self.image_size >= 4, f"image_size must be >= 4, got {self.image_size}")
        for k in self.expost:
            check(k in ("n", "gmm"), f"bad expost density {k!r}: choose from n, gmm (or an empty list)")
