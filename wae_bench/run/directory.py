"""The run directory: its files, the checks on ``--out`` before anything
is written, the config of a resumed run, and its training log read back.

Layout of ``RUN_DIR``::

    config.json            resolved config, library and plugin versions, the plugins' source
                           sha256 (``plugin_sha256``), each start's settings (``starts``)
    metrics.jsonl          one line per log interval (read back by :func:`read_metrics`)
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
import time
from pathlib import Path
from typing import Iterator

import torch
import torchvision

from wae_bench import __version__, atomic, formats, lock, worded
from wae_bench.config import LOCATION_KEYS, TrainConfig, from_dict, merge, to_dict
from wae_bench.errors import WaeError
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS
from wae_bench.run.build import Plan, resolve
from wae_bench.run.fingerprint import RECORDED_AT_START


#: The plugins a run names: ``(config key, versions key, registry)``.
PLUGINS = (("regularizer", "regularizer", REGULARIZERS), ("arch", "architecture", ARCHITECTURES),
           ("dataset", "dataset", DATASETS))


def versions(regularizer: str | None = None, arch: str | None = None, dataset: str | None = None) -> dict[str, str]:
    """The library versions recorded with a run and in every checkpoint; with
    the names of its ``regularizer``, ``arch`` and ``dataset``, also who
    provides each (``"architecture": "dcg: my-pkg 0.1"``,
    :meth:`~wae_bench.registry.Registry.provider`): a plugin's code and
    defaults are part of the result, and a run loaded where its plugin is
    not installed names what to install (:func:`saved_plan`).  A name no
    registry holds (the stand-in dataset of a run fed its own batches) is left out."""
    out = {"wae_bench": __version__, "torch": str(torch.__version__),
           "torchvision": str(torchvision.__version__), "python": platform.python_version()}
    for key, registry, name in _registered(regularizer, arch, dataset):
        out[key] = f"{name}: {registry.provider(name)}"
    return out


def _registered(*names: str | None) -> list[tuple[str, object, str]]:
    """``(versions key, registry, name)`` of each of a run's plugin
    ``names`` (regularizer, arch, dataset) that its registry holds."""
    return [(key, registry, name) for (_, key, registry), name in zip(PLUGINS, names)
            if name is not None and name in registry]


def run_sources(cfg: TrainConfig) -> dict[str, str | None]:
    """The sha256 of the source file of each of the run's plugins' code
    (:meth:`~wae_bench.registry.Registry.source_sha256`; null where it has
    no file), by :func:`versions` key, recorded with each start as
    ``plugin_sha256``: an edit to an editable-installed plugin changes what
    a run computes while its version (:func:`run_versions`) stays the same,
    and a resume across such an edit says so (:func:`mixed_settings`), as
    across versions; it is no change of the config (:func:`changes`), so
    nothing is refused or made stale by it."""
    return {key: registry.source_sha256(name)
            for key, registry, name in _registered(cfg.regularizer, cfg.arch, cfg.dataset)}


def refused_entry_points(cfg: TrainConfig) -> list[str]:
    """A line for each of the run's plugins whose name is a built-in's for
    which an installed entry point of that name was refused
    (:meth:`~wae_bench.registry.Registry.shadowed`): the run uses the
    built-in, which its author may not expect."""
    return [line for _, registry, name in _registered(cfg.regularizer, cfg.arch, cfg.dataset)
            if (line := registry.shadowed(name))]


def cpu_threads() -> dict[str, int]:
    """The CPU thread counts torch computes with (``torch.get_num_threads()``,
    ``torch.get_num_interop_threads()``), recorded in ``config.json`` and in
    every ``results.json`` protocol: a CPU result depends on them (the
    intra-op count changes the order of a reduction's sums, so the README
    run's FID moves by ~0.1 between 1 and 2 threads; docs/evaluation.md)."""
    return {"intra_op": torch.get_num_threads(), "interop": torch.get_num_interop_threads()}


def run_versions(cfg: TrainConfig) -> dict[str, str]:
    """:func:`versions` of a run of ``cfg``, with its three plugins' providers."""
    return versions(cfg.regularizer, cfg.arch, cfg.dataset)


def providers(recorded: dict | None, cfg: TrainConfig) -> dict[str, str]:
    """Who provided the run's plugins when it trained (``recorded``: its
    ``versions``); for a run from before that was recorded, who provides them now."""
    recorded, now, out = recorded or {}, run_versions(cfg), {}
    for _, key, _ in PLUGINS:
        was = recorded.get(key)
        if isinstance(was, str):
            out[key] = was
        elif key in now:
            out[key] = now[key]
    return out


SOURCE_ENV = "WAE_BENCH_SOURCE_REV"
#: The paths of the checkout whose changes change what a run computes: an
#: uncommitted change there makes the revision ``-dirty``; one in docs/,
#: tests/ or benchmarks/ (a regenerated table, a run written into
#: benchmarks/results/) does not.  benchmarks/gpu_setup.sh checks the same paths.
CODE_PATHS = ("wae_bench", "regularizers", "pyproject.toml")
#: ``config.json``'s format (:mod:`wae_bench.formats`; a record without one is of format 1)
FORMAT = "wae-bench-run/1"


def source_revision() -> str | None:
    """The code a run was made with: ``$WAE_BENCH_SOURCE_REV`` (set where the
    package is a copy, e.g. the GPU scripts), else the short git commit of
    the checkout the package is imported from, ``-dirty`` when a tracked
    file under :data:`CODE_PATHS` has uncommitted changes; None outside a
    git checkout of wae-bench's own (:func:`is_own_checkout`).  Recorded
    in ``config.json`` (not in ``versions``: a resume across commits is normal)."""
    if os.environ.get(SOURCE_ENV):
        return os.environ[SOURCE_ENV]
    top = Path(__file__).resolve().parents[2]      # the folder holding the wae_bench package
    return git_revision(top) if is_own_checkout(top) else None


def is_own_checkout(top: Path) -> bool:
    """Whether ``top`` (the folder holding the package) is the top level of
    a git checkout of wae-bench itself: it is the checkout's top level and
    its pyproject.toml names the project ``wae-bench``.  A wheel installed
    inside another project's repository is not (that repository's commit
    is not wae-bench's code)."""
    import tomllib

    try:
        found = subprocess.run(["git", "-C", str(top), "rev-parse", "--show-toplevel"], capture_output=True,
                               text=True, timeout=10)
        if found.returncode != 0 or Path(found.stdout.strip()).resolve() != top.resolve():
            return False
        return tomllib.loads((top / "pyproject.toml").read_text()).get("project", {}).get("name") == "wae-bench"
    except (OSError, subprocess.TimeoutExpired, ValueError, AttributeError):
        return False


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


#: What ``config.json`` records of each start of a run (under ``starts``,
#: :func:`start_record`) and, at its top level, of the latest one: the
#: settings that are not the config but change the numbers a run computes
#: (the thread counts change the order of a reduction's sums) or say what
#: computed them.  A resume may change them (another machine, a newer
#: commit, an edited plugin: ``plugin_sha256``, :func:`run_sources`); a run
#: whose starts differ says so (:func:`mixed_settings`).
START_SETTINGS = ("threads", "source", "versions", "plugin_sha256", "world_size")


def start_record(cfg: TrainConfig, step: int, world_size: int = 1) -> dict:
    """What ``config.json`` records about a start of the run of ``cfg`` at
    ``step`` (0, or the step of the checkpoint a resume continues from) in
    ``world_size`` processes: the step, the time, and its :data:`START_SETTINGS`
    (a resume in another number of processes trains at another global batch)."""
    return {"step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "threads": cpu_threads(),
            "source": source_revision(), "versions": run_versions(cfg), "plugin_sha256": run_sources(cfg),
            "world_size": world_size}


def recorded_starts(info: dict) -> list[dict]:
    """The starts a run's record (``info``: ``config.json`` less its config)
    lists.  A record from before starts were listed gets one synthesised
    from its top-level :data:`START_SETTINGS` (those of its latest start),
    marked ``"synthesised": true``, with ``step`` and ``time`` null: they
    were not recorded; a record with none of them, none."""
    if isinstance(info.get("starts"), list):
        return [s for s in info["starts"] if isinstance(s, dict)]
    known = {k: info[k] for k in START_SETTINGS if k in info}
    return [{"step": None, "time": None, **known, "synthesised": True}] if known else []


def earlier_starts(info: dict, step: int) -> list[dict]:
    """The recorded starts (:func:`recorded_starts`) whose training the
    checkpoint of ``step`` holds: those that began before it (a start at or
    after it trained steps a resume from it trains again; a synthesised
    start, of an unknown step, is kept)."""
    return [s for s in recorded_starts(info) if not isinstance(s.get("step"), int) or s["step"] < step]


def mixed_settings(starts: list[dict]) -> str | None:
    """How the latest of a run's ``starts`` differs from its first in its
    :data:`START_SETTINGS`, in one line (``intra-op threads 2 -> 1, source
    abc1234 -> def5678``); None when they agree, or there is one start."""
    if len(starts) < 2:
        return None
    first, now, out = starts[0], starts[-1], []
    for key in START_SETTINGS:
        was, new = first.get(key), now.get(key)
        if key in first and was != new:
            out += _dict_changes(key, was, new)
    if not out:
        return None
    since = "its first recorded start" if first.get("step") is None else f"its first start (step {first['step']})"
    return (f"this run mixes settings that change its numbers: {', '.join(out)} since {since}; config.json lists "
            f"each start under \"starts\"")


#: How :func:`mixed_settings` names an entry of a dict setting, and how long
#: a value it shows may be (a sha256 as git shortens a commit; the full one is in config.json)
ENTRY_NAMES = {"threads": lambda k: f"{k.replace('_', '-')} threads", "plugin_sha256": lambda k: f"{k} source sha256"}
SHOWN_CHARS = {"plugin_sha256": 12}
#: How it names a setting that is one value
SETTING_NAMES = {"world_size": "processes"}


def _dict_changes(key: str, was, new) -> list[str]:
    """``KEY OLD -> NEW`` for a setting, for each entry of one that is a dict
    (``intra-op threads 2 -> 1``, ``torch 2.1 -> 2.2``, ``regularizer
    source sha256 3f2a9c1d0b4e -> 8e7d...``)."""
    cut = SHOWN_CHARS.get(key)
    if not (isinstance(was, dict) and isinstance(new, dict)):
        return [f"{SETTING_NAMES.get(key, key)} {_value_text(was, cut)} -> {_value_text(new, cut)}"]
    name = ENTRY_NAMES.get(key, lambda k: k)
    return [f"{name(k)} {_value_text(was.get(k), cut)} -> {_value_text(new.get(k), cut)}"
            for k in dict.fromkeys([*was, *new]) if was.get(k) != new.get(k)]


def _value_text(v, cut: int | None = None) -> str:
    return "unknown" if v is None else str(v)[:cut]


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
        except (ValueError, OSError) as e:
            raise WaeError(f"{str(self.config_path)!r} is unreadable ({e}); restore it from a copy of the run, "
                           f"or move the folder aside") from None
        formats.check(rec.get("format"), FORMAT, f"run record {str(self.config_path)!r}", formats.written_by(rec))
        return rec

    def saved_config(self) -> dict | None:
        rec = self.record()
        return None if rec is None else rec["config"]

    def holds_run(self) -> bool:
        """Whether ``config.json`` is a run's (never raises; a newer wae-bench's run is one)."""
        try:
            return self.record() is not None
        except formats.OtherVersion:
            return True
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

    def write_config(self, cfg: TrainConfig, extra: dict, resumed_at: int | None = None) -> dict:
        """Write ``config.json`` and return it: the resolved config, the
        versions, the source revision, the CPU thread counts
        (:func:`cpu_threads`) of this start, ``extra``, and ``starts``, the
        history of the run's starts (:func:`start_record`).  ``resumed_at``:
        the step of the checkpoint a resume continues from (None: a new run,
        or a resume with no checkpoint, which starts afresh); then the
        :data:`~wae_bench.run.fingerprint.RECORDED_AT_START` keys of the one
        there are kept as recorded (what the run recorded about its data when
        it started) and so are its starts before that step
        (:func:`earlier_starts`; an unreadable config.json keeps nothing)."""
        old = self.info() if resumed_at is not None else {}
        starts = [start_record(cfg, resumed_at or 0, int(extra.get("world_size", 1)))]
        if old:
            kept = RECORDED_AT_START
            extra = {**{k: v for k, v in extra.items() if k not in kept}, **{k: old[k] for k in kept if k in old}}
            starts = [*earlier_starts(old, resumed_at), *starts]
        rec = {"format": FORMAT, "config": to_dict(cfg), **{k: starts[-1][k] for k in START_SETTINGS}, **extra,
               "starts": starts}
        atomic.write_json(self.config_path, rec)
        return rec

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


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The training log of the run in ``run_dir``: one dict per line of its
    ``metrics.jsonl`` (:meth:`RunDir.append_metrics` writes one every
    ``log_every`` steps), in step order.  Each holds ``step``, ``epoch``,
    the learning rate ``lr``, the means over the steps since the line
    before of the step's terms (``loss``, ``rec``, ``reg``, the plugin's
    terms as ``NAME/term``, ``aux`` where it has an auxiliary step), the
    speed ``img_per_s`` and ``time`` (Unix seconds).  A last line torn by a crash mid-write is
    skipped; a missing file, or an unreadable line before the last, is a
    :class:`~wae_bench.errors.WaeError`."""
    p = Path(run_dir) / "metrics.jsonl"
    try:
        lines = p.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        raise WaeError(f"{str(p)!r} not found; pass the directory of a run that has logged (`wae-bench run --out "
                       f"DIR` writes one line every log_every steps)") from None
    except OSError as e:
        raise WaeError(f"{str(p)!r} cannot be read ({e.strerror or e}); check its permissions") from None
    lines = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip()]
    out = []
    for i, ln in lines:
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError:
            rec = None
        if isinstance(rec, dict):
            out.append(rec)
        elif i != lines[-1][0]:       # (the last one: torn by a kill mid-append)
            raise WaeError(f"line {i} of {str(p)!r} is not a JSON object of a log step ({ln[:40]!r}); the file is "
                           f"damaged: delete that line")
    return out


def _step_of(line: str) -> float:
    """The ``step`` of a metrics line; infinity for a torn or foreign line."""
    try:
        rec = json.loads(line)
        return float(rec["step"]) if isinstance(rec, dict) and isinstance(rec.get("step"), int) else float("inf")
    except (json.JSONDecodeError, KeyError):
        return float("inf")


def check_outside_runs(path: Path) -> None:
    """A new run's ``--out`` never lies inside a run folder (one of its
    parents holding a run's ``config.json``): the two would mix their files,
    and removing or copying the outer run would take the inner one along."""
    for parent in Path(os.path.abspath(path)).parents:
        if (parent / "config.json").is_file() and RunDir(parent).holds_run():
            beside = parent.parent / f"{parent.name}-{path.name}"
            if not path.is_absolute():
                parent, beside = Path(os.path.relpath(parent)), Path(os.path.relpath(beside))
            out = worded.flag("--out")
            raise WaeError(f"{out} {str(path)!r} lies inside the run folder {str(parent)!r}; choose an {out} "
                           f"outside it (e.g. beside it: {str(beside)!r})")


def check_writable(path: Path, resume: bool = False) -> None:
    """Make ``path`` and write a probe file into it; a failure is one line
    (a resume cannot choose another --out: it is told to copy the run)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        fix = (f"copy the run to a writable place and resume it there "
               f"({worded.flag_or_arg('wae-bench run --resume --out COPY', worded.resume_call('COPY'))})"
               if resume else f"choose another {worded.flag('--out')}")
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


def run_folder(out: str | Path | None, plan: Plan | None) -> Path:
    """Where the run of ``plan`` goes: ``out``, or without one :func:`default_out`
    of its config (a resume has ``out`` and no plan yet)."""
    return Path(out) if out is not None else default_out(plan.cfg)


def saved_plan(saved: dict, source: str | Path, version: str | None, world_size: int = 1,
               recorded: dict | None = None, commit: str | None = None) -> Plan:
    """The plan of a config a run saved (in ``source``, written by wae-bench
    ``version`` at ``commit``, with the ``versions`` it ``recorded``); a config that does
    not load is refused in one line with the fix (:func:`missing_plugin`,
    :func:`_load_fix`)."""
    recorded = recorded if isinstance(recorded, dict) else {}
    missing = missing_plugin(saved, recorded)
    if missing:
        raise WaeError(f"the run saved in {str(source)!r} cannot be rebuilt here: {missing}")
    try:
        return resolve(from_dict(TrainConfig, saved), world_size)
    except WaeError as e:
        by = f"written by version {version} of wae-bench" if version else "written by an unknown version"
        fix = _load_fix(saved, recorded, version, commit)
        raise WaeError(f"the config saved in {str(source)!r} ({by}, this is {__version__}) does not load: {e}"
                       + (f"; {fix}" if fix else "")) from None


def missing_plugin(saved: dict, recorded: dict) -> str | None:
    """``architecture 'dcg' came from mynets 0.1, which is not installed here;
    pip install mynets==0.1``: for the first plugin the saved config names
    that no registry here holds (nor lists as broken), where ``recorded``
    (the run's ``versions``) says who provided it; else None."""
    for cfg_key, key, registry in PLUGINS:
        name, was = saved.get(cfg_key), recorded.get(key)
        if not (isinstance(name, str) and isinstance(was, str) and was.startswith(f"{name}: ")):
            continue
        if name in registry or name in registry.broken:
            continue
        provider = was[len(name) + 2:]
        if provider.startswith("module "):
            module, _, path = provider.partition(" from ")
            fix = (f"give its file again: wae-bench --plugin {path} COMMAND ... (or WAE_BENCH_PLUGINS={path})"
                   if path else "import that module (or install its package) first")
            return f"{key} {name!r} was registered in-process by {module} when it trained, and nothing registers it here; {fix}"
        dist, _, dist_version = provider.partition(" ")
        if dist == "wae-bench":
            return (f"{key} {name!r} came with wae-bench {dist_version}, and this wae-bench {__version__} has no "
                    f"{key} of that name; use version {dist_version} for this run")
        return (f"{key} {name!r} came from {provider}, which is not installed here; "
                f"pip install {dist}{'==' + dist_version if dist_version else ''}")
    return None


def _load_fix(saved: dict, recorded: dict, version: str | None, commit: str | None = None) -> str | None:
    """The fix for a saved config that does not resolve here (None: the
    error's own, e.g. a plugin that fails to load): the plugin versions the
    run used, where another is installed now; the wae-bench version that
    wrote it; the plugin a name it did not record the provider of needs;
    the commit that wrote it, where this checkout is at another (a key of a
    newer commit, one version number apart from none); else the file was
    edited (an unreadable file is :meth:`RunDir.record`'s)."""
    moved = []
    for _, key, registry in PLUGINS:
        was = recorded.get(key)
        name = was.split(": ", 1)[0] if isinstance(was, str) else None
        if name is not None and name in registry and was != f"{name}: {registry.provider(name)}":
            moved.append(f"{key} {was}, here {registry.provider(name)}")
    if moved:
        return f"install what the run used ({'; '.join(moved)})"
    if version and version != __version__:
        return f"use version {version} for this run, or edit the file"
    for cfg_key, key, registry in PLUGINS:
        name = saved.get(cfg_key)
        if isinstance(name, str) and name in registry.broken:
            return None
        if isinstance(name, str) and name not in registry:
            return f"install the plugin that provides {key} {name!r} (the run did not record which)"
    here = source_revision()
    if commit and here and commit.removesuffix("-dirty") != here.removesuffix("-dirty"):
        return (f"the run was written at commit {commit} (config.json's source) and this wae-bench is at {here}: "
                f"use that commit's wae-bench for this run (git checkout {commit.removesuffix('-dirty')}), or edit "
                f"the file back to what the run wrote")
    return "edit the file back to what the run wrote"


def saved_resolved(run: RunDir, world_size: int = 1) -> dict:
    """The resolved config of the run in ``run`` (its ``config.json``): an
    option newer than the run reads as its default (the behaviour before it
    existed); with the :data:`BESIDE_CONFIG` settings it recorded, as
    :func:`resolved` gives them now."""
    info = run.info()
    cfg = to_dict(saved_plan(run.saved_config(), run.config_path, run.written_by(), world_size,
                             recorded=info.get("versions"), commit=info.get("source")).cfg)
    return {**cfg, **{k: info[k] for k in BESIDE_CONFIG if k in info}}


#: Settings of a run that are not config keys but the plugin's code (its
#: effective :attr:`~wae_bench.regularizer.Regularizer.aux_steps`,
#: :meth:`~wae_bench.run.build.Plan.aux_steps`): recorded at ``config.json``'s
#: top level and compared with the config by :func:`changes`.  A record
#: without one (a run from before it was recorded) did not record it: that
#: is not a change.
BESIDE_CONFIG = ("aux_steps",)


def resolved(plan: Plan) -> dict:
    """What a run of ``plan`` is compared by (:func:`changes`): its resolved
    config (:func:`~wae_bench.config.to_dict`) and :data:`BESIDE_CONFIG`."""
    return {**to_dict(plan.cfg), "aux_steps": plan.aux_steps()}


#: Settings whose default is chosen per device when a run builds (step_mode
#: "auto": a CUDA graph on one CUDA device, eager elsewhere; channels_last
#: unset: on with the graph).  Either choice is the same computation (other
#: kernels, within float tolerance), so a run that recorded one is not
#: changed by the default now, nor the default by a recorded choice.
PER_DEVICE_DEFAULTS = {"step_mode": "auto", "channels_last": None}


def changes(before: dict, after: dict) -> list[tuple[str, object, object]]:
    """``(key, before, after)`` for each setting that differs between two
    resolved configs (:func:`resolved`), location keys aside, a
    :data:`PER_DEVICE_DEFAULTS` default against either of its choices, and a
    :data:`BESIDE_CONFIG` setting one side did not record; the regularizer's
    own settings as ``reg.KEY``."""
    out = []
    for k in dict.fromkeys([*before, *after]):
        if k in LOCATION_KEYS or (k in BESIDE_CONFIG and not (k in before and k in after)):
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
    now = resolved(resolve(from_dict(TrainConfig, overrides)))
    return [f"{k} {json.dumps(b)} -> {json.dumps(a)}" for k, b, a in changes(before, now)]


def plan_for(overrides: dict, run: RunDir | None, resume: bool, force: bool, world_size: int = 1) -> Plan:
    """The resolved config of a new run (``overrides`` on the defaults), or of
    a resumed run (the saved config; overrides that change the result are
    refused unless ``force``; under torchrun, ``world_size`` > 1, the saved
    device is not inherited: each process trains on its own)."""
    if not resume:
        return resolve(from_dict(TrainConfig, overrides), world_size)
    saved = run.saved_config() if run else None
    if saved is None:
        raise WaeError(f"nothing to resume in {str(run.path) if run else '?'!r} (no config.json); drop "
                       f"{worded.flag('--resume')} to start a new run there")
    asked = overrides.get("regularizer")
    if asked is not None and asked != saved.get("regularizer"):   # (its reg.* keys would not even load)
        with_reg, drop = (worded.flag_or_arg(f"--reg {asked}", f'"regularizer": {asked!r}'),
                          worded.flag_or_arg("--reg", '"regularizer" from the overrides'))
        raise WaeError(f"{worded.flag('--resume')} of {str(run.path)!r}, a run of regularizer "
                       f"{saved.get('regularizer')!r}, with {with_reg}: a resume continues the run's own regularizer "
                       f"({worded.flag('--force')} cannot change it); drop {drop}, or start a "
                       f"new {worded.flag('--out')} for {asked}")
    if world_size > 1 and "device" not in overrides:   # (torchrun gives each process its device; a location key)
        saved = {**saved, "device": "auto"}
    before = saved_resolved(run, world_size)
    plan = resolve(from_dict(TrainConfig, merge(saved, overrides)), world_size)
    changed = [k for k, _, _ in changes(before, resolved(plan))]
    if changed and not force:
        raise WaeError(worded.flag_or_arg(
            f"--resume with a different config ({', '.join(changed)} changed) would not reproduce the run; drop "
            f"those options, or pass --force to resume anyway",
            f"resume=True with a different config ({', '.join(changed)} changed) would not reproduce the run; drop "
            f"those keys from the overrides (train_run({{}}, out, resume=True) continues with the run's own), or "
            f"pass force=True to resume anyway"))
    return plan
