"""Multi-process training through ``torchrun`` and DistributedDataParallel.

:meth:`Dist.from_env` reads torchrun's environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``) and joins the process group (NCCL on GPUs, gloo on CPU); in a
plain process it is a no-op single-process :class:`Dist`.  ``--batch-size``
is per process; the global batch is ``batch_size × world_size``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as td
from torch import Tensor, nn

from wae_bench.errors import WaeError
from wae_bench.regularizer import Context

# What torchrun sets for each process it starts (besides WORLD_SIZE): without them it is not a torchrun launch.
LAUNCH_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")
# How long another rank waits for rank 0 to say the same error (rank 0 reads the data first: it can be later).
SAME_ERROR_WAIT_S = 5.0
# How gloo's collectives fail when another process of the launch has ended (NCCL's raise a DistBackendError).
PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")


def gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every rank along dim 0, keeping the gradient
    path to this rank's slice (``torch.distributed.nn.all_gather``)."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(t), 0)


@torch.no_grad()
def gather_nograd(t: Tensor) -> Tensor:
    parts = [torch.empty_like(t) for _ in range(td.get_world_size())]
    td.all_gather(parts, t.contiguous())
    return torch.cat(parts, 0)


def leave_process_group() -> None:
    """Under torchrun, at the end: wait for every rank, then destroy the
    process group.  A rank that left without the barrier (rank 1 finishes an
    evaluation before rank 0) closes connections that another rank's gloo
    threads still use, and that process aborts ("terminate called without an
    active exception")."""
    if td.is_available() and td.is_initialized():
        td.barrier()
        td.destroy_process_group()


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        missing = [v for v in LAUNCH_VARS if not os.environ.get(v)]
        if missing:   # (a WORLD_SIZE left in the environment, not torchrun: env:// would fail or wait for peers)
            raise WaeError(f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                           f"not, so this is no torchrun launch; start it with `torchrun --nproc_per_node {world} -m "
                           f"wae_bench ...`, or unset WORLD_SIZE to train in one process")
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            device, backend = torch.device("cpu"), "gloo"
        if not td.is_initialized():
            td.init_process_group(backend)
        return cls(rank=rank, world_size=world, device=device)

    def wrap(self, ae: nn.Module) -> nn.Module:
        if not self.enabled:
            return ae
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        # broadcast_buffers: rank 0's batch-norm running statistics are copied
        # to every rank at each forward, so the model is identical everywhere.
        return DDP(ae, device_ids=ids)

    def gather_objects(self, obj):
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        td.all_gather_object(out, obj)
        return out

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous share ``[start, stop)`` of ``n`` items."""
        return n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size

    def gather_rows(self, t: Tensor) -> Tensor:
        """Concatenate every rank's ``t`` (row counts may differ) in rank order,
        on every rank; returned on the CPU."""
        if not self.enabled:
            return t
        comm = self.device if td.get_backend() == "nccl" else torch.device("cpu")
        sizes = [int(s) for s in self.gather_objects(len(t))]
        pad = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=comm)
        pad[:len(t)] = t.to(comm)
        parts = [torch.empty_like(pad) for _ in range(self.world_size)]
        td.all_gather(parts, pad)
        return torch.cat([p[:n].cpu() for p, n in zip(parts, sizes)])

    def barrier(self) -> None:
        if self.enabled:
            td.barrier()

    def context(self, T: int, generator: torch.Generator | None = None) -> Context:
        """The step context of this process: its rank, the gathers under DDP,
        and ``generator``, this rank's own random stream (after identical
        initial weights, every rank draws its own prior samples and
        projections; rank 0 draws the single-process stream)."""
        ctx = Context(t=torch.zeros((), dtype=torch.long), T=T, rank=self.rank, world_size=self.world_size,
                      generator=generator)
        if self.enabled:
            ctx.gather, ctx.gather_nograd = gather_with_grad, gather_nograd
        return ctx


def peer_failed(e: BaseException) -> bool:
    """Whether ``e`` is a collective of this launch that failed because
    another of its processes ended (it raised, or was stopped): gloo's
    "Connection closed by peer", NCCL's ``DistBackendError``."""
    if not (td.is_available() and td.is_initialized()) or not isinstance(e, RuntimeError):
        return False
    return isinstance(e, getattr(td, "DistBackendError", ())) or any(w in str(e) for w in PEER_GONE)


def _launch_store(timeout_s: float):
    """torchrun's key-value store (``MASTER_ADDR:MASTER_PORT``), as a client; None where there is none to reach."""
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not host or not port:
        return None
    try:
        return td.TCPStore(host, int(port), is_master=False, timeout=timedelta(seconds=timeout_s),
                           wait_for_workers=False)
    except (RuntimeError, ValueError):
        return None


def says_error(message: str, wait_s: float = SAME_ERROR_WAIT_S) -> bool:
    """Under torchrun, whether this process prints its error ``message``.
    Rank 0 always, and it tells the others through torchrun's store; another
    rank unless rank 0 says the same within ``wait_s`` seconds: a bad setting
    that every rank refuses alike is one line, not one a process, while an
    error of one rank alone (its data, a plugin failing there) is still said."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0") or 0)
    store = _launch_store(wait_s) if world > 1 else None
    if store is None:
        return True
    key = f"wae_bench/error/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"   # (a restart is a new launch)
    try:
        if rank == 0:
            store.set(key, message)
            return True
        store.wait([key], timedelta(seconds=wait_s))
        return store.get(key).decode() != message
    except (RuntimeError, ValueError):   # (rank 0 said nothing in time, or the store is gone)
        return True
