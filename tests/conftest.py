"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA, one_thread


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
