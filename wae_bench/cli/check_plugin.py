"""`wae-bench check-plugin NAME ...`: the step-contract checks
(:mod:`wae_bench.plugin_check`) of registered regularizers on tiny CPU runs,
one line per check; exit status 1 if any fails."""
from __future__ import annotations

import sys
import traceback

import click


@click.command("check-plugin")
@click.argument("names", nargs=-1, required=True, metavar="NAME [NAME...]")
def check_plugin_cmd(names):
    """Check regularizer plugins against the step contract (seconds, on the CPU): finite steps, gradients,
    checkpoint round-trip, randomness, auxiliary step, capture safety, tuning grid, docstrings. Exit status 1
    if any check fails."""
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.cli import _debug
    from wae_bench.plugin_check import CHECKS, run_checks
    from wae_bench.registry import REGULARIZERS
    from wae_bench.step.first_step import draws_unwarned

    for name in names:                     # an unknown name is refused before anything runs
        if name not in REGULARIZERS.broken:
            REGULARIZERS.get(name)
    width = max(len(c.key) for c in CHECKS)
    failed = []
    for name in names:
        who = REGULARIZERS.provider(name) if name not in REGULARIZERS.broken else "failed to load"
        click.echo(f"plugin {name!r} ({who}): {len(CHECKS)} checks on a tiny run on the CPU")
        counts: dict[str, int] = {}
        with draws_unwarned():             # (a global draw is the randomness check's failure, said there)
            for out in run_checks(name):
                counts[out.status] = counts.get(out.status, 0) + 1
                text = out.text if out.status != "pass" else out.check.what
                if out.error is not None and not _debug():
                    text += " (rerun with --debug for the traceback)"
                click.echo(f"  {out.status:<4} {out.check.key:<{width}}  {text}")
                if out.error is not None and _debug():
                    sys.stdout.flush()
                    traceback.print_exception(out.error)
        if counts.get("FAIL"):
            failed.append(name)
        click.echo(f"{name}: " + ", ".join(f"{counts[s]} {s}" for s in ("pass", "FAIL", "skip") if s in counts))
    if failed:   # (exit status 1: a plugin fails; 2 is kept for bad input, e.g. an unknown name)
        click.echo(f"{len(failed)} of {len(names)} plugins fail the contract checks: {', '.join(failed)}")
        sys.exit(1)


COMMANDS = [check_plugin_cmd]
