"""Test helpers: tiny autoencoders and trainers (CPU, seconds)."""
from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import Iterator

import torch

from wae_bench.run.build import stand_in_batch, stand_in_trainer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


make_trainer = stand_in_trainer   # a tiny run's trainer, built the one way runs are built
batch = stand_in_batch            # tiny random images


class LinearCritic:
    """A test plugin's mixin (before its Regularizer base): a Linear(d, 1)
    latent critic ``self.f`` trained by an Adam of its own (the auxiliary step)."""

    def __init__(self, cfg, setup):
        super().__init__(cfg, setup)
        self.f = torch.nn.Linear(setup.latent_dim, 1)

    def make_aux_optimizer(self):
        return torch.optim.Adam(self.f.parameters())


def builtin_names(group: str = "wae_bench.regularizers") -> list[str]:
    """This distribution's own plugins in entry-point ``group``: what
    wae-bench's installed metadata declares, not every installed package's
    (a third-party plugin in the same environment is not a built-in).
    tests/test_registry.py checks that it equals pyproject.toml's table, so a
    new built-in is never left out because ``pip install -e .`` was not rerun."""
    from importlib.metadata import distribution

    return sorted(ep.name for ep in distribution("wae-bench").entry_points if ep.group == group)


def cuda_pair(name: str, precision: str, monkeypatch):
    """Two identical tiny trainers of plugin ``name`` on the GPU (bf16 runs
    channels_last, as the GPU check's training does) and a batch maker
    ``x(seed)``.  cuDNN is made deterministic: Adam turns the run-to-run
    noise of a near-zero gradient into a full lr-sized update."""
    fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
    a, b = (make_trainer(name, seed=0, device="cuda", precision=precision, channels_last=precision == "bf16")
            for _ in range(2))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    return a, b, (lambda s: batch(seed=s).to("cuda", memory_format=fmt))


def assert_trained_alike(a, b, steps: int, tol: float) -> None:
    """Trainers ``a`` and ``b`` hold the same parameters and buffers and
    logged the same mean losses after ``steps`` steps, within ``tol``."""
    import pytest

    for (k, v), w in zip([*a.ae.state_dict().items(), *a.reg.state_dict().items()],
                         [*b.ae.state_dict().values(), *b.reg.state_dict().values()]):
        err = (v.float() - w.float()).abs().max().item() if v.numel() else 0.0
        assert torch.allclose(v.float(), w.float(), atol=tol, rtol=10 * tol), f"{k}: max |diff| {err:.2e}"
    assert int(a.t) == int(b.t) == steps
    (ma, _), (mb, _) = a.meter.read(), b.meter.read()
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == pytest.approx(mb[k], rel=10 * tol, abs=tol), k


def assert_same_steps(a, b, x, steps: int = 3, tol: float = 1e-3, step_a=None) -> None:
    """Trainers ``a`` and ``b`` that run *different kernels* of the same maths
    (memory layout, compile, capture) agree within float tolerance: the first
    step's gradients (relative error per parameter < ``tol``) and the mean
    losses of ``steps`` steps.  Not the weights: Adam's first steps move every
    weight by about lr whatever its gradient's size, so rounding in a
    near-zero gradient becomes an lr-sized weight difference.  ``x(s)`` makes
    batch ``s``; ``step_a`` replaces ``a.step`` (e.g. a captured graph); both
    draw their prior samples from their own run generators, seeded alike."""
    import pytest

    step_a = step_a or a.step
    for s in range(steps):
        step_a(x(s))
        b.step(x(s))
        if s == 0:
            for (k, p), q in zip([*a.ae.named_parameters(), *a.reg.named_parameters()],
                                 [*b.ae.parameters(), *b.reg.parameters()]):
                if q.grad is not None:
                    err = ((p.grad.float() - q.grad.float()).norm() / q.grad.float().norm().clamp_min(1e-12)).item()
                    assert err < tol, f"{k}: relative gradient error {err:.2e}"
    (ma, _), (mb, _) = a.meter.read(), b.meter.read()
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == pytest.approx(mb[k], rel=tol, abs=tol / 10), k


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread for torch and BLAS/OpenMP: tiny nets run faster on
    a shared 2-core machine, and bit-identity is asserted at a fixed count."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(n)


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``wae-bench ARGS`` in this process: (exit status, stdout, stderr)."""
    from wae_bench.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# A third-party plugin's whole module: installed by tests/test_registry.py,
# the good plugin of tests/test_check_plugin.py (:func:`pull_plugin`).
PULL_PLUGIN = textwrap.dedent('''
    """A third-party plugin: an L2 pull of z towards 0 (test only)."""
    from dataclasses import dataclass
    from wae_bench.regularizer import RegOut, Regularizer, RegularizerConfig

    @dataclass
    class PullConfig(RegularizerConfig):
        """lambda_: weight of |z|^2."""
        lambda_: float = 0.5

    class Pull(Regularizer):
        """Pull latents to the origin."""
        name = "pull"
        paper = "third-party test plugin"
        Config = PullConfig

        def penalty(self, x, z, ae, ctx):
            p = z.pow(2).sum(1).mean()
            return RegOut(self.cfg.lambda_ * p, {"l2": p})
''')


def pull_plugin():
    """:data:`PULL_PLUGIN` as a module (``tests.pull_plugin``), to subclass."""
    import sys
    import types

    mod = sys.modules.get("tests.pull_plugin")
    if mod is None:
        mod = types.ModuleType("tests.pull_plugin")
        sys.modules[mod.__name__] = mod
        exec(compile(PULL_PLUGIN, "tests.pull_plugin", "exec"), mod.__dict__)
    return mod
