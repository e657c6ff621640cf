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
