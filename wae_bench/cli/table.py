"""`wae-bench table RESULTS_DIR`: the benchmark table in the MoCA paper's
Table 1 layout (Markdown + CSV + a rich table on screen) and the plots of the
grid's axes (FID vs λ / K, spectra per λ; Figs. 3-5, Table 4); with
``--format``, the per-cell JSON, per-seed CSV and LaTeX of
:mod:`wae_bench.bench.export`."""
from __future__ import annotations

import click

from wae_bench.config import split_list
from wae_bench.progress import console, stdout


@click.command("table")
@click.argument("results_dir", metavar="RESULTS_DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--columns", help="Comma-separated: samples, rec, n, gmm, interp. Default: the spec's eval.what.")
@click.option("--metric", help="Score to tabulate: fid, kid, kid_std, precision, recall, f_score, is, is_std. "
                               "Default: the first the spec scores.")
@click.option("--no-plots", is_flag=True, help="Write only table.md and table.csv.")
@click.option("--format", "formats", metavar="FORMATS",
              help="Also write, comma-separated: json (RESULTS_DIR/cells.json: per cell its seed, settings, scores "
                   "per column with their protocol, state), seeds (table-seeds.csv: one line per cell and score), "
                   "latex (table.tex: booktabs, mean ± std).")
@click.option("--report", "html_report", is_flag=True,
              help="Also write the HTML report, RESULTS_DIR/report.html (as `wae-bench report`).")
def table_cmd(results_dir, columns, metric, no_plots, formats, html_report):
    """Aggregate a results folder: mean ± std over seeds, missing cells marked."""
    # (import torch and matplotlib, ~3 s: `wae-bench --help` must not)
    from wae_bench.bench import export, grid, plots, report, table, table_render
    from wae_bench.bench.folder import ResultsDir

    folder = ResultsDir(results_dir)
    cols = split_list(columns) if columns else None
    asked = export.parse_formats(formats) if formats is not None else []
    rep = table.collect(folder, cols, metric)
    paths = table_render.write(folder, rep)
    paths += export.write(folder, rep, asked)
    if not no_plots:
        paths += plots.write_all(folder, rep.spec, grid.expand(rep.spec), rep.metric,
                                 (cols or rep.spec.eval.what)[0])
    if html_report:
        paths.append(report.write(folder, rep))
    table_render.print_rich(rep, stdout)
    console.print("wrote " + ", ".join(str(p) for p in paths))


COMMANDS = [table_cmd]
