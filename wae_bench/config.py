"""Typed configuration: every option declared once, validated on
construction, unknown keys refused.

An option is a dataclass field declared with :func:`option` -- its type,
default and help in one place.  From those declarations come the ``--set``
keys (:func:`from_dict`), the flags of `wae-bench run` and `wae-bench eval`
(:mod:`wae_bench.cli.options`) and the option table of ``docs/options.md``.
Adding an option is adding one field.

* :class:`TrainConfig` -- one training run (`wae-bench run`, a bench cell's
  ``[train]``);
* :class:`EvalSettings` -- the scoring of a run (`wae-bench eval`, the
  end-of-run scoring of `wae-bench run`, a bench spec's ``[eval]``);
* :class:`RegularizerConfig` -- the base of every plugin's ``Config``
  (``reg.KEY``), whose penalty weight ``lambda_`` is the ``--lambda`` flag.

Every source of settings -- defaults, a TOML file (``--config``), ``--set
key=value`` and the CLI's own flags -- goes through :func:`from_dict` (and
:func:`merge`), so a bad key or value gives the same one-line error wherever
it came from.  Keys that are Python keywords are spelled with a trailing
underscore in the dataclasses (``lambda_``) and without it in TOML, ``--set``
and saved configs (``lambda``); :func:`spelled` is the one place that maps
the one to the other, and a table that gives both is refused.  The resolved
config is saved beside every checkpoint and result.
"""
from __future__ import annotations

import contextvars
import dataclasses
import difflib
import keyword
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wae_bench.errors import WaeError, doc_ref


# -- declaring an option --------------------------------------------------------------
def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING,
           flag: bool | str = False, default_text: str | None = None, location: bool = False,
           run: bool = True) -> Any:
    """A config field with its help.  ``flag``: also a command-line flag
    (True: ``--name-with-dashes``; a string: that flag name); ``default_text``
    says what a ``None`` default means; ``location``: says where things are
    or how often to save, not what is computed (a resumed run may change it,
    a bench cell's identity and a spec's hash ignore it); ``run=False``: an
    evaluation setting that `wae-bench run` does not take as a flag."""
    meta = {"help": help, "flag": flag, "default_text": default_text, "location": location, "run": run}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def location_keys(cls: type) -> frozenset[str]:
    """The keys of ``cls`` declared ``location=True``."""
    return frozenset(key_of(f.name) for f in dataclasses.fields(cls) if f.metadata.get("location"))


def check(cond: bool, message: str) -> None:
    """Raise a one-line config error unless ``cond`` holds."""
    if not cond:
        raise WaeError(message)


# -- the spelling of keys -------------------------------------------------------------
def key_of(name: str) -> str:
    """A field's key: ``lambda_`` -> ``lambda`` (a keyword with a trailing underscore)."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def spelled(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``data`` with every key in its key spelling (:func:`key_of`, in nested
    tables too); a table that gives one key in both spellings is refused."""
    out: dict[str, Any] = {}
    for raw, value in data.items():
        key = key_of(raw) if isinstance(raw, str) else raw
        if key in out:
            raise WaeError(f"{where}{key} is given twice, as {key!r} and {key + '_'!r}; give it once")
        out[key] = spelled(value, f"{where}{key}.") if isinstance(value, dict) else value
    return out


# -- reading values ---------------------------------------------------------------------
def split_list(text: str) -> list[str]:
    """A comma list: ``"fid, kid,"`` -> ``["fid", "kid"]`` (the one way every
    comma-separated setting is read)."""
    return [s.strip() for s in text.split(",") if s.strip()]


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax (numbers, booleans, lists, quoted strings),
    falling back to the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def toml_spelling(value: Any) -> str:
    """``value`` as TOML (and ``--set``) write it: ``true``/``false``, not
    Python's ``True``/``False``, also inside lists and tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(toml_spelling, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_spelling(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _bad(value: Any, label: str, why: str) -> WaeError:
    if label.startswith("--"):
        return WaeError(f"bad {label} {toml_spelling(value)}: {why}")
    return WaeError(f"bad value {toml_spelling(value)} for {label}: {why}")


def _coerce(value: Any, hint: Any, label: str) -> Any:
    """``value`` as type ``hint``.  Text (a flag's value, an item of a comma
    list) is read as TOML where the type is not a string."""
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
                return _coerce(value, a, label)
            except WaeError as e:
                errors.append(e)
        raise errors[0] if errors else _bad(value, label, "not allowed")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices and isinstance(value, str) and parse_value(value) in choices:
            value = parse_value(value)
        if value not in choices:
            raise _bad(value, label, f"choose one of {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = split_list(value)
        if not isinstance(value, (list, tuple)):
            raise _bad(value, label, "expected a list")
        (inner,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(v, inner, label) for v in value]
    if hint is Any:
        return value
    if hint in (bool, int, float) and isinstance(value, str):
        parsed = parse_value(value)
        value = parsed if not isinstance(parsed, str) else value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _bad(value, label, "expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -2 ** 63 <= value < 2 ** 63:
                raise _bad(value, label, f"out of range (a 64-bit integer: at most ±{2 ** 63 - 1})")
            return value
        raise _bad(value, label, "expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _bad(value, label, "expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _bad(value, label, "expected a string")
    if (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _bad(value, label, f"expected a table of settings; set one with --set {label}.KEY=VALUE "
                                     f"(in TOML: a [{label}] table)")
        return from_dict(hint, value, where=f"{label}.") if dataclasses.is_dataclass(hint) else dict(value)
    return value


def flag_of(name: str) -> str:
    """A key's flag spelling: ``fid_samples`` -> ``--fid-samples``."""
    return "--" + key_of(name).replace("_", "-")


# Where the sections of each module's dataclasses are documented: what a
# "needs KEY" error (:func:`missing_keys_error`) points to (the option table, also docs/options.md).
SECTION_DOCS = {"wae_bench.bench.spec": doc_ref("benchmarks.md", "The spec in full"),
                __name__: "`wae-bench options-table` (every key, its type and default)"}


def example_value(hint: Any) -> str:
    """A TOML value of type ``hint`` to show in an error: ``"..."``, ``["..."]``, ``1.0``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return example_value(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return repr(args[0]).replace("'", '"')
    if origin in (list, tuple):
        return f"[{example_value(args[0] if args else str)}]"
    if origin is dict or hint is dict or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return "{ ... }"
    return {bool: "true", int: "1", float: "1.0"}.get(hint, '"..."')


def missing_keys_error(cls: type, missing: list[str], hints: dict[str, Any], where: str) -> WaeError:
    """One line for a table without its required keys: the section (``[bench]``),
    the keys, an example of each (a field's ``example`` metadata, else a value
    of its type) and the page documenting the section."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    section = f"[{where.rstrip('.')}]" if where.strip(".") else cls.__name__
    examples = ", ".join(f"{key_of(n)} = {fields[n].metadata.get('example') or example_value(hints[n])}"
                         for n in missing)
    keys = [key_of(n) for n in missing]
    names = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
    doc = SECTION_DOCS.get(cls.__module__)
    return WaeError(f"{section} needs {names} (e.g. {examples})" + (f"; see {doc}" if doc else ""))


def _nested_key(key: str, cls: type, hints: dict[str, Any], fields: dict[str, str]) -> list[str]:
    """``key`` as the key of a table one level down where a table field's
    dataclass declares it (``lambda`` -> ``["reg.lambda"]``, the setting every
    regularizer has), or the dataclass its ``table_of`` metadata names (a
    bench spec's ``[train]``, a plain table of ``TrainConfig`` keys: ``epochs``
    -> ``["train.epochs"]``, before ``[tune]``'s); empty where none does."""
    declared = {f.name: f.metadata.get("table_of") for f in dataclasses.fields(cls)}
    for name, field_name in fields.items():
        hint = hints[field_name]
        for inner in ((declared[field_name],) if declared[field_name] else typing.get_args(hint) or (hint,)):
            if isinstance(inner, type) and dataclasses.is_dataclass(inner) and key in {
                    key_of(f.name) for f in dataclasses.fields(inner) if f.init}:
                return [f"{name}.{key}"]
    return []


#: How a dataclass's own checks (``__post_init__``) name its keys while :func:`from_dict`
#: builds it: None, as flags (``--fid-samples``); else this prefix and the key
#: (``eval.fid_samples``, a spec's ``[eval]``).
_LABEL_PREFIX: contextvars.ContextVar[str | None] = contextvars.ContextVar("label_prefix", default=None)


def label_of(key: str) -> str:
    """``key`` as the values being checked were given: a flag, or a spec's key (:data:`_LABEL_PREFIX`)."""
    prefix = _LABEL_PREFIX.get()
    return flag_of(key) if prefix is None else prefix + key_of(key)


def from_dict(cls: type, data: dict[str, Any], where: str = "", flags: bool = False, owner: str = "",
              unlisted: typing.Collection[str] = ()) -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys, missing required
    keys and bad types are one-line :class:`WaeError`s naming the key
    (``where`` prefixes it; ``flags``: named as the command-line flags the
    values came from; ``owner``: whose settings an unknown key is not one of,
    ``regularizer 'ae'``; ``unlisted``: keys the caller refuses in this
    table, never suggested or listed as valid)."""
    data = spelled(data, where)
    hints = typing.get_type_hints(cls)
    fields = {key_of(f.name): f.name for f in dataclasses.fields(cls) if f.init}
    valid = [k for k in fields if k not in unlisted]
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = (difflib.get_close_matches(str(key), valid, n=1)
                     or _nested_key(str(key), cls, hints, {k: fields[k] for k in valid}))
            hint = f"did you mean {where + close[0]!r}? " if close else ""
            of = f" of {owner}" if owner else ""
            raise WaeError(f"unknown config key {where + str(key)!r}{of}; {hint}valid keys: {', '.join(valid)}")
        label = flag_of(key) if flags else where + key
        kwargs[fields[key]] = _coerce(value, hints[fields[key]], label)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise missing_keys_error(cls, missing, hints, where)
    token = _LABEL_PREFIX.set(None if flags or not where else where)
    try:
        return cls(**kwargs)
    except WaeError:
        raise
    except (TypeError, ValueError) as e:
        raise WaeError(f"bad config for {where or cls.__name__}: {e}") from None
    finally:
        _LABEL_PREFIX.reset(token)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain JSON/TOML-able data (``lambda_`` written ``lambda``)."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[key_of(f.name)] = to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


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
    """Recursive dict merge; ``over`` wins (tables merge, other values
    replace), each side read in its key spelling (:func:`spelled`)."""
    out = spelled(base)
    for k, v in spelled(over).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# -- the declared options ---------------------------------------------------------------
MAX_SEED = 2 ** 32 - 1   # NumPy's legacy seeding takes 32 bits; the batcher's epoch seeds stay in 64
Precision = typing.Literal["fp32", "bf16"]
StepMode = typing.Literal["auto", "eager", "graph"]
CompileMode = typing.Literal["none", "default", "max-autotune-no-cudagraphs"]
DecoderOutput = typing.Literal["linear", "sigmoid"]


@dataclass
class RegularizerConfig:
    """Settings every regularizer has: the penalty weight ``lambda_`` (λ).
    Read like the table it came from: ``cfg["lambda"]``."""

    lambda_: float = option(1.0, "Penalty weight λ (reg.lambda).", flag="--lambda",
                            default_text="the paper's, per regularizer and dataset (`wae-bench list`)")

    def __post_init__(self):
        check(self.lambda_ >= 0, f"lambda must be >= 0, got {self.lambda_}")

    def __getitem__(self, key: str) -> Any:
        names = {key_of(f.name): f.name for f in dataclasses.fields(self)}
        if key not in names:
            raise KeyError(key)
        return getattr(self, names[key])


@dataclass
class TrainConfig:
    """One training run.  ``None`` means "the dataset's / architecture's default",
    resolved by :func:`wae_bench.run.build.resolve` and saved resolved."""

    regularizer: str = option("moca", "Regularizer (see `wae-bench list`).", flag="--reg")
    arch: str | None = option(None, "Architecture.", flag=True, default_text="the dataset's (a1; tiny for digits)")
    dataset: str = option("digits", "Dataset (digits: embedded, offline).", flag=True)
    data_root: str | None = option(None, "Dataset folder or archive location.", flag=True, location=True,
                                   default_text="none (the embedded digits need none)")
    download: bool = option(False, "Let torchvision download the dataset (online).", flag=True, location=True)
    data_variant: str | None = option(None, "Label of the exact pixels (e.g. cifar10-jpeg-q75), recorded with "
                                            "every score.", default_text="the dataset's")
    image_size: int | None = option(None, "Image side in pixels.", default_text="the dataset's")
    latent_dim: int = option(128, "Latent dimension d.")
    decoder_output: DecoderOutput = option("linear", "The decoder's last activation: linear (the WAE and MoCA "
                                                     "nets) or sigmoid (the RAE authors' nets).")
    epochs: int | None = option(None, "Epochs.", flag=True, default_text="the dataset's (100 for cifar10)")
    max_steps: int = option(0, "Stop after this many steps (0: no cap).")
    holdout: int = option(0, "Training images held out as the validation split (wae_bench.data.holdout; "
                             "`eval --split val`); 0: none.")
    batch_size: int = option(64, "Batch size PER PROCESS (global = × processes).", flag=True)
    lr: float = option(1e-3, "Adam learning rate (halved every lr_halve_every epochs).", flag=True)
    lr_halve_every: int = option(60, "Halve the learning rate every this many epochs (0: never).")
    seed: int = option(0, "Seed of the weights, the data order and the prior samples.", flag=True)
    device: str = option("auto", "auto, cpu, cuda, cuda:N.", flag=True, location=True)
    precision: Precision = option("fp32", "bf16: autocast to bfloat16.", flag=True)
    step_mode: StepMode = option("auto", "graph: capture the whole step as one CUDA graph (CUDA only); auto: graph "
                                         "on a single CUDA device, eager elsewhere.", flag=True)
    channels_last: bool | None = option(None, "NHWC memory layout for the convolutions.", flag=True,
                                        default_text="on on a single CUDA device, off elsewhere")
    compile: CompileMode = option("none", "torch.compile the nets and the plugin's penalty.", flag=True)
    data_on_device: bool = option(True, "Hold the whole dataset on the device.", location=True)
    sync_bn: bool = option(False, "Under torchrun: batch-norm statistics over the global batch (CUDA only).",
                           flag=True)
    ckpt_every: int = option(0, "Checkpoint every this many steps (0: by time only).", location=True)
    ckpt_minutes: float = option(10.0, "Checkpoint at the first log step this many minutes after the last "
                                       "(0: by step count only).", location=True)
    keep_checkpoints: int = option(2, "Checkpoints kept.", location=True)
    log_every: int = option(50, "Log (and check for NaN/inf) every this many steps.", location=True)
    diverge_factor: float = option(1e4, "Stop the run as diverged when a log window's mean reconstruction loss "
                                        "exceeds this many times its value at step 1 (a finite blow-up); 0: "
                                        "off.", location=True)
    log: typing.Literal["jsonl", "tensorboard"] = option(
        "jsonl", "tensorboard: also write RUN_DIR/tensorboard/ (scalars every log step, picture grids at "
                 "checkpoints, the config as hparams with the final scores; pip install 'wae-bench[tensorboard]'). "
                 "metrics.jsonl is always written.", flag=True, location=True)
    expost: list[str] = option(help="Ex-post densities fitted after training: n, gmm (or an empty list).",
                               factory=lambda: ["n", "gmm"])
    reg: dict[str, Any] | RegularizerConfig = option(
        help="The regularizer's own settings (reg.KEY; `wae-bench list` shows them); after resolution, its "
             "validated Config.", factory=dict)

    def __post_init__(self):
        check(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        check(self.epochs is None or self.epochs >= 1,
              f"epochs must be >= 1, got {self.epochs}; pass --epochs 1 or more")
        check(self.max_steps >= 0, f"max_steps must be >= 0 (0 = no cap), got {self.max_steps}")
        check(self.holdout >= 0, f"holdout must be >= 0 training images (0 = none), got {self.holdout}")
        check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        check(0 <= self.seed <= MAX_SEED, f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.lr_halve_every >= 0, f"lr_halve_every must be >= 0 epochs (0 = never), got {self.lr_halve_every}")
        check(self.ckpt_every >= 0, f"ckpt_every must be >= 0 steps (0 = by time only), got {self.ckpt_every}")
        check(self.ckpt_minutes >= 0, f"ckpt_minutes must be >= 0 (0 = by step count only), got {self.ckpt_minutes}")
        check(self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1 (the newest checkpoints kept: a resume "
                                          f"continues from one), got {self.keep_checkpoints}; give 1 or more")
        check(self.log_every >= 1, f"log_every must be >= 1 step, got {self.log_every}; give 1 or more")
        check(self.diverge_factor == 0 or self.diverge_factor > 1,
              f"diverge_factor must be 0 (off) or > 1 (a growth factor of the reconstruction loss, e.g. 1e4), got "
              f"{self.diverge_factor}")
        check(self.image_size is None or self.image_size >= 4, f"image_size must be >= 4, got {self.image_size}")
        for k in self.expost:
            check(k in ("n", "gmm"), f"bad expost density {k!r}: choose from n, gmm (or an empty list)")


# TrainConfig keys that a resumed run may change and a bench cell's identity ignores.
LOCATION_KEYS = location_keys(TrainConfig)

METRICS = ("fid", "kid", "pr", "is")
WHAT = ("samples", "n", "gmm", "rec", "interp")


def _names(items: list[str], allowed: tuple[str, ...], flag: str) -> list[str]:
    out = list(dict.fromkeys(s.strip().lower() for s in items if s and s.strip()))
    bad = [s for s in out if s not in allowed]
    if bad or not out:
        raise WaeError(f"bad {flag} {','.join(bad) or '(none)'}; choose from {','.join(allowed)}")
    return out


@dataclass
class EvalSettings:
    """How a run is scored (:func:`wae_bench.evaluate.evaluate_run`)."""

    fid_samples: int | None = option(None, "Generated samples per column.", flag=True,
                                     default_text="the dataset's (10,000 as the paper; 500 for the embedded "
                                                  "digits)")
    metrics: list[str] = option(help="Comma list of fid, kid, pr, is.", factory=lambda: ["fid"], flag=True)
    what: list[str] = option(help="Comma list of columns: samples, n, gmm (ex-post densities), rec, interp.",
                             factory=lambda: ["samples"], flag=True,
                             default_text="samples; `wae-bench run`: samples and the regularizer's own sampler "
                                          "where it is n or gmm (ae, the RAE family), if the run fits it")
    split: typing.Literal["test", "train", "val"] = option(
        "test", "Reference split (the paper: test; val: the training images a run held out, --set holdout=N).",
        flag=True)
    features: typing.Literal["inception", "standin"] = option(
        "inception", "standin: random conv features for smoke tests (NOT FID).", flag=True)
    fid_weights: str | None = option(None, "torch-fidelity's Inception weight file.", flag=True, location=True,
                                     default_text="$WAE_BENCH_FID_WEIGHTS, the cache, torch-fidelity's download")
    batch_size: int = option(250, "Generation and feature batch.", flag=True, run=False)
    seed: int = option(0, "Seed of the generated samples.", flag=True, run=False)
    kid_subset_size: int = option(1000, "KID subset size.", flag=True)
    kid_subsets: int = option(100, "KID subsets.", flag=True)
    interp_alphas: list[float] = option(help="α of the Interp column: 0.5 (RAE's midpoints) or a grid, "
                                             "e.g. 0.1,0.2,...", factory=lambda: [0.5], flag=True)
    diagnostics_limit: int | None = option(
        None, "At most this many images for the diagnostics: reference images reconstructed, training images "
              "encoded for the latent spectrum (seeded random subsets; recorded as diagnostics.limit).",
        flag=True, default_text="none: the whole reference split and 10,000 training images")

    def __post_init__(self):
        # (each named as given: a flag of run/eval, or a spec's [eval] key, eval.seed; label_of)
        self.metrics = _names(self.metrics, METRICS, label_of("metrics"))
        self.what = _names(self.what, WHAT, label_of("what"))
        check(self.fid_samples is None or self.fid_samples >= 2,
              f"{label_of('fid_samples')} must be >= 2, got {self.fid_samples}")
        check(self.batch_size >= 1, f"{label_of('batch_size')} must be >= 1, got {self.batch_size}")
        check(self.kid_subsets >= 1, f"{label_of('kid_subsets')} must be >= 1, got {self.kid_subsets}; KID is the "
                                     f"mean over that many random subsets (default 100)")
        check(0 <= self.seed <= MAX_SEED, f"{label_of('seed')} must be in [0, {MAX_SEED}], got {self.seed}")
        check(self.diagnostics_limit is None or self.diagnostics_limit >= 1,
              f"{label_of('diagnostics_limit')} must be >= 1 image (leave it out for all), got "
              f"{self.diagnostics_limit}")
        check(bool(self.interp_alphas) and all(0.0 <= a <= 1.0 for a in self.interp_alphas),
              f"bad {label_of('interp_alphas')} {self.interp_alphas}: write numbers in [0, 1], e.g. 0.5 or "
              f"0.25,0.5,0.75")
