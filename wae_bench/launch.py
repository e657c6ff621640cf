"""How this process was launched, as torchrun's environment says: one
process of several (``WORLD_SIZE`` > 1), and whether it is the one that
speaks (``RANK`` 0, or a single process).  Only the environment is read, so
a command asks before it imports torch; joining the process group is
:meth:`wae_bench.step.distributed.Dist.from_env`'s job."""
from __future__ import annotations

import os

from wae_bench.errors import WaeError


def under_torchrun() -> bool:
    """A process of a torchrun launch of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_rank0() -> bool:
    """Rank 0 under torchrun (or a single process): the process that prints."""
    return int(os.environ.get("RANK", "0")) == 0


def refuse_under_torchrun(command: str, instead: str) -> None:
    """``command`` (a bench, a compare) spreads its own cells over devices:
    under torchrun each process would run all of it, into the same folder.
    Refused in one line, said by rank 0 alone; the others exit with the same
    status, silently."""
    if not under_torchrun():
        return
    if not is_rank0():
        raise SystemExit(WaeError.exit_code)
    raise WaeError(f"wae-bench {command} is not a torchrun command: each of its {os.environ['WORLD_SIZE']} processes "
                   f"would run all of it; {instead}")
