"""`wae-bench report` of a tuned grid (a ``[tune]`` table; training and
scoring faked as in tests/test_bench_tune.py, so every score is known): each
cell's section says its role and the split its scores are on, with enough
decimals to tell different scores apart; diverged tuning cells are listed
apart from the failed ones; the header counts stale cells; every tuning value
links to its tuning cells."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import wae_bench.evaluate
from tests.bench_helpers import run_cli
from tests.test_bench_tune import SPEC as BENCH_SPEC, fake, scored_by  # noqa: F401 - (``fake``: a fixture)
from tests.test_report import Parsed
from wae_bench.bench import grid, report, table
from wae_bench.bench.folder import ResultsDir


def _tuned_spec() -> str:
    """test_bench_tune's scheduling spec with WAE-MMD (tuned too) for the AE,
    two tuning seeds, and λ ∈ {10, 100, 1000} for MoCA."""
    out = BENCH_SPEC
    for old, new in (('"ae"]', '"wae-mmd"]'), ("[1, 10, 1000]", "[10, 100, 1000]"),
                     ("max_steps = 2\n", "max_steps = 2\nseeds = [0, 1]\n")):
        assert old in out
        out = out.replace(old, new)
    return out + '\n[reg.wae-mmd.tune]\n"reg.lambda" = [15, 150]\n'


SPEC = _tuned_spec()
# (λ, seed) -> the score of its cells, tuning (validation) and final (test) alike: λ = 10-s0 and λ = 100-s0
# differ in the third decimal (12.80 both at two); λ = 1000 diverges; λ = 1 (added later) wins.
FID = {(10, 0): 12.8046, (10, 1): 12.7325, (100, 0): 12.7977, (100, 1): 12.7466, (1, 0): 11.0, (1, 1): 11.1,
       (15, 0): 9.51, (15, 1): 9.66, (150, 0): 9.9, (150, 1): 9.8}


@pytest.fixture
def tuned(tmp_path, capsys, fake, monkeypatch):  # noqa: F811 - (the fixture imported above)
    """The grid run (λ = 1000 diverging), its report's text and folder."""
    monkeypatch.setenv("DIVERGE_LAMBDAS", "1000")
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", scored_by(lambda lam, seed: FID[(lam, seed)]))
    spec = tmp_path / "tuned.toml"
    spec.write_text(SPEC)
    out = tmp_path / "res"
    code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
    assert code == 0 and "2 tuning cell(s) diverged" in " ".join(err.split()), err
    return spec, ResultsDir(out)


def page_of(folder: ResultsDir) -> str:
    return report.page(folder, table.collect(folder))


def section(page: str, cell_id: str) -> str:
    return page.split(f'id="cell-{cell_id}">')[1].split("</section>")[0]


def text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", fragment).split())


def test_each_cell_says_its_role_and_split_with_enough_decimals_to_tell_its_scores_apart(tuned):
    _, folder = tuned
    page = page_of(folder)
    ten, hundred = (section(page, f"tune-moca-tiny-digits-lambda{lam}-s0") for lam in (10, 100))
    assert "tuning cell at λ = 10 (tuning seed 0): scored on the validation split to choose the λ of its final " \
           "cells s0 s1" in text(ten)
    assert 'href="#cell-moca-tiny-digits-s0"' in ten and 'href="#cell-moca-tiny-digits-s1"' in ten
    val = "stand-in FID (NOT FID) on the validation split (held-out training images): prior samples "
    assert val + "12.805" in text(ten) and val + "12.798" in text(hundred)      # (not 12.80 twice)
    final = text(section(page, "moca-tiny-digits-s0"))
    assert "final cell at the tuned λ = 10" in final
    assert "stand-in FID (NOT FID) on the test split: prior samples 12.80" in final   # (12.80 and 12.73 differ)
    assert "validation" not in final


def test_diverged_tuning_cells_are_listed_apart_from_failed_ones_as_a_result(tuned):
    _, folder = tuned
    failed = "wae-mmd-tiny-digits-s1"
    (folder.cell_dir(failed) / "results.json").unlink()
    folder.mark_failed(next(c for c in grid.expand(folder.spec()) if c.id == failed), "RuntimeError: out of memory")
    page = page_of(folder)
    tables = Parsed(page).tables
    errors = next(t for t in tables if t[0] == ["cell", "error", "when"])
    assert [row[:2] for row in errors[1:]] == [[failed, "RuntimeError: out of memory"]]
    diverged = next(t for t in tables if t[0] == ["cell", "divergence", "when"])
    assert [row[0] for row in diverged[1:]] == [f"tune-moca-tiny-digits-lambda1000-s{s}" for s in (0, 1)]
    assert "its value is never chosen and the cell is never retried" in page
    assert "diverged (a result, never retried): loss is nan (fake)" in text(
        section(page, "tune-moca-tiny-digits-lambda1000-s0"))


def test_the_header_counts_every_cell_by_state_stale_ones_too(tuned, capsys, fake):  # noqa: F811
    spec, folder = tuned
    spec.write_text(SPEC.replace("[10, 100, 1000]", "[10, 100, 1000, 1]"))   # widened: λ = 1 wins, finals stale
    code, _, err = run_cli(["bench", str(spec), "--out", str(folder.path), "--quiet", "--no-table",
                            "--only", "tune-*"], capsys)
    assert code == 0, err
    head = text(page_of(folder).split('<p class="meta">')[1].split("</p>")[0])
    assert head.startswith("16 cells: 12 done, 2 stale, 2 diverged ·"), head


def test_each_tuning_value_links_to_its_tuning_cells(tuned):
    _, folder = tuned
    page = page_of(folder)
    items = re.findall(r"<li>(.*?)</li>", page.split('<h3 id="tuning">Tuning</h3>')[1].split("</ul>")[0])
    groups = [i for i in items if 'class="cells"' in i]
    assert len(groups) == 2
    for item, reg, lams in zip(groups, ("moca", "wae-mmd"), ((10, 100, 1000), (15, 150))):
        line, cells = item.split('<div class="cells">')
        assert text(line).startswith(f"{reg} · tiny · digits, validation fid on standin features (NOT FID): "
                                     f"λ = {lams[0]}: ")
        assert text(cells) == "cells: " + "; ".join(f"λ = {lam}: s0 s1" for lam in lams)
        assert re.findall(r'href="#cell-([^"]+)"', cells) == [f"tune-{reg}-tiny-digits-lambda{lam}-s{s}"
                                                             for lam in lams for s in (0, 1)]
    assert all(f"cell-tune-moca-tiny-digits-lambda{lam}-s1" in Parsed(page).ids for lam in (10, 100, 1000))


def test_an_excluded_tuning_cell_is_listed_as_excluded_not_as_failed(tuned):
    """A failed tuning cell excluded from the choice (bench
    --exclude-failed-tuning) is not an error to fix: the report lists it
    under its own heading, not among the failed cells, and counts it apart."""
    import json

    _, folder = tuned
    cid = "tune-wae-mmd-tiny-digits-lambda150-s1"
    (folder.cell_dir(cid) / "results.json").unlink()
    folder.mark_failed(next(c for c in grid.expand(folder.spec()) if c.id == cid), "RuntimeError: out of memory")
    path = folder.cell_dir(cid) / "failed.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "excluded": True}))
    page = page_of(folder)
    failed = page.split('<h2 id="failed">')[1].split("<h3")[0]
    assert "<p>None.</p>" in failed                                   # no error to fix
    excluded = page.split('<h3 id="excluded">')[1].split("</table>")[0]
    assert cid in excluded and "RuntimeError: out of memory" in excluded
    assert f"{report.EXCLUDED}: RuntimeError: out of memory" in text(section(page, cid))
    head = text(page.split('<p class="meta">')[1].split("</p>")[0])
    assert head.startswith("14 cells: 11 done, 1 excluded, 2 diverged ·"), head
