"""`wae-bench eval RUN_DIR`: score a finished run (FID/KID/PR through
torch-fidelity) and write ``RUN_DIR/results.json`` (:mod:`wae_bench.evaluate`)."""
from __future__ import annotations

import click

from wae_bench.errors import WaeError


def _csv(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _alphas(text: str) -> list[float]:
    try:
        return [float(a) for a in _csv(text)]
    except ValueError:
        raise WaeError(f"bad --interp-alphas {text!r}: write numbers in [0, 1], e.g. 0.5 or 0.25,0.5,0.75") from None


def eval_options(f):
    """Options shared by `eval` and `run` (end-of-run evaluation)."""
    for opt in reversed([
        click.option("--fid-samples", type=int, default=None,
                     help="Generated samples per column. Default: the dataset's (10,000 as the paper; "
                          "500 for the embedded digits)."),
        click.option("--metrics", default="fid", show_default=True, help="Comma list of fid, kid, pr, is."),
        click.option("--what", default="samples", show_default=True,
                     help="Comma list of columns: samples, n, gmm (ex-post densities), rec, interp."),
        click.option("--fid-weights", type=click.Path(dir_okay=False),
                     help="torch-fidelity's Inception weight file (else $WAE_BENCH_FID_WEIGHTS, the cache, "
                          "torch-fidelity's download)."),
        click.option("--features", type=click.Choice(["inception", "standin"]), default="inception",
                     show_default=True, help="standin: random conv features for smoke tests (NOT FID)."),
    ]):
        f = opt(f)
    return f


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@eval_options
@click.option("--split", type=click.Choice(["test", "train", "val"]), default="test", show_default=True,
              help="Reference split (the paper: test; val: the training images a run held out, --set holdout=N).")
@click.option("--batch-size", type=int, default=250, show_default=True, help="Generation and feature batch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated samples.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--kid-subset-size", type=int, default=1000, show_default=True, help="KID subset size.")
@click.option("--kid-subsets", type=int, default=100, show_default=True, help="KID subsets.")
@click.option("--interp-alphas", default="0.5", show_default=True,
              help="α of the Interp column: 0.5 (RAE's midpoints) or a grid, e.g. 0.1,0.2,...")
@click.option("--data-root", help="Dataset location if it moved since training.")
@click.option("--trust-checkpoint", is_flag=True, help="Load checkpoints that need pickle (unsafe).")
@click.option("--quiet", is_flag=True, help="No progress bars and no table.")
def eval_cmd(run_dir, fid_samples, metrics, what, fid_weights, features, split, batch_size, seed, device,
             kid_subset_size, kid_subsets, interp_alphas, data_root, trust_checkpoint, quiet):
    """Score a finished run; writes RUN_DIR/results.json (scores with their protocol)."""
    from wae_bench.evaluate import evaluate_run

    evaluate_run(run_dir, fid_samples=fid_samples, metrics=_csv(metrics), what=_csv(what), split=split,
                 fid_weights=fid_weights, features=features, batch_size=batch_size, seed=seed, device=device,
                 quiet=quiet, kid_subset_size=kid_subset_size, kid_subsets=kid_subsets,
                 interp_alphas=_alphas(interp_alphas), data_root=data_root, trust=trust_checkpoint)
    click.echo(f"results: {run_dir.rstrip('/')}/results.json")


COMMANDS = [eval_cmd]
