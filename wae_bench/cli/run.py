"""`wae-bench run`: train one regularizer on one dataset and architecture."""
from __future__ import annotations

import os

import click

from wae_bench.cli.eval import eval_options
from wae_bench.config import load_toml, merge, parse_sets

FLAG_KEYS = {"reg": "regularizer", "dataset": "dataset", "arch": "arch", "epochs": "epochs",
             "batch_size": "batch_size", "lr": "lr", "seed": "seed", "data_root": "data_root",
             "device": "device", "download": "download", "precision": "precision", "sync_bn": "sync_bn"}


def overrides_from(config: str | None, sets: tuple[str, ...], flags: dict) -> dict:
    """TOML file, then ``--set``, then explicit flags (later wins)."""
    out = load_toml(config) if config else {}
    out = merge(out, parse_sets(sets))
    for opt, key in FLAG_KEYS.items():
        if flags.get(opt) is not None:
            out[key] = flags[opt]
    if flags.get("lambda_") is not None:
        out = merge(out, {"reg": {"lambda": flags["lambda_"]}})
    return out


@click.command("run")
@click.option("--reg", help="Regularizer (see `wae-bench list`). Default: moca.")
@click.option("--dataset", help="Dataset. Default: digits (embedded, offline).")
@click.option("--arch", help="Architecture. Default: the dataset's (a1; tiny for digits).")
@click.option("--epochs", type=int, help="Epochs. Default: the dataset's (100 for cifar10).")
@click.option("--batch-size", type=int, help="Batch size PER PROCESS (global = × processes). Default 64.")
@click.option("--lr", type=float, help="Adam learning rate (halved every lr_halve_every epochs). Default 1e-3.")
@click.option("--lambda", "lambda_", type=float, help="Penalty weight λ (reg.lambda). Default: the paper's.")
@click.option("--seed", type=int, help="Seed. Default 0.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory. Default runs/REG-ARCH-DATASET-sSEED.")
@click.option("--data-root", help="Dataset folder or archive location.")
@click.option("--download", is_flag=True, default=None, help="Let torchvision download the dataset (online).")
@click.option("--device", help="auto, cpu, cuda, cuda:N. Default auto.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), help="bf16 autocast. Default fp32.")
@click.option("--sync-bn", is_flag=True, default=None,
              help="Under torchrun: batch-norm statistics over the global batch (CUDA only).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="With --resume: accept a changed config.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML file of settings.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any config key, e.g. --set max_steps=200 --set reg.K=4096 (repeatable).")
@click.option("--eval/--no-eval", "do_eval", default=True, help="Score the run when training ends.")
@eval_options
@click.option("--trust-checkpoint", is_flag=True, help="Load checkpoints that need pickle (unsafe).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def run_cmd(ctx, resume, force, config, sets, out, do_eval, trust_checkpoint, quiet, fid_samples, metrics, what,
            fid_weights, features, **flags):
    """Train one model; resumable; writes a run directory (and scores it, unless --no-eval)."""
    from wae_bench.train import train_run

    ev = dict(fid_samples=fid_samples, metrics=metrics.split(","), what=what.split(","), fid_weights=fid_weights,
              features=features, quiet=quiet, trust=trust_checkpoint)
    notice = None
    if do_eval:
        do_eval, notice = _check_eval(ctx, ev)
    path = train_run(overrides_from(config, sets, flags), out, resume=resume, force=force, quiet=quiet,
                     trust=trust_checkpoint, notice=notice)
    if _is_main():
        click.echo(f"run directory: {path}")
    if do_eval:   # every process generates its share of the samples (torchrun)
        _evaluate(path, **ev)


def _is_main() -> bool:
    """Rank 0 under torchrun (or a single process) prints."""
    return int(os.environ.get("RANK", "0")) == 0


def _check_eval(ctx, ev: dict) -> tuple[bool, str | None]:
    """Check the evaluation settings before training (not hours later):
    (score the run?, a notice for the run's header).  If the FID weights are
    missing and no evaluation option was given, the run trains and is not
    scored (said once, after its settings and data are checked); with
    explicit options it is an error."""
    from click.core import ParameterSource

    from wae_bench.errors import WaeError
    from wae_bench.evaluate import check_options
    from wae_bench.metrics.weights import WeightsMissing

    explicit = any(ctx.get_parameter_source(n) not in (ParameterSource.DEFAULT, None)
                   for n in ("fid_samples", "metrics", "what", "fid_weights", "features", "do_eval"))
    try:
        check_options(ev["metrics"], ev["what"], ev["features"], ev["fid_weights"], ev["fid_samples"])
    except WeightsMissing as e:
        if explicit:
            raise WaeError(f"{e}; or pass --no-eval") from None
        from rich.markup import escape

        return False, f"[yellow]note:[/] the run will not be scored: {escape(str(e))}; then score it with `wae-bench eval RUN`"
    return True, None


def _evaluate(path, **kw) -> None:
    """End-of-run evaluation; a failure keeps the trained run and says how to score it later."""
    from wae_bench.errors import WaeError
    from wae_bench.evaluate import evaluate_run

    try:
        evaluate_run(path, **kw)
    except WaeError as e:
        raise WaeError(f"{e} (the trained run is kept; score it later with `wae-bench eval {path}`)") from None
    if _is_main():
        click.echo(f"results: {path}/results.json")


COMMANDS = [run_cmd]
