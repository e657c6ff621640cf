"""One self-contained HTML page of a benchmark results folder
(``RESULTS_DIR/report.html``, :func:`write`):

- the results table, with the numbers and text of :mod:`wae_bench.bench.table`
  (MoCA paper Table 1 layout; nothing is recomputed here), which code each
  regularizer that is not built in is, its budget and the evaluation
  protocol, the spec's hash and TOML;
- every plot PNG under ``RESULTS_DIR/plots/`` (score vs λ / K, spectra per λ,
  whatever else was written there);
- the failed cells with their one-line error, and apart from them the
  diverged tuning cells (a result of the tuning: never chosen, never retried);
- per cell its role (a tuning cell: at which tuned values), its scores on the
  split they were computed on (a tuning cell's on the validation split, the
  held-out training images), picture grids (prior / ex-post samples,
  reconstructions, interpolations; :mod:`wae_bench.pictures`) and latent
  spectrum (MoCA Fig. 5).

Every table entry (a mean over seeds) and every tuning value links to the
sections of the cells it is made of.

Images are embedded as ``data:`` URIs and the CSS is inline: the page opens
offline, from anywhere, with no script.  Small grids are upscaled by an
integer factor with ``image-rendering: pixelated`` (nearest neighbour), so
8-px digits stay crisp.  A file that does not decode is left out and named,
never shown as a broken image.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

from wae_bench import atomic
from wae_bench.bench import tune
from wae_bench.bench.aggregate import MISSING, number
from wae_bench.bench.compare import toml_text
from wae_bench.bench.folder import ResultsDir, score
from wae_bench.bench.grid import Cell, axis_label
from wae_bench.bench.output import metric_name
from wae_bench.bench.spec import WHAT_LABELS
from wae_bench.bench.table import Report, metric_label
from wae_bench.bench.table_notes import standin_warning
from wae_bench.bench.table_render import headers, legend
from wae_bench.bench.tuning_summary import distinct_decimals, values_text
from wae_bench.errors import WaeError

TITLE_MARK = ": wae-bench report</title>"   # (how a file is known to be a report)
REPORT_NAME = "report.html"
PLOTS_DIR = "plots"
# A cell's picture grids (written by wae_bench.pictures), in the order shown.
GRIDS = (("samples.png", "prior samples"), ("samples-n.png", "ex-post N samples"),
         ("samples-gmm.png", "ex-post GMM samples"), ("reconstructions.png", "reconstructions (input, output)"),
         ("interpolations.png", "interpolations"))
SPECTRUM = "latent_spectrum.png"
GRID_WIDTH = 300    # px: a cell's grids are upscaled by one integer factor until its narrowest is about this wide
PLOT_WIDTH = 420    # px: the most a cell's plot (its spectrum) is shown
FOLDER_PLOT_WIDTH = 600   # px: the most a plot of the grid (plots/*.png) is shown
# The header's count of cells by state, in this order (a state not listed here is counted after them).
STATES = ("done", "stale", "partial", "pending", "failed", "excluded", "diverged")
# How a cell's section names the split its scores were computed on (results.json's protocol.reference.split).
SPLITS = {"val": "validation split (held-out training images)", "test": "test split", "train": "training split"}
DIVERGED = "diverged (a result, never retried)"
EXCLUDED = "failed, excluded from the choice (bench --exclude-failed-tuning: never chosen, never retried)"


# The page's whole style sheet (inline: the page needs no other file).
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
 max-width:1500px;margin:0 auto;padding:12px 28px 40px}
h1{font-size:23px;margin:12px 0 6px}
h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:3px;margin-top:30px}
h3{font-size:15px;margin:4px 0 6px}nav a{margin-right:14px}code{font-size:12.5px}
.meta{color:#59636e;font-size:13px;margin:2px 0}.warn{background:#fff4e0;border:1px solid #e3a008;border-radius:5px;
 padding:7px 12px}.error{color:#b42318}.scroll{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
table.results td{white-space:nowrap}table.results th{background:#f3f5f7}
table.results tbody tr:nth-child(even){background:#f9fafb}td.v{text-align:right}
.cited{color:#6e7781;font-style:italic}td.failed{color:#b42318}td.missing{color:#8c959f}
table.kv th{background:#f6f8fa;font-weight:600;font-family:monospace;font-size:12.5px}
.pics{display:flex;flex-wrap:wrap;gap:14px 20px;align-items:flex-end}
figure{margin:0}figcaption{font-size:12px;color:#59636e;text-align:center;margin-top:2px}
img{display:block;max-width:100%;height:auto}img.px{image-rendering:crisp-edges;image-rendering:pixelated}
.cell{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px 12px;margin:12px 0}
.state{font-size:12px;font-weight:normal;padding:1px 8px;border-radius:9px;margin-left:6px;background:#eef1f4}
.state.done{background:#dafbe1;color:#116329}.state.failed{background:#ffebe9;color:#b42318}
.state.partial,.state.diverged,.state.excluded,.state.stale{background:#fff8c5;color:#7d4e00}.scores b{font-weight:600}
.cells{font-size:11.5px;color:#59636e;white-space:normal}.cells a{margin-right:5px}
pre{background:#f6f8fa;padding:8px 12px;overflow:auto;font-size:12.5px}details{margin:8px 0}
"""


@dataclass
class Picture:
    """A decoded PNG: its bytes, natural size and caption."""

    caption: str
    data: bytes
    width: int
    height: int

    def img(self, width: int, pixelated: bool = False) -> str:
        """An ``<img>`` of this picture ``width`` px wide, embedded as a data URI."""
        uri = "data:image/png;base64," + base64.b64encode(self.data).decode("ascii")
        height = max(1, round(self.height * width / self.width))
        cls = ' class="px"' if pixelated else ""
        return f'<img{cls} src="{uri}" width="{width}" height="{height}" alt="{_e(self.caption)}">'

    def figure(self, width: int, pixelated: bool = False) -> str:
        return f"<figure>{self.img(width, pixelated)}<figcaption>{_e(self.caption)}</figcaption></figure>"


def read_png(path: Path, caption: str) -> Picture | None:
    """The PNG at ``path`` if it decodes completely; None otherwise."""
    from PIL import Image

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.format != "PNG":
                return None
            w, h = im.size
    except Exception:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError ... for a bad file
        return None
    return Picture(caption, data, w, h) if w and h else None


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _anchor(cell_id: str) -> str:
    return f"cell-{cell_id}"


class _Page:
    """The report's sections, built from one results folder and its table."""

    def __init__(self, folder: ResultsDir, rep: Report):
        self.folder, self.rep, self.spec = folder, rep, rep.spec
        self.record = folder.record() or {}
        self.tuning = rep.tuning_read or tune.Tuning(folder, rep.spec)   # (the table's, where it read one)
        self.cells = self.tuning.cells
        self.by_id = {c.id: c for c in self.cells}
        self.states = {c.id: self.tuning.state(c) for c in self.cells}
        self.of_point: dict[tuple, list[Cell]] = {}   # Cell.point -> its final / plain cells: a table entry's seeds
        for c in self.cells:
            if c.role != "tune":
                self.of_point.setdefault(c.point, []).append(c)
        self.results_of = {c.id: self.folder.results(c.id) or {} for c in self.cells}
        self.digits = self.score_digits()
        self.unreadable: list[str] = []   # image files left out, relative to the folder

    def picture(self, path: Path, caption: str) -> Picture | None:
        p = read_png(path, caption)
        if p is None:
            self.unreadable.append(str(path.relative_to(self.folder.path)))
        return p

    def scored(self, c: Cell) -> tuple[str, list[tuple[str, float | None]]]:
        """The metric ``c`` is shown by and its score per column kind: a
        tuning cell's by the tuning metric of its plugin's sampler
        (:func:`~wae_bench.bench.tune.eval_settings`), any other's by the
        table's metric of each of the table's column kinds."""
        res = self.results_of[c.id]
        if c.role == "tune":
            metric, whats = self.spec.tune.metric, tune.eval_settings(self.spec, c).what
        else:
            metric, whats = self.rep.metric, list(dict.fromkeys(w for _, w in self.rep.columns))
        return metric, [(w, score(res, w, metric)) for w in whats]

    @staticmethod
    def compared(c: Cell, what: str) -> tuple:
        """The scores a cell's score is compared with: a tuning cell's with its
        group's (the choice), any other's with its table column's."""
        return ("tune", c.group, what) if c.role == "tune" else ("table", c.dataset, what)

    def score_digits(self) -> dict[tuple, int]:
        """:meth:`compared` key -> the decimals its cells' scores are printed
        with: enough to print every two different scores differently, the rule
        of the tuning section (:func:`~wae_bench.bench.tuning_summary.distinct_decimals`):
        12.8046 and 12.7977, not 12.80 twice."""
        values: dict[tuple, list[float]] = {}
        for c in self.cells:
            for what, v in self.scored(c)[1]:
                if v is not None:
                    values.setdefault(self.compared(c, what), []).append(v)
        return {k: distinct_decimals(vs) for k, vs in values.items()}

    def seed_links(self, ids: list[str]) -> str:
        """``s0 s1``: a link to each cell's section, by its seed (its id in the link's title)."""
        return " ".join(f'<a href="#{_anchor(cid)}" title="{_e(cid)}">s{self.by_id[cid].seed}</a>' for cid in ids)

    # -- sections ------------------------------------------------------------------
    def header(self) -> str:
        rec = self.record
        found = [s for s in self.states.values() if s not in STATES]
        counts = {s: sum(v == s for v in self.states.values()) for s in (*STATES, *dict.fromkeys(found))}
        out = [f"<h1>{_e(self.spec.name)}: {_e(metric_label(self.spec, self.rep.metric))}</h1>"]
        if self.rep.description:
            out.append(f"<p>{_e(self.rep.description.strip())}</p>")
        if self.spec.eval.features != "inception":
            out.append(f'<p class="warn">{_e(standin_warning(self.spec.eval.features, self.rep.metric))}.</p>')
        out.append(f'<p class="meta">{len(self.cells)} cells: '
                   + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                   + f" · spec hash <code>{_e(rec.get('hash', self.spec.hash()))}</code>"
                   + (f" · spec file <code>{_e(rec['source'])}</code>" if rec.get("source") else "")
                   + f" · folder <code>{_e(self.folder.path)}</code></p>")
        out.append('<nav><a href="#results">results</a><a href="#plots">plots</a><a href="#protocol">protocol</a>'
                   '<a href="#failed">failed cells</a><a href="#cells">cells</a></nav>')
        return "\n".join(out)

    def first_cell_of_row(self) -> dict[tuple, str]:
        """Table row (regularizer, arch, axes) -> the id of its first cell, for the row's link."""
        out: dict[tuple, str] = {}
        for c in self.cells:
            out.setdefault((c.regularizer, c.arch, c.axes), c.id)
        return out

    def results(self) -> str:
        rep = self.rep
        links = self.first_cell_of_row()
        layout, heads = rep.layout(), headers(rep)
        cited_head = [False] * (len(heads) - len(layout)) + [cited for _, cited in layout]
        head = "".join(f'<th{" class=cited" if c else ""}>{_e(h)}</th>' for h, c in zip(heads, cited_head))
        body = []
        for row in rep.rows:
            lead = [_e(v) for v in rep.row_cells(row)]
            if row in links:
                lead[0] = f'<a href="#{_anchor(links[row])}">{lead[0]}</a>'
            tds = [f"<td>{v}</td>" for v in lead]
            for col, cited in layout:
                v = rep.value(row, col, cited)
                kind = "cited" if cited else "failed" if v.startswith("failed") else "missing" if v == MISSING else ""
                seeds = [] if cited or not v else self.of_point.get((row[0], row[1], col[0], row[2]), [])
                cells = f'<div class="cells">cells: {self.seed_links([c.id for c in seeds])}</div>' if seeds else ""
                tds.append(f'<td class="v {kind}">{_e(v)}{cells}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        out = ['<h2 id="results">Results</h2>', f"<p>{_e(legend(rep))}</p>",
               f'<div class="scroll"><table class="results"><thead><tr>{head}</tr></thead>'
               f'<tbody>{"".join(body)}</tbody></table></div>']
        if rep.cited:
            notes = {c.source: c.note for c in rep.cited.values() if c.note}
            out.append("<p>Cited:</p><ol>" + "".join(f"<li>{_e(s)}{_e(f' ({notes[s]})') if s in notes else ''}</li>"
                                                      for s in rep.sources) + "</ol>")
        if rep.code:
            out.append('<h3 id="code">Regularizer code</h3><ul>' + "".join(f"<li>{_e(c)}</li>" for c in rep.code)
                       + "</ul>")
        out.append("<h3>Budget</h3><ul>" + "".join(f"<li>{_e(b)}</li>" for b in rep.budget) + "</ul>")
        if rep.settings:
            out.append("<h3>Settings</h3><ul>" + "".join(f"<li>{_e(s)}</li>" for s in rep.settings) + "</ul>")
        if rep.tuning:
            out.append('<h3 id="tuning">Tuning</h3><ul>' + "".join(f"<li>{t}</li>" for t in self.tuning_items())
                       + "</ul>")
        return "\n".join(out)

    def tuning_items(self) -> list[str]:
        """The tuning section's lines (:mod:`~wae_bench.bench.tuning_summary`),
        each group's with a ``cells:`` line linking every tuned value to its
        tuning cells (``λ = 10: s0 s1; λ = 100: s0 s1``).  The group lines
        are the section's last, one per group in the order of its first final
        cell (:func:`~wae_bench.bench.tuning_summary.tuning`)."""
        lines = self.rep.tuning
        first: dict[tuple, Cell] = {}
        for c in self.cells:
            if c.role == "final":
                first.setdefault(c.group, c)
        start = len(lines) - len(first)
        out = []
        for i, line in enumerate(lines):
            item = _e(line)
            if start >= 0 and i >= start:
                points = self.tuning.choice(list(first.values())[i - start]).points
                item += '<div class="cells">cells: ' + "; ".join(
                    f"{_e(values_text(p.values))}: {self.seed_links(p.cells)}" for p in points) + "</div>"
            out.append(item)
        return out

    def plots(self) -> str:
        root = self.folder.path / PLOTS_DIR
        paths = sorted(root.rglob("*.png")) if root.is_dir() else []
        pics = [p for p in (self.picture(path, str(path.relative_to(self.folder.path))) for path in paths) if p]
        out = ['<h2 id="plots">Plots</h2>']
        if not pics:
            out.append(f"<p>No plots in {_e(root)} (<code>wae-bench table {_e(self.folder.path)}</code> writes "
                       f"them for a grid with a numeric axis).</p>")
        out += ['<div class="pics">'] + [p.figure(min(p.width, FOLDER_PLOT_WIDTH)) for p in pics] + ["</div>"]
        return "\n".join(out)

    def protocol(self) -> str:
        rec = self.record
        settings = "".join(f"<tr><th>eval.{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in vars(self.spec.eval).items())
        out = ['<h2 id="protocol">Protocol</h2>', "<ul>" + "".join(f"<li>{_e(p)}</li>" for p in self.rep.protocol)
               + "</ul>", f'<table class="kv"><tbody>{settings}</tbody></table>']
        out.append(f"<details open><summary>resolved spec (hash {_e(rec.get('hash', ''))}, computed over this: "
                   f"the spec file with every --set override and every run's seeds and regularizers "
                   f"applied; what the cells ran)</summary><pre>{_e(resolved_toml(rec['spec']))}</pre></details>")
        given = rec.get("overrides") or []
        out.append("<p>--set overrides given to the runs into this folder: "
                   + (", ".join(f"<code>{_e(o)}</code>" for o in given) if given else "none") + "</p>")
        if rec.get("toml"):
            out.append(f"<details><summary>spec file as written ({_e(rec.get('source', ''))}; without the "
                       f"overrides)</summary><pre>{_e(rec['toml'])}</pre></details>")
        return "\n".join(out)

    def failed(self) -> str:
        """The failed cells (retried by the next run) with their error, and
        apart from them the diverged tuning cells: a divergence is a result of
        the tuning (its value is never chosen, the cell never retried), not an
        error to fix."""
        out = ['<h2 id="failed">Failed cells</h2>', self.failures("failed", "error") or "<p>None.</p>"]
        excluded = self.failures("excluded", "error")
        if excluded:
            out += ['<h3 id="excluded">Failed tuning cells excluded from the choice</h3>',
                    "<p>Excluded by <code>bench --exclude-failed-tuning</code> (recorded in their failed.json): "
                    "their values are never chosen and the cells never retried; remove a cell's folder to tune "
                    "its value again.</p>", excluded]
        diverged = self.failures("diverged", "divergence")
        if diverged:
            out += ['<h3 id="diverged">Diverged tuning cells</h3>',
                    "<p>A divergence is a result of the tuning, not a failure: its value is never chosen and the "
                    "cell is never retried.</p>", diverged]
        return "\n".join(out)

    def failures(self, state: str, column: str) -> str:
        """A table of the cells in ``state`` with the line of their failed.json; "" where none is."""
        rows, cls = [], ' class="error"' if state == "failed" else ""
        for c in self.cells:
            f = self.folder.failure(c.id) if self.states[c.id] == state else None
            if f is not None:
                rows.append(f'<tr><td><a href="#{_anchor(c.id)}">{_e(c.id)}</a></td>'
                            f'<td{cls}>{_e(f.get("error", "?"))}</td><td>{_e(f.get("time", ""))}</td></tr>')
        return (f'<table class="results"><thead><tr><th>cell</th><th>{column}</th><th>when</th></tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table>' if rows else "")

    def pictures(self, c: Cell, res: dict) -> tuple[list[Picture], list[Picture]]:
        """A cell's picture grids (:data:`GRIDS`), then its plots: the latent
        spectrum and any other PNG in its folder."""
        d = self.folder.cell_dir(c.id)
        spectrum = (res.get("diagnostics") or {}).get("spectrum_plot") or SPECTRUM
        known = [name for name, _ in GRIDS] + [spectrum]
        grids = [self.picture(d / name, caption) for name, caption in GRIDS if (d / name).is_file()]
        plots = [self.picture(d / spectrum, "latent spectrum")] if (d / spectrum).is_file() else []
        plots += [self.picture(p, p.name) for p in sorted(d.glob("*.png")) if p.name not in known]
        return [p for p in grids if p], [p for p in plots if p]

    def role(self, c: Cell) -> str:
        """What a tuning or final cell is for: ``tuning cell at λ = 10
        (tuning seed 0): scored on the validation split to choose the λ of
        its final cells s0 s1``; ``final cell at the tuned λ = 10`` (the
        values of its own config.json, :func:`~wae_bench.bench.tune.trained_values`);
        "" for a cell of a grid without tuning."""
        names = ", ".join(map(axis_label, c.tuned))
        if c.role == "tune":
            finals = [f.id for f in self.cells if f.role == "final" and f.group == c.group]
            return (f"tuning cell at {_e(values_text(tune.tuned_values(c)))} (tuning seed {c.seed}): scored on the "
                    f"validation split to choose the {_e(names)} of its final cells {self.seed_links(finals)}")
        if c.role == "final":
            trained = tune.trained_values(self.folder, c)
            at = f"at the tuned {values_text(trained)}" if trained else f"its tuned {names} not trained yet"
            return f'final cell {_e(at)} (see <a href="#tuning">tuning</a>)'
        return ""

    def score_line(self, c: Cell) -> str:
        """``stand-in FID (NOT FID) on the validation split (held-out training
        images): prior samples 12.8046``: the cell's scores (:meth:`scored`)
        with the split they were computed on, as recorded (else as asked) and
        the decimals of :meth:`score_digits`; "" for a cell not scored."""
        res = self.results_of[c.id]
        metric, scores = self.scored(c)
        if all(v is None for _, v in scores):
            return ""
        asked = tune.eval_settings(self.spec, c).split
        split = ((res.get("protocol") or {}).get("reference") or {}).get("split") or asked
        shown = " · ".join(f"{_e(WHAT_LABELS[w])} <b>"
                           f"{MISSING if v is None else number(v, self.digits[self.compared(c, w)])}</b>"
                           for w, v in scores)
        return (f'<p class="scores">{_e(metric_name(res, metric))} on the {_e(SPLITS.get(split, f"{split} split"))}:'
                f' {shown}</p>')

    def cell(self, c: Cell) -> str:
        state = self.states[c.id]
        res = self.results_of[c.id]
        out = [f'<section class="cell" id="{_anchor(c.id)}"><h3>{_e(c.id)} <span class="state {state}">{state}'
               f'</span></h3>']
        role = self.role(c)
        if role:
            out.append(f'<p class="meta">{role}</p>')
        scores = self.score_line(c)
        if scores:
            out.append(scores)
        rank = (res.get("diagnostics") or {}).get("spectrum_effective_rank")
        if isinstance(rank, (int, float)):
            d = (res.get("run") or {}).get("latent_dim", "?")
            out.append(f'<p class="meta">latent spectrum: effective rank {rank:.2f} of d = {_e(d)}</p>')
        if state in ("failed", "excluded", "diverged"):
            error = _e((self.folder.failure(c.id) or {}).get("error", "?"))
            out.append(f'<p class="error">{error}</p>' if state == "failed" else
                       f'<p class="meta">{DIVERGED if state == "diverged" else EXCLUDED}: {error}</p>')
        if state == "stale":
            why = ", ".join(self.tuning.changes(c))
            out.append(f'<p class="error">stale: trained with settings other than the spec resolves to now '
                       f'({_e(why)}); its scores are not the current ones</p>')
        grids, plots = self.pictures(c, res)
        scale = max(1, GRID_WIDTH // min(p.width for p in grids)) if grids else 1
        figs = [p.figure(p.width * scale, pixelated=scale > 1) for p in grids]
        figs += [p.figure(min(p.width, PLOT_WIDTH)) for p in plots]
        if figs:
            out.append('<div class="pics">' + "".join(figs) + "</div>")
        elif state in ("pending", "partial"):
            out.append(f'<p class="meta">{"not run yet" if state == "pending" else "started, not scored yet"}</p>')
        out.append("</section>")
        return "\n".join(out)

    def html(self) -> str:
        body = [self.header(), self.results(), self.plots(), self.protocol(), self.failed(),
                '<h2 id="cells">Cells</h2>', *(self.cell(c) for c in self.cells)]
        if self.unreadable:
            body.append(f'<p class="error">Left out, not a readable PNG: {_e(", ".join(self.unreadable))}</p>')
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_e(self.spec.name)}{TITLE_MARK}<style>{CSS}</style></head>\n<body>\n"
                + "\n".join(body) + "\n</body></html>\n")


def page(folder: ResultsDir, rep: Report) -> str:
    """The HTML text of the report of ``folder`` (``rep``: its table, :func:`table.collect`)."""
    built = _Page(folder, rep)
    if not any(built.folder.cell_dir(c.id).is_dir() for c in built.cells):
        raise WaeError(f"{str(folder.path)!r} holds no cell yet, nothing to report; run `wae-bench bench SPEC "
                       f"--out {folder.path}` first")
    return built.html()



def resolved_toml(raw: dict) -> str:
    """The resolved spec of spec.json as TOML (``[[cited]]`` rows, not part of
    what ran, are shown in the table's cited columns instead)."""
    return toml_text({k: v for k, v in raw.items() if k != "cited"})


def write(folder: ResultsDir, rep: Report, out: str | Path | None = None) -> Path:
    """Write the report atomically to ``out`` (default ``RESULTS_DIR/report.html``);
    a file there that is not a wae-bench report is refused, never replaced."""
    path = Path(out) if out else folder.path / REPORT_NAME
    if path.is_file() and not is_report(path):
        raise WaeError(f"{str(path)!r} exists and is not a report written by wae-bench; refusing to replace it: "
                       f"pass another --out")
    return atomic.write_text(path, page(folder, rep))


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page this module wrote (:data:`TITLE_MARK` in its head)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"<!DOCTYPE html>") and TITLE_MARK.encode() in head
