"""`wae-bench eval RUN_DIR`: score a finished run (FID/KID/PR through
torch-fidelity) and write ``RUN_DIR/results.json`` (:mod:`wae_bench.evaluate`)."""
from __future__ import annotations

import click

from wae_bench.cli import options
from wae_bench.config import EvalSettings, from_dict, to_dict
from wae_bench.launch import is_rank0


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@options.add(options.EVAL_FLAGS)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--data-root", help="Dataset location if it moved since training.")
@click.option("--trust-checkpoint", is_flag=True, help="Load checkpoints that need pickle (unsafe).")
@click.option("--quiet", is_flag=True, help="No progress bars or advisory warnings; the scores are still printed, and so is a skipped unreadable checkpoint (what is scored is then not the newest step).")
def eval_cmd(run_dir, device, data_root, trust_checkpoint, quiet, **flags):
    """Score a finished run; writes RUN_DIR/results.json (scores with their protocol)."""
    # (imports torch and torch-fidelity, ~4 s: `wae-bench --help` must not; wae_bench.run first, which
    # imports numpy before torch can swallow a Ctrl-C in that import: wae_bench/run/__init__.py)
    import wae_bench.run  # noqa: F401
    from wae_bench import worded
    from wae_bench.evaluate import evaluate_run
    from wae_bench.interrupt import said_by_rank0, stop_at_once

    given = options.given(options.EVAL_FLAGS, flags)
    ev = from_dict(EvalSettings, given, flags=True)
    again = options.eval_command(run_dir, given, options.EVAL_FLAGS)   # (the flags given: the same scoring)
    # (the fixes name this command's flags, not evaluate_run's arguments)
    with said_by_rank0(), worded.cli(), stop_at_once(f"while scoring (results.json is as it was); score the run "
                                                     f"with: {again}"):
        evaluate_run(run_dir, **to_dict(ev), device=device, quiet=quiet, data_root=data_root,
                     trust=trust_checkpoint, table=True)
    if is_rank0():   # (torchrun: every process scores its share of the samples; one line)
        click.echo(f"results: {run_dir.rstrip('/')}/results.json")


COMMANDS = [eval_cmd]
