"""docs/maintaining.md against the code it describes: the lists a new
maintainer follows (the test files by area, the tests named as the checks,
the generated files and the tests that compare them) name what exists and
leave nothing out; ``python benchmarks/rates.py --check`` names its command
when rates.json is stale; and every built-in has the CPU step rate that
``bench --dry-run`` of the smoke spec estimates it from ("Adding a built-in
regularizer", row 11)."""
from __future__ import annotations

import ast
import fnmatch
import re
import sys
from pathlib import Path

from tests.helpers import builtin_names
from wae_bench.bench import estimate, grid, tune
from wae_bench.bench import spec as specs

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "maintaining.md"
TESTS = ROOT / "tests"

# Tests whose names read like "a committed file is what its generator gives"
# but that compare no committed file (so they need no row under "Generated files").
NOT_GENERATED = {"test_the_protocol_id_is_what_the_tables_protocol_lines_compare"}
GENERATOR_CHECK = re.compile(r"_is_current|_is_what_|_are_what_|_quoted_in_|_is_the_commands_output|_the_docs_type_")


def section(title: str) -> str:
    """The text of maintaining.md under the heading ``## title``."""
    return PAGE.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def functions_by_file() -> dict[str, set[str]]:
    """Each test file's name -> the names of its module-level functions."""
    return {p.name: {n.name for n in ast.parse(p.read_text()).body if isinstance(n, ast.FunctionDef)}
            for p in sorted(TESTS.glob("test_*.py"))}


def test_every_test_file_is_in_one_area_of_the_running_the_tests_table():
    areas = section("Running the tests").split("One area at a time:", 1)[1].split("For example", 1)[0]
    named = set(re.findall(r"`(test_[\w*]+\.py)`", areas))
    files = sorted(functions_by_file())
    unlisted = [f for f in files if not any(fnmatch.fnmatch(f, n) for n in named)]
    assert unlisted == [], f"add {unlisted} to an area of docs/maintaining.md's 'Running the tests' table"
    gone = sorted(n for n in named if not any(fnmatch.fnmatch(f, n) for f in files))
    assert gone == [], f"docs/maintaining.md's 'Running the tests' table names {gone}, which match no test file"


def test_every_test_maintaining_md_names_exists():
    """``tests/test_x.py::test_name``, ``tests/test_x.py`` (``test_name``) and
    a bare ``test_name`` (``test_name_...``: a prefix) name a real test."""
    funcs, text = functions_by_file(), PAGE.read_text()
    every = set().union(*funcs.values())
    missing = []
    for f, name in re.findall(r"tests/(test_\w+\.py)::(test_\w+)", text):
        if name not in funcs.get(f, set()):
            missing.append(f"tests/{f}::{name}")
    for f in set(re.findall(r"tests/(test_\w+\.py)", text)):
        if f not in funcs:
            missing.append(f"tests/{f}")
    for name, prefix in re.findall(r"`(test_\w+?)(_\.\.\.)?`", text):
        if not (any(n.startswith(name) for n in every) if prefix else name in every):
            missing.append(name + prefix)
    assert missing == [], f"docs/maintaining.md names tests that do not exist: {missing}"


def test_every_check_of_a_committed_file_against_its_generator_has_a_generated_files_row():
    rows = section("Generated files")
    checks = sorted(f"tests/{f}::{n}" for f, names in functions_by_file().items() for n in names
                    if GENERATOR_CHECK.search(n) and n not in NOT_GENERATED)
    assert len(checks) >= 10, checks
    unlisted = [c for c in checks if c not in rows]
    assert unlisted == [], (f"docs/maintaining.md's 'Generated files' table has no row for {unlisted} (the file "
                            f"it compares and the command that writes it), or add it to NOT_GENERATED here")


def test_rates_check_passes_at_head_and_names_the_command_when_the_file_is_stale(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import rates
    finally:
        sys.path.pop(0)
    assert rates.main(["--check"]) == 0, "benchmarks/results/rates.json is stale: run python benchmarks/rates.py"
    stale = tmp_path / "rates.json"
    stale.write_text((ROOT / "benchmarks/results/rates.json").read_text().replace('"ms_per_step": 2.5013',
                                                                                  '"ms_per_step": 2.6'))
    capsys.readouterr()
    assert rates.main(["--check", "--out", str(stale)]) == 1
    assert capsys.readouterr().err == f"{stale} is not current; run python benchmarks/rates.py --out {stale}\n"
    assert "2.6" in stale.read_text()                         # --check writes nothing


def test_every_builtin_has_a_cpu_step_rate_at_the_smoke_settings():
    """A built-in is timed like the others (a plugin is not: the dry run says
    it has no rates), so ``bench benchmarks/smoke.toml --dry-run`` on the CPU
    estimates every cell."""
    s = specs.load(ROOT / "benchmarks" / "smoke.toml", ['train.device="cpu"'])
    cells = grid.expand(s)
    configs = grid.resolve_all(cells)
    g = estimate.estimate(cells, configs, {c.id: tune.eval_settings(s, c) for c in cells}, "cpu", 1,
                          estimate.load_rates())
    untimed = sorted({configs[c.id]["regularizer"] for c in cells if g.cells[c.id].train_s is None})
    assert {configs[c.id]["regularizer"] for c in cells} == set(builtin_names())
    assert untimed == [], (f"no CPU step rate for {untimed} at the smoke settings: run the smoke-size "
                           f"`python benchmarks/speed.py ... --regs NAME` of benchmarks/results/README.md into a new "
                           f"speed-cpu-smoke-NAME.json, then python benchmarks/rates.py")


def test_every_shipped_spec_has_a_row_in_the_benchmarks_specs_table():
    """docs/benchmarks.md's "Shipped specs" table names every
    ``benchmarks/*.toml`` (tests/test_docs.py checks the other way: each
    spec it names is shipped)."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    table = text.split("\n## Specs\n", 1)[1].split("\n\n| spec | what |\n", 1)[1].split("\n\n", 1)[0]
    named = [n for row in table.splitlines() for n in re.findall(r"`([\w.*-]+\.toml)`", row.split(" | ")[0])]
    shipped = sorted(p.name for p in (ROOT / "benchmarks").glob("*.toml"))
    unlisted = [s for s in shipped if not any(fnmatch.fnmatch(s, n) for n in named)]
    assert named and unlisted == [], f"add {unlisted} to the Specs table of docs/benchmarks.md"
