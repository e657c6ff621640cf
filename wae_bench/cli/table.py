"""`wae-bench table RESULTS_DIR`: the benchmark table in the MoCA paper's
Table 1 layout (Markdown + CSV + a rich table on screen) and the plots of the
grid's axes (FID vs λ / K, spectra per λ; Figs. 3-5, Table 4); with
``--format``, the per-cell JSON, per-seed CSV and LaTeX of
:mod:`wae_bench.bench.export` (rewritten whenever the table is, once there,
as is the HTML report)."""
from __future__ import annotations

import click

from wae_bench.config import split_list
from wae_bench.progress import console, stdout


@click.command("table")
@click.argument("results_dir", metavar="RESULTS_DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--columns", help="Comma-separated: samples, rec, n, gmm, interp. Default: the spec's eval.what.")
@click.option("--metric", help="Score to tabulate: fid, kid, kid_std, precision, recall, f_score, is, is_std. "
                               "Default: the first the spec scores.")
@click.option("--no-plots", is_flag=True, help="Write no plots (only the table, and the exports asked or already there).")
@click.option("--format", "formats", metavar="FORMATS",
              help="Also write, comma-separated: json (RESULTS_DIR/cells.json: per cell its seed, settings, scores "
                   "per column with their protocol, state), seeds (table-seeds.csv: one line per cell and score), "
                   "latex (table.tex: booktabs, mean ± std). Those already in RESULTS_DIR are rewritten in any case, "
                   "as is report.html.")
@click.option("--plot-format", "plot_formats", metavar="FORMATS",
              help="Also write each plot as, comma-separated: pdf, svg (for print; png is always written). Plots "
                   "already there in a format are rewritten in it in any case.")
@click.option("--plot-dpi", "plot_dpi", type=click.IntRange(50, 1200), default=None, metavar="DPI",
              help="Resolution of the PNG plots, in dots per inch (default 200, sharp in print and on slides; "
                   "the HTML report shows them scaled). PDF and SVG (--plot-format) are vector.")
@click.option("--report", "html_report", is_flag=True,
              help="Also write the HTML report, RESULTS_DIR/report.html (as `wae-bench report`).")
def table_cmd(results_dir, columns, metric, no_plots, formats, plot_formats, plot_dpi, html_report):
    """Aggregate a results folder: mean ± std over seeds, missing cells marked."""
    # (import torch and matplotlib, ~3 s: `wae-bench --help` must not)
    from wae_bench.bench import export, plots, table, table_render

    folder = table.results_folder(results_dir, "table")
    cols = split_list(columns) if columns else None
    asked = export.parse_formats(formats) if formats is not None else []
    plot_asked = plots.parse_formats(plot_formats)
    rep = table.collect(folder, cols, metric)
    paths = table_render.write(folder, rep)
    if not no_plots:
        paths += plots.write_all(folder, rep.spec, rep.tuning_read.cells, rep.metric, cols[0] if cols else None,
                                 plot_asked, plot_dpi or plots.PNG_DPI, read=rep.tuning_read)
    paths += export.write(folder, rep, asked, html=html_report)     # (and every export already there)
    table_render.print_rich(rep, stdout)
    console.print("wrote " + ", ".join(str(p) for p in paths))


COMMANDS = [table_cmd]
