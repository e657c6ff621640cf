"""The smoke spec (benchmarks/smoke.toml) end to end on CPU with the real
training and the real evaluation (stand-in features): every cell is trained
and scored, a table with every cell and the plots come out, and a rerun skips
everything.  This is the CI run of the benchmark pipeline."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.bench_helpers import run_cli
from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.registry import REGULARIZERS

pytestmark = pytest.mark.usefixtures("single_thread")

SMOKE = Path(__file__).resolve().parents[1] / "benchmarks" / "smoke.toml"


def registered_sets() -> list[str]:
    """The smoke spec as shipped, restricted to the regularizers installed."""
    regs = specs.load(SMOKE).bench.regularizers
    have = [r for r in regs if r in REGULARIZERS]
    return [] if have == regs else ["--set", f"bench.regularizers={json.dumps(have)}"]


def test_smoke_spec_end_to_end_then_rerun_skips_everything(tmp_path, capsys):
    out = tmp_path / "smoke"
    sets = registered_sets()
    code, stdout, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--quiet", *sets], capsys)
    assert code == 0, err
    spec = specs.load(SMOKE, sets[1:])
    cells = grid.expand(spec)
    assert len(cells) == len(spec.bench.regularizers) * 2 + 2      # moca has a λ axis of 2
    for c in cells:
        r = json.loads((out / "cells" / c.id / "results.json").read_text())
        assert set(r["scores"]) == {"samples", "rec", "n", "gmm", "interp"}
        assert all(isinstance(v["fid"], float) for v in r["scores"].values())
        assert "NOT FID" in r["protocol"]["warning"] and r["run"]["regularizer"] == c.regularizer
    md = (out / "table.md").read_text()
    rows = [r for r in md.splitlines() if r.startswith("| ") and not r.startswith("| regularizer")]
    assert len(rows) == len(spec.bench.regularizers) + 1          # one row per regularizer (+1 for moca's λ)
    assert {r.split(" | ")[0][2:] for r in rows} == set(spec.bench.regularizers)
    for r in rows:
        entries = r.strip("| ").split(" | ")[3:]
        assert len(entries) == 5 and all("(2/2)" in e and "‡" not in e for e in entries), r   # every cell, both seeds
    assert "NOT FID" in md and "1 epoch capped at 8 steps, batch 32" in md
    table = list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))
    assert {row["digits:samples:standin-fid:status"] for row in table} == {"ok"}   # (stand-in: not named fid)
    for name in ("fid-vs-lambda-digits.png", "spectra-moca-tiny-digits.png"):
        assert (out / "plots" / name).stat().st_size > 5000
    assert "smoke" in stdout                                        # the rich table was printed

    stamp = {c.id: (out / "cells" / c.id / "results.json").stat().st_mtime_ns for c in cells}
    code, _, err = run_cli(["bench", str(SMOKE), "--out", str(out), "--quiet", *sets], capsys)
    assert code == 0 and f"skipping {len(cells)} cell(s) already done" in err
    assert stamp == {c.id: (out / "cells" / c.id / "results.json").stat().st_mtime_ns for c in cells}
