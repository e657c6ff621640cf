"""`wae-bench list`: registered regularizers, architectures and datasets."""
from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from wae_bench.config import TrainConfig, key_of, to_dict
from wae_bench.errors import WaeError
from wae_bench.progress import stdout as console
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS


def _params(spec, size: int, notes: list[str]) -> str:
    """The parameter count of ``spec``'s net at ``size``, a third-party one
    probed against the contract (:mod:`wae_bench.nets.contract`; the
    built-ins' probes are the tests'); a net that fails adds its line to ``notes``."""
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.nets import build_arch, count_params
    from wae_bench.plugin_fault import plugin_fault

    try:
        ae = build_arch(spec, size, 3, 128, check=not ARCHITECTURES.builtin(spec.name))
        return f"{count_params(ae) / 1e6:.2f}M"
    except WaeError as e:
        notes.append(f"{spec.name} at {size}x{size}: {e}")
        return "[red]fails: see below[/]"
    except Exception as e:  # a third-party net that fails to build is reported
        fault = plugin_fault(e)
        if fault is not None:
            notes.append(f"{spec.name} at {size}x{size}: {fault}")
        return f"[red]fails: {type(e).__name__}[/]"


def _plan(name: str, dataset: str, arch: str | None):
    """The one resolution a run of ``name`` on ``dataset`` (and ``arch``)
    uses: its Config's defaults with the plugin's ``defaults(setup)`` applied,
    and which of them are provisional; None where that combination is invalid."""
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.config import TrainConfig
    from wae_bench.run.build import resolve

    try:
        return resolve(TrainConfig(regularizer=name, dataset=dataset, arch=arch))
    except WaeError:
        return None


def _defaults(name: str, dataset: str, arch: str | None) -> dict | None:
    """The settings a run of ``name`` there starts from (:func:`_plan`)."""
    plan = _plan(name, dataset, arch)
    return None if plan is None else to_dict(plan.cfg.reg)


def _varying(name: str) -> set[str]:
    """Keys of ``name`` whose default differs between datasets or architectures."""
    seen = [d for ds in DATASETS.names() for a in (None, *ARCHITECTURES.names())
            if (d := _defaults(name, ds, a)) is not None]
    return {k for k in (seen[0] if seen else {}) if len({repr(d.get(k)) for d in seen}) > 1}


@click.command("list")
@click.option("--dataset", default=TrainConfig.dataset, show_default=True,
              help="Show the regularizers' defaults on this dataset (they vary by dataset and architecture).")
@click.option("--arch", help="... and this architecture. Default: the dataset's.")
def list_cmd(dataset, arch):
    """Show regularizers (paper, defaults), architectures (parameters) and datasets."""
    spec = DATASETS.get(dataset)
    arch = ARCHITECTURES.get(arch).name if arch else spec.arch
    t = Table(title=f"regularizers  (--reg; settings with --set reg.KEY=VALUE)\ndefaults on {dataset} with {arch}; "
                    f"* varies by dataset or architecture: see `wae-bench list --dataset NAME [--arch NAME]`",
              show_lines=False)
    for c in ("name", "paper", "prior", "defaults"):
        t.add_column(c, overflow="fold")
    notes = []
    for name, cls in REGULARIZERS.items():
        plan, vary = _plan(name, dataset, arch), _varying(name)
        d = None if plan is None else to_dict(plan.cfg.reg)
        unsettled = {} if plan is None else {key_of(k): why for k, why in plan.provisional.items()}
        shown = " ".join(f"{k}={v}{'*' if k in vary else ''}{'†' if k in unsettled else ''}" for k, v in d.items()) \
            if d is not None else f"[red]not valid with {arch} on {dataset}[/]"
        t.add_row(name, cls.paper, cls.prior, shown)
        notes += [f"† {name}'s {k} on {dataset} with {arch} is provisional: {why}" for k, why in unsettled.items()]
    for name in REGULARIZERS.broken:
        t.add_row(name, f"[red]{escape(REGULARIZERS.trouble(name))}[/]", "", "")
    console.print(t)
    for line in notes:
        console.print(line, markup=False, soft_wrap=True)
    a = Table(title="architectures  (--arch; parameters at 32x32 / 64x64, d=128, RGB)")
    for c in ("name", "source", "image sizes", "params"):
        a.add_column(c, overflow="fold")
    failing: list[str] = []
    for name, spec in ARCHITECTURES.items():
        sizes = spec.sizes or (32, 64)
        a.add_row(name, spec.paper, ", ".join(map(str, spec.sizes)) if spec.sizes else f"multiples of {spec.multiple}",
                  " / ".join(_params(spec, s, failing) for s in sizes))
    for name in ARCHITECTURES.broken:
        a.add_row(name, f"[red]{escape(ARCHITECTURES.trouble(name))}[/]", "", "")
    console.print(a)
    for line in failing:
        console.print(line, markup=False, soft_wrap=True)
    d = Table(title="datasets  (--dataset, --data-root)")
    for c in ("name", "source", "size", "default arch", "epochs"):
        d.add_column(c, overflow="fold")
    for name, spec in DATASETS.items():
        d.add_row(name, spec.source, f"{spec.image_size}x{spec.image_size}x{spec.channels}", spec.arch, str(spec.epochs))
    for name in DATASETS.broken:
        d.add_row(name, f"[red]{escape(DATASETS.trouble(name))}[/]", "", "", "")
    console.print(d)


COMMANDS = [list_cmd]
