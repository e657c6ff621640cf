"""Helpers of the reliability tests (resume, crash safety, bad inputs, security):
run the CLI in-process or as a subprocess, compare checkpoints bit for bit,
install a throw-away plugin through a real entry point."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from wae_bench.atomic import write_json
from wae_bench.run import checkpoint
from wae_bench.cli import main
from tests.helpers import one_thread  # noqa: F401 (re-exported)

# Every subprocess runs one intra-op thread, as in-process runs do under
# :func:`one_thread`: bit-identity is asserted at a fixed thread count.
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WAE_BENCH_DEBUG": "0"}
# The embedded digits at their native 8×8, a 16-d latent: ~100 steps/s a core.
TINY = ["--dataset", "digits", "--arch", "tiny", "--set", "image_size=8", "--set", "latent_dim=16", "--quiet",
        "--no-eval"]


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``wae-bench ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def env(pythonpath: list[Path] | None = None) -> dict[str, str]:
    e = {**os.environ, **ENV}
    if pythonpath:
        e["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return e


def start(args: list[str], pythonpath: list[Path] | None = None, code: str | None = None) -> subprocess.Popen:
    """``python -m wae_bench ARGS`` (or ``python -c CODE ARGS``) as a child process."""
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "wae_bench"]
    return subprocess.Popen([*head, *map(str, args)], env=env(pythonpath), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_sub(args: list[str], pythonpath: list[Path] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wae_bench", *map(str, args)], env=env(pythonpath),
                          capture_output=True, text=True, timeout=timeout)


def logged_step(run_dir: Path) -> int:
    """The highest step in ``metrics.jsonl`` (torn lines ignored)."""
    best = 0
    p = Path(run_dir) / "metrics.jsonl"
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError, TypeError, KeyError):
                best = max(best, int(json.loads(line)["step"]))
    return best


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], sig: int, timeout: float = 600) -> threading.Thread:
    """A thread that sends ``sig`` to ``proc`` as soon as ``ready()`` holds.

    ``timeout`` only bounds a watcher whose child never gets ready; it is
    generous because a loaded machine (CI beside other jobs) can take a
    minute just to import torch in the child.  The thread's ``fired`` says
    whether the signal was sent, for the caller's failure message."""
    def watch():
        end = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < end:
            if ready():
                proc.send_signal(sig)
                t.fired = True
                return
            time.sleep(0.003)
    t = threading.Thread(target=watch, daemon=True)
    t.fired = False
    t.start()
    return t


def diff_states(a, b, path: str = "") -> list[str]:
    """Paths where two checkpoint dicts differ: tensors by dtype, shape and
    ``torch.equal`` (bit for bit; NaN never equal), everything else by ``==``."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
        return [] if same else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k} (missing on one side)" for k in set(a) ^ set(b)]
        for k in a.keys() & b.keys():
            out += diff_states(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} (length)"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff_states(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def final_state(run_dir: Path) -> dict:
    found = checkpoint.latest(run_dir)
    assert found is not None, f"no checkpoint in {run_dir}"
    path, state = found
    assert state.get("finished"), f"{path} is not a finished run's checkpoint"
    return state


def fake_evaluate_run(score: Callable[[dict], float], fails: Callable[[str], bool] = lambda name: False,
                      seen: list[str] | None = None) -> Callable:
    """A stand-in for ``wae_bench.evaluate.evaluate_run`` in bench tests: it
    writes a results.json whose prior-sample FID is ``score(config)`` (the
    run's saved config), raises for a run folder named so that ``fails(name)``,
    and appends each run folder's name to ``seen``."""
    def evaluate_run(run_dir, **kw):
        run_dir = Path(run_dir)
        if seen is not None:
            seen.append(run_dir.name)
        if fails(run_dir.name):
            raise RuntimeError("fake evaluation exploded")
        cfg = json.loads((run_dir / "config.json").read_text())["config"]
        res = {"scores": {"samples": {"fid": score(cfg)}},
               "protocol": {"features": kw["features"], "fid_samples": kw["fid_samples"]}, "run": {}}
        write_json(run_dir / "results.json", res)
        return res

    return evaluate_run


def assert_one_line_error(code: int, err: str, *needles: str, prefix: str = "error:") -> str:
    """Exit status non-zero, stderr exactly one line starting ``error:`` (a
    deliberate stop: ``prefix="stopped by"``) with no traceback, naming every
    needle (case-insensitive)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, f"exit status 0; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert lines[0].startswith(prefix), lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), f"{n!r} not in {lines[0]!r}"
    return lines[0]


def install_plugin(root: Path, module: str, source: str, entry_points: dict[str, str],
                   group: str = "wae_bench.regularizers") -> Path:
    """Write ``module.py`` and a ``.dist-info`` whose entry points name it into
    ``root``; put ``root`` on PYTHONPATH to install it (a real entry point)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-0.0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    return root


# A test plugin that touches every kind of state a resume must restore: a
# discriminator with its own Adam, stepped 3 times an iteration (aux_steps,
# WGAN's n_critic) on a loss that logs its parts, prior samples and a
# jitter from the run's generator (ctx.generator), projections from a private
# torch.Generator (SWAE's shape), and a step-counting buffer.
PROBE = '''
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    from wae_bench.regularizer import RegOut, Regularizer, RegularizerConfig


    @dataclass
    class ProbeConfig(RegularizerConfig):
        lambda_: float = 1.0
        L: int = 8


    class Probe(Regularizer):
        """Test plugin: discriminator + own optimiser, the run's and a private generator."""

        name = "probe"
        paper = "test only"
        Config = ProbeConfig
        aux_steps = 3

        def __init__(self, cfg, setup):
            super().__init__(cfg, setup)
            self.disc = nn.Sequential(nn.Linear(setup.latent_dim, 16), nn.ReLU(), nn.Linear(16, 1))
            self.gen = torch.Generator().manual_seed(1234)
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))

        def make_aux_optimizer(self):
            return torch.optim.Adam(self.disc.parameters(), lr=1e-3)

        def aux_loss(self, z, ctx):
            p = self.sample_prior(len(z), z.device, generator=ctx.generator)
            d_p, d_q = F.softplus(-self.disc(p)).mean(), F.softplus(self.disc(z)).mean()
            return RegOut(d_p + d_q, {"d_p": d_p, "d_q": d_q})

        def penalty(self, x, z, ae, ctx):
            theta = F.normalize(torch.randn(z.shape[1], self.cfg.L, generator=self.gen), dim=0).to(z)
            p = self.sample_prior(len(z), z.device, generator=ctx.generator)
            sw = (torch.sort(z @ theta, 0).values - torch.sort(p @ theta, 0).values).pow(2).mean()
            jitter = 1.0 + 0.01 * torch.rand((), generator=ctx.generator, device=z.device)
            gan = F.softplus(-self.disc(z)).mean()
            self.calls += 1
            return RegOut(self.cfg.lambda_ * jitter * (sw + gan), {"sw": sw, "gan": gan})
'''


@pytest.fixture
def probe_plugin(tmp_path, monkeypatch):
    """The PROBE plugin, importable here and installed (entry point) for
    subprocesses given the returned PYTHONPATH entry; registered in-process
    for this test only."""
    import importlib

    from wae_bench.registry import REGULARIZERS

    REGULARIZERS.load_entry_points()  # before the plugin is on sys.path: it must not stay registered
    root = install_plugin(tmp_path / "plugins", "wae_probe_plugin", PROBE, {"probe": "wae_probe_plugin:Probe"})
    monkeypatch.syspath_prepend(str(root))
    mod = importlib.import_module("wae_probe_plugin")
    monkeypatch.setitem(REGULARIZERS._items, "probe", mod.Probe)
    yield root
    sys.modules.pop("wae_probe_plugin", None)
