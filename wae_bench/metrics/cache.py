"""Where evaluation keeps files between runs: ``$WAE_BENCH_CACHE`` (default
``~/.cache/wae-bench``), with ``weights/`` (FID Inception weights) and
``fid/`` (reference statistics)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_CACHE = "WAE_BENCH_CACHE"


def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wae-bench"


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
