"""Terminal output of an evaluation: a rich table of the scores (the columns
of RAE's / MoCA's Table 1) with the protocol and diagnostics under it, and
progress bars for generation and feature extraction."""
from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.markup import escape
from rich.table import Table

from wae_bench.progress import Lines, console, stdout

_COLS = [("fid", "FID", "{:.2f}"), ("kid_mean", "KID×10³", None), ("precision", "Precision", "{:.3f}"),
         ("recall", "Recall", "{:.3f}"), ("is_mean", "IS", "{:.2f}")]
_ROWS = {"samples": "samples (prior)", "n": "ex-post N", "gmm": "ex-post GMM", "rec": "REC", "interp": "Interp"}


def print_table(result: dict) -> None:
    """Rich table of the scores, its title on a line above it, the protocol under it."""
    s, p = result["scores"], result["protocol"]
    stand_in = p["features"].startswith("standin")
    used = [c for c in _COLS if any(c[0] in v for v in s.values())]
    r = result["run"]
    title = escape(f"{r['regularizer']} · {r['arch']} · {r['dataset']} · step {r['step']}")
    stdout.print(f"[bold]{title}[/]" + ("  [bold red](stand-in features: NOT FID)[/]" if stand_in else ""),
                 soft_wrap=True)   # (a line of its own: a table's title wraps and centres within the table)
    t = Table()
    t.add_column("column")
    t.add_column("n", justify="right")
    for _, head, _ in used:
        t.add_column(("stand-in " + head) if stand_in and head == "FID" else head, justify="right")
    for name, v in s.items():
        cells = []
        for key, _, fmt in used:
            if key not in v:
                cells.append("")
            elif key == "kid_mean":
                cells.append(f"{v['kid_mean'] * 1e3:.2f} ± {v['kid_std'] * 1e3:.2f}")
            else:
                cells.append(fmt.format(v[key]))
        t.add_row(_ROWS.get(name, name), str(p["generated"][name]["n"]), *cells)
    stdout.print(t)
    w = p["weights"]
    ref = p["reference"]
    stdout.print(f"protocol: {p['implementation']}, {p['features']}, weights {w['source']}"
                 + (f" sha256 {w['sha256'][:12]}" if w.get("sha256") else "")
                 + f"; reference {ref['split']} {ref['n']} images of {ref['dataset_variant']} at {p['image_size']}px"
                 + f"; seed {p['seed']}; TF32 matmul {p['tf32']['cuda_matmul']} / cuDNN {p['tf32']['cudnn_conv']}"
                 + f" on {p['device']}", soft_wrap=True)
    d = result["diagnostics"]
    line = f"diagnostics: {d.get('rec_split', 'test')} reconstruction {d['rec_mse_test']:.4g} (sum over pixels) · " \
           f"spectrum effective rank {d['spectrum_effective_rank']:.1f}"
    if "mean_resultant_length" in d:
        line += f" · mean resultant length {d['mean_resultant_length']:.4f} " \
                f"(uniform ≈ {d['mean_resultant_length_uniform']:.4f})"
    if "limit" in d:
        line += f" · {d['rec_n']} reconstructed, {d['spectrum_n']} encoded (--diagnostics-limit {d['limit']})"
    stdout.print(line, soft_wrap=True)


class EvalProgress:
    """Rich bars for generation and feature extraction; when not a terminal,
    a line as each starts and its count every so often
    (:class:`wae_bench.progress.Lines`)."""

    def __init__(self, quiet: bool):
        self.quiet, self.console = quiet, console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet) \
            if quiet or console.is_terminal else Lines("eval")

    def task(self, description: str, total: int):
        if not self.quiet and not self.console.is_terminal:
            print(f"eval: {description}", file=sys.stderr, flush=True)
        return self.progress.add_task(description, total=total)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)
