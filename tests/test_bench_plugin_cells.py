"""A bench of a third-party plugin registered in this process (the
plugintuner walk-through): a tuning axis spelled as the plugin's Config field
(F2), the line of a final cell whose tuning cells failed (N3), and a results
folder tabulated once the plugin is gone (F6).  Tiny cells, a few seconds each."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_helpers import run_cli, tiny_spec
from tests.helpers import pull_plugin
from wae_bench.registry import REGULARIZERS

TUNE = """
[tune]
holdout = 100
max_steps = 2
fid_samples = 16

[reg.{name}.tune]
"reg.lambda_" = [0.5, 2]
"""


class PullRaises(pull_plugin().Pull):
    """A plugin whose penalty raises: its tuning cells fail."""
    name = "pullraise"

    def penalty(self, x, z, ae, ctx):
        raise ValueError(f"the pull needs a batch of at least 64 latents, got {len(z)}; raise batch_size "
                         f"(a message long enough to run past any cut of {'x' * 60})")


@pytest.fixture
def plugins(monkeypatch):
    REGULARIZERS.load_entry_points()
    for cls in (pull_plugin().Pull, PullRaises):
        monkeypatch.setitem(REGULARIZERS._items, cls.name, cls)


def spec_of(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(tiny_spec(name, [name], [0], 4, [], 100).replace("[reg.moca]\nK = 64", "") + TUNE.format(name=name))
    return p


def test_a_plugin_tuned_by_its_field_name_is_tabulated_as_tuned_then_named_once_it_is_gone(tmp_path, capsys,
                                                                                           monkeypatch, plugins):
    """``"reg.lambda_"`` tunes λ itself: cells ``lambda0.5``, the table's
    Settings say tuned (not "plugin default"), one tuning column.  With the
    plugin gone, table and report name who trained the cells (F6)."""
    out = tmp_path / "res"
    code, _, err = run_cli(["bench", str(spec_of(tmp_path, "pull")), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "cells").iterdir()) == [
        "pull-tiny-digits-s0", "tune-pull-tiny-digits-lambda0.5-s0", "tune-pull-tiny-digits-lambda2-s0"]
    md = (out / "table.md").read_text()
    assert "- pull: tuned: λ = " in md and "plugin default" not in md and "lambda_" not in md, md
    assert "have not run" not in md
    header = (out / "tuning.csv").read_text().splitlines()[0].split(",")
    assert [h for h in header if h.startswith("tuned:")] == ["tuned:reg.lambda"]
    final = json.loads((out / "cells" / "pull-tiny-digits-s0" / "config.json").read_text())
    assert "lambda_" not in final["config"]["reg"]

    monkeypatch.delitem(REGULARIZERS._items, "pull")
    for command in (["table", str(out), "--no-plots"], ["report", str(out)]):
        code, _, err = run_cli(command, capsys)
        assert code == 2 and err == (f"error: cannot tabulate {str(out)!r}: regularizer 'pull' was registered "
                                     f"in-process by module tests.pull_plugin when it trained, and nothing registers "
                                     f"it here; import that module (or install its package) first\n"), err
    for cfg in (out / "cells").glob("*/config.json"):         # (as an installed distribution records it)
        rec = json.loads(cfg.read_text())
        rec["versions"]["regularizer"] = "pull: momreg 0.1"
        cfg.write_text(json.dumps(rec))
    code, _, err = run_cli(["table", str(out), "--no-plots"], capsys)
    assert code == 2 and err == (f"error: cannot tabulate {str(out)!r}: regularizer 'pull' came from momreg 0.1, "
                                 f"which is not installed here; pip install momreg==0.1\n"), err


def test_a_final_cell_whose_tuning_cells_failed_says_why_once_and_whole(tmp_path, capsys, plugins):
    """``[3/3] waiting ID: ...``: the cell named once (it said ``waiting cell
    ID waits:``), the first failure's error whole (it was cut at 160
    characters, mid-word or after a colon), then the fix."""
    out = tmp_path / "res"
    code, _, err = run_cli(["bench", str(spec_of(tmp_path, "pullraise")), "--out", str(out), "--no-table"], capsys)
    assert code == 2
    error = json.loads((out / "cells" / "tune-pullraise-tiny-digits-lambda0.5-s0" / "failed.json").read_text())["error"]
    (line,) = [ln for ln in err.splitlines() if "waiting" in ln]
    assert line == (f"[3/3] waiting pullraise-tiny-digits-s0: 2 of its tuning cells failed, the first "
                    f"tune-pullraise-tiny-digits-lambda0.5-s0 with: {error} -- its value is chosen only once every "
                    f"tuning cell is done or diverged: fix the cause and rerun (without --skip-failed) to retry them, "
                    f"or rerun with --exclude-failed-tuning to choose among the other values (a failed value is then "
                    f"never chosen)")
    assert len(error) > 160 and "x" * 60 in error
