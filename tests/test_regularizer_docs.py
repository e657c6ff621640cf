"""docs/regularizers.md has a row for every built-in regularizer in its
units table and (MoCA aside: it has its own section) in its baselines
table, so that a new built-in cannot land undocumented (docs/maintaining.md,
"Adding a built-in regularizer", row 9)."""
from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "regularizers.md"


def builtins() -> set[str]:
    return {e.name for e in entry_points(group="wae_bench.regularizers")
            if e.dist is not None and e.dist.metadata["Name"] == "wae-bench"}


def table_names(section: str) -> set[str]:
    """The `name`s in the first column of the table under the heading ``section``."""
    text = PAGE.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", body, flags=re.M))


def test_every_builtin_has_a_row_in_the_units_and_baselines_tables():
    names = builtins()
    assert {"moca", "ae", "wae-mmd"} <= names        # (the installed metadata names them)
    assert names - table_names("Units: what λ multiplies") == set()
    assert names - {"moca"} - table_names("Baselines, as implemented") == set()


def test_the_check_finds_a_missing_row(monkeypatch):
    import tests.test_regularizer_docs as me

    monkeypatch.setattr(me, "builtins", lambda: {"moca", "ae", "wae-mmd", "new-reg"})
    assert me.builtins() - table_names("Units: what λ multiplies") == {"new-reg"}
