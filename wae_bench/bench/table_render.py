"""The results table (:class:`~wae_bench.bench.table.Report`) rendered: as
Markdown (``table.md``), CSV (``table.csv``, and ``tuning.csv`` with a
``[tune]`` table) and a rich table on the console.  Each row's own-sampler
entry is marked (:meth:`~wae_bench.bench.table.Report.value`), the best of
those per dataset and architecture also bold (Markdown, console); table.csv
has the marks in words."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wae_bench import atomic
from wae_bench.bench.aggregate import MISSING, OTHER_PROTOCOL
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import axis_label
from wae_bench.bench.spec import WHAT_LABELS
from wae_bench.bench.table import NEAR, OWN, Report, better_note, metric_label
from wae_bench.bench.table_notes import MIXED_CODE, score_name
from wae_bench.bench.tuning_summary import tuning_csv

MARK_WORDS = {"best": "best", "near": "within spread"}   # table.csv's mark column
COLUMNS = {   # what each kind of column scores (the legend)
    "samples": "images decoded from draws of the regularizer's prior",
    "rec": "reconstructions Dec(Enc(x)) of the reference split's images",
    "n": "images decoded from draws of an ex-post Gaussian fitted to the training latents",
    "gmm": "images decoded from draws of an ex-post Gaussian mixture fitted to the training latents",
    "interp": "images decoded from interpolations between the latents of two reference images",
}


def headers(rep: Report) -> list[str]:
    return ["regularizer", "arch", *(axis_label(k) for k in rep.axis_keys),
            *(["tuned"] if rep.spec.tune is not None else []),
            *(rep.header(col, cited) for col, cited in rep.layout())]


def legend(rep: Report, paper: bool = False) -> str:
    """What an entry and each column of the table mean; ``paper`` (table.tex's
    caption): only the marks some entry has, and no file or command to look
    at (:func:`_paper_marks`)."""
    kinds = list(dict.fromkeys(w for _, w in rep.columns))
    cols = " ".join(f"{WHAT_LABELS[w]}: {COLUMNS[w]}." for w in kinds)
    own = "; ".join(f"{WHAT_LABELS[w]} for {', '.join(r for r, s in rep.judged_by.items() if s == w)}"
                    for w in dict.fromkeys(rep.judged_by.values()))
    shown = _shown(rep) if paper else None
    marks = [f"{OWN} marks each row's own sampler, the column that judges it ({own})"] \
        if rep.marks_own and (shown is None or OWN in shown) else []
    if paper:
        if "best" in rep.marks.values():
            marks.append("the best entry of a row's own sampler per dataset and architecture is bold")
        if "near" in rep.marks.values():
            marks.append(f"{NEAR} marks those within the seed spread of it (a margin under the pooled sample std)")
    elif rep.marks:
        marks.append(f"the best entry of a row's own sampler per dataset and architecture is bold and marked best, "
                     f"{NEAR} marks those within the seed spread of it (a margin under the pooled sample std)")
    said = "; ".join(marks)
    entries = (f"Entries: {metric_label(rep.spec, rep.metric)}{better_note(rep.metric)}, mean ± sample std over "
               f"seeds, then (seeds scored / seeds in the grid")
    if paper:
        entries += (", then any seed missing, e.g. no s2)." if _lacking(rep) else ").") + _paper_marks(shown)
    else:
        entries += (f", then any seed missing, e.g. no s2). — = not scored yet; failed = every "
                    f"seed failed (see cells/*/failed.json); stale = seeds trained with settings other than the spec "
                    f"resolves to now, left out of the mean (`wae-bench bench SPEC --dry-run` lists what changed); "
                    f"{OTHER_PROTOCOL} = a seed scored under another protocol than asked (see Evaluation).")
    return (f"{entries} Columns: {cols}"
            + "".join(f" {note}" for note in axis_notes(rep, paper))
            + (f" {said[0].upper()}{said[1:]}." if said else "")
            + (f" {spread_note(rep)}" if rep.unknown_spread else "")
            + (f" {MIXED_CODE} after a regularizer: its row's mean pools cells trained by different regularizer "
               f"code (named below)." if rep.mixed_code else "")
            + (" Columns marked (cited) hold values reported in the papers below, not measured here."
               if rep.cited and not paper else
               " Columns marked (cited) hold values reported in the works cited below, not measured here."
               if rep.cited else ""))


def axis_notes(rep: Report, paper: bool = False) -> list[str]:
    """What the leading columns other than regularizer and arch hold: for a
    grid axis that only some regularizers are points of (``[reg.moca.grid]``),
    whose, and that the other rows show the value their cells ran with (for a
    regularizer setting, each regularizer's own: the same name weighs another
    penalty in another plugin, e.g. λ of moca and of rae-l2); and (not
    ``paper``: table.tex's caption says it) what the tuned column holds."""
    notes = []
    for k in rep.axis_keys:
        on = list(dict.fromkeys(r for r, _, axes in rep.rows if k in dict(axes)))
        off = list(dict.fromkeys(row[0] for row in rep.rows if k in rep.axis_values.get(row, {})))
        if not off:
            continue
        name = axis_label(k)
        see = "" if paper else "see Settings"
        if k.startswith("reg.") and len(set(on + off)) > 1:
            said = (f", each regularizer's own (it weighs that regularizer's penalty: compare {name} within a "
                    f"regularizer, not across{'; ' + see if see else ''})")
        else:
            said = f" ({see})" if see else ""
        notes.append(f"{name}: the grid axis {k} of {', '.join(on)}; the rows of {', '.join(off)} show the {name} "
                     f"their cells ran with{said}.")
    if rep.spec.tune is not None and not paper:
        notes.append("tuned: the value each row's cells trained at, chosen on the validation split over the grid and "
                     "at the budget named (see Tuning); nothing to tune: a regularizer without a tuning grid.")
    return notes


def spread_note(rep: Report) -> str:
    """Where a best was decided against (or by) an entry of one seed
    (:attr:`~wae_bench.bench.table.Report.unknown_spread`): that the seed
    spread is unknown there, so no ≈ says how close it is; else ``""``."""
    if not rep.unknown_spread:
        return ""
    rows = list(dict.fromkeys(" · ".join([row[0], *([row[1]] if row[1] else []), col[0]])
                              for row, col in sorted(rep.unknown_spread, key=lambda k: (rep.rows.index(k[0]), k[1]))))
    return (f"One seed only ({', '.join(rows)}): the seed spread is unknown, so no entry compared with the best there "
            f"can be marked {NEAR} and a best by a small margin may be noise (more seeds tell).")


def _shown(rep: Report) -> str:
    """Every measured entry's text, joined (to tell which marks appear)."""
    return "\n".join(rep.value(row, col, False) for row in rep.rows for col, cited in rep.layout() if not cited)


def _lacking(rep: Report) -> bool:
    """Whether some entry lacks seeds (``(2/3, no s2)``)."""
    return any(e.expected and e.n < e.expected for e in rep.entries.values())


def _paper_marks(shown: str) -> str:
    """The legend of the marks in ``shown`` (:func:`_shown`) other than the
    own-sampler and best marks, without pointers to files or commands."""
    lines = shown.splitlines()
    said = [*([f"{MISSING} = not scored yet"] if MISSING in lines else []),
            *(["failed = every seed failed (s1 failed: that seed failed)"] if "failed" in shown else []),
            *(["stale = seeds trained with settings other than the spec now resolves to, left out of the mean"]
              if "stale" in shown else []),
            *([f"{OTHER_PROTOCOL} = a seed scored under another protocol than asked (named below)"]
              if OTHER_PROTOCOL in shown else [])]
    return (" " + "; ".join(said) + ".") if said else ""


def entry_text(rep: Report, row, col, cited: bool) -> str:
    """An entry of table.md: :meth:`~wae_bench.bench.table.Report.value`, the best in bold."""
    text = rep.value(row, col, cited)
    return f"**{text}**" if not cited and rep.marks.get((row, col)) == "best" else text


def markdown(rep: Report) -> str:
    s = rep.spec
    m = metric_label(s, rep.metric)
    out = [f"# {s.name}: {m} by regularizer and architecture", ""]
    if rep.description:
        out += [rep.description, ""]
    out += [legend(rep), "",
            "**Budget**", "", *(f"- {b}" for b in rep.budget), "",
            "**Settings** (each regularizer's, as its cells ran, and where each came from)", "",
            *(f"- {line}" for line in rep.settings), "",
            "**Evaluation**", "", *(f"- {p}" for p in rep.protocol), ""]
    if rep.tuning:
        out += ["**Tuning** (validation scores of the tuning cells, per group; plots/tune-*.png)", "",
                *(f"- {line}" for line in rep.tuning), ""]
    head = headers(rep)
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rep.rows:
        vals = rep.row_cells(row) + [entry_text(rep, row, col, cited) for col, cited in rep.layout()]
        out.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    if rep.code:
        out += ["", "**Regularizer code** (who provided each regularizer that is not built in, as its cells "
                "recorded it)", "", *(f"- {line}" for line in rep.code)]
    if rep.cited:
        out += ["", "**Cited**", ""]
        notes = {c.source: c.note for c in rep.cited.values() if c.note}
        out += [f"{i}. {src}" + (f" ({notes[src]})" if src in notes else "") for i, src in enumerate(rep.sources, 1)]
    return "\n".join(out) + "\n"


def csv_text(rep: Report) -> str:
    """table.csv: per row its settings (JSON), the column judging it and,
    where a regularizer is not built in or a row mixes plugin code (the
    table has a Regularizer code block), the regularizer code its cells
    recorded (``code``, :func:`~wae_bench.bench.table_notes.row_code`), per
    entry mean, std, n, of, status, the seeds scored and its mark; the score
    named ``standin-fid`` where the features are not Inception (NOT FID)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    metric = score_name(rep.spec, rep.metric)
    head = ["regularizer", "arch", *rep.axis_keys, *(["tuned"] if rep.spec.tune is not None else []),
            "settings", "judged_by", *(["code"] if rep.code else [])]
    for col, cited in rep.layout():
        p = f"{col[0]}:{col[1]}:{metric}"
        head += [f"{p}:cited", f"{p}:cited_source"] if cited else [f"{p}:{k}" for k in ("mean", "std", "n", "of",
                                                                                        "status", "seeds", "mark")]
    w.writerow(head)
    for row in rep.rows:
        settings = rep.row_settings.get(row)
        vals: list[Any] = [*rep.row_cells(row, marked=False),
                           "" if settings is None else json.dumps(settings, sort_keys=True), rep.own(row) or "",
                           *([rep.row_code.get(row, "")] if rep.code else [])]
        for col, cited in rep.layout():
            if cited:
                c = rep.cited.get((row, col))
                vals += [c.value, c.source] if c else ["", ""]
                continue
            e = rep.entries.get((row, col))
            if e is None or not e.expected:
                vals += ["", "", "", "", "not in grid", "", ""]
            else:
                mark = MARK_WORDS.get(rep.marks.get((row, col), ""), "")
                if e.other_protocol:
                    mark = " ".join(filter(None, [mark, "other protocol"]))
                vals += [_num(e.mean), _num(e.std), e.n, e.expected, e.status, " ".join(map(str, e.seeds)), mark]
        w.writerow(vals)
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else repr(v)


def rich_table(rep: Report) -> Table:
    t = Table()
    for h in headers(rep):
        t.add_column(h, overflow="fold", style="dim" if h.endswith("(cited)") else None)
    for row in rep.rows:
        t.add_row(*rep.row_cells(row), *(_rich_entry(rep, row, col, cited) for col, cited in rep.layout()))
    return t


def _rich_entry(rep: Report, row, col, cited: bool) -> str:
    text = rep.value(row, col, cited)
    return f"[bold]{escape(text)}[/]" if rep.marks.get((row, col)) == "best" and not cited else escape(text)


def title(rep: Report) -> str:
    """The line above the rich table: the metric and its direction, what an
    entry is and what its marks mean (table.md's legend, short)."""
    return (f"{rep.spec.name}: {metric_label(rep.spec, rep.metric)}{better_note(rep.metric)}, mean ± std "
            f"(seeds scored/in grid)"
            + (f"; {OWN} = the row's own sampler (the column that judges it)" if rep.marks_own else "")
            + (f"; best = the best {OWN if rep.marks_own else 'entry'} per dataset and architecture, {NEAR} = "
               f"within the seed spread of it" if rep.marks else "")
            + ("; (cited) columns are not ours" if rep.cited else ""))


def print_rich(rep: Report, console: Console) -> None:
    """The table on ``console``: its title on a line above it, the budget,
    protocol and tuning notes as lines under it (left-aligned, each wrapped
    to the console, never to the table's width)."""
    console.print(title(rep), soft_wrap=True, markup=False, highlight=False)
    console.print(rich_table(rep))
    for line in [*filter(None, [spread_note(rep)]), *rep.budget, *rep.settings, *rep.protocol, *rep.tuning,
                 *rep.code]:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def write(folder: ResultsDir, rep: Report) -> list[Path]:
    out = [atomic.write_text(folder.path / "table.md", markdown(rep)),
           atomic.write_text(folder.path / "table.csv", csv_text(rep))]
    if rep.tuning_rows:
        out.append(atomic.write_text(folder.path / "tuning.csv", tuning_csv(score_name(rep.spec, rep.spec.tune.metric),
                                                                            rep.tuning_rows)))
    return out
