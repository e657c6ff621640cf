"""`wae-bench report`: the HTML page of a results folder.  The page's table is
table.collect's, cell by cell; every picture of the folder is embedded (the
exact bytes), nothing is fetched; failed cells show their error line; bad
input is one line.  Then the page of a real bench run (the smoke spec, one
trained cell and one failed) is opened in Debian's headless chromium: it loads
with no missing or broken image, and a screenshot is taken."""
from __future__ import annotations

import base64
import html
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bench_helpers import run_cli
from wae_bench.bench import grid, report, table, table_render
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.atomic import write_json
from wae_bench.pictures import save_grid

SMOKE = Path(__file__).resolve().parents[1] / "benchmarks" / "smoke.toml"
SPEC = """
[bench]
name = "page"
description = "A results folder written by hand <for the report>."
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca", "ae"]
seeds = [0, 1]

[train]
max_steps = 4

[eval]
what = ["samples", "gmm"]

[reg.moca.grid]
"reg.lambda" = [10, 100]

[[cited]]
source = "A cited paper, Table 1"
value = 54.36
regularizer = "moca"
axes = { "reg.lambda" = 10 }
dataset = "digits"
arch = "tiny"
"""
FAILED = {"moca-tiny-digits-lambda100-s1": "RuntimeError: CUDA out of memory"}
PENDING = "ae-tiny-digits-s1"


def fill(tmp_path: Path) -> ResultsDir:
    """Scores, grids (the real writer), spectra and plots for every cell but
    one failed and one never run; a plot of a name no code here knows."""
    p = tmp_path / "page.toml"
    p.write_text(SPEC)
    s = specs.load(p)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(s)
    g = torch.Generator().manual_seed(0)
    for i, c in enumerate(grid.expand(s)):
        if c.id in FAILED:
            folder.mark_failed(c, FAILED[c.id])
            continue
        if c.id == PENDING:
            continue
        d = folder.cell_dir(c.id)
        save_grid(torch.rand(64, 1, 8, 8, generator=g), d / "samples.png", nrow=8)
        save_grid(torch.rand(64, 1, 8, 8, generator=g), d / "samples-gmm.png", nrow=8)
        save_grid(torch.rand(64, 1, 8, 8, generator=g), d / "reconstructions.png", nrow=16)
        save_grid(torch.rand(4, 3, 40, 60, generator=g), d / "latent_spectrum.png", nrow=2)
        write_json(d / "results.json", {"scores": {"samples": {"fid": 40.0 + i}, "gmm": {"fid": 30.0 + 0.5 * i}},
                                        "diagnostics": {"spectrum_plot": "latent_spectrum.png",
                                                        "spectrum_effective_rank": 2.5},
                                        "protocol": {"implementation": "x", "features": "inception",
                                                     "reference": {"split": "test", "n": 297}, "seed": 0},
                                        "run": {"latent_dim": 8}})
    save_grid(torch.rand(2, 3, 120, 160, generator=g), folder.path / "plots" / "fid-vs-lambda-digits.png", nrow=2)
    save_grid(torch.rand(1, 3, 100, 100, generator=g), folder.path / "plots" / "tuning" / "any-name.png", nrow=1)
    return folder


class Parsed(HTMLParser):
    """The rows of each ``<table>`` (each cell's text without its ``cells:``
    line), the links of each table cell's ``cells:`` line (``links``, in the
    same layout), the attributes of each ``<img>``, every URL-carrying
    attribute, and the ``id`` of every element."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.links: list[list[list[list[str]]]] = []
        self.imgs: list[dict] = []
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self._cell: list[str] | None = None
        self._hrefs: list[str] = []
        self._in_cells = 0          # depth inside a ``cells:`` line (0: outside)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "data") and v]
        if "id" in a:
            self.ids.add(a["id"])
        if self._in_cells:
            self._in_cells += 1
            if tag == "a":
                self._hrefs.append(a["href"])
        elif a.get("class") == "cells":
            self._in_cells = 1
        if tag == "table":
            self.tables.append([])
            self.links.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.links[-1].append([])
        elif tag in ("td", "th"):
            self._cell, self._hrefs = [], []
        elif tag == "img":
            self.imgs.append(a)

    def handle_endtag(self, tag):
        if self._in_cells:
            self._in_cells -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self.links[-1][-1].append(self._hrefs)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None and not self._in_cells:
            self._cell.append(data)


def test_the_table_is_table_collects_cell_by_cell(tmp_path):
    folder = fill(tmp_path)
    rep = table.collect(folder)
    page = report.page(folder, rep)
    results = Parsed(page).tables[0]
    want = [table_render.headers(rep)] + [rep.row_cells(r) + [rep.value(r, col, cited) for col, cited in rep.layout()]
                                   for r in rep.rows]
    assert results == want
    flat = [v for row in results for v in row]
    assert "54.36 [1]" in flat and "42.00 (1/2, s1 failed)†" in flat and "44.00 (1/2, no s1)" in flat
    assert "32.00 (1/2, no s1)† best" in flat          # ae judged by its GMM column, the best of the own-sampler ones
    for line in [table_render.legend(rep), *rep.budget, *rep.protocol, "A cited paper, Table 1", folder.spec().hash()]:
        assert line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page.replace("&#x27;", "'")
    assert "A results folder written by hand &lt;for the report&gt;." in page      # escaped, not markup


def test_each_entry_links_to_the_sections_of_the_cells_it_averages(tmp_path):
    """A mean over seeds names its cells (every seed of the grid point, the
    failed and the missing too), each a link to that cell's section."""
    folder = fill(tmp_path)
    rep = table.collect(folder)
    parsed = Parsed(report.page(folder, rep))
    lead = len(table_render.headers(rep)) - len(rep.layout())
    want = [[[] for _ in range(lead)] + [[] if cited else [f"#cell-{c.id}" for c in grid.expand(folder.spec())
                                                          if (c.regularizer, c.arch, c.axes) == r and c.dataset == ds]
                                         for (ds, _), cited in rep.layout()] for r in rep.rows]
    assert parsed.links[0][1:] == want
    assert ["#cell-moca-tiny-digits-lambda100-s0", "#cell-moca-tiny-digits-lambda100-s1"] in parsed.links[0][2]
    assert {h[1:] for row in want for hrefs in row for h in hrefs} <= parsed.ids     # each to a section there


def test_the_protocol_shows_the_resolved_spec_the_hash_covers_and_the_overrides(tmp_path):
    """What ran, not the file as written: a --set shows in the resolved spec
    and in the list of overrides; the file is shown too, said to be without them."""
    p = tmp_path / "page.toml"
    p.write_text(SPEC)
    folder = ResultsDir(tmp_path / "results")
    folder.claim(specs.load(p, ["train.max_steps=3", "eval.fid_samples=17"]))
    folder.cell_dir(grid.expand(folder.spec())[0].id).mkdir(parents=True)   # (a cell begun: a page to write)
    page = report.page(folder, table.collect(folder))
    resolved = page.split("resolved spec (hash ")[1].split("</details>")[0]
    assert resolved.startswith(folder.spec().hash()) and "max_steps = 3" in resolved and "fid_samples = 17" in resolved
    assert specs.spec_hash(folder.record()["spec"]) == folder.spec().hash()
    assert "<code>train.max_steps=3</code>, <code>eval.fid_samples=17</code>" in page
    written = page.split("spec file as written")[1].split("</details>")[0]
    assert "without the overrides" in written and "max_steps = 3" not in written
    # the header's description and the Settings block are the table's (table_notes)
    rep = table.collect(folder)
    assert "As run, with --set" in rep.description and html.escape(rep.description.strip()) in page
    assert rep.settings and "<h3>Settings</h3>" in page
    assert all(html.escape(line) in page for line in rep.settings)


def test_every_picture_is_embedded_byte_for_byte_and_nothing_is_fetched(tmp_path):
    folder = fill(tmp_path)
    page = report.page(folder, table.collect(folder))
    parsed = Parsed(page)
    embedded = sorted(base64.b64decode(i["src"].split(",", 1)[1]) for i in parsed.imgs)
    files = sorted(p.read_bytes() for p in folder.path.rglob("*.png"))
    assert len(files) == 4 * 4 + 2 and embedded == files             # 4 cells with pictures + 2 plots
    assert all(i["src"].startswith("data:image/png;base64,") for i in parsed.imgs)
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in parsed.urls)   # links stay in the page
    assert "<script" not in page and "<link" not in page and "url(" not in page and "@import" not in page
    grids = [i for i in parsed.imgs if i.get("class") == "px"]        # small grids: upscaled, nearest neighbour
    assert len(grids) == 3 * 4 and {i["width"] for i in grids} >= {str(82 * 3), str(162 * 3)}
    assert "image-rendering:pixelated" in page
    assert any(i["alt"] == "plots/tuning/any-name.png" for i in parsed.imgs)   # any plot there, by its path


def test_failed_and_pending_cells_are_shown_with_their_state(tmp_path):
    folder = fill(tmp_path)
    parsed = Parsed(report.page(folder, table.collect(folder)))
    failed = next(t for t in parsed.tables if t[0] == ["cell", "error", "when"])
    assert [row[:2] for row in failed[1:]] == [[cid, err] for cid, err in FAILED.items()]
    page = report.page(folder, table.collect(folder))
    assert f'id="cell-{PENDING}"' in page and "not run yet" in page
    assert page.count('class="state done"') == 4 and page.count('class="state failed"') == 1


def test_an_unreadable_png_is_left_out_and_named(tmp_path):
    folder = fill(tmp_path)
    bad = folder.cell_dir("ae-tiny-digits-s0") / "samples.png"
    bad.write_bytes(bad.read_bytes()[:60])                            # truncated
    page = report.page(folder, table.collect(folder))
    assert len(Parsed(page).imgs) == 4 * 4 + 2 - 1
    assert "Left out, not a readable PNG: cells/ae-tiny-digits-s0/samples.png" in page


def test_cli_writes_the_page_atomically_where_asked(tmp_path, capsys):
    folder = fill(tmp_path)
    code, _, err = run_cli(["report", str(folder.path)], capsys)
    assert code == 0, err
    default = folder.path / "report.html"
    assert default.read_text() == report.page(folder, table.collect(folder))
    assert err.startswith("wrote") and str(default) in "".join(err.split())     # (rich wraps long lines)
    code, _, err = run_cli(["report", str(folder.path), "--out", str(tmp_path / "[new]" / "page.html")], capsys)
    assert code == 0 and (tmp_path / "[new]" / "page.html").read_text() == default.read_text()
    assert not [p for p in (tmp_path / "[new]").iterdir() if p.name != "page.html"]   # no temp file left
    assert str(tmp_path / "[new]" / "page.html") in "".join(err.split())   # (whole: no markup read in the path)
    default.unlink()
    code, _, err = run_cli(["table", str(folder.path), "--report", "--no-plots"], capsys)
    assert code == 0 and str(default) in "".join(err.split())
    assert default.read_text() == report.page(folder, table.collect(folder))     # `table --report`: the same page


@pytest.mark.parametrize("case", ["no spec.json", "nothing ran", "out under a file", "out is a folder"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    folder = ResultsDir(tmp_path / "results")
    args = ["report", str(folder.path)]
    if case == "no spec.json":
        folder.path.mkdir()
        want = "is not a benchmark results folder (no spec.json)"
    elif case == "nothing ran":
        (tmp_path / "page.toml").write_text(SPEC)
        folder.claim(specs.load(tmp_path / "page.toml"))
        want = "holds no cell yet, nothing to report; run `wae-bench bench SPEC"
    else:
        fill(tmp_path)
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "report.html" if case == "out under a file" else tmp_path
        args += ["--out", str(out)]
        want = "could not write" if case == "out under a file" else "is a directory"
    code, out_text, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and want in err and "Traceback" not in err, err


# -- in a real browser -------------------------------------------------------------------
def chromium_driver(user_data: Path):
    """Selenium driving Debian's chromium through its chromedriver, headless
    with a closed network (the flags of the machine notes); skips when absent."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install -y chromium "
                    "chromium-driver; .ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                 "--window-size=1400,900", f"--user-data-dir={user_data}"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(driver))


LOADED = """
const imgs = Array.from(document.images);
return {state: document.readyState, n: imgs.length,
        broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
        fetched: performance.getEntriesByType('resource').map(r => r.name),
        upscaled: imgs.filter(i => i.classList.contains('px'))
                      .map(i => [i.clientWidth / i.naturalWidth, getComputedStyle(i).imageRendering]),
        grids: imgs.filter(i => arguments[0].includes(i.alt)).map(i => i.naturalWidth),
        rows: document.querySelectorAll('table.results')[0].tBodies[0].rows.length,
        width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight};
"""


@pytest.mark.usefixtures("single_thread")
def test_the_report_of_a_bench_run_loads_in_chromium_with_every_image(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "smoke"
    done, failed = "moca-tiny-digits-lambda10-s0", "moca-tiny-digits-lambda100-s0"
    sets = ["--set", 'bench.regularizers=["moca"]', "--set", "bench.seeds=[0]"]
    code, _, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--quiet", "--only", done, *sets], capsys)
    assert code == 0, err
    folder = ResultsDir(out)
    spec = folder.spec()
    folder.mark_failed(next(c for c in grid.expand(spec) if c.id == failed), "RuntimeError: diverged")
    code, _, err = run_cli(["report", str(out)], capsys)
    assert code == 0, err
    page = out / "report.html"
    n_imgs = len(Parsed(page.read_text()).imgs)
    assert n_imgs == 6 + 2      # the trained cell's 5 grids and spectrum; the 2 plots of the table

    browser = chromium_driver(tmp_path / "chromium-profile")
    try:
        browser.get(page.as_uri())
        got = browser.execute_script(LOADED, [caption for _, caption in report.GRIDS])
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": got["width"], "height": got["height"], "scale": 1}})
    finally:
        browser.quit()
    assert got["state"] == "complete" and got["n"] == n_imgs and got["broken"] == [], got
    assert got["fetched"] == []                                   # self-contained: nothing loaded from anywhere
    assert got["rows"] == len(table.collect(folder).rows) == 2
    # a run writes its grids of 8-px digits with 64-px tiles (wae_bench.pictures.upscale): shown as they are
    assert len(got["grids"]) == 5 and min(got["grids"]) == 8 * (64 + 2) + 2 and got["upscaled"] == [], got
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (got["width"], got["height"]) and rgb.size[1] > 1500
        ink = int((np.asarray(rgb.resize((rgb.width // 4, rgb.height // 4)), dtype=int).sum(-1) < 600).sum())
        assert ink > 0.03 * (rgb.width // 4) * (rgb.height // 4)  # text, table and pictures, not a blank page
        assert len(rgb.getcolors(1 << 24)) > 200
    assert json.loads((out / "cells" / failed / "failed.json").read_text())["error"] in page.read_text()
