"""Numbers out of a results folder for scripts and papers (``wae-bench table
RESULTS_DIR --format json,seeds,latex``; docs/benchmarks.md "The table and
plots"), read from each cell's own files (``config.json``, ``results.json``,
``failed.json``), never recomputed:

- :func:`cell_row` / :func:`cell_rows`: one object per cell: its id,
  regularizer, arch, dataset, seed, grid values, role and state, the
  regularizer's settings it trained with (``config.json``'s ``reg``), and per
  scored column (``samples``, ``rec``, ``gmm``, ...) its scores, with the
  protocol they were computed under (features; ``real_fid`` false for
  stand-in features, whose scores are NOT FID) and the earlier evaluations
  ``results.json`` keeps in its history.  Written as ``cells.json``.
- :func:`seeds_csv`: one line per final cell, column and score (the per-seed
  values a significance test needs), the metric named ``standin-fid`` etc.
  where the features are a stand-in, a tuned cell's values and grid.
  Written as ``table-seeds.csv``.
- :func:`latex`: the table's entries (mean ± sample std over seeds, and
  seeds scored / in the grid) as a booktabs ``tabular`` in a ``table``
  whose caption holds the legend and the asked protocol.  Written as ``table.tex``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from wae_bench import atomic, results
from wae_bench.bench import report, tune
from wae_bench.bench.folder import SCORE_NAMES, ResultsDir, json_object
from wae_bench.bench.table import Report, metric_label
from wae_bench.bench.aggregate import OTHER_PROTOCOL
from wae_bench.bench.table_notes import (named_score, other_protocol_line, plugin_code, protocol_basis,
                                         protocol_summary, regularizer_paper)
from wae_bench.bench.table_render import headers, legend
from wae_bench.bench.tuning_summary import Used, used
from wae_bench.errors import WaeError

FORMATS = {"json": "cells.json", "seeds": "table-seeds.csv", "latex": "table.tex"}
SEED_COLUMNS = ("cell", "regularizer", "arch", "dataset", "seed", "axes", "settings", "tuned", "tuned_over", "state",
                "column", "metric", "value", "features", "real_fid", "protocol")


def protocol_id(p: dict[str, Any]) -> str:
    """A short id of what makes two evaluations' scores comparable, the
    parts the table's protocol lines compare
    (:func:`~wae_bench.bench.table_notes.protocol_basis`: not the versions of
    the code that scored): equal ids, scores that compare, one protocol line
    of the table."""
    return hashlib.sha256(json.dumps(protocol_basis(p), sort_keys=True).encode()).hexdigest()[:12]


def gmm_components(p: dict[str, Any]) -> int | None:
    """The number of components of the ex-post GMM of a protocol's ``gmm``
    column (``"ex-post GMM (10 components), then constrain"``); None without one."""
    m = re.search(r"\((\d+) components\)", str(((p.get("generated") or {}).get("gmm") or {}).get("latents", "")))
    return int(m.group(1)) if m else None


def _protocol(p: dict[str, Any]) -> dict[str, Any]:
    gen = p.get("generated") or {}
    return {"id": protocol_id(p), "features": p.get("features"), "real_fid": results.inception(p),
            "weights_sha256": (p.get("weights") or {}).get("sha256"),
            "generated": {k: v.get("n") for k, v in gen.items() if isinstance(v, dict)},
            "gmm_components": gmm_components(p),
            "reference": p.get("reference") or {}, "seed": p.get("seed"), "summary": protocol_summary(p),
            "versions": p.get("versions") or {}}


def _scores(block: Any) -> dict[str, dict[str, float]]:
    """``{column: {score name: value}}`` of a results.json ``scores`` block (numbers only)."""
    out: dict[str, dict[str, float]] = {}
    for what, scores in (block or {}).items():
        if isinstance(scores, dict):
            nums = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            out[what] = nums
    return out


def _evaluation(e: dict[str, Any]) -> dict[str, Any]:
    p = e.get("protocol") if isinstance(e.get("protocol"), dict) else {}
    return {"scores": _scores(e.get("scores")), "protocol": _protocol(p)}


def cell_row(cell_dir: str | Path) -> dict[str, Any]:
    """What one cell folder records: its regularizer, arch, dataset and seed
    and the settings and regularizer code it trained with (``config.json``;
    ``regularizer_code``: its provider and version, whether built in, its
    source sha256, :func:`~wae_bench.bench.table_notes.plugin_code`, and
    the paper a plugin that is not built in declares), its scores with their
    protocol and history (``results.json``), its error (``failed.json``).
    A file that is missing leaves its keys out (``None`` for the settings)."""
    d = Path(cell_dir)
    record = json_object(d / "config.json")
    cfg = (record or {}).get("config") or {}
    code = plugin_code(record)
    row: dict[str, Any] = {"cell": d.name, **{k: cfg.get(k) for k in ("regularizer", "arch", "dataset", "seed")},
                           "settings": cfg.get("reg"), "regularizer_code": None}
    if code is not None:
        row["regularizer_code"] = {**code.as_json(), "paper": None if code.built_in else
                                   regularizer_paper(str(cfg.get("regularizer"))) or None}
    res = json_object(d / results.NAME)
    if res is not None:
        row.update(_evaluation(res))
        row["history"] = [_evaluation(e) for e in res.get("history") or [] if isinstance(e, dict)]
    fail = json_object(d / "failed.json")
    if fail is not None or (d / "failed.json").is_file():
        row["error"] = (fail or {}).get("error", f"{d / 'failed.json'} is unreadable")
    return row


def cell_rows(folder: ResultsDir | str | Path, read: tune.Tuning | None = None) -> list[dict[str, Any]]:
    """One row per cell of the folder's spec (:func:`cell_row`, with the
    grid's own id, axes, role and state; a cell not begun has no scores); a
    final cell of a ``[tune]`` grid also its ``tuned`` values with the grid
    and budget they were chosen over (:func:`~wae_bench.bench.tuning_summary.used`;
    ``values`` null and a ``note`` while its tuning is pending; ``read``: the
    folder's tuning as read already, by the table).  ``folder``: a
    :class:`~wae_bench.bench.folder.ResultsDir` or its path (docs/python-api.md)."""
    folder = folder if isinstance(folder, ResultsDir) else ResultsDir(folder)
    read = read or tune.Tuning(folder)
    out = []
    for c in read.cells:
        row = cell_row(folder.cell_dir(c.id))
        row.update(cell=c.id, regularizer=c.regularizer, arch=c.arch, dataset=c.dataset, seed=c.seed,
                   axes=dict(c.axes), role=c.role, state=read.state(c))
        if c.role == "final":
            u = used(read, c)
            row["tuned"] = (vars(u).copy() if isinstance(u, Used) else {"values": None, "grid": None, "budget": None,
                                                                         "note": u})
        out.append(row)
    return out


def seeds_csv(rows: list[dict[str, Any]]) -> str:
    """The per-seed CSV of :func:`cell_rows` (final and plain cells; tuning
    cells are scored on the validation split, see tuning.csv)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SEED_COLUMNS)
    for r in rows:
        if r.get("role") == "tune":
            continue
        t = r.get("tuned") or {}
        tuned = [json.dumps(t["values"]), json.dumps(t["grid"])] if t.get("values") else [t.get("note", ""), ""]
        head = [r["cell"], r["regularizer"], r["arch"], r["dataset"], r["seed"], json.dumps(r.get("axes") or {}),
                json.dumps(r.get("settings"), sort_keys=True), *tuned, r.get("state", "")]
        p = r.get("protocol") or {}
        lines = [(what, named_score(name, p.get("real_fid", False)), value)
                 for what, scores in (r.get("scores") or {}).items() for name, value in scores.items()
                 if name in SCORE_NAMES]
        for what, name, value in lines or [("", "", "")]:
            w.writerow([*head, what, name, value, p.get("features", "") if lines else "",
                        str(p.get("real_fid", "")).lower() if lines else "", p.get("id", "") if lines else ""])
    return buf.getvalue()


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "—": "--", "–": "--", "−": "-", "’": "'", "‘": "`", "“": "``", "”": "''",
                  "…": r"\ldots{}", "·": r"$\cdot$", "×": r"$\times$", "∈": r"$\in$", "≈": r"$\approx$",
                  "≤": r"$\leq$", "≥": r"$\geq$", "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}",
                  "§": r"\textsuperscript{\S}",
                  "²": r"\textsuperscript{2}", "µ": r"$\mu$", "\u00a0": "~",
                  # letters that decompose to no ASCII base (Søren, Łukasz, Straße): LaTeX's own commands
                  "ø": r"{\o}", "Ø": r"{\O}", "ł": r"{\l}", "Ł": r"{\L}", "ß": r"{\ss}", "æ": r"{\ae}",
                  "Æ": r"{\AE}", "œ": r"{\oe}", "Œ": r"{\OE}", "ı": r"{\i}"}
# Accents left after Unicode decomposition (NFKD: é = e + U+0301), as LaTeX accent commands.
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u",
            "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0327": "c",
            "\u0328": "k"}
_GREEK_CAPITALS = {"gamma", "delta", "theta", "lambda", "xi", "pi", "sigma", "upsilon", "phi", "psi", "omega"}


def _greek(ch: str) -> str | None:
    """A Greek letter as LaTeX math (``λ`` -> ``$\\lambda$``), else None."""
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", unicodedata.name(ch, ""))
    if m is None:
        return None
    name = m.group(2).lower().replace("lamda", "lambda")
    if m.group(1) == "SMALL" and name != "omicron":
        return rf"$\{name}$"
    return rf"$\{name.capitalize()}$" if name in _GREEK_CAPITALS else None


def _tex_char(ch: str, text: str, at: int) -> str:
    """One character of ``text`` as pdflatex takes it without inputenc's
    Unicode tables (ASCII out): escaped, a symbol's command, a Greek letter,
    an accented letter's accent command; anything else is refused in one
    line (a missing glyph stops pdflatex with a fatal error)."""
    if ch in _LATEX:
        return _LATEX[ch]
    if ch == "-" and text[at + 1:at + 2] == "-":
        return "-{}"      # (TeX joins -- into an en dash, --- into an em dash: a flag's hyphens stay two)
    if ch in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[ch]
    if ord(ch) < 128:
        return ch
    greek = _greek(ch)
    if greek is not None:
        return greek
    base, *marks = unicodedata.normalize("NFKD", ch)
    if ord(base) < 128 and marks and all(m in _ACCENTS for m in marks):
        out = base
        for m in marks:
            out = rf"\{_ACCENTS[m]}{{{out}}}"
        return out
    raise WaeError(f"table.tex: {ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}) in "
                   f"{text[max(0, at - 30):at + 30]!r} has no LaTeX form; write it in ASCII where the spec gives it "
                   f"(its name, [[cited]] sources and notes), or leave latex out of --format")


def tex(text: str) -> str:
    """``text`` as LaTeX body text in ASCII: special characters escaped, ±, λ,
    ∈ etc. as math, accented letters as accents (:func:`_tex_char`)."""
    text = str(text)
    return "".join(_tex_char(ch, text, i) for i, ch in enumerate(text))


def _entry(rep: Report, row, col, cited: bool) -> str:
    """An entry of table.tex: :meth:`~wae_bench.bench.table.Report.value`
    without the word "best", the best in bold instead."""
    text = tex(rep.value(row, col, cited, best_word=False))
    return rf"\textbf{{{text}}}" if not cited and rep.marks.get((row, col)) == "best" else text


def paper_rule(metric: str) -> str:
    """The tuning rule (:data:`~wae_bench.bench.tune.RULE`) in a caption's
    words: the failed values excluded from the choice, not the flag that
    excludes them (a caption names no command)."""
    return tune.RULE.format(metric=metric).replace(f"excluded with {tune.EXCLUDE_FLAG}", "excluded from the choice")


def caption(rep: Report) -> str:
    """table.tex's caption: the metric, the legend of the marks that appear
    (:func:`~wae_bench.bench.table_render.legend`, ``paper``), what the tuned
    values were tuned over, the cited sources, and the evaluation protocol
    asked and recorded (with any warning), and which code each regularizer
    that is not built in is, with the rows pooling cells of different plugin
    code (:attr:`~wae_bench.bench.table.Report.code_paper`); no file paths or commands."""
    parts = [f"{rep.spec.name}: {metric_label(rep.spec, rep.metric)} by regularizer and architecture.",
             legend(rep, paper=True)]
    t = rep.spec.tune
    if rep.tuned_grids and t is not None:
        parts.append(f"Tuned values (column tuned): scored on {t.holdout} training images held out of every "
                     f"tuning run (tuning seeds {', '.join(map(str, rep.spec.tune_seeds))}), the value of the "
                     f"{paper_rule(t.metric)}; "
                     + "; ".join(f"{reg} over {' / '.join(over)}" for reg, over in rep.tuned_grids.items()) + ".")
    if rep.code_paper:
        parts.append("Regularizer code: " + " ".join(f"{line}." for line in rep.code_paper))
    if rep.cited:
        notes = {c.source: c.note for c in rep.cited.values() if c.note}
        parts.append("Cited: " + "; ".join(f"[{i}] {src}" + (f" ({notes[src]})" if src in notes else "")
                                           for i, src in enumerate(rep.sources, 1)) + ".")
    other = list(dict.fromkeys(cid for e in rep.entries.values() for cid in e.other_protocol))
    parts += [f"Evaluation {line}." if line.startswith(("asked", "recorded")) else f"{line}."
              for line in rep.protocol if not line.startswith(OTHER_PROTOCOL)]
    if other:
        parts.append(f"{other_protocol_line(other, paper=True)}.")
    return " ".join(parts)


# The tabular, set in box 0, at its width, or scaled down to the text width where it is wider and graphicx's
# \resizebox is loaded (three columns of "147.08 ± 11.92 (3/3)†" beside regularizer, arch and tuned overfill
# an article's 345 pt text width by 174 pt; without graphicx it stays as wide as it is).
FIT = (r"\ifdim\wd0>\linewidth\ifdefined\resizebox\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi"
       r"\else\usebox0\fi")


def latex(rep: Report) -> str:
    """The table of ``rep`` as a booktabs table: the same headers and entries
    as table.md (:func:`~wae_bench.bench.table_render.headers`; the tuned
    column the value alone, the best in bold), fitted to the text width
    (:data:`FIT`), and :func:`caption`."""
    head = headers(rep)
    body = [[tex(v) for v in rep.row_cells(r, short=True)] + [_entry(rep, r, col, cited) for col, cited in rep.layout()]
            for r in rep.rows]
    lines = [r"\begin{table}[t]", r"\centering", r"\sbox0{%",
             rf"\begin{{tabular}}{{{'l' * (len(head) - len(rep.layout()))}{'r' * len(rep.layout())}}}", r"\toprule",
             " & ".join(tex(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}}%", FIT, rf"\caption{{{tex(caption(rep))}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def parse_formats(text: str) -> list[str]:
    """``json,latex`` -> ``["json", "latex"]``; an unknown name is one clear line."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise WaeError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma-separated), "
                       f"e.g. --format json,seeds")
    return list(dict.fromkeys(names))


def present(folder: ResultsDir) -> list[str]:
    """The exports (:data:`FORMATS`) the folder already holds."""
    return [name for name, file in FORMATS.items() if (folder.path / file).is_file()]


def write(folder: ResultsDir, rep: Report, formats: list[str] = (), html: bool = False) -> list[Path]:
    """Write the asked exports, and rewrite those the folder already holds
    (:func:`present`) and its HTML report where it has one, so no file of the
    folder holds other numbers than the table.md of ``rep`` (after a grid
    grew, say); ``html``: write the report in any case.  Each atomically;
    after the plots (the report embeds them).  Returns their paths."""
    names = list(dict.fromkeys([*formats, *present(folder)]))
    rows = cell_rows(folder, rep.tuning_read) if {"json", "seeds"} & set(names) else []
    make = {"json": lambda: json.dumps(rows, indent=1) + "\n", "seeds": lambda: seeds_csv(rows),
            "latex": lambda: latex(rep)}
    texts = {}
    for name in names:            # every text first: a refusal leaves the files as one table's, all or none
        try:
            texts[name] = make[name]()
        except WaeError as e:
            if name in formats:
                raise
            # only there from an earlier table: removed (never left stale), the table itself still written
            (folder.path / FORMATS[name]).unlink()
            print(f"warning: {e}; so {FORMATS[name]}, written by an earlier `wae-bench table --format {name}`, "
                  f"is removed rather than left with the old numbers", file=sys.stderr)
    paths = [atomic.write_text(folder.path / FORMATS[name], text) for name, text in texts.items()]
    page = folder.path / report.REPORT_NAME
    if html or (page.is_file() and report.is_report(page)):
        paths.append(report.write(folder, rep))
    return paths
