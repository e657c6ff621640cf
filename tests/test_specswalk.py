"""The shipped benchmark specs as a researcher reproducing the MoCA paper
reads them: each spec's header comment says what of the paper it
reproduces and, for the ablations, that the dataset and architecture are
the spec's choice (the paper does not say them); the values a header calls
the paper's are the ones docs/../PAPER.md gives and the spec grids; and the
table's legend says what a grid-axis column holds for the rows that are not
on that axis (λ of moca against each other regularizer's own λ) and what
the tuned column is.  No training here (claimed folders only)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from wae_bench.bench import export, table, table_render
from wae_bench.bench import spec as specs
from tests.test_bench_table import SPEC as TABLE_SPEC
from wae_bench.bench.folder import ResultsDir

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
ABLATIONS = sorted(BENCH.glob("ablation-*.toml"))


def header(path: Path) -> str:
    """The comment lines above a spec's first table, joined."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("["):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_spec_opens_with_a_header_comment(path):
    assert path.read_text().startswith("#"), f"{path.name}: say in a header comment what the spec reproduces"


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.name)
def test_each_ablation_header_names_its_paper_result_and_says_the_dataset_is_its_choice(path):
    text = header(path)
    assert re.search(r"MoCA paper, (Table [34]|Fig\. [345])", text), text
    assert "does not say which dataset" in text or "nor the dataset and architecture" in text, text
    assert "this spec's choice" in text or "are this spec's choices" in text, text
    assert "CIFAR-10" in text and "A1" in text, text
    data = tomllib.loads(path.read_text())
    assert data["bench"]["datasets"] == ["cifar10"] and data["bench"]["archs"] == ["a1"]


def test_the_values_the_ablation_headers_call_the_papers_are_the_papers():
    """PAPER.md's Table 4 K values, Fig. 3's d values and Fig. 5's λ values
    are the spec grids; Table 3's m0 values are in the grid (with App. A's 0.99)."""
    found = [p for p in (ROOT / "shared", ROOT.parent / "shared", ROOT.parent.parent / "shared")
             if (p / "PAPER.md").is_file()]
    text = (found[0] / "PAPER.md").read_text() if found else ""
    grid = {p.stem: tomllib.loads(p.read_text())["grid"] for p in ABLATIONS}
    assert grid["ablation-K"]["reg.K"] == [100, 5000, 10000, 30000, 60000, 120000]
    assert grid["ablation-d-lambda"]["latent_dim"] == [64, 128, 256, 512]
    assert grid["ablation-d-lambda"]["reg.lambda"][0] == 100 and grid["ablation-d-lambda"]["reg.lambda"][-1] == 144000
    assert grid["ablation-lambda-spectrum"]["reg.lambda"] == [0, 500, 1000, 3000]
    assert {0.0, 0.9, 0.999} <= set(grid["ablation-m0"]["reg.m0"]) and 0.99 in grid["ablation-m0"]["reg.m0"]
    if text:   # the shared paper notes, where this checkout has them
        assert "K = 100: 84.93, 5000: 48.45, 10000: 46.56" in text
        assert "d ∈ {64,128,256,512} × λ from 100 to 144000" in text
        assert "λ ∈ {0, 500, 1000, 3000}" in text
        assert "m0 ∈ {0, 0.9, 0.999}" in text
    # the header of ablation-K says why its cited values are a trend only: K beyond CIFAR-10's 50,000 images
    k = header(BENCH / "ablation-K.toml")
    assert "120000 is more than CIFAR-10's 50,000 training images" in k and "compare the trend over K" in k


@pytest.mark.parametrize("name", ["table1-cifar10.toml", "table1-celeba.toml"])
def test_table1_headers_say_the_paper_trains_moca_alone_at_a_fixed_lambda(name):
    text = header(BENCH / name)
    assert "The paper trains MoCA only and cites its baselines" in text, text
    assert "a grid search over lambda in {100, 1000, 3000, 6000}" in text, text
    assert "tuned by one protocol" in text, text


def test_docs_specs_table_has_a_row_per_ablation_with_the_papers_values_named():
    text = (ROOT / "docs" / "benchmarks.md").read_text().split("\n## Specs\n", 1)[1].split("\n### ", 1)[0]
    for p in ABLATIONS:
        assert f"| `{p.name}` |" in text, p.name
    assert "the paper does not say which\ndataset, architecture, λ or budget its ablations used" in text


# test_bench_table's folder (moca on a λ axis beside ae, a cited vae row), with rae-l2 beside them
SPEC = TABLE_SPEC.replace('regularizers = ["moca", "ae"]', 'regularizers = ["moca", "rae-l2", "ae"]')


def _report(tmp_path: Path, text: str):
    p = tmp_path / "s.toml"
    p.write_text(text)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p))
    return table.collect(folder)


def test_the_legend_says_whose_grid_axis_a_column_is_and_that_other_rows_show_their_own_lambda(tmp_path):
    """The smoke table's λ column: moca's grid axis, filled for rae-l2 and ae
    with their own λ (1e-07, 0), which weighs another penalty: the legend
    said nothing of it, so `rae-l2 | 1e-07` read as a point of moca's axis."""
    rep = _report(tmp_path, SPEC)
    legend = table_render.legend(rep)
    assert ("λ: the grid axis reg.lambda of moca; the rows of rae-l2, ae show the λ their cells ran with, each "
            "regularizer's own (it weighs that regularizer's penalty: compare λ within a regularizer, not across; "
            "see Settings).") in legend, legend
    assert "tuned:" not in legend                               # no [tune]: no tuned column to explain
    caption = export.caption(rep)                               # table.tex: the same, without a pointer
    assert "the rows of rae-l2, ae show the" in caption and "see Settings" not in caption


def test_no_axis_note_where_every_row_is_a_point_of_the_axis(tmp_path):
    """digits-d-lambda's table: every row on both axes, nothing to explain."""
    plain = SPEC.split("[[cited]]")[0].replace('regularizers = ["moca", "rae-l2", "ae"]', 'regularizers = ["moca"]')
    rep = _report(tmp_path, plain.replace("[reg.moca.grid]", "[grid]\nlatent_dim = [8, 16]"))
    assert rep.axis_keys == ["latent_dim", "reg.lambda"]
    assert "the grid axis" not in table_render.legend(rep)


def test_a_shared_train_axis_is_named_without_the_not_comparable_clause(tmp_path):
    """``latent_dim`` means the same for every regularizer: only whose axis it is."""
    rep = _report(tmp_path, SPEC.replace('"reg.lambda" = [0, 10, 100]', "latent_dim = [8, 16]"))
    legend = table_render.legend(rep)
    assert "d: the grid axis latent_dim of moca; the rows of rae-l2, ae show the d their cells ran with " \
           "(see Settings)." in legend, legend
    assert "compare d within" not in legend


def test_the_legend_says_what_the_tuned_column_holds(tmp_path):
    rep = _report(tmp_path, (BENCH / "smoke-tune.toml").read_text())
    legend = table_render.legend(rep)
    assert "tuned: the value each row's cells trained at, chosen on the validation split" in legend, legend
    assert "tuned: the value" not in table_render.legend(rep, paper=True)   # table.tex's caption has its own line
