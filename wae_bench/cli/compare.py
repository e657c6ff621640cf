"""`wae-bench compare REG REG ...`: a head-to-head in one line -- a bench spec
generated into its results folder (:mod:`wae_bench.bench.compare`), its
cells run through the bench runner (resumable, done cells skipped), then the
table, one picture row per regularizer and the HTML report."""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import click

from wae_bench.config import TrainConfig, split_list
from wae_bench.errors import WaeError
from wae_bench.launch import refuse_under_torchrun
from wae_bench.progress import console, stdout


@click.command("compare")
@click.argument("regularizers", metavar="REG...", nargs=-1, required=True)
@click.option("--dataset", default=TrainConfig.dataset, show_default=True, help="Dataset of every cell.")
@click.option("--data-root", help="Dataset location (train.data_root); the embedded digits need none.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds, e.g. 0,1,2.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override the generated spec, e.g. --set train.epochs=5 --set eval.fid_samples=200 (repeatable).")
@click.option("--epochs", type=int, help="Training epochs of every cell (the same as --set train.epochs=N).")
@click.option("--fid-samples", type=int, help="Generated images per FID (the same as --set eval.fid_samples=N).")
@click.option("--features", type=click.Choice(["inception", "standin"]),
              help="standin: a quick smoke test that is NOT FID (the same as --set eval.features=standin).")
@click.option("--tune", "tuned", is_flag=True,
              help="Tune every regularizer first (the bench's tuning protocol: its plugin's grid, scored on held-out "
                   "training images), then train it at the value chosen; --set tune.holdout=N, tune.epochs=N, "
                   "tune.fid_samples=N change the tuning.")
@click.option("--exclude-failed-tuning", is_flag=True,
              help="With --tune: choose among the other values where a tuning cell failed before (an error you "
                   "accept, e.g. out of memory at one value); recorded in its failed.json, never retried.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Results folder. Default runs/compare/DATASET-REGS (plus -tuned with --tune, the spec's hash with "
                   "--set); more --seeds add to the same folder.")
@click.option("--fid-weights", type=click.Path(dir_okay=False), help="Offline FID Inception weights (eval.fid_weights).")
@click.option("--device", help="Device of every cell (cpu, cuda, cuda:N). Default auto.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def compare_cmd(regularizers, dataset, data_root, seeds, sets, epochs, fid_samples, features, tuned,
                exclude_failed_tuning, out, fid_weights, device, quiet):
    """Train and score REG... alike (the dataset's default budget, real FID), then print the table and
    each one's pictures and write the HTML report. Scores the prior samples, the reconstructions (REC) and
    each regularizer's own sampler (the ex-post GMM for the AE and the RAE family). Resumable: rerun it
    to continue. Without --tune each regularizer trains at its plugin's default settings."""
    refuse_under_torchrun("compare", "run it in one process: its cells train one after another on --device")
    # (import torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.bench import compare, grid, preflight, report, runner, tune
    from wae_bench.bench import spec as specs
    from wae_bench.bench.folder import ResultsDir
    from wae_bench.bench.output import Output
    from wae_bench.cli.bench import claim, moved_choice, summarize, waiting_note, write_table
    from wae_bench import worded

    shorthand = [*([f"train.epochs={epochs}"] if epochs is not None else []),
                 *([f"eval.fid_samples={fid_samples}"] if fid_samples is not None else []),
                 *([f"eval.features={json.dumps(features)}"] if features else [])]
    sets = (*shorthand, *sets)   # (a --set of the same key, given after, wins)
    if fid_samples is not None and fid_samples < 2:   # (said as the flag given; the spec's check says eval.fid_samples)
        raise WaeError(f"--fid-samples must be >= 2, got {fid_samples}")
    try:
        seed_list = [int(s) for s in split_list(seeds)]
    except ValueError:
        seed_list = None
    if seed_list is None or any(s < 0 for s in seed_list):
        raise WaeError(f"bad --seeds {seeds!r}: write integers >= 0, e.g. --seeds 0,1,2")
    locations = [*([f"train.data_root={json.dumps(data_root)}"] if data_root else []),
                 *([f"eval.fid_weights={json.dumps(fid_weights)}"] if fid_weights else [])]
    data = compare.spec_data(list(regularizers), dataset, seed_list or [0], [*sets, *locations], tune=tuned)
    spec = specs.parse(data)
    if exclude_failed_tuning and spec.tune is None:
        raise WaeError("--exclude-failed-tuning chooses among tuned values, and without --tune nothing is tuned: "
                       "add --tune, or drop --exclude-failed-tuning")
    own = compare.default_out(spec, changed=bool(sets))
    folder = ResultsDir(out or own)
    cells = grid.expand(spec)
    holdout_key = "tune.holdout" if spec.tune is not None else "train.holdout"   # (a cell's fixes: spec keys)
    with worded.bench(holdout_key, command="compare"):
        configs = grid.resolve_all(cells)      # every cell valid before anything runs
    compare.check_tuning_alike(folder, spec)   # a tuned and an untuned one never share a folder
    compare.check_same_head_to_head(folder, spec, own.name)   # (other regularizers: a folder of their own)
    folder.check(spec, compare.other_spec_fix(folder))   # another spec's folder: refused before anything is written
    with worded.bench(holdout_key, command="compare"):
        runner.check_requirements(folder, spec, cells, configs)   # (a package missing: one line, nothing written)
        preflight.check(folder, spec, cells, configs, device=device)   # (a bad device or data root: the same)
    _check_weights(spec)   # (after: it may provision the FID weights into the cache)
    path = folder.path / compare.SPEC_FILE
    args = [*regularizers, *(["--dataset", dataset] if dataset != TrainConfig.dataset else []),
            *(["--seeds", seeds] if seed_list != [0] else []), *(["--tune"] if tuned else []),
            *(a for s in sets for a in ("--set", s))]
    _write_once(path, compare.spec_file_text(data, shlex.join(["wae-bench", "compare", *args])))
    spec = specs.load(path)
    claim(folder, spec)
    for line in tune.nothing_to_tune(spec, cells, command="compare"):
        stdout.print(line, markup=False)
    _take_over(folder, spec, cells)
    # (a hold-out error's key; the fixes of every message, to the summary's, name this command)
    with worded.bench(holdout_key, command="compare"):
        outcomes = runner.run_serial(folder, spec, cells, device=device, quiet=quiet,   # (a few cells: each one's block)
                                     exclude_failed=exclude_failed_tuning,
                                     output=Output(folder, spec, verbose=True, quiet=quiet))
        write_table(folder, html=True)
        _print_pictures(compare.picture_rows(folder, cells), folder.path / report.REPORT_NAME)
        after = tune.Tuning(folder, spec, cells)
        moved_choice(after, cells)
        summarize(folder, outcomes, waiting_note(after, cells, cells, outcomes))
    console.print(compare.tuning_line(data) if spec.tune is None else _tuned_line(after, cells),
                  soft_wrap=True, highlight=False, markup=False)


def _tuned_line(tuning, cells) -> str:
    """The summary's line on a tuned head-to-head: each regularizer's tuned
    values (or why none is chosen yet), or that it has nothing to tune."""
    from wae_bench.bench.tuning_summary import tuned_note

    firsts: dict[str, object] = {}
    for c in cells:
        if c.role != "tune":
            firsts.setdefault(c.regularizer, c)   # (a regularizer's seeds share its group's choice)
    return "; ".join(f"{reg}: {tuned_note(tuning, c)[1] if c.role == 'final' else 'nothing to tune'}"
                     for reg, c in firsts.items()) + " (the table's settings say each one's)"


def _take_over(folder, spec, cells) -> None:
    """The cells another head-to-head beside this one already trained and
    scored alike (:mod:`wae_bench.bench.reuse`), taken over, in one line."""
    from wae_bench.bench import compare, reuse

    taken = reuse.take_over(folder, spec, cells, reuse.siblings(folder, compare.SPEC_FILE))
    for source in dict.fromkeys(r.source for r in taken):
        ids = [r.cell for r in taken if r.source == source]
        stdout.print(f"reusing {len(ids)} finished cell(s) from {_shown(source)} (trained and scored there with "
                     f"the same settings): {', '.join(ids)}", soft_wrap=True, highlight=False)


def _check_weights(spec) -> None:
    """The FID weights are there (or provisioned now), before any training."""
    # (import torch-fidelity, ~2 s)
    from wae_bench.evaluate import check_options
    from wae_bench.metrics.weights import WeightsMissing

    try:
        check_options(spec.eval)
    except WeightsMissing as e:
        raise WaeError(f"{e}; or, for a smoke test that is not FID, --set eval.features=standin") from None


def _write_once(path: Path, text: str) -> None:
    """The generated spec, unless the folder already holds the same text."""
    from wae_bench import atomic

    if not (path.is_file() and path.read_text() == text):
        atomic.write_text(path, text)


def _shown(p: Path | None) -> str:
    if p is None:
        return "(none)"
    try:
        return os.path.relpath(p)
    except ValueError:   # another drive (Windows)
        return str(p)


def _print_pictures(rows, report_path: Path) -> None:
    """One line per regularizer: the paths of its sample, reconstruction and
    interpolation grids (a terminal cannot show PNGs; the report does)."""
    stdout.print(f"pictures (samples of each one's sampler, reconstructions, interpolations; all of them in {_shown(report_path)}):",
                 soft_wrap=True, highlight=False)
    width = max(len(reg) for reg, _ in rows)
    for reg, paths in rows:
        stdout.print(f"  {reg:<{width}}  " + "  ".join(_shown(p) for p in paths), soft_wrap=True, highlight=False)


COMMANDS = [compare_cmd]
