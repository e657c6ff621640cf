"""The results table (:class:`~wae_bench.bench.table.Report`) rendered: as
Markdown (``table.md``), CSV (``table.csv``, and ``tuning.csv`` with a
``[tune]`` table) and a rich table on the console."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from wae_bench import atomic
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import axis_label
from wae_bench.bench.table import Report, metric_label
from wae_bench.bench.tuning_summary import tuning_csv


def headers(rep: Report) -> list[str]:
    return ["regularizer", "arch", *(axis_label(k) for k in rep.axis_keys),
            *(["tuned"] if rep.spec.tune is not None else []),
            *(rep.header(col, cited) for col, cited in rep.layout())]


def legend(rep: Report) -> str:
    """What an entry of the table means."""
    return (f"Entries: {metric_label(rep.spec, rep.metric)} (lower is better), mean ± sample std over seeds, then "
            f"(seeds scored / seeds in the grid). — = not scored yet; failed = every seed failed (see "
            f"cells/*/failed.json); stale = seeds trained with settings other than the spec resolves to now, "
            f"left out of the mean (`wae-bench bench SPEC --dry-run` lists what changed). Columns marked (cited) hold values reported in the papers below, not measured "
            f"here.")


def markdown(rep: Report) -> str:
    s = rep.spec
    m = metric_label(s, rep.metric)
    out = [f"# {s.name}: {m} by regularizer and architecture", ""]
    if s.bench.description:
        out += [s.bench.description.strip(), ""]
    out += [legend(rep), "",
            "**Budget**", "", *(f"- {b}" for b in rep.budget), "", "**Evaluation**", "",
            *(f"- {p}" for p in rep.protocol), ""]
    if rep.tuning:
        out += ["**Tuning** (validation scores of the tuning cells, per group; plots/tune-*.png)", "",
                *(f"- {line}" for line in rep.tuning), ""]
    head = headers(rep)
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rep.rows:
        vals = rep.row_cells(row) + [rep.value(row, col, cited) for col, cited in rep.layout()]
        out.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    if rep.cited:
        out += ["", "**Cited**", ""]
        notes = {c.source: c.note for c in rep.cited.values() if c.note}
        out += [f"{i}. {src}" + (f" ({notes[src]})" if src in notes else "") for i, src in enumerate(rep.sources, 1)]
    return "\n".join(out) + "\n"


def csv_text(rep: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["regularizer", "arch", *rep.axis_keys, *(["tuned"] if rep.spec.tune is not None else [])]
    for col, cited in rep.layout():
        p = f"{col[0]}:{col[1]}:{rep.metric}"
        head += [f"{p}:cited", f"{p}:cited_source"] if cited else [f"{p}:{k}" for k in ("mean", "std", "n", "of",
                                                                                        "status")]
    w.writerow(head)
    for row in rep.rows:
        vals: list[Any] = rep.row_cells(row)
        for col, cited in rep.layout():
            if cited:
                c = rep.cited.get((row, col))
                vals += [c.value, c.source] if c else ["", ""]
                continue
            e = rep.entries.get((row, col))
            if e is None or not e.expected:
                vals += ["", "", "", "", "not in grid"]
            else:
                vals += [_num(e.mean), _num(e.std), e.n, e.expected, e.status]
        w.writerow(vals)
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(v)


def rich_table(rep: Report) -> Table:
    t = Table()
    for h in headers(rep):
        t.add_column(h, overflow="fold", style="dim" if h.endswith("(cited)") else None)
    for row in rep.rows:
        t.add_row(*rep.row_cells(row), *(rep.value(row, col, cited) for col, cited in rep.layout()))
    return t


def title(rep: Report) -> str:
    return (f"{rep.spec.name}: {metric_label(rep.spec, rep.metric)}, mean ± std (seeds scored/in grid); "
            f"(cited) columns are not ours")


def print_rich(rep: Report, console: Console) -> None:
    """The table on ``console``: its title on a line above it, the budget,
    protocol and tuning notes as lines under it (left-aligned, each wrapped
    to the console, never to the table's width)."""
    console.print(title(rep), soft_wrap=True, markup=False, highlight=False)
    console.print(rich_table(rep))
    for line in rep.budget + rep.protocol + rep.tuning:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def write(folder: ResultsDir, rep: Report) -> list[Path]:
    out = [atomic.write_text(folder.path / "table.md", markdown(rep)),
           atomic.write_text(folder.path / "table.csv", csv_text(rep))]
    if rep.tuning_rows:
        out.append(atomic.write_text(folder.path / "tuning.csv", tuning_csv(rep.spec.tune.metric, rep.tuning_rows)))
    return out
