"""``compile`` (wae_bench/compile.py): torch.compile of the nets, in place.

Its speed is a GPU figure (benchmarks/speed.py --compile, in gpu_check.sh);
here: the compiled step trains exactly as the eager one on the CPU, parameter
names (checkpoints) are unchanged, a plugin that differentiates twice is left
eager with a notice, and a bad mode is refused in one line."""
from __future__ import annotations

import pytest
import torch

from wae_bench.compile import compile_nets
from wae_bench.config import TrainConfig, from_dict
from wae_bench.errors import WaeError
from tests.helpers import batch, make_trainer


COMPILED_VS_EAGER = """
import torch
from torch._dynamo.utils import counters
from tests.helpers import batch, make_trainer
from wae_bench.compile import compile_nets

torch.set_num_threads(1)
a, b = make_trainer("moca", seed=0), make_trainer("moca", seed=0)
keys = list(a.ae.state_dict()) + list(a.reg.state_dict())
assert compile_nets(a.ae, a.reg, "default")
assert list(a.ae.state_dict()) + list(a.reg.state_dict()) == keys, "parameter names changed"
for s in range(3):
    a.step(batch(seed=s))
    b.step(batch(seed=s))
assert counters["stats"]["unique_graphs"] >= 3, counters["stats"]   # encoder, decoder, key encoder
for (k, v), w in zip(a.ae.state_dict().items(), b.ae.state_dict().values()):
    assert torch.allclose(v.float(), w.float(), atol=1e-5, rtol=1e-4), k
assert torch.allclose(a.reg.queue, b.reg.queue, atol=1e-5)
ma, mb = a.meter.read()[0], b.meter.read()[0]
assert all(abs(ma[k] - mb[k]) <= 1e-5 + 1e-4 * abs(mb[k]) for k in mb), (ma, mb)
print("compiled == eager")
"""


def test_compiled_moca_step_matches_eager():
    """Three compiled MoCA steps leave the same parameters, queue and mean
    losses as three eager ones, and parameter names (checkpoints) are
    unchanged.  Run in a fresh process, so Inductor's global state (its
    caches, worker threads, the variables it puts into os.environ) stays out
    of the other tests."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", COMPILED_VS_EAGER], cwd=root, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "compiled == eager" in r.stdout, r.stderr[-3000:]


def test_a_plugin_that_differentiates_twice_stays_eager(capsys):
    tr = make_trainer("rae-gp")
    assert not compile_nets(tr.ae, tr.reg, "default")
    assert "compile=default is not used with rae-gp" in capsys.readouterr().err
    assert not compile_nets(tr.ae, tr.reg, "none")


def test_compile_targets_are_the_plugins_own_networks():
    moca, gan, mmd = (make_trainer(n).reg for n in ("moca", "wae-gan", "wae-mmd"))
    assert moca.compile_targets() == [moca.enc_k]
    assert len(gan.compile_targets()) == 1 and mmd.compile_targets() == []


def test_bad_compile_mode_is_refused_in_one_line():
    with pytest.raises(WaeError) as e:
        from_dict(TrainConfig, {"regularizer": "moca", "compile": "fast"})
    assert "compile" in str(e.value) and "\n" not in str(e.value)
