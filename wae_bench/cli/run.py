"""`wae-bench run`: train one regularizer on one dataset and architecture."""
from __future__ import annotations

import dataclasses
import os

import click
from click.core import ParameterSource
from rich.markup import escape

from wae_bench.cli import options
from wae_bench.config import EvalSettings, from_dict, load_toml, merge, parse_sets, to_dict
from wae_bench.errors import WaeError
from wae_bench.launch import is_rank0, under_torchrun


def overrides_from(config: str | None, sets: tuple[str, ...], flags: dict) -> dict:
    """TOML file, then ``--set``, then explicit flags (later wins)."""
    out = run_settings(config) if config else {}
    return merge(merge(out, parse_sets(sets)), flags)


# The tables of a bench spec that a run's --config file does not have (docs/benchmarks.md, "The spec in full").
SPEC_TABLES = ("bench", "train", "eval", "grid", "tune")


def run_settings(path: str) -> dict:
    """The settings of a ``--config`` TOML file (:func:`~wae_bench.config.load_toml`).
    A bench spec (or a file with one of its tables) is refused in one line
    that says where its settings go, rather than as an unknown key."""
    data = load_toml(path)
    tables = [k for k in SPEC_TABLES if isinstance(data.get(k), dict)]
    if "bench" in tables:
        raise WaeError(f"{path!r} is a bench spec ([bench]), not the settings of one run; run it with "
                       f"`wae-bench bench {path}`, or give --config a file of a run's keys (epochs = 1, and the "
                       f"regularizer's under [reg])")
    if "eval" in tables:
        raise WaeError(f"{path!r} has an [eval] table, as a bench spec does; a run's --config holds its training "
                       f"settings only: give the evaluation's as flags (--fid-samples N, --metrics, --features, ...)")
    if tables:
        raise WaeError(f"{path!r} has a [{tables[0]}] table, as a bench spec does; a run's --config has its keys "
                       f"at the top level (epochs = 1) and the regularizer's under [reg]")
    return data


@click.command("run")
@options.add(options.TRAIN_FLAGS)
@click.option("--out", type=click.Path(file_okay=False), help="Run directory. Default runs/REG-ARCH-DATASET-sSEED.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="With --resume: accept a changed config.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML file of settings.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any config key, e.g. --set max_steps=200 --set reg.K=4096 (repeatable; `wae-bench options-table` "
                   "lists them).")
@click.option("--eval/--no-eval", "do_eval", default=True, help="Score the run when training ends.")
@options.add(options.RUN_EVAL_FLAGS)
@click.option("--trust-checkpoint", is_flag=True, help="Load checkpoints that need pickle (unsafe).")
@click.option("--quiet", is_flag=True, help="No progress bar; the run's header and its final scores are still printed.")
@click.pass_context
def run_cmd(ctx, resume, force, config, sets, out, do_eval, trust_checkpoint, quiet, **flags):
    """Train one model; resumable; writes a run directory (and scores it, unless --no-eval)."""
    try:   # (torch is not imported before _run: wae_bench.run imports numpy first, see its __init__)
        _run(ctx, resume, force, config, sets, out, do_eval, trust_checkpoint, quiet, flags)
    except WaeError as e:
        raise _said_once(e) from None
    except Exception as e:   # (under torchrun: another process's end, or a plugin's bug, as one line of this rank)
        if not under_torchrun():
            raise
        from wae_bench.plugin_fault import plugin_fault
        from wae_bench.step.distributed import peer_failed

        line = PEER_FAILED if peer_failed(e) else plugin_fault(e)
        if line is None:
            raise
        raise _said_once(WaeError(line)) from e


# What a rank says when a collective failed because another process of the launch ended.
PEER_FAILED = ("another process of this torchrun launch ended (its own error above, or torchrun's summary below, "
               "names it); fix that and rerun your torchrun command (with --resume --out RUN_DIR where a checkpoint "
               "was kept)")


def _said_once(e: WaeError) -> BaseException:
    """Under torchrun, ``e`` as this process says it: rank 0's as it is, another
    rank's under its number, or a silent exit where rank 0 says the same
    (:func:`~wae_bench.step.distributed.says_error`: one line, not one a process)."""
    if not under_torchrun():
        return e
    from wae_bench.step.distributed import says_error

    if not says_error(str(e)):
        return SystemExit(e.exit_code)
    if is_rank0():
        return e
    said = WaeError(f"process {os.environ['RANK']} of {os.environ['WORLD_SIZE']}: {e}")
    said.exit_code = e.exit_code
    return said


def _run(ctx, resume, force, config, sets, out, do_eval, trust_checkpoint, quiet, flags) -> None:
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench import worded
    from wae_bench.interrupt import said_by_rank0
    from wae_bench.run.build import check_val
    from wae_bench.run.directory import run_folder
    from wae_bench.run.train import train_run

    overrides = overrides_from(config, sets, options.given(options.TRAIN_FLAGS, flags))
    eval_given = options.given(options.RUN_EVAL_FLAGS, flags)
    ev = from_dict(EvalSettings, eval_given, flags=True)
    scored = do_eval

    def check_eval(plan) -> str | None:   # once the run's own settings and data are checked, before training
        nonlocal scored, ev, eval_given
        if ev.split == "val":             # (the validation split is the run's hold-out: none to score otherwise)
            check_val(plan.cfg)
        note = None
        if "what" not in eval_given:      # the prior samples, and the plugin's own sampler (rae-l2, ae: gmm)
            ev, eval_given, note = _sampler_columns(plan, ev, eval_given)
        run_dir = run_folder(out, plan)   # (where train_run puts the run)
        scored, notice = _check_eval(ctx, ev, options.eval_command(run_dir, eval_given, options.RUN_EVAL_FLAGS))
        return "\n".join(filter(None, (note, notice))) or None

    # (torchrun: one stop line, not one a process; the fixes name this command's flags, not train_run's arguments)
    with said_by_rank0(), worded.cli():
        path = train_run(overrides, out, resume=resume, force=force, quiet=quiet, trust=trust_checkpoint,
                         before=check_eval if do_eval else None)
        if is_rank0():
            click.echo(f"run directory: {path}")
        if scored:   # every process generates its share of the samples (torchrun)
            _evaluate(path, ev, options.eval_command(path, eval_given, options.RUN_EVAL_FLAGS), quiet=quiet, trust=trust_checkpoint)


def _sampler_columns(plan, ev: EvalSettings, given: dict) -> tuple[EvalSettings, dict, str | None]:
    """Without ``--what``: the columns of :func:`wae_bench.evaluate.run_columns`
    for the run's plugin (``plan``), as settings and as the flags of the
    `wae-bench eval` command that scores it alike, and a note where the run
    does not fit the plugin's sampler."""
    from wae_bench.evaluate import run_columns

    what, why_not = run_columns(plan.cfg.regularizer, plan.reg_cls.sampler, plan.cfg.expost)
    given = {**given, "what": ",".join(what)} if what != ev.what else given
    return dataclasses.replace(ev, what=what), given, f"[yellow]note:[/] {escape(why_not)}" if why_not else None


def _check_eval(ctx, ev: EvalSettings, command: str) -> tuple[bool, str | None]:
    """Check the evaluation settings before training (not hours later), and
    provision the FID weights if they are missing
    (:func:`wae_bench.metrics.weights.resolve`): (score the run?, a notice
    for the run's header).  If the weights are still missing and no
    evaluation option was given, the run trains and is not scored (said once,
    with ``command``, the `wae-bench eval` that scores it later); with explicit
    options it is an error."""
    # (imports torch and torch-fidelity, ~4 s: `wae-bench --help` must not)
    from wae_bench.evaluate import check_options
    from wae_bench.metrics.weights import WeightsMissing

    explicit = any(ctx.get_parameter_source(n) not in (ParameterSource.DEFAULT, None)
                   for n in (*(fl.dest for fl in options.RUN_EVAL_FLAGS), "do_eval"))
    try:
        check_options(ev)
    except WeightsMissing as e:
        if explicit:
            raise WaeError(f"{e}; or pass --no-eval") from None
        return False, f"[yellow]note:[/] the run will not be scored: {escape(f'{e}; then score it with `{command}`')}"
    return True, None


def _evaluate(path, ev: EvalSettings, command: str, **kw) -> None:
    """End-of-run evaluation; a failure or a stop keeps the trained run and says how to score it later."""
    # (imports torch and torch-fidelity, ~4 s: `wae-bench --help` must not)
    from wae_bench.evaluate import evaluate_run
    from wae_bench.interrupt import stop_at_once

    try:   # (a stop, a KeyboardInterrupt, passes: its own line says what is kept)
        with stop_at_once(f"while scoring (the trained run is kept); score it with: {command}"):
            evaluate_run(path, **to_dict(ev), **kw, table=True)
    except WaeError as e:
        raise WaeError(f"{e} (the trained run is kept; score it later with `{command}`)") from None
    if is_rank0():
        click.echo(f"results: {path}/results.json")


COMMANDS = [run_cmd]
