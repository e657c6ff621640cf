"""What the tuning section, tuning.csv, the tuned column and the Settings
block say while a tuning is partial, failed, open again or stale
(wae_bench.bench.tuning_summary; docs/benchmarks.md, "Tables").  Training and
scoring are faked (tests/test_bench_tune.py's ``fake``: best λ = 10, score
|log10 λ − 1| + 5)."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

import wae_bench.evaluate
from tests.helpers import run_cli
from tests.test_bench_tune import SPEC, fake, sched, scored_by  # noqa: F401 - (fake: a fixture)
from wae_bench.atomic import write_json
from wae_bench.bench import grid, table, tuning_summary
from wae_bench.bench.aggregate import Entry
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.tune import Choice, Point

pytestmark = pytest.mark.usefixtures("single_thread")

TWO_SEEDS = ("--set", "bench.seeds=[0]", "--set", "tune.seeds=[0,1]")


def _line(folder: Path) -> str:
    """The moca group's line of the tuning section in table.md."""
    (line,) = [ln for ln in (folder / "table.md").read_text().splitlines() if "moca · tiny · digits, validation" in ln]
    return line


def _tuning_rows(folder: Path) -> dict[str, dict[str, str]]:
    return {r["tuned:reg.lambda"]: r for r in csv.DictReader(io.StringIO((folder / "tuning.csv").read_text()))}


def _moca(folder: Path):
    rep = table.collect(ResultsDir(folder))
    row = next(r for r in rep.rows if r[0] == "moca")
    return rep, row


def _spec(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sched.toml"
    p.write_text(text)
    return p


def _bench(tmp_path: Path, capsys, spec: Path, *args) -> tuple[int, str, str]:
    code, out, err = run_cli(["bench", str(spec), "--out", str(tmp_path / "res"), "--quiet", *args], capsys)
    return code, out, " ".join(err.split())


# -- F1: the margin with the decimals it needs ----------------------------------------------------------
def test_the_margin_below_the_spread_prints_with_the_decimals_that_show_it(tmp_path, capsys, fake, monkeypatch):
    """λ = 10 scores 12.700 / 12.838 (mean 12.769), λ = 1 12.772 twice: the
    scores print with 3 decimals, so the margin 0.003 must too (it printed
    0.00, the chosen mean's 2 decimals: a tie to the eye)."""
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run",
                        scored_by(lambda lam, seed: {1: 12.772, 10: 12.7 + 0.138 * seed}.get(lam, 20.0)))
    code, err = sched(tmp_path, capsys, *TWO_SEEDS)
    assert code == 0, err
    line = _line(tmp_path / "res")
    assert "λ = 1: 12.772; λ = 10: 12.769 (chosen)" in line, line
    assert "(margin 0.003 to λ = 1 is below the seed spread, std 0.069: the choice may be noise)" in line, line


def test_a_kid_margin_smaller_than_the_scores_decimals_gets_more():
    """KID-sized scores 0.4287 / 0.4288 with the line's 4 decimals: margin 0.0001, never 0.000."""
    best = Point({"reg.lambda": 10}, ["a", "b"], [0.4277, 0.4297])
    other = Point({"reg.lambda": 100}, ["c", "d"], [0.4288, 0.4288])
    note = tuning_summary._within_spread(Choice([best, other]), best.values, 4)
    assert "margin 0.0001 to λ = 100 is below the seed spread, std 0.0010" in note, note
    note = tuning_summary._within_spread(Choice([best, other]), best.values, 2)   # (the margin needs 4: it gets 4)
    assert "margin 0.0001 " in note, note


# -- F9, F11, F13: partial scores, seeds, a failure as soon as it happens ----------------------------
def test_a_partly_scored_value_shows_its_seeds_and_a_failure_shows_at_once(tmp_path, capsys, fake, monkeypatch):
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, *TWO_SEEDS, "--only", "tune-moca-tiny-digits-lambda10-s0")
    assert code == 0, err
    assert "λ = 1: pending; λ = 10: 5.00 (1 of 2 seeds); λ = 1000: pending — (waiting for its tuning cells)" \
        in _line(res), _line(res)
    row = _tuning_rows(res)["10"]
    assert (row["state"], row["val:standin-fid"], row["val:standin-fid:scores"], row["seeds"]) == \
        ("pending", "5.0", "5.0", "1")
    assert (row["val:standin-fid:seeds"], row["pending"]) == ("0", "1")

    monkeypatch.setenv("FAIL_LAMBDAS", "1000")   # λ = 1000's seed 0 fails while its seed 1 is not run yet
    code, err = sched(tmp_path, capsys, *TWO_SEEDS, "--only", "tune-moca-tiny-digits-lambda1000-s0")
    assert code == 2, err
    assert "λ = 1000: failed (out of memory (fake)), 1 seed pending" in _line(res), _line(res)
    row = _tuning_rows(res)["1000"]
    assert (row["state"], row["pending"]) == ("failed", "1") and "out of memory (fake)" in row["error"]
    rep, moca = _moca(res)
    assert rep.tuned[moca] == "tuned λ waits for failed tuning cells"


def test_tuning_csv_names_the_seed_of_each_score(tmp_path, capsys, fake):
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, *TWO_SEEDS)
    assert code == 0, err
    assert {r["val:standin-fid:seeds"] for r in _tuning_rows(res).values()} == {"0 1"}
    shutil.rmtree(res / "cells" / "tune-moca-tiny-digits-lambda1000-s0")
    code, _, err = run_cli(["table", str(res), "--no-plots"], capsys)
    assert code == 0, err
    row = _tuning_rows(res)["1000"]
    assert (row["val:standin-fid:scores"], row["val:standin-fid:seeds"], row["pending"]) == ("7.0", "1", "1")


# -- F12: a long error cut at a word, its parentheses closed -------------------------------------------
def test_a_long_error_is_cut_at_a_word_with_its_parentheses_closed(tmp_path, capsys, fake, monkeypatch):
    res = tmp_path / "res"
    monkeypatch.setenv("FAIL_LAMBDAS", "1000")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    assert code == 2, err
    p = res / "cells" / "tune-moca-tiny-digits-lambda1000-s0" / "failed.json"
    error = ("no loadable checkpoint in '/some/rather/long/results/folder/cells/tune-moca/checkpoints' "
             "(2 unreadable, newest: checkpoint 'ckpt-8.pt' is truncated); restore the run from a copy")
    write_json(p, {**json.loads(p.read_text()), "error": error})
    code, _, err = run_cli(["table", str(res), "--no-plots"], capsys)
    assert code == 0, err
    line = _line(res)
    value = line.split("λ = 1000: ")[1].split(" — ")[0]
    assert value == "failed (no loadable checkpoint in '/some/rather/long/results/folder/cells/tune-moca/checkpoints'…)", \
        value     # (cut before the parenthesis it would leave open; it was cut mid-word: "(2 unreadab)")
    assert tuning_summary._clip("x (" + "word " * 40) == "x (" + "word " * 18 + "word…)"   # (else closed)


# -- F14, F8: "1 step", large values alike, every tuned axis in Settings -----------------------------------
def test_one_step_is_singular_and_a_large_lr_prints_as_lambda_does(tmp_path, capsys, fake):
    spec = _spec(tmp_path, SPEC.replace('"reg.lambda" = [1, 10, 1000]', '"reg.lambda" = [10]\nlr = [1e-3, 1e12]'))
    code, _, err = _bench(tmp_path, capsys, spec, "--set", "bench.seeds=[0]", "--set", "tune.max_steps=1")
    assert code == 0, err
    res = tmp_path / "res"
    assert (res / "cells" / "tune-moca-tiny-digits-lambda10-lr1000000000000-s0").is_dir()   # (ids as before)
    rep, moca = _moca(res)
    assert rep.tuned[moca].endswith("tuned over λ ∈ {10}; lr ∈ {0.001, 1e+12} at 30 epochs capped at 1 step"), \
        rep.tuned[moca]
    assert "λ = 10, lr = 1e+12: 5.00" in _line(res), _line(res)
    assert any(line.startswith("tuning budget: ") and "capped at 1 step," in line for line in rep.tuning), rep.tuning
    (line,) = [s for s in rep.settings if s.startswith("moca:")]
    assert "tuned: λ = 10, lr = 0.001" in line, line


def test_display_value_prints_large_and_small_numbers_in_short_scientific_form_and_ids_keep_theirs():
    assert [grid.display_value(v) for v in (1e12, 10 ** 12, 1e39, 1e-5, 0.001, 1000, 1234567.0, "x", True)] == \
        ["1e+12", "1e+12", "1e+39", "1e-05", "0.001", "1000", "1.234567e+06", "x", "true"]
    assert grid.format_value(1e12) == "1000000000000"        # (cell ids are built from it: unchanged)


# -- F23: no entry claims a seed scored that did not ------------------------------------------------------
def test_an_entry_with_a_failed_and_a_stale_seed_claims_no_score():
    e = Entry([], expected=2, failed=1, stale=1, unscored={0: "failed", 1: "stale"})
    assert e.text() == "— (0/2, s0 failed, s1 stale)" and e.n == 0


# -- F6: the all-diverged hint says what works ------------------------------------------------------------
def test_the_all_diverged_hint_says_to_add_values_and_doing_so_works(tmp_path, capsys, fake, monkeypatch):
    monkeypatch.setenv("DIVERGE_LAMBDAS", "1,10,1000")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]", "--no-table")
    assert code == 2, err
    fail = ResultsDir(tmp_path / "res").failure("moca-tiny-digits-s0")["error"]
    assert fail.endswith("add values to [reg.moca.tune] after the ones tuned (they stay listed: a grid only grows "
                         "in place), then rerun, or use another --out"), fail
    spec = _spec(tmp_path, SPEC.replace('[1, 10, 1000]', '[1, 10, 1000, 100]'))   # (what the hint says)
    code, _, err = _bench(tmp_path, capsys, spec, "--set", "bench.seeds=[0]")
    assert code == 0, err
    rep, moca = _moca(tmp_path / "res")
    assert rep.tuned[moca].startswith("λ = 100, tuned over λ ∈ {1, 10, 1000, 100}"), rep.tuned[moca]


def test_settings_say_no_value_was_chosen_when_every_tuned_value_diverged(tmp_path, capsys, fake, monkeypatch):
    """The Settings line of a group whose every value diverged said
    ``λ = not chosen yet``, as while tuning is pending: nothing will ever be
    chosen, as its row's ``every tuned λ diverged`` says; table.csv keeps null."""
    monkeypatch.setenv("DIVERGE_LAMBDAS", "1,10,1000")
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 2, err
    md = (tmp_path / "res" / "table.md").read_text()
    assert "| moca | tiny | every tuned λ diverged |" in md, md
    assert "- moca: tuned: λ = none (every tuned value diverged);" in md, md
    assert "not chosen yet" not in md, md
    moca = next(r for r in csv.DictReader(io.StringIO((tmp_path / "res" / "table.csv").read_text()))
                if r["regularizer"] == "moca")
    assert json.loads(moca["settings"])["lambda"] is None


# -- F10, F17: a choice open again, stale cells in Settings -------------------------------------------------
@pytest.mark.parametrize("how", ["a tuning cell removed", "the grid widened"])
def test_a_final_row_says_when_its_tuning_is_open_again(tmp_path, capsys, fake, how):
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    spec = tmp_path / "sched.toml"
    if how == "a tuning cell removed":
        shutil.rmtree(res / "cells" / "tune-moca-tiny-digits-lambda1000-s0")
    else:
        spec.write_text(SPEC.replace('[1, 10, 1000]', '[1, 10, 1000, 3000]'))
    code, out, err = run_cli(["bench", str(spec), "--out", str(res), "--dry-run", "--json",
                              "--set", "bench.seeds=[0]"], capsys)
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["moca-tiny-digits-s0"]["tuning"] == "tuned λ = 10 (tuning open again: 1 tuning cell pending)"
    # (a run of another cell records the widened spec in the folder, as a shard's run would, and writes the table)
    code, _, err = run_cli(["bench", str(spec), "--out", str(res), "--quiet", "--set", "bench.seeds=[0]",
                            "--only", "ae-*"], capsys)
    assert code == 0, err
    rep, moca = _moca(res)
    assert rep.tuned[moca] == "λ = 10 (tuning open again: 1 tuning cell pending)"
    (csv_row,) = [r for r in csv.DictReader(io.StringIO((res / "table.csv").read_text())) if r["regularizer"] == "moca"]
    assert csv_row["tuned"] == rep.tuned[moca]


def test_settings_mark_the_stale_cells_their_rows_mark(tmp_path, capsys, fake):
    res = tmp_path / "res"
    code, err = sched(tmp_path, capsys, "--set", "bench.seeds=[0]")
    assert code == 0, err
    p = res / "cells" / "tune-moca-tiny-digits-lambda1-s0" / "results.json"   # (λ = 1 now scores best)
    r = json.loads(p.read_text())
    r["scores"]["samples"]["fid"] = 4.0
    write_json(p, r)
    rep, moca = _moca(res)
    assert rep.tuned[moca] == "λ = 10 (stale: tuning now chooses λ = 1)"
    (line,) = [s for s in rep.settings if s.startswith("moca:")]
    assert "tuned: λ = 10" in line and line.endswith("(1 of 1 cell stale: reg.lambda 10.0 -> 1.0)"), line


# -- the tuning texts' helpers other modules use are public ----------------------------------------------
def test_the_helpers_other_modules_import_from_tuning_summary_are_public():
    """The report prints tuned values and decimals by the tuning section's
    rules: it imports them by public, documented names, never ``_private`` ones."""
    import re

    root = Path(__file__).resolve().parents[1] / "wae_bench"
    private = [f"{p.relative_to(root)}: {m.group(0)}" for p in root.rglob("*.py")
               for m in re.finditer(r"from wae_bench\.bench\.tuning_summary import [^\n]*\b_\w+", p.read_text())]
    assert private == []
    assert tuning_summary.values_text({"reg.lambda": 10, "lr": 1e-3}) == "λ = 10, lr = 0.001"
    assert tuning_summary.distinct_decimals([12.8046, 12.7977]) == 3
    assert tuning_summary.values_text.__doc__ and tuning_summary.distinct_decimals.__doc__


# -- N5: unequal tuning effort is said ----------------------------------------------------------------
def _smoke_tune_table(tmp_path: Path, beta_grid: str) -> list[str]:
    """The tuning section of benchmarks/smoke-tune.toml (MoCA's λ over 3 values,
    RAE-SN's β over ``beta_grid``), before any cell ran."""
    from wae_bench.bench import spec as specs

    root = Path(__file__).resolve().parents[1]
    text = (root / "benchmarks" / "smoke-tune.toml").read_text()
    assert '"reg.beta" = [0.001, 0.1]' in text
    p = tmp_path / "smoke-tune.toml"
    p.write_text(text.replace('"reg.beta" = [0.001, 0.1]', f'"reg.beta" = {beta_grid}'))
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p))
    return table.collect(folder).tuning


def test_unequal_tuning_effort_between_tuned_regularizers_is_said(tmp_path):
    lines = _smoke_tune_table(tmp_path, "[0.001, 0.1]")
    (line,) = [x for x in lines if "unequal tuning effort" in x]
    assert line == ("WARNING: unequal tuning effort: moca: 3 tuning cells per group (3 values × 1 seed, 1 epoch "
                    "capped at 6 steps each); rae-sn: 2 tuning cells per group (2 values × 1 seed, 1 epoch capped at "
                    "6 steps each); the head-to-head of tuned values is fair only under equal effort (give each "
                    "regularizer's [reg.NAME.tune] as many values, at the same budget)")
    assert "validation" in lines[-1] and "validation" in lines[-2]          # (the group lines stay the last)
    (tmp_path / "equal").mkdir()
    assert not any("unequal" in x for x in _smoke_tune_table(tmp_path / "equal", "[0.001, 0.01, 0.1]"))


def test_a_tune_table_with_nothing_to_tune_says_so_in_one_line(tmp_path):
    """A [tune] grid whose regularizers have no tuned axis (compare ae --tune):
    no tuning rule over "sampler (none)" and no budget of "(varies)" settings."""
    from wae_bench.bench import spec as specs

    root = Path(__file__).resolve().parents[1]
    text = (root / "benchmarks" / "smoke-tune.toml").read_text()
    assert 'regularizers = ["moca", "rae-sn", "ae"]' in text
    p = tmp_path / "ae-tune.toml"
    text = text.replace('regularizers = ["moca", "rae-sn", "ae"]', 'regularizers = ["ae"]')
    p.write_text(text[:text.index("[reg.moca]")])      # (the spec without the tuned regularizers' tables)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p))
    rep = table.collect(folder)
    assert not any("(varies)" in line or "(none)" in line for line in rep.tuning)
    assert rep.tuning == [tuning_summary.NOTHING_TUNED]
    assert set(rep.tuned.values()) == {"nothing to tune"}
