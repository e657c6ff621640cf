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


def test_compiled_moca_step_matches_eager(single_thread):
    from torch._dynamo.utils import counters

    counters.clear()
    a, b = make_trainer("moca", seed=0), make_trainer("moca", seed=0)
    keys = list(a.ae.state_dict()) + list(a.reg.state_dict())
    assert compile_nets(a.ae, a.reg, "default")
    assert list(a.ae.state_dict()) + list(a.reg.state_dict()) == keys   # checkpoints keep their names
    for s in range(3):
        a.step(batch(seed=s))
        b.step(batch(seed=s))
    assert counters["stats"]["unique_graphs"] >= 3   # encoder, decoder and key encoder were compiled
    for (k, v), w in zip(a.ae.state_dict().items(), b.ae.state_dict().values()):
        assert torch.allclose(v.float(), w.float(), atol=1e-5, rtol=1e-4), k
    assert torch.allclose(a.reg.queue, b.reg.queue, atol=1e-5)
    assert a.meter.read()[0] == pytest.approx(b.meter.read()[0], rel=1e-4, abs=1e-5)


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
