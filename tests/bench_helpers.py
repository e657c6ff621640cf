"""Helpers shared by the benchmark-runner tests (tests/test_bench_*.py)."""
from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits

from wae_bench.cli import main


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``wae-bench ARGS`` in process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def one_thread():
    """Other test processes share the CI's 2 cores; oversubscribed OpenMP/BLAS
    threads make tiny ops 10-20x slower, so training tests compute on one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)
