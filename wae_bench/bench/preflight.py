"""What every cell of a bench or a head-to-head would fail on alike, refused
in one line before its first cell and before anything is written in the
results folder: a device that is not one, or not on this machine
(``--device foo``, ``--device cuda`` without a GPU), and a dataset's data
root that is missing, does not exist or lacks the dataset's files
(``wae-bench compare moca ae --dataset cifar10`` without ``--data-root``).
Without it each cell failed with the same line into its ``failed.json``,
and the table listed every cell as failed.

(A package the cells need that is not installed:
:func:`wae_bench.bench.runner.check_requirements`.)
"""
from __future__ import annotations

from pathlib import Path

from wae_bench import worded
from wae_bench.bench import grid, tune
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import Cell
from wae_bench.bench.spec import Spec
from wae_bench.errors import WaeError


def check(folder: ResultsDir, spec: Spec, cells: list[Cell], configs: dict[str, dict], *,
          retry_failed: bool = True, device: str | None = None, devices: list[str] = ()) -> None:
    """Refuse the run of ``cells`` (``configs``: their resolved configs) in
    ``folder`` where the cells it would train (those not done,
    :func:`~wae_bench.bench.runner.to_run`) would all fail on their device
    (``devices`` of ``--devices``, else ``device`` of ``--device``, else each
    cell's own ``device``) or on their data root (:func:`check_devices`,
    :func:`check_data_roots`)."""
    from wae_bench.bench.runner import to_run

    cells = to_run(tune.Tuning(folder, spec, grid.expand(spec)), cells, retry_failed)
    if not cells:
        return
    if devices:
        check_devices(list(devices), "the cells sent to it")
    else:
        check_devices([device] if device else [configs[c.id].get("device", "auto") for c in cells],
                      f"each of its {len(cells)} cell(s) to run")
    check_data_roots(cells, configs)


def _did_not_start(cells: str) -> str:
    """``(the bench did not start: CELLS would fail on it)``, naming the command."""
    command = worded.now().command
    who = "the bench" if command == "bench" else f"wae-bench {command}"
    return f"({who} did not start: {cells} would fail on it)"


def check_devices(names: list[str], cells: str) -> None:
    """Each device in ``names`` is one torch knows and this machine has
    (:func:`wae_bench.run.build.pick_device`, the check a cell makes first);
    ``cells``: which cells would fail on a bad one."""
    # (import torch: the bench and compare commands have already)
    from wae_bench.run.build import pick_device

    for name in dict.fromkeys(names):
        try:
            pick_device(name)
        except WaeError as e:
            raise WaeError(f"{e} {_did_not_start(cells)}") from None


def check_data_roots(cells: list[Cell], configs: dict[str, dict]) -> None:
    """Each dataset of ``cells`` has the data root it needs, a root given
    exists (:func:`wae_bench.data.spec.root_problem`) and, for a built-in
    dataset, holds its files where its scan looks (:func:`~wae_bench.data.spec.scan_root`,
    what `bench --dry-run` reports: ``no folder train split in ...``),
    checked once per dataset and root without decoding an image. (A
    plugin's scan hook is left to the dry run: a broken one must not stop
    a dataset its loader reads.)"""
    from wae_bench.data.spec import is_builtin, root_problem, scan_root
    from wae_bench.registry import DATASETS

    groups: dict[tuple, int] = {}
    for c in cells:
        cfg = configs[c.id]
        key = (cfg["dataset"], cfg.get("data_root"), bool(cfg.get("download")))
        groups[key] = groups.get(key, 0) + 1
    for (name, root, download), n in groups.items():
        ds = DATASETS.get(name)
        refused = _did_not_start(f"each of its {n} cell(s) to run" + (f" on {name}" if len(groups) > 1 else ""))
        problem = root_problem(ds, root, download)
        if problem:
            raise WaeError(f"{problem} {refused}")
        if root is not None and not download and is_builtin(ds):
            try:
                scan_root(ds, Path(root).expanduser())
            except WaeError as e:
                raise WaeError(f"{e} {refused}") from None
