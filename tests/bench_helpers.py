"""Helpers shared by the benchmark-runner tests (tests/test_bench_*.py)."""
import json

from tests.helpers import run_cli  # noqa: F401 (re-exported)


def tiny_spec(name: str, regs: list[str], seeds: list[int], steps: int, expost: list[str], ckpt_every: int,
              grid: str = "") -> str:
    """A bench spec of tiny MoCA-sized cells on 8-px digits with stand-in features, a CPU second a cell."""
    return f"""
[bench]
name = "{name}"
datasets = ["digits"]
archs = ["tiny"]
regularizers = {json.dumps(regs)}
seeds = {json.dumps(seeds)}

[train]
epochs = 1
max_steps = {steps}
batch_size = 32
image_size = 8
latent_dim = 4
expost = {json.dumps(expost)}
ckpt_every = {ckpt_every}
log_every = 2
device = "cpu"

[eval]
fid_samples = 16
features = "standin"

[reg.moca]
K = 64
{grid}
"""
