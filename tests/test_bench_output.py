"""What `wae-bench bench` prints (docs/cli.md#what-bench-prints): a start and
one finished line per cell with its headline scores by default, each cell's
full block in RESULTS_DIR/logs/<cell-id>.log and, with --verbose, on the
console; a running cell's progress at most a line a minute when piped;
a cell's warning reaches the console once; score-table titles are one line."""
from __future__ import annotations

import json
import re
import warnings

import pytest

from tests.bench_helpers import run_cli, tiny_spec
from wae_bench import progress
from wae_bench.bench import output
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import expand
from wae_bench.bench.spec import load

pytestmark = pytest.mark.usefixtures("single_thread")

IDS = ["moca-tiny-digits-s0", "moca-tiny-digits-s1", "moca-tiny-digits-s2"]
TITLE = "moca · tiny · digits · step 4  (stand-in features: NOT FID)"   # the score table's title
WHAT = ["--set", 'eval.what=["samples", "rec", "gmm"]']


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "out.toml"
    p.write_text(tiny_spec("out", ["moca"], [0, 1, 2], steps=4, expost=["gmm"], ckpt_every=4))
    return p


def test_default_one_finished_line_a_cell_and_the_block_in_its_log_verbose_on_the_console(tmp_path, spec_file,
                                                                                        capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(["bench", str(spec_file), "--out", str(res), "--only", "*-s0,*-s1", "--no-table", *WHAT],
                             capsys)
    assert code == 0, err
    lines = (out + err).splitlines()
    assert err.count("full output of each cell: ") == 1 and f"{res / 'logs'}/<cell-id>.log" in err
    for i, cid in enumerate(IDS[:2], 1):
        r = json.loads((res / "cells" / cid / "results.json").read_text())
        done = [ln for ln in lines if f"done {cid} " in ln]
        s, g = r["scores"]["samples"]["fid"], r["scores"]["gmm"]["fid"]
        assert len(done) == 1 and done[0].startswith(f"[{i}/2] done {cid} (")           # one finished line
        assert f"· stand-in FID (NOT FID): prior samples {s:.2f} · REC " in done[0]       # its scores, not FID
        assert done[0].endswith(f" · GMM {g:.2f}"), done[0]
        log = (res / "logs" / f"{cid}.log").read_text()                                 # the block, in its log
        assert "moca · tiny (" in log and "step 4/4 " in log and "eval: generate gmm" in log, log
        assert TITLE in log.splitlines() and "protocol: torch-fidelity" in log and "diagnostics: " in log
    assert not [ln for ln in lines if ln.startswith(("eval:", "step ", "protocol:", "diagnostics:", "fitting"))]
    assert TITLE not in out + err and "moca · tiny (" not in out + err
    assert lines[0] == f"results folder: {res.resolve()} (new)", lines
    assert len(lines) == 2 + 2 * 2 + 1, lines    # the folder, where the logs are, start + done a cell, the summary

    code, out, err = run_cli(["bench", str(spec_file), "--out", str(res), "--only", IDS[2], "--no-table",
                              "--verbose", *WHAT], capsys)
    assert code == 0, err
    shown = (out + err).splitlines()
    assert TITLE in shown and "step 4/4" in err and "eval: generate samples" in err and "protocol: " in out + err
    assert sum(f"done {IDS[2]} " in ln for ln in shown) == 1
    log = (res / "logs" / f"{IDS[2]}.log").read_text()
    assert TITLE in log.splitlines() and "step 4/4 " in log


def test_a_piped_bench_table_title_and_notes_are_lines_of_their_own(tmp_path, spec_file, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(["bench", str(spec_file), "--out", str(res), "--only", IDS[0],
                              "--set", "bench.seeds=[0]"], capsys)
    assert code == 0, err
    title = next(ln for ln in out.splitlines() if ln.startswith("out: "))
    assert title == "out: fid on standin features (NOT FID) (lower is better), mean ± std (seeds scored/in grid)"
    after = out.split("└")[-1].splitlines()[1:]          # the notes under the table, each one line, left-aligned
    assert any(ln.startswith("digits: 1 cell, arch tiny, 1 epoch capped at 4 steps") for ln in after), after
    assert any(ln.startswith("NOT FID: eval.features = 'standin'") and ln.endswith("never compare with published FIDs")
               for ln in after), after
    assert all(ln == ln.strip() for ln in after if ln)


def test_run_keeps_its_block_with_a_one_line_title(tmp_path, capsys):
    code, out, err = run_cli(["run", "--out", str(tmp_path / "r"), "--set", "max_steps=4", "--set", "expost=[]",
                              "--features", "standin", "--fid-samples", "16", "--what", "samples"], capsys)
    assert code == 0, err
    assert "moca · tiny · digits · step 4  (stand-in features: NOT FID)" in out.splitlines()
    assert "step 4/4" in err and "eval: generate samples" in err                  # unchanged: the whole block


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def grid_output(tmp_path, spec_file, **kw):
    spec = load(spec_file)
    clock = Clock()
    return output.Output(ResultsDir(tmp_path / "res"), spec, clock=clock, **kw), expand(spec), clock


def test_a_long_piped_cell_prints_a_progress_line_a_minute_at_most(tmp_path, spec_file, capsys):
    capsys.readouterr()
    out, cells, clock = grid_output(tmp_path, spec_file)
    with out.running(cells[0], 1, 3):
        for step in range(1, 601):                       # 10 minutes, a step line a second
            clock.t = float(step)
            print(f"step {step}/600 loss 1.0")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 10, err                           # one a minute, not one a step
    assert err[0] == f"[1/3] {cells[0].id} · 1.0 min · step 60/600 loss 1.0"
    log = (tmp_path / "res" / "logs" / f"{cells[0].id}.log").read_text()
    assert log.count("step ") == 600                     # every line is in the log

    quiet, cells, clock = grid_output(tmp_path, spec_file, quiet=True)
    with quiet.running(cells[1], 2, 3):
        for step in range(1, 601):
            clock.t = float(step)
            print(f"step {step}/600")
    assert capsys.readouterr().err == ""


def test_on_a_terminal_the_progress_is_one_transient_line(tmp_path, spec_file, capsys):
    capsys.readouterr()
    out, cells, clock = grid_output(tmp_path, spec_file)
    out.terminal = True
    with out.running(cells[0], 1, 3):
        for step in range(1, 11):
            clock.t = step * 1.0
            print(f"step {step}/10")
    out.finished(1, 3, type("O", (), {"state": "failed", "cell": cells[0], "error": "boom"})())
    err = capsys.readouterr().err
    assert err.count("\r\x1b[2K") == 10 + 1 and "step 10/10" in err    # redrawn in place, cleared for the line
    assert err.endswith(f"\r\x1b[2K[1/3] failed {cells[0].id}: boom\n") and err.count("\n") == 1


def test_a_cells_warnings_reach_the_console_once(tmp_path, spec_file, capsys):
    capsys.readouterr()
    out, cells, _ = grid_output(tmp_path, spec_file)
    for i, cell in enumerate(cells[:2], 1):
        with out.running(cell, i, 2):
            progress.notice("[yellow]warning:[/] bf16 on a CPU is slow")
            warnings.warn_explicit("a library warning", UserWarning, "lib.py", 7)
            print("eval: generate samples")
    err = capsys.readouterr().err
    assert err.count("warning: bf16 on a CPU is slow") == 1 and "[yellow]" not in err
    assert err.count("warning: UserWarning: a library warning (lib.py:7)") == 1
    assert "eval:" not in err and len(err.splitlines()) == 2
    for cell in cells[:2]:
        log = (tmp_path / "res" / "logs" / f"{cell.id}.log").read_text()
        assert "warning: bf16 on a CPU is slow" in log and "a library warning" in log and "eval: generate" in log


def test_headline_names_the_metric_its_results_carry():
    from wae_bench.config import EvalSettings

    ev = EvalSettings(what=["samples", "gmm"], metrics=["fid"])
    res = {"scores": {"samples": {"fid": 31.416}, "gmm": {"fid": 27.0}}, "protocol": {"features": "inception-v3"}}
    assert output.headline(res, ev) == "FID: prior samples 31.42 · GMM 27.00"
    res["protocol"]["features"] = "standin-randconv (not FID)"
    assert output.headline(res, ev) == "stand-in FID (NOT FID): prior samples 31.42 · GMM 27.00"
    assert re.fullmatch(r"stand-in KID \(NOT KID\) on val: GMM 0\.00123",
                        output.headline({**res, "scores": {"gmm": {"kid_mean": 0.00123}}},
                                        EvalSettings(what=["gmm"], metrics=["kid"], split="val")))
    assert output.headline(None, ev) == ""


def test_a_cells_log_has_no_colour_codes_when_the_console_is_a_terminal(tmp_path, spec_file, capsys, monkeypatch):
    from rich.color import ColorSystem

    monkeypatch.setattr(progress.console, "_color_system", ColorSystem.TRUECOLOR)   # as made on a terminal
    out, cells, _ = grid_output(tmp_path, spec_file)
    with out.running(cells[0], 1, 1):
        progress.console.print("[bold]moca[/] · [yellow]warning:[/] styled")
    log = (tmp_path / "res" / "logs" / f"{cells[0].id}.log").read_text()
    assert "moca · warning: styled" in log and "\x1b" not in log
    progress.console.print("[bold]after[/]")                             # its colours back after the cell
    assert "\x1b[1mafter" in capsys.readouterr().err
