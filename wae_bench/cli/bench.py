"""`wae-bench bench SPEC`: train and evaluate every cell of a benchmark grid
(MoCA paper, Table 1 and Sec. 5 ablations), resumably, on one or several
devices or machines, into one results folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from wae_bench import worded
from wae_bench.bench import spec as specs
from wae_bench.config import split_list
from wae_bench.errors import WaeError, source_file
from wae_bench.launch import refuse_under_torchrun
from wae_bench.progress import console, stdout


def _load(spec_path: str, sets: tuple[str, ...], data_root: str | None, fid_weights: str | None):
    extra = [f"train.data_root={json.dumps(data_root)}"] if data_root else []
    extra += [f"eval.fid_weights={json.dumps(fid_weights)}"] if fid_weights else []
    spec = specs.load(spec_path, [*sets, *extra])
    spec.overrides = list(sets)   # (what spec.json records: the locations are this machine's, outside the hash)
    return spec


def _estimate(tuning, cells, configs, states, device: str | None, estimate_on: str | None,
              concurrent: int | None, scanned: dict | None = None):
    """The time estimate of the cells still to run (:mod:`wae_bench.bench.estimate`; ``scanned``: the
    split sizes :func:`data_check` counted), or None without rates."""
    from wae_bench.bench import estimate, tune

    spec = tuning.spec
    todo = [c for c in cells if states[c.id] not in tune.SETTLED]
    kind = estimate_on or estimate.device_kind(device or (configs[cells[0].id]["device"] if cells else "auto"))
    est = estimate.estimate(todo, configs, {c.id: tune.eval_settings(spec, c) for c in todo}, kind, concurrent or 1,
                            scanned=scanned)
    if est is not None:   # the tuning cells the selected final cells wait for, left out by --only or --shard
        chosen = {c.id for c in cells}
        waited = {t.id: t for c in todo if c.role == "final" for t in tuning.members(c) if t.id not in chosen}
        est.unselected_tuning = sum(tuning.state(t) not in tune.SETTLED for t in waited.values())
    return est, len(todo)


def data_check(cells, configs: dict[str, dict], scanned: dict | None = None) -> list[tuple[str, str]]:
    """``(kind, text)`` lines on the data of ``cells`` (kind ``data``,
    ``note``, ``warning`` or ``error``), one check per dataset and root,
    without decoding an image: the root (:func:`~wae_bench.data.spec.root_problem`),
    then the dataset's ``scan`` hook (where the images are, how many per
    split, the variant; a plugin without the hook: the root exists), and a
    hold-out that the training images found cannot fit (the bench would
    stop at its first tuning cell, :class:`~wae_bench.data.holdout.HoldoutSize`).
    ``scanned`` (a dict) receives the split sizes counted, by (dataset,
    data_root), for the time estimate (:data:`wae_bench.bench.estimate.Scanned`)."""
    from wae_bench.registry import DATASETS

    groups: dict[tuple, list] = {}
    for c in cells:
        cfg = configs[c.id]
        groups.setdefault((cfg["dataset"], cfg.get("data_root"), bool(cfg.get("download"))), []).append(c)
    out: list[tuple[str, str]] = []
    for (name, root, download), group in groups.items():
        ds = DATASETS.get(name)
        lines, n_train = _data_lines(ds, name, root, download, group, configs, scanned)
        out += lines
        out += _holdout_warning(name, group, configs, n_train if n_train is not None else getattr(ds, "n_train", None))
    return out


def _data_lines(ds, name, root, download, group, configs, scanned) -> tuple[list[tuple[str, str]], int | None]:
    """:func:`data_check`'s lines on one dataset and root, and the number of
    training images its scan found (None: not scanned)."""
    from wae_bench.data.spec import root_problem, scan_root

    problem = root_problem(ds, root, download)
    if problem:
        return [("error", f"{problem}; every {name} cell would fail on it")], None
    if download:
        return [("data", f"{name}: downloaded by its first cell into {str(root)!r} (train.download = true); "
                         "not checked")], None
    if root is None:
        return [("data", f"{name}: {ds.source} (needs no data_root)")], None
    path = Path(root).expanduser()
    try:
        found = scan_root(ds, path)
    except WaeError as e:
        return [("error", f"{name} at {str(root)!r}: {e}")], None
    if found is None:
        return [("data", f"{name} at {str(root)!r}: the folder exists (the dataset has no scan hook: its "
                         f"files are first read by its first cell)")], None
    if scanned is not None:
        scanned[(name, root)] = dict(found.sizes)
    labels = sorted({configs[c.id].get("data_variant") or found.variant for c in group} - {found.variant})
    recorded = f", recorded as {', '.join(labels)} (train.data_variant)" if labels else ""
    sizes = " / ".join(f"{n:,} {split}" for split, n in found.sizes.items())
    return ([("data", f"{name} at {str(root)!r}: {found.where}: {sizes} (variant {found.variant}{recorded})")]
            + [("note", text) for text in found.notes]), found.sizes.get("train")


def _holdout_warning(name, group, configs, n_train: int | None) -> list[tuple[str, str]]:
    """A warning where a hold-out of ``group`` leaves fewer than its cell's
    batch of the ``n_train`` training images (scanned, else the dataset's
    known size; none when unknown): the bench would stop at its first cell
    that holds them out; where only some values of a tuned batch size do not
    fit, those tuning cells will fail (:func:`~wae_bench.bench.runner.own_batch`)."""
    from wae_bench.bench.runner import own_batch

    held = [c for c in group if configs[c.id].get("holdout")]   # (a final cell's batch may be None: tuned)

    def fits(c) -> bool:
        return n_train - configs[c.id]["holdout"] >= configs[c.id]["batch_size"]

    if n_train is None:
        return []
    bad = [c for c in held if not fits(c)]
    value_only = [c for c in bad if own_batch(c) and any(fits(o) for o in held if o.group == c.group)]
    stops = [c for c in bad if not own_batch(c)]
    if not bad:
        return []
    cell = max(stops or [c for c in bad if c not in value_only] or value_only,
               key=lambda c: configs[c.id]["holdout"] + configs[c.id]["batch_size"])
    size, batch = configs[cell.id]["holdout"], configs[cell.id]["batch_size"]
    key = "tune.holdout" if cell.role == "tune" else "train.holdout"
    said = (f"{key} = {size:,} leaves {n_train - size:,} of the {n_train:,} {name} training images found, "
            f"fewer than one batch of {batch:,}" if size < n_train else
            f"{key} = {size:,} would hold out all of the {n_train:,} {name} training images found, leaving none to "
            f"train on (one batch is {batch:,})")
    if cell in value_only:   # (a tuned batch only: that value's cell fails, the others train)
        return [("warning", f"{said}, the tuned batch_size of {cell.id}: that value will fail "
                            f"(--exclude-failed-tuning excludes it from the choice)")]
    smallest = min(configs[c.id]["batch_size"] for c in held if c.group == cell.group)
    most = f", at most {n_train - smallest:,}" if n_train > smallest else ""
    what = ("the bench would stop at the first cell that holds them out" if cell in stops else
            f"no tuned batch_size of {cell.regularizer} fits, so each of its tuning cells will fail")
    return [("warning", f"{said}; {what}: lower it (--set {key}=N{most})")]


def _dry_run(folder, spec, cells, everything, configs: dict[str, dict], as_json: bool, device: str | None = None,
             estimate_on: str | None = None, concurrent: int | None = None) -> None:
    from wae_bench.bench import estimate, tune
    from wae_bench.bench.tuning_summary import tuned_note

    tuning = tune.Tuning(folder, spec, everything)
    states = {c.id: tuning.state(c) for c in cells}
    stale = {c.id: ", ".join(tuning.changes(c)) for c in cells if states[c.id] == "stale"}
    notes = {}
    for c in cells:
        if c.role == "final":   # the tuned settings: the chosen values, or null while pending
            values, notes[c.id] = tuned_note(tuning, c)
            configs[c.id] = tune.apply(configs[c.id], values or {k: None for k in c.tuned})
    scanned: dict = {}
    checked = data_check(cells, configs, scanned)   # (first: the estimate counts the images it found)
    est, n_todo = _estimate(tuning, cells, configs, states, device, estimate_on, concurrent, scanned)
    if as_json:
        _print_data(checked, console)
        click.echo(json.dumps([{"id": c.id, "role": c.role, "state": states[c.id], "config": configs[c.id],
                                **({"tuning": notes[c.id]} if c.id in notes else {}),
                                **({"stale": stale[c.id]} if c.id in stale else {}),
                                **({"estimate": est.cells[c.id].as_dict()} if est and c.id in est.cells else {})}
                               for c in cells], indent=2))
        return
    flat = {cid: {k: json.dumps(v, sort_keys=True) for k, v in cfg.items()} for cid, cfg in configs.items()}
    keys = list(next(iter(flat.values())))
    shared = [k for k in keys if len({f[k] for f in flat.values()}) == 1 and k not in ("reg",)]
    # (spec names, paths and values are the user's words: escaped, not read as Rich markup)
    stdout.print(f"[bold]{escape(spec.name)}[/]: {len(cells)} cell(s); shared settings: "
                 + escape(", ".join(f"{k}={flat[cells[0].id][k]}" for k in shared
                                    if k not in ("regularizer", "arch", "dataset", "seed"))),
                 soft_wrap=True)
    stdout.print(f"evaluation: {escape(json.dumps({k: v for k, v in vars(spec.eval).items()}))}", soft_wrap=True)
    if spec.tune is not None:
        stdout.print(f"tuning: {escape(json.dumps({**vars(spec.tune), 'seeds': spec.tune_seeds}))}; tuning cells are "
                     f"scored on the validation split (the held-out training images) by their regularizer's sampler",
                     soft_wrap=True)
    t = Table(show_lines=False)
    for h in ("#", "cell", "state", "est. train", "settings of this cell (resolved)"):
        t.add_column(h, overflow="fold", no_wrap=h == "cell")   # (a cell id is one word to copy)
    for i, c in enumerate(cells, 1):
        own = {k: configs[c.id][k] for k in keys if k not in shared and k not in ("regularizer", "arch", "dataset",
                                                                                  "seed")}
        state = f"stale: {stale[c.id]}" if c.id in stale else states[c.id]
        state = f"{state} ({notes[c.id]})" if c.id in notes else state
        e = est.cells.get(c.id) if est else None
        left = ("—" if states[c.id] in tune.SETTLED else   # (done, diverged or excluded: nothing left to time)
                "?" if e is None or e.train_s is None else estimate.duration(e.train_s))
        t.add_row(str(i), escape(c.id), escape(state), left,
                  escape(" ".join(f"{k}={json.dumps(v)}" for k, v in own.items())))
    stdout.print(t)
    _print_data(checked, stdout)
    if est is None:
        stdout.print(f"no time estimate: no measured rates at {estimate.rates_path()} "
                     f"({source_file('benchmarks/rates.py')} writes them; WAE_BENCH_RATES=PATH names another file)",
                     soft_wrap=True, markup=False)
    else:
        for line in estimate.summary(est, n_todo):
            stdout.print(line, soft_wrap=True, markup=False)


_STYLE = {"data": "bold", "note": "yellow", "warning": "yellow", "error": "red"}


def _print_data(lines: list[tuple[str, str]], out) -> None:
    """:func:`data_check`'s lines, each ``kind: text``."""
    for kind, text in lines:
        out.print(f"[{_STYLE[kind]}]{kind}:[/] {escape(text)}", soft_wrap=True)


@click.command("bench")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Results folder. Default runs/bench/<spec name>.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override the spec, e.g. --set train.epochs=1 --set bench.seeds=[0] (repeatable).")
@click.option("--data-root", help="Dataset location for every cell (train.data_root).")
@click.option("--fid-weights", type=click.Path(dir_okay=False),
              help="Offline FID Inception weights (eval.fid_weights).")
@click.option("--only", help="Cells to run: comma-separated ids or globs, e.g. 'moca-*' or '*-s0'.")
@click.option("--shard", help="I/N: run every N-th cell from the I-th (0 <= I < N), for several machines.")
@click.option("--device", help="Device of every cell (cpu, cuda, cuda:N). Default auto.")
@click.option("--devices", help="Comma-separated devices, one cell per device at a time in subprocesses, "
                                "e.g. cuda:0,cuda:1 (cpu,cpu works too).")
@click.option("--concurrent", type=int, metavar="N",
              help="Train N cells at once in this process on one device, each on its own CUDA stream "
                   "(on the CPU: interleaved steps); each cell's result is what it would be alone.")
@click.option("--dry-run", is_flag=True, help="List the cells, their state and resolved settings, and estimate the "
                                            "time of those left from measured rates; run nothing.")
@click.option("--estimate-on", metavar="DEVICE",
              help="With --dry-run: estimate for this device kind of the rates file, e.g. 'NVIDIA H200' or cpu "
                   "(default: this machine's).")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: every cell's resolved config as JSON.")
@click.option("--skip-failed", is_flag=True, help="Do not retry cells that failed before.")
@click.option("--exclude-failed-tuning", is_flag=True,
              help="Leave the tuning cells that failed before as they are (not retried) and choose each final "
                   "cell's value among the others; recorded in their failed.json (later runs keep it).")
@click.option("--no-table", is_flag=True, help="Do not write the table and plots at the end.")
@click.option("--quiet", is_flag=True, help="No progress bars or progress lines.")
@click.option("--verbose", is_flag=True, help="Each cell's full output (header, steps, score table, protocol) on the "
                                            "console too, not only in RESULTS_DIR/logs/<cell-id>.log.")
def bench_cmd(spec_path, out, sets, data_root, fid_weights, only, shard, device, devices, concurrent, dry_run,
              estimate_on, as_json, skip_failed, exclude_failed_tuning, no_table, quiet, verbose):
    """Train + evaluate every cell of the grid in SPEC (a TOML file); resumable."""
    refuse_under_torchrun("bench", "run it in one process, which spreads its cells over GPUs itself, one cell a "
                                   "GPU: wae-bench bench SPEC --devices cuda:0,cuda:1,...")
    # (import torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.bench import grid
    from wae_bench.bench.folder import WORKER_ENV, ResultsDir

    if device and devices:
        raise WaeError("--device and --devices exclude each other; use --devices cuda:0,cuda:1 for several")
    if concurrent is not None and devices:
        raise WaeError("--concurrent and --devices exclude each other; --concurrent N trains N cells in this "
                       "process on one --device")
    if concurrent is not None and concurrent < 1:
        raise WaeError(f"--concurrent {concurrent}: give a number of cells >= 1")
    spec = _load(spec_path, sets, data_root, fid_weights)
    folder = ResultsDir(out or Path("runs") / "bench" / spec.name)
    with worded.bench("tune.holdout" if spec.tune is not None else "train.holdout"):   # (the fixes' words)
        everything = grid.expand(spec)
        configs = grid.resolve_all(everything)  # every cell valid before anything runs
        part = grid.parse_shard(shard)
        cells = grid.select(grid.shard(everything, part), only)
        folder.check(spec)  # a folder of another spec is refused before anything runs
        from wae_bench.bench.tune import nothing_to_tune, unjudged_line

        if dry_run or not (quiet or os.environ.get(WORKER_ENV) == str(folder.path.resolve())):
            # (first, the folder: a run from another directory is seen before it trains into a new one; a
            # worker's output is its cell's log; a dry run's own listing is on stdout, but for its JSON)
            (stdout if dry_run and not as_json else console).print(folder.describe(), markup=False, soft_wrap=True)

        for line in nothing_to_tune(spec, everything):
            console.print(line, markup=False)
        unjudged = unjudged_line(spec, everything)
        if unjudged:
            console.print(f"warning: {unjudged}", markup=False, soft_wrap=True)
        if dry_run:
            _dry_run(folder, spec, cells, everything, configs, as_json, device, estimate_on, concurrent)
            return
        from wae_bench.bench import preflight
        from wae_bench.bench.runner import check_requirements

        check_requirements(folder, spec, cells, configs, retry_failed=not skip_failed)   # (one line, nothing written)
        preflight.check(folder, spec, cells, configs, retry_failed=not skip_failed, device=device,
                        devices=split_list(devices) if devices else [])   # (a bad device or data root: the same)
        with folder.lock(part, only):
            claim(folder, spec)
            _run(folder, spec, cells, spec_path, sets, data_root, fid_weights, device, devices, concurrent, skip_failed,
                 no_table, quiet, verbose, (everything, grid.shard(everything, part)), exclude_failed_tuning)


def _run(folder, spec, cells, spec_path, sets, data_root, fid_weights, device, devices, concurrent, skip_failed,
         no_table, quiet, verbose, scope=None, exclude_failed: bool = False) -> None:
    """Run ``cells``; ``scope``: (the whole expansion, this run's shard of it),
    for the words on final cells that wait; ``exclude_failed``: the failed
    tuning cells of their groups are excluded from the choice first
    (:meth:`~wae_bench.bench.tune.Tuning.exclude_failed`)."""
    from wae_bench.bench import runner, tune
    from wae_bench.bench.folder import WORKER_ENV
    from wae_bench.bench.output import Output

    worker = os.environ.get(WORKER_ENV) == str(folder.path.resolve())   # (its output is its cell's log)
    output = Output(folder, spec, verbose=verbose, quiet=quiet, worker=worker)

    if devices:
        slots = split_list(devices)
        passthrough = [a for s in sets for a in ("--set", s)]
        passthrough += ["--data-root", data_root] if data_root else []
        passthrough += ["--fid-weights", fid_weights] if fid_weights else []
        outcomes = runner.run_parallel(folder, spec, cells, slots,
                                       runner.child_command(str(Path(spec_path).resolve()),
                                                            folder.path.resolve(), passthrough),
                                       retry_failed=not skip_failed, exclude_failed=exclude_failed,
                                       output=output)
    elif concurrent is not None:
        from wae_bench.bench.concurrent import run_concurrent

        outcomes = run_concurrent(folder, spec, cells, concurrent, device=device, retry_failed=not skip_failed,
                                  exclude_failed=exclude_failed, quiet=quiet, output=output)
    else:
        outcomes = runner.run_serial(folder, spec, cells, device=device, quiet=quiet,
                                     retry_failed=not skip_failed, exclude_failed=exclude_failed,
                                     output=output)
    if not no_table:
        write_table(folder)
    after = tune.Tuning(folder, spec, scope[0] if scope else None)   # (the choices as the run left them)
    moved_choice(after, cells)
    summarize(folder, outcomes, waiting_note(after, cells, scope[1], outcomes) if scope else None)


def moved_choice(tuning, cells) -> None:
    """A warning line on the final cells this run's tuning cells made stale
    (the choice moved off the value they trained at): their scores are left
    out of the table, and the next run refuses until they are retrained."""
    folder = tuning.folder
    found = [(c, d) for c in cells if c.role == "final" for d in [tuning.changes(c)] if d]
    if found:
        shown = "; ".join(f"{c.id} ({', '.join(d)})" for c, d in found[:3]) + ("; ..." if len(found) > 3 else "")
        console.print(f"warning: {len(found)} final cell(s) were trained at other values than their tuning chooses "
                      f"now: {shown}; their scores are left out of the table (stale): remove their folders "
                      f"({folder.cells_path}/ID) and rerun to retrain them", soft_wrap=True, markup=False)


def claim(folder, spec) -> None:
    """Record ``spec`` in ``folder`` (:meth:`ResultsDir.claim`), one line per
    kind of member it adds (seeds, regularizers, archs, datasets)."""
    added = folder.claim(spec)
    if not added:
        return
    bench = folder.spec().bench
    for key, members in added.items():
        word = specs.MEMBERS[key] + ("s" if len(members) > 1 else "")
        console.print(f"adding {word} {', '.join(map(str, members))} to {folder.path} (the cells already done are "
                      f"kept; its table now covers {key} {', '.join(map(str, getattr(bench, key)))})", soft_wrap=True, markup=False)


def waiting_note(tuning, selected, in_shard, outcomes) -> str | None:
    """The summary's clause on the final cells of ``outcomes`` that wait, by
    why (:func:`~wae_bench.bench.tune.wait_line`): a failed tuning cell (the
    fix: retry it, or exclude it), tuning cells this run's ``--only`` left out (the fix:
    select them; the same command would wait forever), or another shard's;
    None when no cell waits.  ``selected``: this run's cells, ``in_shard``:
    its shard's."""
    from wae_bench.bench import tune

    waited = [o.cell for o in outcomes if o.state == "waiting"]
    if not waited:
        return None
    picked, shard_ids = {c.id for c in selected}, {c.id for c in in_shard}
    failed, left_out, other = [], {}, 0
    for c in waited:
        ch = tuning.choice(c)
        out = [t for t in ch.pending if t not in picked and t in shard_ids]
        if ch.failed:
            failed += [t for t in ch.failed if t not in failed]
        elif out:
            left_out.setdefault(f"tune-{c.regularizer}-*", None)
        else:
            other += 1
    parts = []
    if failed:
        parts.append(f"final cells wait for {len(failed)} failed tuning cell(s) ({', '.join(failed[:3])}"
                     f"{', ...' if len(failed) > 3 else ''}): fix the cause and {tune.retry_words()} to "
                     f"retry them, then the choice is made, {tune.EXCLUDE_HINT}")
    if left_out:
        parts.append(f"final cells wait for tuning cells --only does not select: add --only "
                     f"'{','.join(left_out)}' (or run them first)")
    if other:
        parts.append(f"{other} cell(s) wait for tuning cells not yet run (other shards): rerun the same "
                     f"command after them")
    return "; ".join(parts)


def summarize(folder, outcomes, waiting_text: str | None = None) -> None:
    """One line on the cells of this run (``waiting_text``: what the cells
    that wait need, :func:`waiting_note`); an error naming the cells that
    failed (for tuning cells, with the alternative of excluding them,
    :data:`~wae_bench.bench.tune.EXCLUDE_FLAG`)."""
    from wae_bench.bench import tune

    failed = [o.cell.id for o in outcomes if o.state == "failed" and o.ran]
    tuning_failed = any(o.cell.role == "tune" for o in outcomes if o.state == "failed" and o.ran)
    left = sum(o.state == "failed" and not o.ran for o in outcomes)
    done = sum(o.state == "done" for o in outcomes)
    waiting = sum(o.state == "waiting" for o in outcomes)
    diverged = sum(o.state == "diverged" for o in outcomes)
    excluded = sum(o.state == "excluded" for o in outcomes)
    busy = sum(o.state == "busy" for o in outcomes)
    console.print(f"{done}/{len(outcomes)} cell(s) done in {folder.path}"
                  + (f"; {diverged} tuning cell(s) diverged (recorded, never chosen)" if diverged else "")
                  + (f"; {excluded} failed tuning cell(s) excluded (recorded, never chosen, never retried)"
                     if excluded else "")
                  + (f"; {busy} cell(s) in use by other processes, left to them" if busy else "")
                  + (f"; {left} failed cell(s) left as they were (--skip-failed)" if left else "")
                  + (f"; {waiting_text}" if waiting and waiting_text else
                     f"; {waiting} cell(s) wait for tuning cells not yet run (other shards): rerun the same "
                     f"command after them" if waiting else ""), soft_wrap=True, markup=False)
    if failed:
        raise WaeError(f"{len(failed)} cell(s) failed ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''}); "
                       f"see {folder.path}/cells/<id>/failed.json, fix the cause and rerun to retry them"
                       + (f" (a failed tuning cell: {tune.EXCLUDE_HINT[3:]})" if tuning_failed else ""))


def write_table(folder, html: bool = False):
    """The table and plots of ``folder``, written and printed, and every
    export the folder holds (table.tex, cells.json, table-seeds.csv,
    report.html) rewritten with them (:func:`wae_bench.bench.export.write`;
    ``html``: the report in any case); returns the
    :class:`~wae_bench.bench.table.Report`."""
    # (import torch and matplotlib, ~3 s: `wae-bench --help` must not)
    from wae_bench.bench import export, plots, table, table_render

    rep = table.collect(folder)
    paths = table_render.write(folder, rep)
    paths += plots.write_all(folder, rep.spec, rep.tuning_read.cells, rep.metric,   # (of the spec's eval.what)
                             read=rep.tuning_read)
    paths += export.write(folder, rep, html=html)
    table_render.print_rich(rep, stdout)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return rep


COMMANDS = [bench_cmd]
