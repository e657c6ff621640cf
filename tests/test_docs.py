"""The README and docs/ stay true to the repository (issue 14, part 1):

- every relative link in README.md, docs/*.md, the results READMEs and
  benchmarks/GPU.md resolves, to a file and, for ``#anchors``, to a heading
  of that file;
- every ``wae-bench ...`` command the README, the docs and GPU.md show exists
  with its flags (checked against the click commands, not run), and the code
  they name exists;
- the README is at most 250 lines, its results block is what
  ``benchmarks/readme_table.py`` generates from the committed results, its
  picture's caption states that cell's FID, its head-to-head is a valid
  `wae-bench compare` and its plugin trains;
- docs/index.md links every page; the bad-input page holds every row that
  ``tests/test_bad_inputs.py`` runs, and each row's line starts as the
  program prints it (a stop without ``error:``); the benchmarks page names
  real specs and their real cell counts; every part of the GPU call
  (``benchmarks/gpu_session.sh``) a page names is one of the script's.

Each checker is also shown to fail on a broken input.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
RESULT_READMES = sorted((ROOT / "benchmarks" / "results").glob("**/README.md"))
GPU_GUIDE = ROOT / "benchmarks" / "GPU.md"   # how to make the GPU call
PAGES = [README, *DOCS, *RESULT_READMES, GPU_GUIDE]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


readme_table = _load_script("readme_table")


# -- Markdown helpers -----------------------------------------------------------------
def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", text).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        a = anchor(m.group(1))
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """``target (why)`` for each relative link of ``page`` that does not resolve."""
    text = page.read_text() if text is None else text
    bad = []
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):      # https:, mailto:
            continue
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if path and not dest.exists():
            bad.append(f"{target} (no such file)")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest.read_text() if path else text):
            bad.append(f"{target} (no heading #{frag})")
    return bad


def code_texts(text: str) -> list[str]:
    """Fenced blocks, indented blocks and inline code spans."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    rest = FENCE.sub("", text)
    blocks += [m.group(2) for m in INLINE_CODE.finditer(rest)]
    blocks += ["\n".join(ln[4:] for ln in m.group(0).splitlines())
               for m in re.finditer(r"(?:^(?: {4}|\t).*\n?)+", INLINE_CODE.sub("", rest), re.M)]
    return blocks


def commands(text: str) -> list[list[str]]:
    """Every ``wae-bench ...`` (or ``python -m wae_bench ...``) command line shown
    in code, as tokens after the program name.  Continuation lines are joined;
    a synopsis's ``[--opt X]`` and ``A | B`` are read as options."""
    out = []
    for block in code_texts(text):
        lines: list[str] = []
        for line in block.replace("\\\n", " ").splitlines():   # a synopsis goes on with "[--opt ...]" lines
            if lines and line.strip().startswith("[") and re.search(r"wae-bench|wae_bench", lines[-1]):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        for line in lines:
            line = re.sub(r"\s+#.*$", "", line).strip()
            m = re.search(r"(?:^|[\s;&|])(?:wae-bench|-m wae_bench)\s+(.*)$", line)
            if not m or line.startswith("pip") or "wae-bench[" in line:
                continue
            try:
                tokens = shlex.split(m.group(1))
            except ValueError:
                tokens = m.group(1).split()
            out.append([t.strip("[]") for t in tokens if t not in ("|", "...", "…")])
    return out


def bad_commands(text: str) -> list[str]:
    from wae_bench.cli import cli

    def opts(cmd) -> set[str]:
        return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"-h", "--help"}

    bad = []
    for tokens in commands(text):
        shown = " ".join(tokens)
        group_opts = opts(cli)
        valued = {o for p in cli.params if not getattr(p, "is_flag", True) for o in p.opts}   # --plugin VALUE
        while tokens and tokens[0].startswith("-"):
            if tokens[0] not in group_opts:
                bad.append(f"wae-bench {shown}: no group option {tokens[0]}")
            tokens = tokens[2 if tokens[0] in valued else 1:]
        if not tokens:
            continue
        name = tokens[0]
        if name not in cli.commands:
            if not name.isupper():   # a placeholder such as COMMAND
                bad.append(f"wae-bench {shown}: no command {name!r}")
            continue
        known = opts(cli.commands[name])
        for t in tokens[1:]:
            if t.startswith("--") and t.split("=")[0] not in known:
                bad.append(f"wae-bench {shown}: {name} has no option {t.split('=')[0]}")
    return bad


# -- links and commands ---------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n\ntext\n")
    page = tmp_path / "page.md"
    text = ("[ok](there.md) [ok](there.md#a-heading) [ok](#mine) ![gone](gone.png) [bad](there.md#nope) "
            "[web](https://example.org) `[code](not-checked.md)`\n\n## Mine\n")
    assert broken_links(page, text) == ["gone.png (no such file)", "there.md#nope (no heading #nope)"]


def test_anchors_follow_github():
    assert anchor("MoCA's λ in our units") == "mocas-λ-in-our-units"
    assert anchor("Ex-post density sampling (RAE's \"N\" and \"GMM\")") == "ex-post-density-sampling-raes-n-and-gmm"
    assert anchor("Shipped specs (`benchmarks/`)") == "shipped-specs-benchmarks"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize("page", [README, *DOCS, GPU_GUIDE], ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_exist_with_their_flags(page):
    assert bad_commands(page.read_text()) == []


def test_readme_shows_the_main_commands():
    shown = {" ".join(t[:1]) for t in commands(README.read_text())}
    assert {"run", "fid-weights", "compare", "bench", "table"} <= shown


def test_command_checker_finds_unknown_commands_and_flags():
    text = ("    wae-bench run --reg moca --epochs 3 \\\n        --no-such-flag\n\n"
            "```bash\nwae-bench trian --reg moca   # a comment --not-a-flag\n```\n"
            "and `wae-bench bench SPEC [--only IDS] [--shrad I/N]` and `wae-bench --debug run --set a=1`\n")
    assert bad_commands(text) == [
        "wae-bench trian --reg moca: no command 'trian'",
        "wae-bench bench SPEC --only IDS --shrad I/N: bench has no option --shrad",
        "wae-bench run --reg moca --epochs 3 --no-such-flag: run has no option --no-such-flag",
    ]


# -- the README -----------------------------------------------------------------------
def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines; move detail to docs/"


def test_results_block_is_current():
    text = README.read_text()
    body = readme_table.render(readme_table.collect())
    assert readme_table.rewritten(text, body) == text, "run python benchmarks/readme_table.py"
    assert readme_table.main(["--check"]) == 0


def _cell(folder: Path, seed: int, fid: float, **cfg) -> None:
    folder.mkdir(parents=True)
    config = {"regularizer": "moca", "arch": "tiny", "dataset": "digits", "data_variant": None, "epochs": 30,
              "max_steps": 0, "latent_dim": 128, "seed": seed, "data_root": f"/data/{seed}",
              "reg": {"lambda": 100.0, "K": 1024}, **cfg}
    (folder / "config.json").write_text(json.dumps({"config": config}))
    protocol = {"implementation": "torch-fidelity 0.4.0", "features": "inception-v3-compat", "seed": 0,
                "generated": {"samples": {"n": 500}}, "reference": {"split": "test", "n": 297}}
    (folder / "results.json").write_text(json.dumps({"scores": {"samples": {"fid": fid}}, "protocol": protocol}))


def test_results_table_aggregates_committed_cells(tmp_path):
    src = tmp_path / "res" / "bench"
    _cell(src / "cells" / "moca-s0", 0, 10.0)
    _cell(src / "cells" / "moca-s1", 1, 12.0)                  # same setting, another seed and data_root
    _cell(src / "cells" / "moca-lam-s0", 0, 30.0, reg={"lambda": 3.0, "K": 1024})
    (src / "cells" / "unscored").mkdir()                      # no results.json: left out
    _cell(src / "cells" / "tune-moca-lambda10-s0", 0, 5.0, holdout=300)   # tuning cells: left out
    _cell(src / "cells" / "held-out-s0", 0, 6.0, holdout=300)
    rows = readme_table.collect(tmp_path, ["res/bench"])
    assert sorted(len(r.cells) for r in rows) == [1, 2]
    text = readme_table.render(rows)
    assert "| moca | tiny | digits | 30 | 100 | 11.00 ± 1.41 (2/2) | [1] |" in text
    assert "| moca | tiny | digits | 30 | 3 | 30.00 (1/1) | [1] |" in text
    assert "1. torch-fidelity 0.4.0; features inception-v3-compat" in text
    # the legend names the columns shown, and where they are defined
    assert "\nPrior samples: `Dec(z)`, z drawn from the prior ([Evaluation](docs/evaluation.md#what-is-scored)).\n" \
        in text
    assert readme_table.render([]) == "No scored results are committed yet.\n"
    # cells that differ in a key without a column of its own are rows of their own, told apart
    _cell(src / "cells" / "ae-linear-s0", 0, 70.0, regularizer="ae", reg={"lambda": 0.0}, decoder_output="linear")
    _cell(src / "cells" / "ae-sigmoid-s0", 0, 80.0, regularizer="ae", reg={"lambda": 0.0}, decoder_output="sigmoid")
    text = readme_table.render(readme_table.collect(tmp_path, ["res/bench"]))
    assert "| ae | tiny | digits | 30 | 0 | decoder_output=linear | 70.00 (1/1) |" in text
    assert "| ae | tiny | digits | 30 | 0 | decoder_output=sigmoid | 80.00 (1/1) |" in text
    assert "| moca | tiny | digits | 30 | 100 |  | 11.00 ± 1.41 (2/2) |" in text


def test_results_table_refuses_standin_scores(tmp_path):
    """A SMALL=1 dry run's cell (stand-in features, NOT FID) committed among
    the results is refused by name, never shown as FID."""
    src = tmp_path / "res" / "bench"
    _cell(src / "cells" / "moca-s0", 0, 10.0)
    res = src / "cells" / "moca-s0" / "results.json"
    data = json.loads(res.read_text())
    data["protocol"]["features"] = "standin"
    res.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="moca-s0: scored with stand-in features, not FID"):
        readme_table.collect(tmp_path, ["res/bench"])


def test_stale_results_block_is_detected(tmp_path, monkeypatch):
    stale = README.read_text().replace("154.63", "99.99")
    assert stale != README.read_text()
    monkeypatch.setattr(readme_table, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text(stale)
    assert readme_table.main(["--check"]) == 1
    assert readme_table.main([]) == 0 and (tmp_path / "README.md").read_text() == README.read_text()
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="results:begin"):
        readme_table.main(["--check"])


def test_picture_caption_states_its_cells_fid():
    text = README.read_text()
    m = re.search(r"!\[[^\]]*\]\((benchmarks/results/[^)]+)/samples\.png\)\s*\n\s*\n\*(.*?)\*\n", text, re.S)
    assert m, "the README shows one cell's samples.png with an italic caption below it"
    res = json.loads((ROOT / m.group(1) / "results.json").read_text())
    fid = res["scores"]["samples"]["fid"]
    assert f"FID {fid:.1f}" in " ".join(m.group(2).split())


def _blocks(lang: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```", README.read_text(), re.S | re.M)]


def test_readme_head_to_head_is_a_valid_compare():
    """The README's `wae-bench compare` line: its spec, its folder and what
    the README says it scores."""
    from wae_bench.bench import compare, grid, spec
    from wae_bench.registry import DATASETS

    (h2h,) = [t for t in commands(README.read_text()) if t[0] == "compare"]
    s = spec.parse(compare.spec_data(h2h[1:], "digits", [0]))
    cells = grid.expand(s)
    assert [c.regularizer for c in cells] == h2h[1:] == ["moca", "wae-mmd", "swae"]
    assert s.eval.features == "inception" and s.eval.metrics == ["fid"]   # real FID, not stand-in
    assert s.eval.what == ["samples", "rec"] and s.eval.fid_samples is None   # the dataset's number of samples
    assert grid.resolve(cells[0]).dataset == "digits" and DATASETS.get("digits").fid_samples == 500
    assert "FID of 500 prior samples and of the test reconstructions" in " ".join(README.read_text().split())
    assert compare.default_out(s, changed=False).as_posix() in README.read_text()


def test_readme_plugin_trains(tmp_path, monkeypatch, capsys):
    from tests.reliability_helpers import cli
    from wae_bench.registry import REGULARIZERS

    (code,) = [b for b in _blocks("python") if "class Pull" in b]
    assert len(code.splitlines()) <= 25
    (entry,) = [b for b in _blocks("toml") if "wae_bench.regularizers" in b]
    target = tomllib.loads(entry)["project"]["entry-points"]["wae_bench.regularizers"]["pull"]
    assert target == "my_pkg.pull:Pull"
    mod = types.ModuleType("my_pkg.pull")
    monkeypatch.setitem(sys.modules, "my_pkg.pull", mod)
    exec(compile(code, "README.md", "exec"), mod.__dict__)
    REGULARIZERS.names()                                     # entry points first, then the README's plugin
    monkeypatch.setitem(REGULARIZERS._items, "pull", mod.Pull)
    code_, out, err = cli(["run", "--reg", "pull", "--quiet", "--no-eval", "--set", "max_steps=3",
                           "--set", "expost=[]", "--out", tmp_path / "r"], capsys)
    assert code_ == 0, err
    assert '"pull/l2"' in (tmp_path / "r" / "metrics.jsonl").read_text()
    code_, out, err = cli(["check-plugin", "pull"], capsys)                 # ... and keeps the contract
    assert code_ == 0 and out.splitlines()[-1] == "pull: 7 pass, 2 skip", out + err


# -- docs/ ----------------------------------------------------------------------------
def test_index_links_every_page():
    linked = {(ROOT / "docs" / t.partition("#")[0]).resolve()
              for t in LINK.findall(prose((ROOT / "docs" / "index.md").read_text()))}
    missing = [p.name for p in DOCS if p.name != "index.md" and p.resolve() not in linked]
    assert missing == [], f"docs/index.md does not link {missing}"


def bad_input_rows(text: str | None = None) -> list[tuple[str, list[int], str]]:
    """(bad input, exit statuses, what the user sees) of each row of docs/bad-input.md's table."""
    text = (ROOT / "docs" / "bad-input.md").read_text() if text is None else text
    rows = []
    for line in text.splitlines():
        cols = line.split(" | ")
        if line.startswith("| ") and len(cols) >= 3 and not line.startswith("| bad input |"):
            shown = " | ".join(cols[2:]).removesuffix(" |").replace("\\|", "|")
            rows.append((cols[0][2:], [int(n) for n in re.findall(r"\d+", cols[1])], shown))
    return rows


def test_bad_input_page_holds_every_tested_row():
    from tests.test_bad_inputs import ROWS

    rows = {problem: shown.lower() for problem, _, shown in bad_input_rows()}
    for r in ROWS:
        assert r.problem in rows, f"docs/bad-input.md has no row {r.problem!r}"
        missing = [n for n in r.needles if n.lower() not in rows[r.problem]]
        assert missing == [], f"the row {r.problem!r} does not show {missing}"


def printed(e: Exception, monkeypatch, capsys) -> tuple[int, str]:
    """(exit status, stderr) of a command that raises ``e``, as wae-bench's ``main`` reports it."""
    import wae_bench.cli
    from tests.reliability_helpers import cli

    def raise_(*args, **kwargs):
        raise e

    with monkeypatch.context() as m:
        m.setattr(wae_bench.cli.cli, "main", raise_)
        code, _, err = cli(["list"], capsys)
    return code, err.rstrip("\n")


def wrong_prefixes(rows: list[tuple[str, list[int], str]], monkeypatch, capsys) -> list[str]:
    """Each row whose shown line starts otherwise than the program prints it:
    a stop (exit 128 + N) as ``Stopped`` is printed (``stopped by SIG...``,
    no ``error:``: wae_bench/cli/__init__.py), with its exit status among the
    row's; a row of exit 2 that starts with its line, with ``error:``."""
    from wae_bench.errors import WaeError
    from wae_bench.interrupt import Stopped

    error = printed(WaeError("PROBLEM"), monkeypatch, capsys)[1].partition("PROBLEM")[0]
    wrong = []
    for problem, statuses, text in rows:
        m = INLINE_CODE.match(text)
        shown = m.group(2).strip() if m else ""
        if any(s >= 128 for s in statuses):
            stop = re.search(r"stopped by (SIG[A-Z]+) (.*)", shown)
            code, line = printed(Stopped(stop[1], stop[2]), monkeypatch, capsys) if stop else (None, "")
            if line != shown or code not in statuses:
                wrong.append(f"{problem}: shows {shown!r} (exit {statuses}); the program prints {line!r} "
                             f"(exit {code})")
        elif statuses == [2] and m and not shown.startswith(error):
            wrong.append(f"{problem}: shows {shown!r}; the program prints {error!r}...")
    return wrong


def test_bad_input_rows_start_as_the_program_prints_them(monkeypatch, capsys):
    rows = bad_input_rows()
    assert sum(any(s >= 128 for s in st) for _, st, _ in rows) >= 3, "the page shows the stop lines"
    assert wrong_prefixes(rows, monkeypatch, capsys) == []


def test_prefix_checker_finds_a_stop_shown_as_an_error(monkeypatch, capsys):
    page = ("| bad input | exit | shown |\n|---|---|---|\n"
            "| SIGTERM | 143 | `error: stopped by SIGTERM at step 5; continue with: wae-bench run --resume` |\n"
            "| Ctrl-C | 143 | `stopped by SIGINT at step 5; continue with: wae-bench run --resume` |\n"
            "| SIGTERM | 143 / 130 | `stopped by SIGTERM at step 5; continue with: wae-bench run --resume` |\n"
            "| `--epochs 0` | 2 | `epochs must be >= 1` |\n")
    wrong = wrong_prefixes(bad_input_rows(page), monkeypatch, capsys)
    assert [w.split(":")[0] for w in wrong] == ["SIGTERM", "Ctrl-C", "`--epochs 0`"], wrong


GPU_SESSION = ROOT / "benchmarks" / "gpu_session.sh"
PART = re.compile(r"\b[Pp]arts? (\d+[a-z]?(?:\s*(?:,|–|-|and|or|to)\s*\d+[a-z]?)*)")


def session_parts(script: str) -> set[str]:
    """The parts of gpu_session.sh, read from its labels (``part SECONDS "4a. ..."``),
    and the number of each lettered one (``4``: 4a–4f together)."""
    labels = set(re.findall(r"""\bpart [^"\n]+ "(\d+[a-z]?)'?\.""", script))
    return labels | {re.match(r"\d+", p)[0] for p in labels}


def unknown_parts(text: str, parts: set[str], whole_page: bool = False) -> list[str]:
    """Each ``part N`` (``parts 4a–4f``, ``parts 1 and 4c``) that is not one of
    ``parts``, named in a paragraph or list item that speaks of gpu_session.sh
    or the GPU call (``whole_page``: in any, as GPU.md, the page of that call)."""
    bad = []
    for para in re.split(r"\n\s*\n|\n(?=\s*[-*] )", text):
        if whole_page or "gpu_session.sh" in para or "GPU call" in " ".join(para.split()):
            for m in PART.finditer(para):
                bad += [f"part {p} in {' '.join(m.group(0).split())!r}"
                        for p in re.findall(r"\d+[a-z]?", m.group(1)) if p not in parts]
    return bad


def test_session_parts_are_read_from_the_script():
    parts = session_parts(GPU_SESSION.read_text())
    assert {"0", "1", "2", "3", "4", "4a", "4f", "5"} <= parts and not parts & {"2b", "2d"}, sorted(parts)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_gpu_call_parts_the_docs_name_exist(page):
    parts = session_parts(GPU_SESSION.read_text())
    assert unknown_parts(page.read_text(), parts, whole_page=page == GPU_GUIDE) == []


def test_part_checker_finds_parts_the_script_lacks():
    parts = session_parts('if part 15 "0. tests"; then\nif part 20 "1\'. AE"; then\nif part 9 "4a. compile"; then\n')
    assert parts == {"0", "1", "4", "4a"}
    text = ("Parts 2b–2d of the next GPU call measure it.\n\n"
            "- `gpu_session.sh` (part 4a) and parts 0 and 1.\n- part 7 of another script.\n")
    assert unknown_parts(text, parts) == ["part 2b in 'Parts 2b–2d'", "part 2d in 'Parts 2b–2d'"]
    assert unknown_parts(text, parts, whole_page=True)[-1] == "part 7 in 'part 7'"


def test_benchmarks_page_names_real_specs_and_cell_counts():
    from wae_bench.bench import grid, spec

    text = (ROOT / "docs" / "benchmarks.md").read_text()
    shipped = {p.name for p in (ROOT / "benchmarks").glob("*.toml")}
    named = set(re.findall(r"`([\w.*-]+\.toml)`", text))
    assert named and all(any(Path(s).match(n) for s in shipped) for n in named), named - shipped
    counts = re.findall(r"(benchmarks/[\w.-]+\.toml)[^\n]*--dry-run\s*# lists all (\d+) cells", text)
    split = re.findall(r"(\d+) tuning cells and (\d+) final\s+cells", text)
    assert counts and split, "the page states how many cells the Table 1 specs have"
    for path, n in counts:
        assert len(grid.expand(spec.load(ROOT / path))) == int(n), path
    for name in ("table1-cifar10.toml", "table1-celeba.toml"):
        ids = [c.id for c in grid.expand(spec.load(ROOT / "benchmarks" / name))]
        tuning = sum(i.startswith("tune-") for i in ids)
        assert [(str(tuning), str(len(ids) - tuning))] == split, name
    status = " ".join((ROOT / "docs" / "status.md").read_text().split())     # the same counts, quoted there
    assert re.findall(r"\((\d+) tuning cells at \d+ epochs on a [\d,]+-image validation hold-out, then (\d+) final "
                      r"cells", status) == split
    seeds = len(spec.load(ROOT / "benchmarks" / "table1-cifar10.toml").bench.seeds)   # ("... at one seed, its ...")
    assert re.findall(r"at one seed, its (\d+) tuning cells \(\d+ epochs\) before its (\d+) final cells", status) \
        == [(t, str(int(f) // seeds)) for t, f in split]


# -- code the docs name ----------------------------------------------------------------
PATH_REF = re.compile(r"\b((?:wae_bench|regularizers|benchmarks|tests)/[\w/.-]+\.(?:py|toml|sh))")
DOTTED_REF = re.compile(r"\b(wae_bench(?:\.\w+)+)")
ENTRY_POINT_GROUPS = {"wae_bench.regularizers", "wae_bench.architectures", "wae_bench.datasets"}


def stale_references(text: str) -> list[str]:
    """Repository paths (``wae_bench/losses.py``) and dotted names
    (``wae_bench.step.compile.eager``) in inline code and code blocks that
    name no file, module or attribute (e.g. after a module moved)."""
    import importlib

    bad = []
    for code in code_texts(text):
        bad += [p for p in PATH_REF.findall(code) if not (ROOT / p).exists()]
        for dotted in set(DOTTED_REF.findall(code)) - ENTRY_POINT_GROUPS:
            parts, obj = dotted.split("."), None
            for i in range(len(parts), 0, -1):
                try:
                    obj, rest = importlib.import_module(".".join(parts[:i])), parts[i:]
                    break
                except ImportError:
                    continue
            for name in rest if obj is not None else []:
                obj = getattr(obj, name, None)
                if obj is None:
                    break
            if obj is None:
                bad.append(dotted)
    return bad


@pytest.mark.parametrize("page", [README, *DOCS, GPU_GUIDE], ids=lambda p: p.name)
def test_code_the_docs_name_exists(page):
    assert stale_references(page.read_text()) == []


def test_reference_checker_finds_moved_code():
    text = "see `wae_bench/trainer.py` and `wae_bench.divergences.mmd`; `wae_bench.losses.mmd` is fine"
    assert stale_references(text) == ["wae_bench/trainer.py", "wae_bench.divergences.mmd"]


# -- the reproduction page ------------------------------------------------------------
reproduction_page = _load_script("reproduction_page")


def test_reproduction_page_is_current():
    assert reproduction_page.main(["--check"]) == 0, "run python benchmarks/reproduction_page.py"


def test_reproduction_page_rows_come_from_committed_cells(tmp_path, monkeypatch):
    """A committed full-budget cell fills its row (score, data, setting,
    date, commit); a cell of another budget does not count for it."""
    res = tmp_path / "benchmarks" / "results" / "x" / "table1-cifar10" / "cells"
    full = {"arch": "a1", "dataset": "cifar10", "data_variant": "cifar10-jpeg-q75", "epochs": 100, "max_steps": 0,
            "batch_size": 64, "image_size": 32, "reg": {"lambda": 300.0, "K": 30000}}
    _cell(res / "moca-a1-cifar10-s0", 0, 61.5, **full)
    _cell(res / "moca-a1-cifar10-s1", 1, 90.0, **{**full, "epochs": 30})     # a tuning-budget run
    ae = {**full, "regularizer": "ae", "reg": {"lambda": 0.0}}
    _cell(res / "ae-a1-cifar10-decoder_output_linear-s0", 0, 76.0, **ae, decoder_output="linear")
    _cell(res / "ae-a1-cifar10-decoder_output_sigmoid-s0", 0, 95.0, **ae, decoder_output="sigmoid")   # another model
    for name, fid in (("linear", 76.0), ("sigmoid", 95.0)):      # (the AE is judged by its GMM samples)
        p = res / f"ae-a1-cifar10-decoder_output_{name}-s0" / "results.json"
        p.write_text(json.dumps({**json.loads(p.read_text()), "scores": {"gmm": {"fid": fid}}}))
    cfg = json.loads((res / "moca-a1-cifar10-s0" / "config.json").read_text())
    (res / "moca-a1-cifar10-s0" / "config.json").write_text(json.dumps({**cfg, "source": "abc1234"}))
    (res.parent / "tuning").mkdir()
    (res.parent / "tuning" / "moca-a1-cifar10-s0.json").write_text(json.dumps(
        {"values": {"reg.lambda": 300.0}, "grid": {"reg.lambda": [100.0, 300.0, 1000.0]},
         "budget": {"epochs": 30, "metric": "fid"}}))
    import shutil

    shutil.copy(ROOT / "benchmarks" / "table1-cifar10.toml", tmp_path / "benchmarks")
    monkeypatch.setattr(reproduction_page, "ROOT", tmp_path)
    monkeypatch.setattr(reproduction_page.readme_table, "ROOT", tmp_path)
    text = reproduction_page.render([tmp_path / "benchmarks" / "table1-cifar10.toml"],
                                    reproduction_page.committed(tmp_path))
    row = next(ln for ln in text.splitlines() if ln.startswith("| moca | a1 |"))
    assert "| 61.50 (1/3) | cifar10-jpeg-q75 |" in row and "abc1234" in row
    assert "λ = 300: tuned over λ ∈ {100, 300, 1000} at 30 epochs (validation FID)" in row
    assert "90.00" not in text
    ae_row = next(ln for ln in text.splitlines() if ln.startswith("| ae | a1 |"))
    assert "| 76.47 | 76.00 (1/3) |" in ae_row and "95.00" not in text   # the spec's linear output, not a seed more
    assert "| moca | a2 | prior samples | 54.36 | not run |" in text


def test_the_valid_keys_a_bad_input_row_shows_are_the_config_keys_of_today():
    """A row that spells out the valid keys of a run (`--set foo=1`) lists
    them as the error does now (it lacked diverge_factor once); one that
    shortens them says so with `...`."""
    import dataclasses

    from wae_bench.config import TrainConfig, key_of

    keys = "valid keys: " + ", ".join(key_of(f.name) for f in dataclasses.fields(TrainConfig) if f.init)
    listing = [shown for _, _, shown in bad_input_rows() if "valid keys: regularizer, arch," in shown]
    assert listing and all(keys in shown or "valid keys: regularizer, arch, ..., reg" in shown for shown in listing)


def test_the_bench_output_shown_in_cli_md_starts_as_a_bench_does(tmp_path):
    """The example of what `bench` prints begins with the results folder's
    line, as every bench does (the page once left it out)."""
    from wae_bench.bench.folder import ResultsDir

    text = (ROOT / "docs" / "cli.md").read_text()
    block = text.split("--only 'moca-*' --no-table 2>&1 | cat`:\n\n```\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "q1"
    assert block.splitlines()[0] == ResultsDir(folder).describe().replace(str(folder.resolve()), "/tmp/q1")
