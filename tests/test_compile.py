"""``compile`` (wae_bench/step/compile.py): torch.compile of the nets, in place.

Its speed is a GPU figure (benchmarks/speed.py --compile, in gpu_check.sh);
here: the compiled step trains exactly as the eager one on the CPU, parameter
names (checkpoints) are unchanged, a plugin that differentiates twice is left
eager with a notice, and a bad mode is refused in one line."""
from __future__ import annotations

import pytest
import torch

from wae_bench.step.compile import compile_nets
from wae_bench.config import TrainConfig, from_dict
from wae_bench.errors import WaeError
from tests.helpers import assert_same_steps, cuda_pair, make_trainer


COMPILED_VS_EAGER = """
import torch
from torch._dynamo.utils import counters
from tests.helpers import batch, make_trainer
from wae_bench.step.compile import compile_nets
from wae_bench.registry import REGULARIZERS

torch.set_num_threads(1)
torch._dynamo.config.fail_on_recompile_limit_hit = True   # no silent fall-back to eager


from tests.helpers import assert_same_steps


def compiled(name):
    tr = make_trainer(name, seed=0)
    keys = list(tr.ae.state_dict()) + list(tr.reg.state_dict())
    assert compile_nets(tr.ae, tr.reg, "default")
    assert list(tr.ae.state_dict()) + list(tr.reg.state_dict()) == keys, "parameter names changed"
    return tr


names = [n for n in REGULARIZERS.names() if REGULARIZERS.get(n).compilable]
assert {"moca", "sinkhorn", "wae-mmd", "swae", "wae-gan", "rae-sn", "ae"} <= set(names), names
for name in names:
    before = counters["frames"]["ok"]
    a, b = compiled(name), make_trainer(name, seed=0)
    assert_same_steps(a, b, lambda s: batch(seed=s))
    if hasattr(a.reg, "divergence"):            # its penalty function was compiled too
        assert counters["frames"]["ok"] > before, (name, dict(counters["frames"]))
    print("compiled == eager:", name)
assert not counters["graph_break"], dict(counters["graph_break"])
for d in range(7, 13):   # more distinct nets than Dynamo's default limit of 8 graphs per code object
    tr = make_trainer("ae", d=d)
    compile_nets(tr.ae, tr.reg, "default")
    tr.step(batch())

from wae_bench.step.compile import eager                 # after training: eval-mode passes of new shapes stay eager
frames = counters["frames"]["total"]
tr.ae.eval()
with eager(tr.ae, tr.reg), torch.no_grad():
    assert tr.ae.encoder._compiled_call_impl is None
    tr.ae.decoder(tr.ae.encoder(batch(B=5)))
assert counters["frames"]["total"] == frames, "compiled inside eager()"
assert tr.ae.encoder._compiled_call_impl is not None and tr.ae.decoder._compiled_call_impl is not None
print("all compiled == eager")
"""


def test_compiled_steps_match_eager_for_every_compilable_plugin():
    """For every built-in plugin that allows ``compile``: a compiled step
    (nets and the plugin's own modules, its :class:`~wae_bench.regularizer.Divergence`
    included) computes the eager step's gradients and three steps log the
    same mean losses, within float tolerance (:func:`tests.helpers.assert_same_steps`);
    parameter names (checkpoints) are unchanged; the first (compiling)
    step draws from no process-global generator (no warning); more nets
    than Dynamo's default recompile limit stay compiled, and
    :func:`~wae_bench.step.compile.eager` runs them uncompiled for the work after
    training, then restores them.  Run
    in a fresh process, so Inductor's global state (its caches, worker
    threads, the variables it puts into os.environ) stays out of the other tests."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", COMPILED_VS_EAGER], cwd=root, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0 and "all compiled == eager" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]
    assert "drew from" not in r.stderr, r.stderr[-3000:]   # compiling draws from no global generator (first_step)


def test_a_plugin_that_differentiates_twice_stays_eager(capsys):
    tr = make_trainer("rae-gp")
    assert not compile_nets(tr.ae, tr.reg, "default")
    assert "compile=default is not used with rae-gp" in capsys.readouterr().err
    assert not compile_nets(tr.ae, tr.reg, "none")


def test_compile_targets_are_the_plugins_own_modules():
    moca, gan, mmd, sink = (make_trainer(n).reg for n in ("moca", "wae-gan", "wae-mmd", "sinkhorn"))
    assert moca.compile_targets() == [moca.divergence, moca.enc_k]
    assert len(gan.compile_targets()) == 1 and mmd.compile_targets() == [mmd.divergence]
    assert sink.compile_targets() == [sink.divergence]


def test_a_divergence_module_is_its_function_with_bound_arguments():
    """Eager, :class:`Divergence` returns exactly what the bare function does,
    and it adds nothing to a plugin's checkpoint."""
    from wae_bench.losses import mmd
    from wae_bench.regularizer import Divergence

    g = torch.Generator().manual_seed(0)
    z, p = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    div = Divergence(mmd, Cs=[1.0, 2.0], kernel="rbf")
    assert torch.equal(div(z, p), mmd(z, p, [1.0, 2.0], "rbf"))
    assert div.state_dict() == {} and "mmd" in repr(div)


def test_bad_compile_mode_is_refused_in_one_line():
    with pytest.raises(WaeError) as e:
        from_dict(TrainConfig, {"regularizer": "moca", "compile": "fast"})
    assert "compile" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.gpu(reason="Triton kernels need a GPU")
@pytest.mark.parametrize("name", ["moca", "rae-sn", "sinkhorn", "wae-mmd"])
def test_compiled_step_matches_eager_on_gpu(name, monkeypatch):
    """On the GPU (Triton kernels), a compiled step -- captured as one CUDA
    graph where the plugin draws no prior samples (a graph replays its own
    random stream) -- computes the gradients of the eager uncompiled step
    (relative error per parameter < 1e-3), and three steps log the same mean
    losses.  Gradients rather than parameters: Adam's first steps move every
    weight by about lr whatever the size of its gradient, so a rounding
    difference in a near-zero gradient becomes an lr-sized difference in the
    weight (seen on the CPU with the a1 net: 0.5-1 % of the weights, 2·lr
    apart after two steps, at equal losses)."""
    from wae_bench.step.graph import capture_step

    a, b, x = cuda_pair(name, "fp32", monkeypatch)
    assert compile_nets(a.ae, a.reg, "default")
    step = capture_step(a, x(0)) if name in ("moca", "rae-sn") else a.step
    assert_same_steps(a, b, x, step_a=step)
