"""The plots of a tuned grid say what the numbers rest on
(wae_bench/bench/plots.py): the tuning curves show the validation score the
choice was made by (``tune.metric``, not the table's metric) and are drawn
only for an axis tuned over two or more values; each point of a score plot
over a grid axis says the tuned value its final cells trained at; a failed
or diverged value is marked on its own curve only; a title claims a std
only where a point has two or more seeds.  Training and scoring are faked
(tests/test_bench_tune.py's ``fake``), so every score is known."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from matplotlib.colors import to_hex

import wae_bench.evaluate
from tests.bench_helpers import run_cli
from tests.test_bench_tune import fake  # noqa: F401 - (a fixture)
from wae_bench.atomic import write_json
from wae_bench.bench import plots
from wae_bench.bench.aggregate import Entry

SPEC = """
[bench]
name = "tuned-plots"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca", "wae-mmd"]
seeds = [0]

[train]
max_steps = 4

[eval]
features = "standin"
kid_subset_size = 50

[grid]
latent_dim = [8, 16]

[tune]
holdout = 100
fid_samples = 100
max_steps = 2
metric = "kid"

[reg.moca.tune]
"reg.lambda" = [1, 10, 100]

[reg.wae-mmd.tune]
"reg.lambda" = [15]
"""
# KID picks λ = 10 at d = 8 and λ = 100 at d = 16; FID (the table's metric) would pick λ = 1 at both.
KID_BEST = {8: 1, 16: 2}     # d -> log10 of its best λ by KID


def _scores(cfg: dict) -> dict[str, float]:
    log_lam = math.log10(cfg["reg"].get("lambda") or 10)
    return {"fid": 5 + log_lam, "kid": 0.01 * (1 + abs(log_lam - KID_BEST[cfg["latent_dim"]]))}


def _evaluate_run(run_dir, **kw):
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    res = {"scores": {w: _scores(cfg) for w in kw["what"]}, "protocol": {"reference": {"split": kw["split"]}},
           "run": {}}
    write_json(Path(run_dir) / "results.json", res)
    return res


def _drawn(monkeypatch) -> dict[str, dict]:
    """What each plot written from now on shows, by file name (nothing is written)."""
    seen: dict[str, dict] = {}

    def save(fig, path, formats=("png",)):
        ax = fig.axes[0]
        handles, labels = ax.get_legend_handles_labels()
        seen[path.name] = {
            "title": ax.get_title(), "ylabel": ax.get_ylabel(), "legend": labels, "ax": ax,
            "texts": [(t.get_text(), t.xy) for t in ax.texts],
            "lines": [(ln.get_label(), list(ln.get_xdata()), list(ln.get_ydata()), ln.get_marker(),
                       to_hex(ln.get_color()), ln.get_transform()) for ln in ax.lines]}
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    return seen


@pytest.fixture
def plotted(tmp_path, capsys, fake, monkeypatch):  # noqa: F811 - (the fixture imported above)
    """The grid benched (faked), then `wae-bench table` (the table's metric: fid) drawing its plots."""
    monkeypatch.setattr(wae_bench.evaluate, "evaluate_run", _evaluate_run)
    spec = tmp_path / "tuned.toml"
    spec.write_text(SPEC)
    out = tmp_path / "res"
    code, _, err = run_cli(["bench", str(spec), "--out", str(out), "--quiet", "--no-table"], capsys)
    assert code == 0, err
    seen = _drawn(monkeypatch)
    code, _, err = run_cli(["table", str(out)], capsys)
    assert code == 0, err
    return seen


def test_the_tuning_curves_show_the_metric_the_choice_was_made_by(plotted):
    assert "tune-fid-vs-lambda-moca-digits.png" not in plotted
    p = plotted["tune-kid-vs-lambda-moca-digits.png"]
    assert p["ylabel"].startswith("validation") and "KID" in p["ylabel"]
    curves = {lb: dict(zip(xs, ys)) for lb, xs, ys, marker, _, _ in p["lines"] if marker == "*"}
    # the stars: the KID choice of each curve, at its KID
    assert sorted(curves.values(), key=lambda d: list(d)) == [{10.0: pytest.approx(0.01)},
                                                              {100.0: pytest.approx(0.01)}]
    assert "chosen: λ = 10" in p["legend"] and "chosen: λ = 100" in p["legend"]


def test_an_axis_tuned_over_one_value_gets_no_tuning_plot(plotted):
    assert not [name for name in plotted if name.startswith("tune-") and "wae-mmd" in name], sorted(plotted)


def test_each_point_over_a_grid_axis_says_the_tuned_value_it_rests_on(plotted):
    p = plotted["fid-vs-d-digits.png"]
    # moca chose λ = 10 at d = 8 and λ = 100 at d = 16: said beside each point
    assert sorted(text for text, _ in p["texts"]) == ["λ=10", "λ=100"]
    assert {text: xy[0] for text, xy in p["texts"]} == {"λ=10": 8.0, "λ=100": 16.0}
    # wae-mmd's one λ along the whole curve: said once, in its legend entry
    assert "wae-mmd · tiny (n = 1; tuned λ=15)" in p["legend"], p["legend"]
    assert "moca · tiny (n = 1)" in p["legend"], p["legend"]


def test_a_title_claims_no_std_where_every_point_has_one_seed(plotted):
    assert plotted["fid-vs-d-digits.png"]["title"] == "digits, prior samples: one seed per point, no error bars"
    assert plotted["tune-kid-vs-lambda-moca-digits.png"]["title"].endswith(
        ": one tuning seed per point, no error bars")


def test_the_title_claims_a_std_where_a_point_has_two_seeds():
    line = ("moca", "tiny", ())
    assert plots.spread({line: [(1.0, Entry([5.0, 6.0], 2)), (10.0, Entry([5.0], 2))]}) == \
        "mean ± sample std over n seeds"
    assert plots.spread({line: [(1.0, Entry([5.0], 1))]}, "tuning seed") == "one tuning seed per point, no error bars"


def test_a_value_diverged_on_one_curve_is_marked_on_that_curve_only(tmp_path, monkeypatch):
    d8, d16 = (("moca", "tiny", (("latent_dim", d),)) for d in (8, 16))
    pts = {("moca", "tiny", "digits", (("latent_dim", d), ("reg.lambda", lam))): e
           for d in (8, 16) for lam, e in ((1, Entry([5.0], 1)), (10, Entry([6.0], 1)), (100, Entry([7.0], 1)))}
    pts[("moca", "tiny", "digits", (("latent_dim", 8), ("reg.lambda", 100)))] = Entry([float("nan")], 1)
    pts[("moca", "tiny", "digits", (("latent_dim", 16), ("reg.lambda", 10)))] = Entry([], 1, failed=1)
    lines, unscored = plots._curves(pts, "digits", "reg.lambda")
    assert unscored == {"failed": {d16: [10.0]}, "diverged": {d8: [100.0]}}
    seen = _drawn(monkeypatch)
    plots._plot(None, "reg.lambda", lines, tmp_path / "p.png", "t", "fid", unscored)
    p = seen["p.png"]
    curve_of = {c: xs for _, xs, _, marker, c, _ in p["lines"] if marker == "o"}   # colour -> its scored values
    assert sorted(curve_of.values()) == [[1.0, 10.0], [1.0, 100.0]]               # d=8, d=16
    marks = {marker: (lb, xs, ys, c, tr) for lb, xs, ys, marker, c, tr in p["lines"] if marker in ("x", "v")}
    assert sorted(marks) == ["v", "x"]                                  # one mark per curve that lost a value
    assert not [ln for ln in p["lines"] if ln[3] in ("None", "", " ")]  # no line across every curve
    for marker, kind, curve, x in (("x", "diverged", 8, 100.0), ("v", "failed", 16, 10.0)):
        lb, xs, ys, c, tr = marks[marker]
        assert xs == [x] and lb == f"{plots.UNSCORED_STYLE[kind]['label']}: moca · tiny d={curve}"
        assert x not in curve_of[c]                                   # in the colour of the curve it lies on
        assert tr.contains_branch_seperately(p["ax"].transData) == (True, False)   # x in data, y in the axes
        assert 0.5 < ys[0] <= 1                                       # near the top


def test_a_value_excluded_from_the_choice_is_marked_apart_from_a_failed_one():
    """A value whose every seed failed and was excluded (bench
    --exclude-failed-tuning: never retried) is not drawn as "failed (the next
    run retries it)"; one with a seed only failed still is."""
    axes = lambda lam: (("reg.lambda", lam),)  # noqa: E731
    pts = {("moca", "tiny", "digits", axes(1)): Entry([5.0], 1),
           ("moca", "tiny", "digits", axes(10)): Entry([], 1, failed=1, excluded=1),
           ("moca", "tiny", "digits", axes(100)): Entry([], 2, failed=2, excluded=1)}
    _, unscored = plots._curves(pts, "digits", "reg.lambda")
    line = ("moca", "tiny", ())
    assert unscored["excluded"] == {line: [10.0]} and unscored["failed"] == {line: [100.0]}
    assert "never chosen" in plots.UNSCORED_STYLE["excluded"]["label"]
