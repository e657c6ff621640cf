"""`wae-bench report RESULTS_DIR`: a benchmark results folder as one
self-contained HTML page (table, plots, protocol, failed cells, every cell's
pictures; :mod:`wae_bench.bench.report`)."""
from __future__ import annotations

import click

from wae_bench.progress import console


@click.command("report")
@click.argument("results_dir", metavar="RESULTS_DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--out", type=click.Path(dir_okay=False), help="HTML file to write. Default RESULTS_DIR/report.html.")
def report_cmd(results_dir, out):
    """One HTML page of a results folder that opens offline: the table, the plots, the protocol, the failed
    cells and every cell's sample / reconstruction / interpolation grids and latent spectrum."""
    # (import torch and matplotlib, ~3 s: `wae-bench --help` must not)
    from wae_bench.bench import report, table

    folder = table.results_folder(results_dir, "report")
    console.print(f"wrote {report.write(folder, table.collect(folder), out)}", markup=False)


COMMANDS = [report_cmd]
