"""Contract tests every registered regularizer gets for free (timm-style):
the shipped checks of :mod:`wae_bench.plugin_check` (what `wae-bench
check-plugin` runs) over the registry -- finite loss, gradients reach the
encoder, state round-trips through a checkpoint, draws only from the run's
generator, auxiliary steps touch only their own parameters, the step is
capture-safe (never reads a tensor on the host), its tuning grid is one a
bench can tune, and the plugin is documented.  Every installed plugin gets
them; the rules of this repository's own plugins (say whether they draw, a
module docstring) are asked of the built-ins only
(:func:`tests.helpers.builtin_names`), so a third-party plugin in the same
environment does not fail them."""
from __future__ import annotations

import pytest

from tests.helpers import builtin_names
from wae_bench import plugin_check as C
from wae_bench.registry import REGULARIZERS

NAMES = REGULARIZERS.names()
BUILTINS = builtin_names()

# Which built-ins draw from the run's generator in a step (rae-gp with its
# one-probe "frobenius" gradient); a plugin not listed may or may not.
DRAWS = {"moca": False, "wae-mmd": True, "wae-gan": True, "swae": True, "sinkhorn": True,
         "rae-l2": False, "rae-gp": True, "rae-sn": False, "ae": False}


@pytest.mark.parametrize("name", NAMES)
def test_step_is_finite_and_updates_the_autoencoder(name):
    C.finite_step(name)


@pytest.mark.parametrize("name", NAMES)
def test_penalty_is_scalar_and_gradient_reaches_encoder(name):
    C.penalty_reaches_encoder(name)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_a_checkpoint(name):
    C.state_round_trips(name)


@pytest.mark.parametrize("name", NAMES)
def test_step_draws_only_from_the_runs_generator(name):
    """Nothing in a step draws from the process-global generators (torch,
    Python, NumPy): every draw comes from ``ctx.generator``, so runs sharing a
    process draw what each would alone.  A plugin that draws (prior samples,
    directions, probes) moves the run's generator."""
    C.draws_only_from_run_generator(name, {"grad": "frobenius"} if name == "rae-gp" else None,
                                    expect_draws=DRAWS.get(name))


def test_every_builtin_says_whether_it_draws():
    assert all(REGULARIZERS.get(n).__module__.startswith("wae_bench_regularizers.") for n in BUILTINS)
    assert BUILTINS == sorted(DRAWS), (f"say in DRAWS whether {sorted(set(BUILTINS) - set(DRAWS))} draw(s); "
                                       f"not built-ins: {sorted(set(DRAWS) - set(BUILTINS))}")


@pytest.mark.parametrize("name", NAMES)
def test_aux_step_touches_only_its_own_parameters(name):
    skipped = C.aux_step_touches_only_its_own(name)
    if skipped:
        pytest.skip(skipped)


@pytest.mark.parametrize("name", NAMES)
def test_step_is_capture_safe(name):
    """Everything the plugin and trainer run in a step, bar torch's CPU Adam
    (capturable on the GPU), must not read tensors on the host."""
    C.capture_safe(name)


@pytest.mark.parametrize("name", NAMES)
def test_tuning_grid_is_one_a_bench_can_tune(name):
    skipped = C.tuning_grid_is_a_bench_grid(name)
    if skipped:
        pytest.skip(skipped)


@pytest.mark.parametrize("name", NAMES)
def test_listed_with_paper_and_defaults(name):
    C.documented(name, module_docstring=name in BUILTINS)   # (built-ins cite the paper there: DESIGN.md)
