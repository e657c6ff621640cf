"""The run directory: its files, the checks on ``--out`` before anything
is written, and the config of a resumed run.

Layout of ``RUN_DIR``::

    config.json            resolved config, library versions
    metrics.jsonl          one line per log interval
    checkpoints/step-N.pt  the last ``keep_checkpoints`` checkpoints
    samples.png  reconstructions.png  interpolations.png
    results.json           scores with their protocol (``wae-bench eval``)
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import torch
import torchvision

from wae_bench import __version__, atomic, lock
from wae_bench.config import LOCATION_KEYS, TrainConfig, from_dict, merge, to_dict
from wae_bench.errors import WaeError
from wae_bench.registry import REGULARIZERS
from wae_bench.run.build import Plan, resolve


def versions(regularizer: str | None = None) -> dict[str, str]:
    """The library versions recorded with a run and in every checkpoint; with
    ``regularizer``, also who provides it (``"regularizer": "my-pkg 0.1"``,
    :meth:`~wae_bench.registry.Registry.provider`): a plugin's defaults are
    part of the result."""
    out = {"wae_bench": __version__, "torch": str(torch.__version__),
           "torchvision": str(torchvision.__version__), "python": platform.python_version()}
    if regularizer is not None:
        out["regularizer"] = f"{regularizer}: {REGULARIZERS.provider(regularizer)}"
    return out


SOURCE_ENV = "WAE_BENCH_SOURCE_REV"
#: The paths of the checkout whose changes change what a run computes: an
#: uncommitted change there makes the revision ``-dirty``; one in docs/,
#: tests/ or benchmarks/ (a regenerated table, a run written into
#: benchmarks/results/) does not.  benchmarks/gpu_setup.sh checks the same paths.
CODE_PATHS = ("wae_bench", "regularizers", "pyproject.toml")


def source_revision() -> str | None:
    """The code a run was made with: ``$WAE_BENCH_SOURCE_REV`` (set where the
    package is a copy, e.g. the GPU scripts), else the short git commit of
    the checkout the package is imported from, ``-dirty`` when a tracked
    file under :data:`CODE_PATHS` has uncommitted changes; None outside a
    git checkout.  Recorded in ``config.json`` (not in ``versions``: a
    resume across commits is normal)."""
    if os.environ.get(SOURCE_ENV):
        return os.environ[SOURCE_ENV]
    return git_revision(Path(__file__).resolve().parent)


def git_revision(here: Path) -> str | None:
    """The short commit of the git checkout holding ``here``, ``-dirty`` when
    a tracked file under :data:`CODE_PATHS` of it has uncommitted changes;
    None outside a checkout."""
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--",
                                *(f":(top){p}" for p in CODE_PATHS)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


class RunDir:
    """Files of one run; every write is atomic (:mod:`wae_bench.atomic`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def record(self) -> dict | None:
        """``config.json`` as written by :meth:`write_config`; None if there is
        none; a file that is not a run's record is refused in one line."""
        if not self.config_path.is_file():
            return None
        try:
            rec = json.loads(self.config_path.read_text())
            if not (isinstance(rec, dict) and isinstance(rec.get("config"), dict)):
                raise ValueError("no \"config\" table: not the config.json of a run")
            return rec
        except (ValueError, OSError) as e:
            raise WaeError(f"{str(self.config_path)!r} is unreadable ({e}); restore it from a copy of the run, "
                           f"or move the folder aside") from None

    def saved_config(self) -> dict | None:
        rec = self.record()
        return None if rec is None else rec["config"]

    def holds_run(self) -> bool:
        """Whether ``config.json`` is a run's (never raises)."""
        try:
            return self.record() is not None
        except WaeError:
            return False

    def written_by(self) -> str | None:
        """The wae-bench version that wrote ``config.json`` (None if unknown)."""
        try:
            v = ((self.record() or {}).get("versions") or {}).get("wae_bench")
        except (WaeError, AttributeError):
            return None
        return v if isinstance(v, str) else None

    def info(self) -> dict:
        """``config.json`` without its config (counts, variant, hold-out, ...); {} if unreadable."""
        try:
            rec = dict(self.record() or {})
        except WaeError:
            return {}
        rec.pop("config", None)
        return rec

    def write_config(self, cfg: TrainConfig, extra: dict, keep: tuple[str, ...] = ()) -> None:
        """Write ``config.json``: the resolved config, the versions, the
        source revision and ``extra``; the ``keep`` keys of the one there are
        kept as recorded (a resume keeps what the run recorded about its data
        when it started, :data:`~wae_bench.run.fingerprint.RECORDED_AT_START`)."""
        old = self.info() if keep else {}
        if old:   # (an unreadable config.json keeps nothing)
            extra = {**{k: v for k, v in extra.items() if k not in keep}, **{k: old[k] for k in keep if k in old}}
        atomic.write_json(self.config_path, {"config": to_dict(cfg), "versions": versions(cfg.regularizer),
                                              "source": source_revision(), **extra})

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Drop metric lines written after the checkpoint we resume from (and a
        line torn by a kill mid-append)."""
        p = self.path / "metrics.jsonl"
        if p.is_file():
            keep = [ln for ln in p.read_text(errors="replace").splitlines() if _step_of(ln) <= step]
            atomic.write_text(p, "".join(ln + "\n" for ln in keep))

    def contents(self) -> list[Path]:
        """What the folder holds, less its lock file."""
        return [p for p in self.path.iterdir() if not lock.is_lock_file(p)] if self.path.is_dir() else []

    def discard_unstarted(self) -> None:
        """Remove what a new run wrote before its first checkpoint (its
        config.json, metrics, an empty checkpoints/ folder, temporary files):
        a run that failed before it saved anything leaves nothing the same
        command would refuse."""
        ckpts = self.path / "checkpoints"
        atomic.clean_temp(ckpts)
        atomic.clean_temp(self.path)
        for p in (self.config_path, self.path / "metrics.jsonl"):
            atomic.unlink(p)
        with contextlib.suppress(OSError):
            ckpts.rmdir()


def _step_of(line: str) -> float:
    """The ``step`` of a metrics line; infinity for a torn or foreign line."""
    try:
        rec = json.loads(line)
        return float(rec["step"]) if isinstance(rec, dict) and isinstance(rec.get("step"), int) else float("inf")
    except (json.JSONDecodeError, KeyError):
        return float("inf")


def check_writable(path: Path, resume: bool = False) -> None:
    """Make ``path`` and write a probe file into it; a failure is one line
    (a resume cannot choose another --out: it is told to copy the run)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        fix = (f"copy the run to a writable place and resume it there (wae-bench run --resume --out COPY)"
               if resume else "choose another --out")
        raise WaeError(f"cannot write to output directory {str(path)!r} ({e.strerror or e}); {fix}") from None


@contextlib.contextmanager
def output_dir(path: Path, main: bool = True, resume: bool = False) -> Iterator[None]:
    """Make (and check) the output folder up front, so an unwritable ``--out``
    fails before data loading; if the block then fails while the folders this
    made are still empty (bad data, bad settings), remove them again: a bad
    input leaves nothing behind."""
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        if main:
            check_writable(path, resume)
        yield
    except BaseException:
        for p in made if main else []:
            try:
                p.rmdir()          # only ever removes an empty folder
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENAMETOOLONG):
                    continue       # (never made: its mkdir failed)
                break
        raise


def default_out(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{cfg.regularizer}-{cfg.arch}-{cfg.dataset}-s{cfg.seed}"


def saved_plan(saved: dict, source: str | Path, version: str | None, world_size: int = 1) -> Plan:
    """The plan of a config a run saved (in ``source``, written by wae-bench
    ``version``); an error in it is the file's, and the message says so."""
    try:
        return resolve(from_dict(TrainConfig, saved), world_size)
    except WaeError as e:
        by = f"written by version {version} of wae-bench" if version else "written by an unknown version"
        fix = (f"use version {version} for this run" if version and version != __version__
               else "restore the file from a copy of the run")
        raise WaeError(f"the config saved in {str(source)!r} ({by}, this is {__version__}) does not load: {e}; "
                       f"{fix}, or edit the file") from None


def saved_resolved(run: RunDir, world_size: int = 1) -> dict:
    """The resolved config of the run in ``run`` (its ``config.json``): an
    option newer than the run reads as its default (the behaviour before it existed)."""
    return to_dict(saved_plan(run.saved_config(), run.config_path, run.written_by(), world_size).cfg)


#: Settings whose default is chosen per device when a run builds (step_mode
#: "auto": a CUDA graph on one CUDA device, eager elsewhere; channels_last
#: unset: on with the graph).  Either choice is the same computation (other
#: kernels, within float tolerance), so a run that recorded one is not
#: changed by the default now, nor the default by a recorded choice.
PER_DEVICE_DEFAULTS = {"step_mode": "auto", "channels_last": None}


def changes(before: dict, after: dict) -> list[tuple[str, object, object]]:
    """``(key, before, after)`` for each setting that differs between two
    resolved configs (:func:`~wae_bench.config.to_dict`), location keys
    aside, and a :data:`PER_DEVICE_DEFAULTS` default against either of its
    choices; the regularizer's own settings as ``reg.KEY``."""
    out = []
    for k in dict.fromkeys([*before, *after]):
        if k in LOCATION_KEYS:
            continue
        b, a = before.get(k), after.get(k)
        if k in PER_DEVICE_DEFAULTS and PER_DEVICE_DEFAULTS[k] in (b, a):
            continue
        if k == "reg" and isinstance(b, dict) and isinstance(a, dict):
            out += [(f"reg.{r}", b.get(r), a.get(r)) for r in dict.fromkeys([*b, *a]) if b.get(r) != a.get(r)]
        elif b != a:
            out.append((k, b, a))
    return out


def stale(run: RunDir, overrides: dict) -> list[str]:
    """How the run in ``run`` differs from what ``overrides`` resolve to now
    (e.g. ``["reg.lambda 0.5 -> 2.0"]`` after a plugin's default changed):
    the comparison of :func:`plan_for`'s resume; [] when it is the same run.
    A saved config that no longer loads is a difference too."""
    try:
        if run.saved_config() is None:
            return []
        before = saved_resolved(run)
    except WaeError as e:
        return [f"its config.json no longer loads ({e})"]
    now = to_dict(resolve(from_dict(TrainConfig, overrides)).cfg)
    return [f"{k} {json.dumps(b)} -> {json.dumps(a)}" for k, b, a in changes(before, now)]


def plan_for(overrides: dict, run: RunDir | None, resume: bool, force: bool, world_size: int = 1) -> Plan:
    """The resolved config of a new run (``overrides`` on the defaults), or of
    a resumed run (the saved config; overrides that change the result are
    refused unless ``force``)."""
    if not resume:
        return resolve(from_dict(TrainConfig, overrides), world_size)
    saved = run.saved_config() if run else None
    if saved is None:
        raise WaeError(f"nothing to resume in {str(run.path) if run else '?'!r} (no config.json); drop --resume "
                       f"to start a new run there")
    before = saved_resolved(run, world_size)
    plan = resolve(from_dict(TrainConfig, merge(saved, overrides)), world_size)
    changed = [k for k, _, _ in changes(before, to_dict(plan.cfg))]
    if changed and not force:
        raise WaeError(f"--resume with a different config ({', '.join(changed)} changed) would not reproduce the "
                       f"run; drop those options, or pass --force to resume anyway")
    return plan
