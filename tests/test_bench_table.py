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

from wae_bench.bench import grid, plots, table, table_notes, table_render, tune
from wae_bench.bench import spec as specs
from wae_bench.bench.aggregate import MISSING, Entry, mean_std, number
from wae_bench.bench.folder import ResultsDir
from wae_bench.atomic import write_json
from wae_bench.config import EvalSettings

ROOT = Path(__file__).resolve().parents[1]

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
    # no seed scored: the parenthesis never claims one did (it was "failed (1/3)": 1 of 3 seeds scored)
    assert Entry([], expected=3, failed=1).text() == "— (0/3, 1 failed)"
    assert Entry([], expected=2, failed=1, stale=1, unscored={0: "failed", 1: "stale"}).text() == \
        "— (0/2, s0 failed, s1 stale)"
    assert Entry([], expected=2, stale=1, unscored={0: "stale", 1: "missing"}).text() == "— (0/2, s0 stale, no s1)"
    assert Entry([], expected=2, stale=2).text() == "stale (2/2)"
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
    # ae: seed 2 never ran -> mean of two seeds, n = 2 of 3, not a zero averaged in, the seed missing named;
    # ae is not on the λ axis: its own λ (0) fills the column
    vals = [truth[f"ae-tiny-digits-s{k}"]["gmm"]["fid"] for k in range(2)]
    assert f"{statistics.fmean(vals):.2f} ± {statistics.stdev(vals):.2f} (2/3, no s2)" in rows[("| ae", "tiny", "0")]
    # λ = 0: every seed failed; λ = 100: one failed, named
    assert rows[("| moca", "tiny", "0")].count("| failed") == 2
    assert "(2/3, s1 failed)" in rows[("| moca", "tiny", "100")]
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
    assert row == f"| ae | tiny | 0 | {MISSING} |  | {MISSING} |"       # λ (ae's own), samples, (cited: none), GMM


def test_the_settings_and_budget_say_nothing_false_of_a_grid_axis_or_a_constant_lr(tmp_path):
    """A grid axis's values differ by definition: ``grid: λ = 0 / 10 / 100``,
    not ``... (varies)``; ``lr_halve_every = 0`` never halves the lr: the
    budget said ``halved every 0 epochs``."""
    p = tmp_path / "agg.toml"
    p.write_text(SPEC.replace("max_steps = 4", "max_steps = 4\nlr_halve_every = 0"))
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p))
    md = table_render.markdown(table.collect(folder))
    moca = next(x for x in md.splitlines() if x.startswith("- moca:"))
    assert moca.startswith("- moca: grid: λ = 0 / 10 / 100;") and "varies" not in moca, moca
    assert "Adam lr 0.001 constant, latent d" in md and "halved every 0" not in md, md
    p.write_text(SPEC)
    folder = ResultsDir(tmp_path / "results2")
    folder.claim(specs.load(p))
    assert "Adam lr 0.001 halved every 60 epochs, latent d" in table_render.markdown(table.collect(folder))


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
    assert r["digits:samples:fid:seeds"] == "0 2"
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


def test_each_spectrum_names_the_seed_it_is_of(tmp_path, monkeypatch):
    """Each λ's spectrum is the first seed's that has one, named in its legend entry."""
    folder, s, _ = fill(tmp_path)
    said = []

    def save(fig, path, formats=("png",)):
        said.extend(fig.axes[0].get_legend_handles_labels()[1])
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    plots.spectra(folder, s, grid.expand(s))
    assert said == ["λ = 10 (seed 0)", "λ = 100 (seed 0)"], said


def test_failed_json_holds_the_error_line(tmp_path):
    folder, _, _ = fill(tmp_path)
    fail = json.loads((folder.cell_dir("moca-tiny-digits-lambda0-s0") / "failed.json").read_text())
    assert fail["error"] == "RuntimeError: CUDA out of memory" and fail["cell"] == "moca-tiny-digits-lambda0-s0"


# -- what a paper table needs stated (settings, protocol, marks) ----------------------------
H2H = """
[bench]
name = "h2h"
description = "Head to head at 30 steps."
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca", "ae"]
seeds = [0, 1, 2]

[train]
epochs = 1
max_steps = 30

[eval]
what = ["samples", "gmm"]
fid_samples = 128
features = "standin"

[reg.moca]
K = 64
"""


def _protocol(n: int, features: str = "standin-randconv") -> dict:
    return {"implementation": "x", "features": features, "generated": {"samples": {"n": n}, "gmm": {"n": n}},
            "reference": {"split": "test", "n": 297}, "seed": 0,
            "versions": {"wae_bench": "0.1.0", "torch": "2.14.1+cu130"}}


def h2h(tmp_path: Path, scores: dict, sets: tuple = (), eval_64: str | None = None):
    """A results folder of H2H (with ``sets``): ``scores`` {cell id: (samples, gmm)} at 128 samples; the
    cell ``eval_64`` scored again at 64 samples (the 128-sample scores kept in its history)."""
    p = tmp_path / "h2h.toml"
    p.write_text(H2H)
    s = specs.load(p, sets)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    for c in grid.expand(s):
        if c.id not in scores:
            continue
        write_json(folder.cell_dir(c.id) / "config.json",
                   {"config": table_notes.resolved(c), "source": "abc1234",
                    "versions": {"wae_bench": "0.1.0", "torch": "2.14.1+cu130"}})
        sa, gm = scores[c.id]
        res = {"scores": {"samples": {"fid": sa}, "gmm": {"fid": gm}}, "protocol": _protocol(128)}
        if c.id == eval_64:
            res = {"scores": {"samples": {"fid": sa + 50}, "gmm": {"fid": gm + 50}}, "protocol": _protocol(64),
                   "history": [{**res, "replaced": "later"}]}
        write_json(folder.cell_dir(c.id) / "results.json", res)
    return folder


SCORES = {"moca-tiny-digits-s0": (5.0, 9.0), "moca-tiny-digits-s1": (6.0, 9.5), "moca-tiny-digits-s2": (7.0, 9.9),
          "ae-tiny-digits-s0": (1.0, 6.2), "ae-tiny-digits-s1": (2.0, 5.6)}


def test_an_entry_reads_the_evaluation_the_spec_asks_for_and_marks_one_that_has_none(tmp_path):
    folder = h2h(tmp_path, SCORES, eval_64="moca-tiny-digits-s0")
    md = table_render.markdown(table.collect(folder))
    moca = next(r for r in md.splitlines() if r.startswith("| moca"))
    assert f"{statistics.fmean([5.0, 6.0, 7.0]):.2f} ± 1.00 (3/3)" in moca   # the 128-sample score from history
    assert "‡" not in md.split("**Evaluation**")[1] and "WARNING" not in md
    # the spec now asks for 64: only moca s0 has such an evaluation, the others are marked and named
    (tmp_path / "other").mkdir()
    folder = h2h(tmp_path / "other", SCORES, sets=("eval.fid_samples=64",), eval_64="moca-tiny-digits-s0")
    rep = table.collect(folder)
    md = table_render.markdown(rep)
    moca = next(r for r in md.splitlines() if r.startswith("| moca"))
    assert f"{statistics.fmean([55.0, 6.0, 7.0]):.2f}" in moca and "(3/3)‡" in moca
    line = next(x for x in rep.protocol if x.startswith("‡"))
    assert "4 seeds scored under another protocol" in line
    assert "moca-tiny-digits-s1, moca-tiny-digits-s2, ae-tiny-digits-s0, ae-tiny-digits-s1" in line
    warn = next(x for x in rep.protocol if x.startswith("WARNING"))
    assert "moca-tiny-digits-s0" in warn and "moca-tiny-digits-s1" not in warn   # the odd one out named


def test_settings_versions_seeds_and_standin_names_are_stated(tmp_path):
    folder = h2h(tmp_path, SCORES)
    rep = table.collect(folder)
    md = table_render.markdown(rep)
    settings = md.split("**Settings**")[1].split("**Evaluation**")[0]
    moca = next(x for x in settings.splitlines() if x.startswith("- moca:"))
    assert "[reg.moca]: K = 64" in moca and "plugin default for digits/tiny: λ = " in moca
    assert any(x.startswith("- ae: plugin default for digits/tiny: λ = 0") for x in settings.splitlines())
    assert "wae-bench 0.1.0 (abc1234), torch 2.14.1+cu130" in md             # the code that scored it
    # cells scored alike by different commits (seeds added later) are one protocol: no warning, each code named
    cfg = folder.cell_dir("ae-tiny-digits-s1") / "config.json"
    write_json(cfg, {**json.loads(cfg.read_text()), "source": "def5678"})
    md = table_render.markdown(table.collect(folder))
    assert "WARNING" not in md and md.count("recorded (") == 1
    assert "(abc1234), torch 2.14.1+cu130 (4 cells), wae-bench 0.1.0 (def5678), torch 2.14.1+cu130 (1 cell)" in md
    assert "(2/3, no s2)" in next(r for r in md.splitlines() if r.startswith("| ae"))
    assert "FID from" not in md                    # stand-in features: no Inception few-images note
    assert "(cited)" not in table_render.title(rep) and "(cited)" not in md
    rows = list(csv.DictReader(io.StringIO(table_render.csv_text(rep))))
    ae = next(r for r in rows if r["regularizer"] == "ae")
    assert ae["digits:gmm:standin-fid:seeds"] == "0 1" and ae["judged_by"] == "gmm"
    assert json.loads(next(r for r in rows if r["regularizer"] == "moca")["settings"])["K"] == 64
    assert not any(k.endswith(":fid:mean") for k in rows[0])                 # NOT FID never named fid


def test_a_cell_whose_starts_trained_with_other_settings_is_named_under_the_code_that_scored_it(tmp_path):
    """config.json's top-level ``source`` is its latest start's: a cell
    resumed across commits or thread counts (its ``starts`` differ,
    :func:`~wae_bench.run.directory.mixed_settings`) is named in a warning
    of the Evaluation block, the others not."""
    folder = h2h(tmp_path, SCORES)
    assert "trained across starts" not in table_render.markdown(table.collect(folder))
    start = {"step": 0, "time": "t0", "threads": {"intra_op": 2}, "source": "abc1234",
             "versions": {"wae_bench": "0.1.0", "torch": "2.14.1+cu130"}}
    for cid, later in (("ae-tiny-digits-s1", {"source": "def5678", "threads": {"intra_op": 1}}),
                       ("moca-tiny-digits-s0", {})):
        cfg = folder.cell_dir(cid) / "config.json"
        write_json(cfg, {**json.loads(cfg.read_text()), "starts": [start, {**start, "step": 4, **later}]})
    md = table_render.markdown(table.collect(folder))
    (line,) = [x for x in md.split("**Evaluation**")[1].splitlines() if "trained across starts" in x]
    assert line.startswith("- WARNING: 1 cell trained across starts with different settings (the code named above "
                           "is the latest start's): ae-tiny-digits-s1: this run mixes settings"), line
    assert "intra-op threads 2 -> 1" in line and "source abc1234 -> def5678" in line
    assert "moca-tiny-digits-s0" not in line


def test_own_sampler_entries_and_the_best_are_marked(tmp_path):
    folder = h2h(tmp_path, SCORES)
    rep = table.collect(folder)
    md = table_render.markdown(rep)
    moca = next(r for r in md.splitlines() if r.startswith("| moca")).split(" | ")
    ae = next(r for r in md.splitlines() if r.startswith("| ae")).split(" | ")
    # ae is judged by its GMM column (5.90), moca by its prior samples (6.00): ae's is best, moca's within
    # the seed spread of it (margin 0.10 < pooled std); ae's lower prior-samples score is not crowned
    assert moca[2] == "≈6.00 ± 1.00 (3/3)†" and "†" not in moca[3]
    assert ae[3].startswith("**5.90") and ae[3].rstrip(" |").endswith("† best**") and "†" not in ae[2]
    rows = {r["regularizer"]: r for r in csv.DictReader(io.StringIO(table_render.csv_text(rep)))}
    assert rows["ae"]["digits:gmm:standin-fid:mark"] == "best"
    assert rows["moca"]["digits:samples:standin-fid:mark"] == "within spread"
    assert "moca: prior samples" not in md and "prior samples for moca; GMM for ae" in md   # the legend says so


def test_entries_that_print_the_same_are_both_marked_best(tmp_path):
    """moca's prior samples (mean 5.901) and ae's GMM (5.899) both print
    5.90: one was bold and "best", the other not, two equal-looking numbers;
    a tie as printed marks both (table.md, table.csv)."""
    ties = {"moca-tiny-digits-s0": (5.801, 9.0), "moca-tiny-digits-s1": (5.901, 9.5),
            "moca-tiny-digits-s2": (6.001, 9.9), "ae-tiny-digits-s0": (1.0, 5.849), "ae-tiny-digits-s1": (2.0, 5.949)}
    rep = table.collect(h2h(tmp_path, ties))
    md = table_render.markdown(rep)
    moca = next(r for r in md.splitlines() if r.startswith("| moca")).split(" | ")
    ae = next(r for r in md.splitlines() if r.startswith("| ae")).split(" | ")
    assert moca[2].startswith("**5.90 ± 0.10") and moca[2].endswith("† best**"), moca
    assert ae[3].startswith("**5.90 ± 0.07") and ae[3].rstrip(" |").endswith("† best**"), ae
    rows = {r["regularizer"]: r for r in csv.DictReader(io.StringIO(table_render.csv_text(rep)))}
    assert rows["ae"]["digits:gmm:standin-fid:mark"] == rows["moca"]["digits:samples:standin-fid:mark"] == "best"


def _add_scores(folder, name: str, scale: float, shift: float = 0.0) -> None:
    """Every scored cell of an :func:`h2h` folder also gets score ``name``: its FID × ``scale`` + ``shift``."""
    for cid in SCORES:
        p = folder.cell_dir(cid) / "results.json"
        res = json.loads(p.read_text())
        for block in res["scores"].values():
            block[name] = block["fid"] * scale + shift
        write_json(p, res)


def test_higher_is_better_scores_crown_the_highest_and_say_so(tmp_path):
    """Precision, recall, F and IS grow with quality: the best is the highest
    (moca's 0.600 over ae's 0.590), the legend and the plot say "higher is
    better"; a std has no direction: no best mark, no "is better" text."""
    folder = h2h(tmp_path, SCORES)
    _add_scores(folder, "precision", 0.1)
    _add_scores(folder, "kid_std", 0.1)
    rep = table.collect(folder, metric="precision")
    md = table_render.markdown(rep)
    moca = next(r for r in md.splitlines() if r.startswith("| moca")).split(" | ")
    ae = next(r for r in md.splitlines() if r.startswith("| ae")).split(" | ")
    assert moca[2] == "**0.600 ± 0.100 (3/3)† best**" and ae[3].startswith("≈0.590")
    assert "(higher is better)" in md and "lower is better" not in md
    assert plots._ylabel(rep.spec, "precision").endswith("(higher is better)")
    assert plots._ylabel(rep.spec, "fid").endswith("(lower is better)")
    rep = table.collect(folder, metric="kid_std")
    md = table_render.markdown(rep)
    assert not rep.marks and "is better" not in md and " best" not in md.split("| regularizer")[1]


def test_values_under_one_keep_three_significant_digits(tmp_path):
    """KID is about 0.005: two decimals would print 0.00 ± 0.00."""
    assert Entry([0.0031, 0.0045], expected=2).text() == "0.00380 ± 0.00099 (2/2)"
    assert Entry([0.81, 0.80], expected=3).text() == "0.805 ± 0.007 (2/3)"
    assert Entry([54.361, 47.3], expected=2).text() == "50.83 ± 4.99 (2/2)"
    assert [number(v) for v in (0.05, 0.9996, 0.99949)] == ["0.0500", "1.00", "0.999"]   # 1.000 is not 3 digits
    from wae_bench.bench.output import headline   # the bench's per-cell line: the same rule
    ev = EvalSettings(metrics=["kid"], what=["samples"])
    assert headline({"scores": {"samples": {"kid": 0.05}}, "protocol": {"features": "inception"}}, ev).endswith(
        "0.0500")
    folder = h2h(tmp_path, SCORES)
    _add_scores(folder, "kid", 0.001)
    md = table_render.markdown(table.collect(folder, metric="kid"))
    assert "0.00600 ± 0.00100 (3/3)" in md and "0.00 ±" not in md


def test_few_images_note_is_in_the_evaluation_block_with_inception_features(tmp_path):
    folder = h2h(tmp_path, SCORES, sets=("eval.features=inception",))
    for cid in SCORES:
        p = folder.cell_dir(cid) / "results.json"
        res = json.loads(p.read_text())
        res["protocol"] = _protocol(128, "inception-v3-compat (TF-Inception 2015-12-05, pool3 2048-d)")
        write_json(p, res)
    rep = table.collect(folder)
    from wae_bench.metrics.fid import few_images_note
    assert f"note: {few_images_note(128, 2048)}" in rep.protocol
    assert "digits:samples:fid:mean" in table_render.csv_text(rep)


def test_the_description_names_the_set_overrides_it_ran_with(tmp_path):
    folder = h2h(tmp_path, SCORES, sets=("train.max_steps=4",))
    md = table_render.markdown(table.collect(folder))
    assert "Head to head at 30 steps. As run, with --set: train.max_steps=4" in md
    assert "capped at 4 steps" in md
    rec = json.loads(folder.spec_path.read_text())       # a folder recorded before spec.json kept the overrides:
    write_json(folder.spec_path, {k: v for k, v in rec.items() if k != "overrides"})   # the file vs what ran
    assert "As run, with --set: train.max_steps=4 " in table_render.markdown(table.collect(folder))
    (tmp_path / "plain").mkdir()
    folder = h2h(tmp_path / "plain", SCORES)
    assert "As run" not in table_render.markdown(table.collect(folder))


# -- a [tune] table -----------------------------------------------------------------------------
CITED = """
[[cited]]
regularizer = "moca"
arch = "tiny"
dataset = "digits"
value = 12.5
source = "Made-up et al. 2026 (source_with_&_and_%), Table 1"
note = "50% of #samples_{x}"
"""
TUNE_SCORES = {"lambda10": 8.0, "lambda100": 6.0, "beta0.001": 9.0, "beta0.1": 7.0}   # (lambda1e_39 diverged)


def fill_tuned(tmp_path: Path, tuning_done: bool = True, seeds_run: tuple = (0,)):
    """A results folder of benchmarks/smoke-tune.toml (with a cited row whose
    source has LaTeX specials), written by hand: its tuning cells scored on
    the validation split (λ = 100 and β = 0.1 best; λ = 1e39 diverged), the
    final cells of ``seeds_run`` tuned (their choice recorded) and scored,
    the others not begun; ``tuning_done`` False leaves λ = 10 unscored."""
    p = tmp_path / "smoke-tune.toml"
    p.write_text((ROOT / "benchmarks" / "smoke-tune.toml").read_text() + CITED)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    cells = grid.expand(s)
    proto = _protocol(128, "standin-randconv")
    val = {**proto, "reference": {"split": "val", "n": 300}}   # (the tuning cells' protocol: the validation split)
    for c in cells:
        if c.role != "tune":
            continue
        key = c.id.split("-digits-")[1].rsplit("-s", 1)[0]
        if key == "lambda1e_39":
            folder.mark_failed(c, "loss is nan", diverged=True)
        elif tuning_done or key != "lambda10":
            write_json(folder.cell_dir(c.id) / "results.json",
                       {"scores": {grid.sampler(c.regularizer): {"fid": TUNE_SCORES[key]}}, "protocol": val})
    for i, c in enumerate(x for x in cells if x.role != "tune" and x.seed in seeds_run):
        if c.role == "final":
            tune.settle(folder, s, c, cells)
        write_json(folder.cell_dir(c.id) / "results.json",
                   {"scores": {"samples": {"fid": 20.0 + i}, "gmm": {"fid": 15.0 + i}}, "protocol": proto})
    return folder, s


def test_the_tuned_column_says_the_choice_once_tuning_is_done_pending_only_before(tmp_path):
    """Seed 1's final cells have not run (a seed added to a tuned grid): their
    tuning is done, so they will use λ = 100, not "pending"."""
    folder, s = fill_tuned(tmp_path)
    rep = table.collect(folder)
    moca = next(r for r in rep.rows if r[0] == "moca")
    assert not tune.recorded(folder, next(c for c in grid.expand(s) if c.id == "moca-tiny-digits-s1"))
    assert rep.tuned[moca] == "λ = 100, tuned over λ ∈ {10, 100, 1e+39} at 1 epoch capped at 6 steps"
    assert rep.row_cells(moca, short=True)[-1] == "λ = 100" and rep.tuned_values[("ae", "tiny", ())] == \
        "nothing to tune"
    assert rep.tuned_grids == {"moca": ["λ ∈ {10, 100, 1e+39} at 1 epoch capped at 6 steps"],
                               "rae-sn": ["β ∈ {0.001, 0.1} at 1 epoch capped at 6 steps"]}
    (tmp_path / "pending").mkdir()
    folder, s = fill_tuned(tmp_path / "pending", tuning_done=False, seeds_run=())
    rep = table.collect(folder)
    assert rep.tuned[next(r for r in rep.rows if r[0] == "moca")] == "tuned λ pending"
    assert rep.tuned[next(r for r in rep.rows if r[0] == "rae-sn")].startswith("β = 0.1, tuned over")


# -- plots -----------------------------------------------------------------------------------------
GRID2 = """
[bench]
name = "grid2"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca"]
seeds = [0, 1]

[train]
max_steps = 4

[eval]
what = ["gmm"]

[grid]
"reg.lambda" = [1, 10]
latent_dim = [8, 16, 128]
"""


def test_bench_plots_the_specs_column_legend_in_axis_order_with_n_and_pdf_on_request(tmp_path, capsys, monkeypatch):
    """A spec that scores only the GMM column gets its plots from bench's
    table too; the curves d = 8, 16, 128 are listed in that order, each with
    its n; the title names the column, not the spec; --plot-format pdf adds
    a PDF beside each PNG, which a later table rewrites."""
    import os

    from tests.bench_helpers import run_cli
    from wae_bench.cli.bench import write_table

    p = tmp_path / "grid2.toml"
    p.write_text(GRID2)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    for i, c in enumerate(grid.expand(s)):
        write_json(folder.cell_dir(c.id) / "results.json", {"scores": {"gmm": {"fid": 30.0 + i}}, "protocol": {}})
    seen = {}
    save = plots._save

    def spy(fig, path, formats=("png",)):
        ax = fig.axes[0]
        seen[path.name] = (ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()])
        return save(fig, path, formats)

    monkeypatch.setattr(plots, "_save", spy)
    write_table(folder)
    assert sorted(seen) == ["fid-vs-d-digits.png", "fid-vs-lambda-digits.png"]
    title, legend = seen["fid-vs-lambda-digits.png"]
    assert legend == ["moca · tiny d=8 (n = 2)", "moca · tiny d=16 (n = 2)", "moca · tiny d=128 (n = 2)"]
    assert title == "digits, GMM: mean ± sample std over n seeds" and "grid2" not in title
    monkeypatch.setattr(plots, "_save", save)
    code, out, err = run_cli(["table", str(folder.path), "--plot-format", "pdf"], capsys)
    assert code == 0, err
    pdf = folder.path / "plots" / "fid-vs-lambda-digits.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and (folder.path / "plots" / "fid-vs-d-digits.png").is_file()
    os.utime(pdf, (1, 1))
    write_table(folder)
    assert pdf.stat().st_mtime > 1                                  # rewritten with the PNGs
    code, out, err = run_cli(["table", str(folder.path), "--plot-format", "eps"], capsys)
    assert code == 2 and "--plot-format 'eps': choose from png, pdf, svg" in err and len(err.strip().splitlines()) == 1
