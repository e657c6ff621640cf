"""Test helpers: tiny autoencoders and trainers (CPU, seconds)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch

from wae_bench.config import from_dict
from wae_bench.nets.tiny import build_tiny
from wae_bench.registry import REGULARIZERS
from wae_bench.regularizer import Setup
from wae_bench.trainer import Trainer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_trainer(name: str, reg_cfg: dict | None = None, *, B: int = 8, size: int = 8, d: int = 6,
                 T: int = 20, seed: int = 0, lr: float = 1e-3, channels: int = 3):
    """A tiny autoencoder + regularizer ``name`` + trainer, built as train.py does."""
    torch.manual_seed(seed)
    ae = build_tiny(size, channels, d)
    cls = REGULARIZERS.get(name)
    setup = Setup(total_steps=T, batch_size=B, latent_dim=d, arch="tiny", dataset="test")
    base = {"K": 4 * B} if "K" in {f for f in cls.Config.__dataclass_fields__} else {}
    cfg = from_dict(cls.Config, {**base, **(reg_cfg or {})})
    reg = cls(cfg, setup)
    reg.attach(ae)
    return Trainer(ae, reg, lr=lr, total_steps=T)


def batch(B: int = 8, size: int = 8, seed: int = 1, channels: int = 3) -> torch.Tensor:
    return torch.rand(B, channels, size, size, generator=torch.Generator().manual_seed(seed))


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
