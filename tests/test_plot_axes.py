"""A score plot labels its y axis with the scores themselves: near-equal
scores (12.7973 ... 12.8046, a tuning grid's typical spread at one seed) get
no matplotlib offset (``+1.28e1``), which would make a 0.007 spread read as
a clear trend (wae_bench/bench/plots.py ``_plot``)."""
from __future__ import annotations

from wae_bench.bench import plots
from wae_bench.bench.aggregate import Entry


def test_near_equal_scores_are_plotted_without_an_axis_offset(tmp_path, monkeypatch):
    seen = {}
    real = plots._save

    def save(fig, path, formats=("png",)):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen["offset"] = ax.yaxis.get_major_formatter().get_offset()
        seen["ticks"] = [t.get_text() for t in ax.get_yticklabels()]
        return real(fig, path, formats)

    monkeypatch.setattr(plots, "_save", save)
    line = ("moca", "tiny", ())
    pts = [(10.0, Entry([12.8046], 1)), (100.0, Entry([12.7977], 1)), (1000.0, Entry([12.7973], 1))]
    out = plots._plot(None, "reg.lambda", {line: pts}, tmp_path / "p.png", "t", "validation fid")
    assert out[0].is_file()
    assert seen["offset"] == ""
    assert any(t.startswith("12.8") for t in seen["ticks"]), seen["ticks"]


def _legend(monkeypatch, tmp_path, *args, **kw) -> list[tuple[str, str, str]]:
    """(label, colour, marker) of each legend entry of ``plots._plot(*args, **kw)``."""
    from matplotlib.colors import to_hex

    seen = []

    def save(fig, path, formats=("png",)):
        ax = fig.axes[0]
        handles, labels = ax.get_legend_handles_labels()
        seen.extend((lb, to_hex(h.get_color()) if hasattr(h, "get_color") else "", getattr(h, "get_marker",
                     lambda: "")()) for h, lb in zip(handles, labels))
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    plots._plot(None, *args, **kw)
    return seen


def test_failed_and_diverged_values_are_drawn_and_labelled_apart(tmp_path, monkeypatch):
    """A failed value (an error, retried) and a diverged one (a result, never
    chosen) are told apart on a tuning plot (they shared "failed / diverged")."""
    line = ("moca", "tiny", ())
    pts = {(line[0], "tiny", "digits", (("reg.lambda", lam),)): e
           for lam, e in ((1, Entry([5.0], 1)), (10, Entry([], 1, failed=1)),
                          (100, Entry([], 1, failed=1, diverged=1)), (1000, Entry([float("nan")], 1)))}
    lines, unscored = plots._curves(pts, "digits", "reg.lambda")
    assert unscored == {"failed": {line: [10.0]}, "diverged": {line: [100.0, 1000.0]}}
    legend = _legend(monkeypatch, tmp_path, "reg.lambda", lines, tmp_path / "p.png", "t", "fid", unscored)
    by = {lb: (colour, marker) for lb, colour, marker in legend}
    failed, diverged = by[plots.UNSCORED_STYLE["failed"]["label"]], by[plots.UNSCORED_STYLE["diverged"]["label"]]
    assert failed[1] != diverged[1] and not any("/" in lb for lb in by)   # (one curve: its colour, two markers)


def test_the_star_of_a_two_axis_tuning_names_the_chosen_value_of_every_axis(tmp_path, monkeypatch):
    line = ("moment", "tiny", (("reg.cov_weight", 0.5),))
    pts = [(1.0, Entry([5.0], 1)), (10.0, Entry([6.0], 1))]
    legend = _legend(monkeypatch, tmp_path, "reg.lambda", {line: pts}, tmp_path / "p.png", "t", "fid",
                     chosen={line: {"reg.lambda": 1, "reg.cov_weight": 0.5}})
    assert "chosen: λ = 1, cov_weight = 0.5" in [lb for lb, _, _ in legend], legend


def test_a_latent_dimension_axis_of_powers_of_two_is_log2_with_a_tick_a_value(tmp_path, monkeypatch):
    """d = 8 ... 256 (digits-d-lambda) was drawn on a linear axis: 8, 16 and 32
    crowded at its left end, unlabelled; λ's own log axis stays base 10."""
    seen = {}

    def save(fig, path, formats=("png",)):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen.update(scale=ax.get_xscale(), ticks=[t.get_text() for t in ax.get_xticklabels()],
                    base=getattr(ax.xaxis.get_transform(), "base", None))
        return [path]

    monkeypatch.setattr(plots, "_save", save)
    line = ("moca", "tiny", ())
    d = [8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    plots._plot(None, "latent_dim", {line: [(x, Entry([100.0 + x / 10], 1)) for x in d]}, tmp_path / "p.png", "t",
                "fid")
    assert seen["scale"] == "log" and seen["base"] == 2 and seen["ticks"] == ["8", "16", "32", "64", "128", "256"]
    plots._plot(None, "reg.lambda", {line: [(x, Entry([1.0], 1)) for x in (1.0, 2.0, 4.0, 8.0)]}, tmp_path / "q.png",
                "t", "fid")
    assert seen["scale"] == "log" and seen["base"] == 10
    plots._plot(None, "latent_dim", {line: [(x, Entry([1.0], 1)) for x in (16.0, 24.0, 32.0)]}, tmp_path / "r.png",
                "t", "fid")
    assert seen["scale"] == "linear"
