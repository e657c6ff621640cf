"""`wae-bench list`: registered regularizers, architectures and datasets."""
from __future__ import annotations

import click
from rich.table import Table

from wae_bench.config import to_dict
from wae_bench.progress import stdout as console
from wae_bench.registry import ARCHITECTURES, DATASETS, REGULARIZERS


def _params(spec, size: int) -> str:
    # (imports torch, ~2 s: `wae-bench --help` must not)
    from wae_bench.nets import build_arch, count_params

    try:
        return f"{count_params(build_arch(spec, size, 3, 128)) / 1e6:.2f}M"
    except Exception as e:  # a third-party net that fails to build is reported
        return f"[red]fails: {type(e).__name__}[/]"


@click.command("list")
def list_cmd():
    """Show regularizers (paper, defaults), architectures (parameters) and datasets."""
    t = Table(title="regularizers  (--reg; settings with --set reg.KEY=VALUE)", show_lines=False)
    for c in ("name", "paper", "prior", "defaults"):
        t.add_column(c, overflow="fold")
    for name, cls in REGULARIZERS.items():
        d = to_dict(cls.Config())
        t.add_row(name, cls.paper, cls.prior, " ".join(f"{k}={v}" for k, v in d.items()))
    for name, why in REGULARIZERS.broken.items():
        t.add_row(name, f"[red]failed to load: {why}[/]", "", "")
    console.print(t)
    a = Table(title="architectures  (--arch; parameters at 32x32 / 64x64, d=128, RGB)")
    for c in ("name", "source", "image sizes", "params"):
        a.add_column(c, overflow="fold")
    for name, spec in ARCHITECTURES.items():
        sizes = spec.sizes or (32, 64)
        a.add_row(name, spec.paper, ", ".join(map(str, spec.sizes)) if spec.sizes else f"multiples of {spec.multiple}",
                  " / ".join(_params(spec, s) for s in sizes))
    for name, why in ARCHITECTURES.broken.items():
        a.add_row(name, f"[red]failed to load: {why}[/]", "", "")
    console.print(a)
    d = Table(title="datasets  (--dataset, --data-root)")
    for c in ("name", "source", "size", "default arch", "epochs"):
        d.add_column(c, overflow="fold")
    for name, spec in DATASETS.items():
        d.add_row(name, spec.source, f"{spec.image_size}x{spec.image_size}x{spec.channels}", spec.arch, str(spec.epochs))
    for name, why in DATASETS.broken.items():
        d.add_row(name, f"[red]failed to load: {why}[/]", "", "", "")
    console.print(d)


COMMANDS = [list_cmd]
