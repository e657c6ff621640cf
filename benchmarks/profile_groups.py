"""Group a speed.py ``--profile`` table's device time per step by kernel kind.

The split of benchmarks/results/h200-2026-11-28/README.md ("Where the a1 MoCA
step's time goes"): each row of the profiler's table (its top 40 kernels by
self CUDA time) goes to the first group whose words its name contains, in
this order: convolutions (``conv``, ``xmma``, ``cutlass``, ``cudnn``: cuDNN's kernels),
batch norm (``batch_norm``), fused Adam and the EMA (``multi_tensor_apply``),
copies and bf16 casts (``copy``), else other elementwise ops and reductions;
"below the top 40" is the device-busy time of the header less the rows'.
Each figure is the self CUDA time over the steps profiled.

    python benchmarks/profile_groups.py benchmarks/results/h200-2026-11-28/profile-a1-graph-bf16-cl.txt
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from wae_bench.errors import WaeError, run_script

#: ``(group, words)``: a row goes to the first group one of whose words its name contains.
GROUPS = (("convolutions (cuDNN)", ("conv", "xmma", "cutlass", "cudnn")), ("batch norm", ("batch_norm",)),
          ("fused Adam and the EMA (multi-tensor)", ("multi_tensor_apply",)), ("copies and bf16 casts", ("copy",)))
OTHER, BELOW = "other elementwise ops and reductions", "kernels below the top 40"
UNITS = {"s": 1e3, "ms": 1.0, "us": 1e-3}
HEADER = re.compile(r"(\d+) steps profiled: .*device busy ([\d.]+) ms/step")
TIME = re.compile(r"^([\d.]+)(s|ms|us)$")


def group_of(name: str) -> str:
    return next((g for g, words in GROUPS if any(w in name for w in words)), OTHER)


def groups(text: str) -> dict[str, float]:
    """``{group: ms per step}`` of one profile table, and ``"busy"``: the header's device time per step."""
    head = HEADER.search(text)
    if not head:
        raise WaeError("no 'N steps profiled: ... device busy X ms/step' header: not a speed.py --profile file")
    steps, busy = int(head.group(1)), float(head.group(2))
    out = {g: 0.0 for g, _ in GROUPS} | {OTHER: 0.0}
    for line in text.splitlines():
        cols = line[90:].split()
        if len(cols) == 10 and (m := TIME.match(cols[5])):   # Self CUDA is the 6th column after the name
            out[group_of(line[:90])] += float(m.group(1)) * UNITS[m.group(2)] / steps
    return {**out, BELOW: busy - sum(out.values()), "busy": busy}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="+", help="a profile-*.txt written by benchmarks/speed.py --profile")
    for path in ap.parse_args(argv).profile:
        if not Path(path).is_file():
            raise WaeError(f"{path!r} is not a file; pass a profile-*.txt that benchmarks/speed.py --profile wrote")
        g = groups(Path(path).read_text())
        print(f"{path}: device busy {g.pop('busy'):.2f} ms/step")
        for name, ms in g.items():
            print(f"  {name:<40} {ms:.3f}")


if __name__ == "__main__":
    run_script(main)
