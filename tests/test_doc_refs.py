"""Messages that point at the docs or at a file of the source find it from an
installed wheel too, which ships neither docs/ nor benchmarks/ (and the
project names no URL): they name the page by its title through
:func:`wae_bench.errors.doc_ref`, and a file of the source through
:func:`wae_bench.errors.source_file`, which says it is not installed.

- no string the code prints (docstrings and comments aside) names ``docs/``,
  ``benchmarks/`` or a ``.md`` page but through those helpers;
- every page and section the code passes to :func:`doc_ref` exists, under
  the title :data:`~wae_bench.errors.DOC_PAGES` gives it; every file passed
  to :func:`source_file` exists and is outside the installed packages.
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from wae_bench.errors import DOC_PAGES, doc_ref, source_file
from tests.test_docs import anchors

ROOT = Path(__file__).resolve().parents[1]
CODE = sorted([*ROOT.glob("wae_bench/**/*.py"), *ROOT.glob("regularizers/*.py")])
HELPERS = ("doc_ref", "source_file")
REPO_PATH = re.compile(r"\b(docs|benchmarks)/|\b[\w-]+\.md\b")
ALLOWED = {   # (file, string) -> why it may name a repository path
    ("wae_bench/cli/options.py", "`wae-bench options-table > docs/options.md` (a test checks it is current)."):
        "the header of docs/options.md, the page `options-table` prints, names that page",
    ("wae_bench/bench/table_render.py", "table.md"): "a results folder's own table, not a docs page",
    ("wae_bench/errors.py", "docs/"): "doc_ref itself",
    **{("wae_bench/errors.py", page): "the pages doc_ref knows (DOC_PAGES)" for page in DOC_PAGES},
}


def _strings(tree: ast.Module) -> list[ast.Constant]:
    """The string constants of ``tree`` (f-strings' parts included) but its docstrings."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def _helper_calls(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(file, constant arguments) of each call of ``name`` in the code."""
    out = []
    for path in CODE:
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == name:
                assert all(isinstance(a, ast.Constant) for a in n.args), f"{path.name}:{n.lineno}: literal args"
                out.append((str(path.relative_to(ROOT)), tuple(a.value for a in n.args)))
    return out


def repo_paths_named(path: Path) -> list[str]:
    """The strings of ``path`` that name a repository path other than as a helper's argument."""
    tree = ast.parse(path.read_text())
    args = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) in HELPERS for a in n.args}
    rel = str(path.relative_to(ROOT))
    return [f"{rel}:{n.lineno}: {n.value!r}" for n in _strings(tree)
            if REPO_PATH.search(n.value) and id(n) not in args and (rel, n.value) not in ALLOWED]


def test_messages_name_docs_and_benchmarks_only_through_the_helpers():
    assert [bad for path in CODE for bad in repo_paths_named(path)] == []


def test_the_scan_finds_a_message_that_names_a_page(tmp_path):
    """The check above fails on a message written the old way, passes on the helper's."""
    bad = ROOT / "wae_bench" / "_scan_probe.py"   # (inside the tree: the scan names files relative to it)
    try:
        bad.write_text('"""See docs/resume.md (a docstring may)."""\n'
                       'from wae_bench.errors import WaeError, doc_ref\n'
                       'def f(n):\n'
                       '    raise WaeError(f"bad {n}; see docs/resume.md")\n'
                       'def g():\n'
                       '    return doc_ref("datasets.md")\n')
        assert repo_paths_named(bad) == ["wae_bench/_scan_probe.py:4: '; see docs/resume.md'"]
    finally:
        bad.unlink()


def test_doc_ref_names_the_page_by_its_title_and_the_file_in_the_source():
    assert doc_ref("datasets.md") == "the 'Datasets' page of wae-bench's docs (docs/datasets.md in wae-bench's source)"
    assert doc_ref("status.md", "MoCA's λ in our units") == (
        "the 'Reproduction status' page of wae-bench's docs, section \"MoCA's λ in our units\" "
        "(docs/status.md#mocas-λ-in-our-units in wae-bench's source)")
    assert source_file("benchmarks/speed.py") == ("benchmarks/speed.py of wae-bench's source (not installed with "
                                                  "the package)")


@pytest.mark.parametrize("page", sorted(DOC_PAGES))
def test_each_page_a_message_names_has_the_title_it_is_named_by(page):
    first = (ROOT / "docs" / page).read_text().splitlines()[0]
    assert first == f"# {DOC_PAGES[page]}"


def test_each_page_and_section_the_code_points_at_exists():
    calls = _helper_calls("doc_ref")
    assert len(calls) >= 5, calls                  # (the scan sees the calls: config, spec, data, cli, moca)
    for where, (page, *section) in calls:
        assert page in DOC_PAGES, f"{where}: {page} is not in DOC_PAGES"
        if section:
            anchor = doc_ref(page, *section).split("#", 1)[1].split(" ", 1)[0]
            assert anchor in anchors((ROOT / "docs" / page).read_text()), f"{where}: no section {section[0]!r}"


def test_each_source_file_a_message_names_exists_and_is_not_installed():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = {p.split(".")[0] for p in tool["packages"]} | set(tool["package-dir"].values())
    calls = _helper_calls("source_file")
    assert calls
    for where, (path,) in calls:
        assert (ROOT / path).is_file(), f"{where}: {path} does not exist"
        assert path.split("/")[0] not in installed, f"{where}: {path} is installed: name it as a package file"


def test_a_missing_spec_key_points_at_the_spec_page_and_a_missing_spec_at_its_keys(tmp_path):
    from wae_bench.bench import spec as specs
    from wae_bench.errors import WaeError

    with pytest.raises(WaeError) as e:
        specs.load(tmp_path / "nope.toml")
    assert str(e.value) == (f"benchmark spec {str(tmp_path / 'nope.toml')!r} not found; pass a TOML file (its keys: "
                            f"{doc_ref('benchmarks.md', 'The spec in full')}), such as benchmarks/smoke.toml of "
                            f"wae-bench's source (not installed with the package)")
