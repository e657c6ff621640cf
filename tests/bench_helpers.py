"""Helpers shared by the benchmark-runner tests (tests/test_bench_*.py)."""
from tests.helpers import run_cli  # noqa: F401 (re-exported)
