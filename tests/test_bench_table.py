"""Aggregation and the results table, on a results folder with hand-written
scores: mean ± std over seeds against the statistics module, missing cells
marked "—" (not zero), failed cells marked "failed", cited values in a column
of their own, CSV and plots.  No training here (fast)."""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest

from wae_bench.bench import grid, plots, table, table_render
from wae_bench.bench import spec as specs
from wae_bench.bench.aggregate import MISSING, Entry, mean_std
from wae_bench.bench.folder import ResultsDir
from wae_bench.atomic import write_json

SPEC = """
[bench]
name = "agg"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca", "ae"]
seeds = [0, 1, 2]

[train]
epochs = 1
max_steps = 4

[eval]
what = ["samples", "gmm"]

[reg.moca.grid]
"reg.lambda" = [0, 10, 100]

[[cited]]
regularizer = "moca"
arch = "tiny"
dataset = "digits"
axes = { "reg.lambda" = 10 }
value = 54.36
source = "Somebody et al. 2021, Table 1"

[[cited]]
regularizer = "vae"
dataset = "digits"
value = 70.5
source = "Other et al. 2019, Table 2"
"""


# -- pure math ---------------------------------------------------------------------------
@pytest.mark.parametrize("xs", [[3.0], [1.0, 2.0], [54.36, 47.31, 49.94, 46.68], [1e6 + 0.1, 1e6 + 0.2, 1e6 + 0.4]])
def test_mean_std_match_the_statistics_module(xs):
    m, s = mean_std(xs)
    assert m == pytest.approx(statistics.fmean(xs), rel=1e-12)
    if len(xs) < 2:
        assert s is None
    else:
        assert s == pytest.approx(statistics.stdev(xs), rel=1e-9)   # sample std (n - 1)


def test_entry_text_marks_missing_and_failed_never_zero():
    assert Entry([], expected=3).text() == MISSING
    assert Entry([], expected=3, failed=3).text() == "failed"
    assert Entry([], expected=3, failed=1).text() == "failed (1/3)"
    assert Entry([5.0], expected=3).text() == "5.00 (1/3)"
    assert Entry([1.0, 3.0], expected=3, failed=1).text() == f"2.00 ± {math.sqrt(2):.2f} (2/3, 1 failed)"
    assert Entry([], expected=2).mean is None and Entry([], expected=2).status == "missing"


# -- the table from a results folder ---------------------------------------------------------
def fill(tmp_path: Path):
    p = tmp_path / "agg.toml"
    p.write_text(SPEC)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    cells = {c.id: c for c in grid.expand(s)}
    truth = {}   # cell id -> {what: score}
    for i, cid in enumerate(cells):
        if cid.startswith("ae-") and cid.endswith("s2"):
            continue                                           # missing: never run
        if "lambda0-" in cid:
            folder.mark_failed(cells[cid], RuntimeError("CUDA out of memory"))
            continue
        if cid == "moca-tiny-digits-lambda100-s1":
            folder.mark_failed(cells[cid], "diverged")
            continue
        scores = {"samples": {"fid": 40.0 + 1.7 * i + 0.3 * i * i}, "gmm": {"fid": 30.0 + i}}
        truth[cid] = scores
        spectrum = {"normalised": [1.0 / (k + 1 + i) for k in range(4)]}
        write_json(folder.cell_dir(cid) / "latent_spectrum.json", spectrum)
        write_json(folder.cell_dir(cid) / "results.json",
                   {"scores": scores, "protocol": {"implementation": "x", "features": "inception",
                                                    "reference": {"split": "test", "n": 297}, "seed": 0},
                    "diagnostics": {"spectrum": "latent_spectrum.json"}, "run": {}})
    return folder, s, truth


def test_table_aggregates_over_seeds_and_marks_missing_and_failed(tmp_path):
    folder, s, truth = fill(tmp_path)
    rep = table.collect(folder)
    md = table_render.markdown(rep)
    rows = {tuple(r.split(" | ")[:3]): r for r in md.splitlines() if r.startswith("| moca") or r.startswith("| ae")
            or r.startswith("| vae")}
    # moca λ=10: three seeds, all scored
    vals = [truth[f"moca-tiny-digits-lambda10-s{k}"]["samples"]["fid"] for k in range(3)]
    want = f"{statistics.fmean(vals):.2f} ± {statistics.stdev(vals):.2f} (3/3)"
    assert want in rows[("| moca", "tiny", "10")]
    # ae: seed 2 never ran -> mean of two seeds, n = 2 of 3, not a zero averaged in
    vals = [truth[f"ae-tiny-digits-s{k}"]["gmm"]["fid"] for k in range(2)]
    assert f"{statistics.fmean(vals):.2f} ± {statistics.stdev(vals):.2f} (2/3)" in rows[("| ae", "tiny", "")]
    # λ = 0: every seed failed; λ = 100: one failed
    assert rows[("| moca", "tiny", "0")].count("| failed") == 2
    assert "(2/3, 1 failed)" in rows[("| moca", "tiny", "100")]
    # cited values: own column, marked, matched to the λ = 10 row only; an uncited row gets nothing
    head = next(r for r in md.splitlines() if r.startswith("| regularizer"))
    assert "digits: prior samples (cited)" in head and "digits: GMM (cited)" not in head
    assert "54.36 [1]" in rows[("| moca", "tiny", "10")] and "54.36" not in rows[("| moca", "tiny", "100")]
    assert "70.50 [2]" in rows[("| vae", "(not stated)", "")]
    assert "1. Somebody et al. 2021, Table 1" in md and "2. Other et al. 2019, Table 2" in md
    assert "| 0.00" not in md and " 0 (" not in md
    assert "digits: 12 cells, arch tiny, 1 epoch capped at 4 steps, batch 64" in md   # the budget is stated


def test_missing_before_anything_ran_is_a_dash(tmp_path):
    p = tmp_path / "agg.toml"
    p.write_text(SPEC)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p))
    md = table_render.markdown(table.collect(folder))
    row = next(r for r in md.splitlines() if r.startswith("| ae"))
    assert row == f"| ae | tiny |  | {MISSING} |  | {MISSING} |"       # samples, (cited: none), GMM


def test_csv_holds_the_same_numbers(tmp_path):
    folder, s, truth = fill(tmp_path)
    rep = table.collect(folder, ["samples"])
    paths = table_render.write(folder, rep)
    rows = list(csv.DictReader(io.StringIO(paths[1].read_text())))
    by = {(r["regularizer"], r["reg.lambda"]): r for r in rows}
    r = by[("moca", "100")]
    vals = [truth[f"moca-tiny-digits-lambda100-s{k}"]["samples"]["fid"] for k in (0, 2)]
    assert float(r["digits:samples:fid:mean"]) == pytest.approx(statistics.fmean(vals))
    assert float(r["digits:samples:fid:std"]) == pytest.approx(statistics.stdev(vals))
    got = (r["digits:samples:fid:n"], r["digits:samples:fid:of"], r["digits:samples:fid:status"])
    assert got == ("2", "3", "partial")
    f = by[("moca", "0")]
    assert f["digits:samples:fid:mean"] == "" and f["digits:samples:fid:status"] == "failed"
    assert by[("moca", "10")]["digits:samples:fid:cited"] == "54.36"
    assert by[("moca", "10")]["digits:samples:fid:cited_source"] == "Somebody et al. 2021, Table 1"
    assert by[("vae", "")]["digits:samples:fid:status"] == "not in grid"
    assert (folder.path / "table.md").is_file()


def test_plots_are_written_for_the_lambda_axis(tmp_path):
    folder, s, _ = fill(tmp_path)
    paths = plots.write_all(folder, s, grid.expand(s))
    names = sorted(p.name for p in paths)
    assert names == ["fid-vs-lambda-digits.png", "spectra-moca-tiny-digits.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_failed_json_holds_the_error_line(tmp_path):
    folder, _, _ = fill(tmp_path)
    fail = json.loads((folder.cell_dir("moca-tiny-digits-lambda0-s0") / "failed.json").read_text())
    assert fail["error"] == "RuntimeError: CUDA out of memory" and fail["cell"] == "moca-tiny-digits-lambda0-s0"
