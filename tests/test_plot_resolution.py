"""The resolution of the grid's PNG plots reaches the files: 200 dpi by
default (it was 110, blurry in a paper or on a slide), ``wae-bench table
--plot-dpi N`` otherwise, recorded in each PNG's pHYs chunk and in its
pixels.  No training here (the results folder is written by hand)."""
from __future__ import annotations

from PIL import Image

from wae_bench.bench import plots
from tests.bench_helpers import run_cli
from tests.test_bench_table import fill

PLOT = "fid-vs-lambda-digits.png"


def _dpi_and_size(path) -> tuple[tuple[int, int], tuple[int, int]]:
    with Image.open(path) as im:
        return tuple(round(d) for d in im.info["dpi"]), im.size


def test_png_plots_are_written_at_200_dpi_unless_plot_dpi_says_otherwise(tmp_path, capsys):
    folder, _, _ = fill(tmp_path)
    code, _, err = run_cli(["table", str(folder.path)], capsys)
    assert code == 0, err
    dpi, size = _dpi_and_size(folder.path / "plots" / PLOT)
    assert plots.PNG_DPI == 200 and dpi == (200, 200)
    assert size[0] >= 0.8 * plots.FIGSIZE[0] * 200           # the pixels too (bbox "tight" trims the margins)
    code, _, err = run_cli(["table", str(folder.path), "--plot-dpi", "300"], capsys)
    assert code == 0, err
    for p in (folder.path / "plots").glob("*.png"):             # every plot, the spectra too
        assert _dpi_and_size(p)[0] == (300, 300), p.name
    big = _dpi_and_size(folder.path / "plots" / PLOT)[1]
    assert abs(big[0] / size[0] - 1.5) < 0.02 and abs(big[1] / size[1] - 1.5) < 0.02


def test_a_bad_plot_dpi_is_one_line_and_the_help_names_the_default(tmp_path, capsys):
    folder, _, _ = fill(tmp_path)
    code, _, err = run_cli(["table", str(folder.path), "--plot-dpi", "10"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--plot-dpi" in err and "50<=x<=1200" in err, err
    assert not (folder.path / "plots").exists()
    code, out, _ = run_cli(["table", "--help"], capsys)
    assert code == 0 and f"(default {plots.PNG_DPI}," in " ".join(out.split())
