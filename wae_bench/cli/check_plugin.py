"""`wae-bench check-plugin NAME ...`: the step-contract checks
(:mod:`wae_bench.plugin_check`) of registered regularizers on tiny CPU runs,
one line per check (``--compile``: and the step under torch.compile), and
the shape probe (:mod:`wae_bench.nets.contract`) of registered
architectures, one line per image size; exit status 1 if any fails, or if
an installed entry point of a name was refused for the built-in of that
name (the checks ran on the built-in, not on that plugin).  A name two
installed distributions give is refused in one line; so is a dataset's
name, saying what it is (its checks run when a run loads it)."""
from __future__ import annotations

import sys
import traceback

import click


PROBE_LATENT_DIM = 16   # d of an architecture's probe (a net that ignores d is caught at any d but its own)


def _is_architecture(name: str) -> bool:
    """``name`` is an architecture's, not a regularizer's (a regularizer's name wins)."""
    from wae_bench.errors import WaeError, doc_ref
    from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS

    if name in REGULARIZERS.ambiguous:
        REGULARIZERS.get(name)             # two installed distributions give it: its line
    if name in REGULARIZERS or name in REGULARIZERS.broken:
        return False
    if name in ARCHITECTURES or name in ARCHITECTURES.broken:
        ARCHITECTURES.get(name)            # a broken (or ambiguous) one: its line
        return True
    if name in DATASETS or name in DATASETS.broken:
        raise WaeError(f"{DATASETS.label(name)} is a dataset; check-plugin checks regularizers (the step "
                       f"contract) and architectures (a shape probe); a dataset is checked when a run loads it "
                       f"(see {doc_ref('datasets.md', 'Dataset plugins: the contract')})")
    REGULARIZERS.get(name)                 # unknown: its line, with a suggestion
    return False


def _check_architecture(name: str) -> bool:
    """Probe ``name``'s net at each image size it takes (32 and 64 where it
    takes multiples), for the channels of the datasets that default to it
    (else RGB), with d = 16: one line each; whether all pass."""
    from wae_bench.cli import _debug
    from wae_bench.errors import WaeError
    from wae_bench.nets import build_arch
    from wae_bench.plugin_fault import plugin_fault
    from wae_bench.registry import ARCHITECTURES, DATASETS

    spec, d = ARCHITECTURES.get(name), PROBE_LATENT_DIM
    channels = sorted({ds.channels for _, ds in DATASETS.items() if ds.arch == name}) or [3]
    cases = [(s, c) for s in spec.sizes or (32, 64) for c in channels]
    click.echo(f"{ARCHITECTURES.label(name)}: the shape probe at {len(cases)} image size(s), d = {d}")
    if ARCHITECTURES.shadowed(name):   # (the built-in is probed, not the refused entry point)
        click.echo(f"  note: {ARCHITECTURES.shadowed(name)}")
    failed = 0
    for size, c in cases:
        x = f"(2, {c}, {size}, {size})"
        try:
            build_arch(spec, size, c, d)
            click.echo(f"  pass {c}x{size}x{size}  Enc: {x} -> (2, {d}), Dec: (2, {d}) -> {x}")
            continue
        except WaeError as e:
            text = str(e)
        except Exception as e:  # noqa: BLE001 - the net's own error is this check's failure
            if _debug():
                raise
            text = plugin_fault(e) or f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        failed += 1
        click.echo(f"  FAIL {c}x{size}x{size}  {text}")
    passed = len(cases) - failed
    click.echo(f"{name}: " + ", ".join(f"{n} {s}" for n, s in ((passed, "pass"), (failed, "FAIL")) if n))
    return not failed


@click.command("check-plugin")
@click.argument("names", nargs=-1, required=True, metavar="NAME [NAME...]")
@click.option("--compile", "compile_", is_flag=True,
              help="Also check three steps compiled as a run with --compile default compiles them (slow on a "
                   "CPU: Inductor's first compile takes 30-60 s a plugin).")
def check_plugin_cmd(names, compile_):
    """Check regularizer plugins against the step contract (seconds, on the CPU): finite steps, gradients,
    checkpoint round-trip, randomness, auxiliary step, capture safety, tuning grid, docstrings (--compile:
    and the step under torch.compile); and architecture plugins by a shape probe of their nets. Exit status
    1 if any check fails, or if an installed plugin of a built-in's name was refused (and so not checked)."""
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.cli import DEBUG_HINT, _debug
    from wae_bench.plugin_check import checks, run_checks
    from wae_bench.registry import ARCHITECTURES, REGULARIZERS
    from wae_bench.step.first_step import draws_unwarned

    archs = {name for name in names if _is_architecture(name)}   # an unknown name is refused before anything runs
    run = checks(compile_)
    width = max(len(c.key) for c in run)
    failed, refused = [], []
    for name in names:
        if name in archs:
            if not _check_architecture(name):
                failed.append(name)
            if ARCHITECTURES.shadowed(name):   # (the built-in was probed, not the refused entry point)
                refused.append(f"{name} from {ARCHITECTURES.broken_by(name)}")
            continue
        click.echo(f"plugin {name!r} ({_checked(name)}): {len(run)} checks on a tiny run on the CPU")
        if REGULARIZERS.shadowed(name):    # (the built-in is checked, not the refused entry point)
            refused.append(f"{name} from {REGULARIZERS.broken_by(name)}")
            click.echo(f"  note: {REGULARIZERS.shadowed(name)}")
        counts: dict[str, int] = {}
        with draws_unwarned():             # (a global draw is the randomness check's failure, said there)
            for out in run_checks(name, compile_):
                counts[out.status] = counts.get(out.status, 0) + 1
                text = out.text if out.status != "pass" else out.check.what
                if out.error is not None and not _debug():
                    text += f" ({DEBUG_HINT})"
                click.echo(f"  {out.status:<4} {out.check.key:<{width}}  {text}")
                if out.error is not None and _debug():
                    sys.stdout.flush()
                    traceback.print_exception(out.error)
        if counts.get("FAIL"):
            failed.append(name)
        click.echo(f"{name}: " + ", ".join(f"{counts[s]} {s}" for s in ("pass", "FAIL", "skip") if s in counts))
    if failed:
        click.echo(f"{len(failed)} of {len(names)} plugins fail the contract checks: {', '.join(failed)}")
    if refused:
        click.echo(f"{len(refused)} installed entry point(s) not checked, refused for a built-in's name: "
                   f"{', '.join(refused)}")
    if failed or refused:   # (exit status 1: a plugin fails or was not checked; 2 is kept for bad input)
        sys.exit(1)


def _checked(name: str) -> str:
    """Whose regularizer ``name`` the checks run on: its provider
    (``momreg 0.1``; a built-in's name: ``wae-bench 0.1.0``, whatever entry
    point of that name was refused), else ``failed to load`` and from which
    distribution."""
    from wae_bench.registry import REGULARIZERS

    if name in REGULARIZERS:
        return REGULARIZERS.provider(name)
    by = REGULARIZERS.broken_by(name)
    return f"{by}: failed to load" if by else "failed to load"


COMMANDS = [check_plugin_cmd]
