"""``bench --concurrent N``: N cells train at the same time in this process,
on one device.  On a GPU each cell runs on its own CUDA stream with its own
step (captured as its own CUDA graph: ``step_mode`` "graph", or the default
"auto" on a GPU), so the
kernels of several small steps overlap on the chip; on the CPU their steps
interleave.

Each cell is the :class:`~wae_bench.run.train.Training` a cell run alone is,
advanced one step at a time in a round robin; its randomness is its own
(``ctx.generator``, :mod:`wae_bench.step.rng`) and its data order a function
of its seed, so **each cell's result is exactly what it would be alone**
(tested on the CPU: bit-identical checkpoints).  A cell whose training ends
is finished and scored in between two rounds (on the GPU the other cells'
queued steps keep the chip busy meanwhile), and the next pending cell takes
its slot.

- Memory: the first cell's device memory is measured (on a GPU what its
  build, capture and first step took from the device; on the CPU the bytes
  of its tensors: weights, optimiser state, plugin state, data) and printed;
  when N such cells will not fit in what is free, the grid is refused in one
  line naming the number that fits.  A later cell starts only while the
  largest footprint seen still fits; otherwise it waits for a slot.
- A failing cell (NaN, an error) is recorded in ``failed.json`` and the
  others go on.
- SIGINT/SIGTERM: every running cell takes one more step and writes a
  checkpoint, then the grid stops; rerunning the same command skips the done
  cells and resumes the others from their checkpoints.
"""
from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from wae_bench.bench import grid, tune
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell
from wae_bench.bench.output import CellOutput, Output
from wae_bench.bench.runner import (BenchInterrupted, Outcome, attempt, cell_overrides, grid_stopped, held, score_cell,
                                    split_todo)
from wae_bench.bench.spec import Spec
from wae_bench.errors import WaeError
from wae_bench.run.train import Training
from wae_bench.step.loop import StopFlag
from wae_bench.step.rng import global_generators_kept
from wae_bench.step.trainer import cudnn_benchmark_kept

GiB = 1 << 30
HEADROOM = 0.9   # of the free memory: the caching allocator's slack, cuDNN workspaces, the evaluation


@dataclass
class Slot:
    """One running cell: its training, its stream (None on the CPU), its
    output (:class:`~wae_bench.bench.output.CellOutput`: each of its calls runs
    inside it), when it started, and its folder held (made and locked:
    :func:`~wae_bench.bench.runner.held`)."""

    cell: Cell
    index: int                                   # the slot (and stream) it holds
    stream: object | None
    output: CellOutput
    t0: float = field(default_factory=time.perf_counter)
    training: Training | None = None
    folder: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @contextlib.contextmanager
    def on_stream(self) -> Iterator[None]:
        """The cell's steps and its evaluation are issued on its own stream, what they print goes to its output."""
        with self.output:
            if self.stream is None:
                yield
            else:
                with torch.cuda.stream(self.stream):
                    yield


def tensor_bytes(t: Training) -> int:
    """The bytes of a run's tensors: weights, buffers, optimiser states, the data on its device."""
    tr = t.trainer
    seen, total = set(), 0
    tensors = [*tr.ae.state_dict().values(), *tr.reg.state_dict().values()]
    for opt in filter(None, (tr.opt, tr.aux_opt)):
        tensors += [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    tensors += [p.grad for p in (*tr.ae.parameters(), *tr.reg.parameters()) if p.grad is not None]
    tensors.append(t.batcher.images)
    for v in tensors:
        key = (v.untyped_storage().data_ptr(), v.device)
        if key not in seen:
            seen.add(key)
            total += v.untyped_storage().nbytes()
    return total


class Memory:
    """Each cell's footprint on the device and what is free there."""

    def __init__(self, device: torch.device):
        self.device, self.cuda = device, device.type == "cuda"
        self.largest = 0

    def mark(self) -> int:
        """Before a cell starts: the device's reserved bytes now."""
        if not self.cuda:
            return 0
        torch.cuda.synchronize(self.device)
        return torch.cuda.memory_reserved(self.device)

    @staticmethod
    def mark_any() -> int:
        """:meth:`mark` before the first cell, whose device is not known yet (the current CUDA device, if any)."""
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return 0
        torch.cuda.synchronize()
        return torch.cuda.memory_reserved()

    def measure(self, t: Training, mark: int) -> int:
        """A started cell's footprint: on a GPU the memory its build, capture and
        first step reserved (what the graph's pool and the caching allocator
        took), else its tensors' bytes."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
            used = max(torch.cuda.memory_reserved(self.device) - mark, 0)
        else:
            used = tensor_bytes(t)
        self.largest = max(self.largest, used)
        return used

    def free(self) -> int:
        """Bytes a new cell may take: on a GPU the device's free memory plus the
        allocator's unused cache; on the CPU the available RAM."""
        if self.cuda:
            free, _ = torch.cuda.mem_get_info(self.device)
            return free + torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        try:
            with open("/proc/meminfo") as f:
                kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
            return kib << 10
        except (OSError, StopIteration, ValueError):
            return 1 << 62   # (no figure: no limit)

    def where(self) -> str:
        return str(self.device) + ("" if self.cuda else " (RAM; its tensors: activations not counted)")


def fits(n: int, per_cell: int, free: int) -> int:
    """How many of the ``n`` cells fit: the one running plus those the free memory holds."""
    return min(n, 1 + int(free * HEADROOM // max(per_cell, 1)))


def run_concurrent(folder: ResultsDir, spec: Spec, cells: list[Cell], n: int, *, device: str | None = None,
                   retry_failed: bool = True, exclude_failed: bool = False, quiet: bool = False,
                   output: Output | None = None) -> list[Outcome]:
    """Every cell not yet done, ``n`` at a time (see the module docstring);
    each cell's output goes to its log (:mod:`wae_bench.bench.output`;
    ``exclude_failed``: :func:`~wae_bench.bench.runner.split_todo`)."""
    if n < 1:
        raise WaeError(f"--concurrent {n}: give a number of cells >= 1")
    output = output or Output(folder, spec, quiet=quiet)
    tuning = tune.Tuning(folder, spec, grid.expand(spec))
    todo, skipped = split_todo(tuning, cells, retry_failed, exclude_failed)
    queue, active, out = list(todo), [], []
    memory: Memory | None = None
    streams: dict[int, object] = {}

    def done(o: Outcome, slot: Slot | None = None) -> None:
        if slot is not None:
            slot.output.close()
        out.append(o)
        output.finished(len(out), len(todo), o)

    def runnable() -> int | None:
        tuning.forget()   # (the choices read afresh: a cell may have ended since, here or in another process)
        busy = {c.id for c in queue} | {s.cell.id for s in active}
        return next((i for i, c in enumerate(queue) if tuning.ready(c, busy)), None)

    def start(cell: Cell) -> Slot | None:
        """Open and begin ``cell`` in a free slot; None if it ended (failed, waiting, or scored at once)."""
        nonlocal memory
        index = min(set(range(n)) - {s.index for s in active})
        slot = Slot(cell, index, None, output.cell(cell, len(out) + len(active) + 1, len(todo)))
        run_dir = folder.cell_dir(cell.id)

        def open_() -> Outcome | None:
            overrides = cell_overrides(tuning, cell, device)
            other = slot.folder.enter_context(held(tuning, cell))
            if other is None:
                slot.training = Training(overrides, run_dir, resume=(run_dir / "config.json").is_file(), quiet=quiet)
            return other

        mark = memory.mark() if memory is not None else Memory.mark_any()
        with slot.output:     # (built on the default stream; the cell's steps wait for it)
            o = attempt(folder, cell, slot.t0, open_)
        if o is not None:
            slot.folder.close()
            done(o, slot)
            return None
        t = slot.training
        first = memory is None
        memory = memory or Memory(t.device)
        if t.device.type == "cuda":
            slot.stream = streams.setdefault(index, torch.cuda.Stream(t.device))
            slot.stream.wait_stream(torch.cuda.current_stream(t.device))
        with slot.on_stream():
            o = attempt(folder, cell, slot.t0, lambda: (t.begin(stop), t.over or t.advance()))
        if o is not None:
            slot.folder.close()
            done(o, slot)
            return None
        used = memory.measure(t, mark)
        if first:
            want, free = min(n, len(todo)), memory.free()
            k = fits(want, used, free)
            if k < want:
                t.release()
                slot.folder.close()
                slot.output.close()
                raise WaeError(f"--concurrent {n} will not fit: each cell takes ~{used / GiB:.2f} GiB of "
                               f"{memory.where()} (measured on {cell.id}) and {free / GiB:.2f} GiB are free beside "
                               f"it; use --concurrent {k} or fewer (the started cell resumes on the rerun)")
            output.say(f"concurrent: each cell takes ~{used / GiB:.2f} GiB of {memory.where()} (measured on "
                       f"{cell.id}); {want} at once need ~{want * used / GiB:.2f} GiB, "
                       f"{(free + used) / GiB:.1f} GiB are free", markup=False)
        output.started(len(out) + len(active) + 1, len(todo), cell, f"started (slot {index})", start=t.start)
        return slot

    def end(slot: Slot) -> None:
        """Finish and score ``slot``'s cell (its training is over), free its memory."""
        t = slot.training
        with slot.on_stream():
            o = attempt(folder, slot.cell, slot.t0,
                        lambda: (t.finish(), score_cell(folder, spec, slot.cell, device, quiet)))
        release(slot)
        done(o or Outcome(slot.cell, "done", time.perf_counter() - slot.t0), slot)

    def release(slot: Slot) -> None:
        """Drop a cell that ended (its training released the run folder itself) and its folder's lock.
        Its stream is synchronised before the cell's tensors are let go: memory freed while its kernels
        were pending could be handed to another cell's stream (not relying on a reference cycle to delay it)."""
        active.remove(slot)
        if slot.stream is not None:
            slot.stream.synchronize()
        slot.training = None
        slot.folder.close()
        if slot.stream is not None:
            gc.collect()

    blocked = -1   # len(out) when no queued cell could start: none can until another cell ends
    # (the caller's global generators and cuDNN flag as train_run leaves them: a Python caller's state is its own)
    with global_generators_kept(), cudnn_benchmark_kept(), StopFlag() as stop:
        try:
            while queue or active:
                while queue and len(active) < n and blocked != len(out) and not stop.is_set() and _room(memory,
                                                                                                        active):
                    i = runnable()
                    if i is None:
                        blocked = len(out)
                        break
                    slot = start(queue.pop(i))
                    if slot is not None:
                        active.append(slot)
                        if slot.training.over and not stop.is_set():   # (a finished training resumed)
                            end(slot)
                if not active:
                    for c in queue:   # the rest wait for tuning cells that other shards run
                        done(Outcome(c, "waiting", error=tune.TUNING_NOT_RUN, ran=False))
                    break
                stopping = stop.is_set()   # set before this round: every cell's step below checkpoints
                for slot in list(active):
                    if slot.training.over:
                        continue
                    with slot.on_stream():
                        o = attempt(folder, slot.cell, slot.t0, slot.training.advance)
                    if o is not None:
                        release(slot)
                        done(o, slot)
                    elif slot.training.over and not slot.training.stepper.stopped:
                        end(slot)
                if stopping:
                    raise grid_stopped(stop.raised, [s.cell.id for s in active], ", each checkpointed",
                                       "done cells are skipped")
        except BenchInterrupted:    # (the grid's stop, or a cell's, said: a KeyboardInterrupt too)
            raise
        except KeyboardInterrupt:   # a second signal (StopFlag): stop now; the status is the last signal's
            raise grid_stopped(stop.raised or "SIGINT", [s.cell.id for s in active], "",
                               "they resume from their last checkpoints") from None
        finally:   # (a stopped grid: each running cell's checkpoint is written; let go of its folder)
            for slot in active:
                if slot.training is not None:
                    with slot.output:
                        slot.training.release()
                slot.folder.close()
                slot.output.close()
    return skipped + out


def _room(memory: Memory | None, active: list[Slot]) -> bool:
    """Whether another cell fits beside the running ones (the largest footprint seen)."""
    if memory is None or not active:
        return True
    return memory.largest <= memory.free() * HEADROOM
