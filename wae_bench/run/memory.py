"""The memory a run's model needs, estimated before anything is allocated,
so that a setting that cannot fit -- MoCA's queue of ``reg.K`` ×
``latent_dim`` floats larger than the machine, a huge ``latent_dim`` or
``image_size`` -- is refused in one line that names it, instead of an
allocator's out-of-memory error (or the kernel's OOM killer) after the data
has loaded.

Cheap: the autoencoder is built on PyTorch's ``meta`` device, which allocates
nothing, and the regularizer declares its own large state
(:meth:`~wae_bench.regularizer.Regularizer.memory`).  The estimate is a lower
bound -- the parameters with their gradients and Adam's two moments (4
floats each), the buffers, the plugin's state, and the training images when
they are held on a GPU; activations are not counted -- so it refuses only
what cannot fit.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from wae_bench import worded
from wae_bench.errors import WaeError
from wae_bench.nets import build_arch

ADAM_COPIES = 4          # weight, gradient, Adam's first and second moments
GB = 1e9


def estimate(plan, channels: int, total_steps: int, data_bytes: int = 0) -> dict[str, tuple[int, str]]:
    """``{what: (bytes, the fix)}`` of the model of ``plan`` and its data."""
    c = plan.cfg
    with torch.device("meta"):
        ae = build_arch(plan.arch, c.image_size, channels, c.latent_dim)
    params = sum(p.numel() * p.element_size() for p in ae.parameters())
    buffers = sum(b.numel() * b.element_size() for b in ae.buffers())
    n = sum(p.numel() for p in ae.parameters())
    out = {f"the {c.arch} nets' {n / 1e6:,.1f}M parameters with their gradients and Adam state":
           (ADAM_COPIES * params + buffers,
            worded.flag_or_arg("choose a smaller --arch, latent_dim or image_size",
                               "choose a smaller arch, latent_dim or image_size (the overrides' keys)"))}
    for what, size in plan.reg_cls.memory(c.reg, plan.setup(total_steps)).items():
        out[what] = (int(size), "lower the setting it names")
    if data_bytes:
        out["the training images held on the device"] = (
            data_bytes, worded.flag_or_arg("pass --set data_on_device=false",
                                           f"pass {worded.overrides('data_on_device', 'False')}"))
    return out


def available(device: torch.device) -> int | None:
    """Bytes free on ``device`` now (None if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = _meminfo_available()
    limit = _cgroup_free()
    known = [v for v in (free, limit) if v is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_free() -> int | None:
    """A cgroup v2 memory limit less what the cgroup uses (containers)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def check(plan, channels: int, total_steps: int, device: torch.device, data_bytes: int = 0) -> None:
    """Refuse (one line naming the largest part and its fix) a run whose
    model cannot fit in the memory free on ``device``."""
    parts = estimate(plan, channels, total_steps, data_bytes if device.type == "cuda" else 0)
    need = sum(b for b, _ in parts.values())
    free = available(device)
    if free is None or need <= free:
        return
    what, (size, fix) = max(parts.items(), key=lambda kv: kv[1][0])
    raise WaeError(f"the run needs at least {_gb(need)} on {device} ({what}: {_gb(size)}), more than the "
                   f"{_gb(free)} free; {fix}")


def _gb(n: int) -> str:
    return f"{n / GB:.2g} GB" if n < 10 * GB else f"{n / GB:,.0f} GB"
