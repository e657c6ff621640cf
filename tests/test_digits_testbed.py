"""The digits testbed of issue #17 §4 (benchmarks/digits-*.toml and
benchmarks/results/digits-d-lambda/): every committed results folder was
made by a committed spec with the ``--set`` overrides its README states, the
summary script's numbers are the cells' own, and its checkpoint checks
measure what they say on a real (tiny) run."""
from __future__ import annotations

import json
import math
import subprocess
import re
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.test_benchmarks import ROOT, load
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.bench.grid import expand

RESULTS = ROOT / "benchmarks" / "results" / "digits-d-lambda"
HYP = "digits-moca-hypotheses"
BASE = "digits-d-baselines"
AE128 = ['bench.regularizers=["ae"]', "grid.latent_dim=[128]"]
# folder under RESULTS -> (spec, --set overrides): the commands of RESULTS/README.md
FOLDERS = {
    ".": ("digits-d-lambda", []),
    "baselines": (BASE, []),
    "baselines-seeds": (BASE, AE128 + ["bench.seeds=[1, 2]"]),
    "baselines-epochs100": (BASE, AE128 + ["train.epochs=100"]),
    "baselines-epochs100-seeds": (BASE, AE128 + ["train.epochs=100", "bench.seeds=[1, 2]"]),
    "baselines-epochs300": (BASE, AE128 + ["train.epochs=300", "bench.seeds=[0, 1, 2]"]),
    "hypotheses/tau": (HYP, ["reg.moca.grid.reg.tau=[0.2, 0.5, 1.0]"]),
    "hypotheses/include_current": (HYP, ["reg.moca.grid.reg.include_current=[true]"]),
    "hypotheses/key_bn": (HYP, ['reg.moca.grid.reg.key_bn=["eval"]']),
    "hypotheses/K": (HYP, ["reg.moca.grid.reg.K=[256]"]),
    "hypotheses/seeds": (HYP, ["bench.seeds=[1, 2]"]),
    "hypotheses/epochs": (HYP, ["reg.moca.grid.epochs=[100]"]),
    "hypotheses/epochs100-seed1": (HYP, ["reg.moca.grid.epochs=[100]", "bench.seeds=[1]"]),
    "hypotheses/epochs100-seed2": (HYP, ["reg.moca.grid.epochs=[100]", "bench.seeds=[2]"]),
    "hypotheses/epochs100-lambda": (HYP, ["reg.moca.grid.epochs=[100]", "reg.moca.grid.reg.lambda=[10, 100]"]),
    "hypotheses/epochs300": (HYP, ["reg.moca.grid.epochs=[300]"]),
    "hypotheses/epochs300-seeds": (HYP, ["reg.moca.grid.epochs=[300]", "bench.seeds=[1, 2]"]),
    "hypotheses/epochs300-expost-gmm": (HYP, ['eval.what=["gmm", "samples"]', "reg.moca.grid.epochs=[300]"]),
    "hypotheses/expost-gmm": (HYP, ['eval.what=["gmm"]', "reg.moca.grid.reg.tau=[0.05, 0.2]"]),
}


@pytest.mark.parametrize("d,tau", [(8, 0.05), (16, 0.05), (128, 0.05), (128, 0.2)])
def test_uniform_neg_matches_monte_carlo_on_the_sphere(d, tau):
    u = F.normalize(torch.randn(400_000, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), dim=1)
    mc = (torch.logsumexp(u[:, 0] / tau, 0) - math.log(len(u))).item()
    assert load("digits_summary").uniform_neg(d, tau) == pytest.approx(mc, rel=0.02, abs=0.01)


def test_uniform_neg_tends_to_the_large_d_formula():
    assert load("digits_summary").uniform_neg(4096, 0.05) == pytest.approx(1 / (2 * 4096 * 0.05 ** 2), rel=0.01)


def test_every_committed_folder_is_listed():
    found = {str(p.parent.relative_to(RESULTS)) for p in RESULTS.rglob("spec.json")}
    assert found == set(FOLDERS)


@pytest.mark.parametrize("where", sorted(FOLDERS))
def test_committed_results_were_made_by_the_committed_spec(where):
    name, sets = FOLDERS[where]
    folder = ResultsDir(RESULTS / where)
    spec = specs.load(ROOT / "benchmarks" / f"{name}.toml", sets)
    folder.check(spec)  # raises if the spec file or the overrides drifted from the results
    ids = {c.id for c in expand(spec)}
    done = [p.name for p in folder.cells_path.iterdir()]
    assert done and set(done) <= ids
    for cell in done:
        d = folder.cell_dir(cell)
        assert (d / "results.json").is_file() and (d / "config.json").is_file() and (d / "metrics.jsonl").is_file()
        assert not (d / "checkpoints").exists()


def test_summary_rows_carry_each_cells_own_numbers():
    folders = [RESULTS / w for w in sorted(FOLDERS)]
    text = load("digits_summary").main([str(p) for p in folders])
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    cells = [(ResultsDir(p), c.name) for p in folders for c in sorted((p / "cells").iterdir())]
    assert len(rows) == len(cells)
    by_key = {(r[0].strip("| "), r[1]): r for r in rows}
    for folder, cell in cells:
        r = by_key[(folder.path.name, cell)]
        res = folder.results(cell)
        for what, s in res["scores"].items():
            assert f"{what} {s['fid']:.1f}" in r[2]
        assert r[3] == f"{res['diagnostics']['rec_mse_test']:.2f}"
        chk = json.loads((folder.cell_dir(cell) / "checks.json").read_text())
        assert r[4] == f"{chk['rec_train_eval_bn']:.2f}"


def test_checks_on_a_tiny_digits_run(tmp_path, single_thread):
    """On a real run: the training-image error is the evaluator's measure
    (eval mode, latents on the sphere) on the train split, the train-mode
    batch-norm test error is not the eval-mode one, and the nearest-neighbour
    cosines are cosines over 500 prior samples and the 1,500 training codes."""
    from wae_bench.data.spec import load_split
    from wae_bench.metrics.diagnostics import reconstruction_error
    from wae_bench.run.reload import load_model
    from wae_bench.run.train import train_run

    run = tmp_path / "run"
    train_run({"max_steps": 8, "latent_dim": 8, "device": "cpu", "expost": [], "reg": {"K": 64}}, run, quiet=True)
    chk = load("digits_summary").checks(run)
    m = load_model(run, device="cpu")
    cpu, size = torch.device("cpu"), m.plan.cfg.image_size
    split = {s: load_split(m.plan.data, None, s, size).images for s in ("train", "test")}
    rec = {s: reconstruction_error(m.ae.eval(), m.reg, x, 100, cpu)["rec_mse_test"] for s, x in split.items()}
    assert chk["rec_train_eval_bn"] == pytest.approx(rec["train"], rel=1e-5)
    assert chk["rec_train_eval_bn"] != pytest.approx(rec["test"], rel=1e-3)
    assert chk["rec_test_train_bn"] != pytest.approx(rec["test"], rel=1e-3)
    assert -1 <= chk["prior_to_train"] <= 1 and -1 <= chk["train_to_train"] <= 1
    assert (chk["n_prior"], chk["n_train"]) == (500, 1500)


def test_summary_script_has_help_and_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        load("digits_summary").cli(["--help"])
    assert e.value.code == 0 and "RESULTS_DIR" in capsys.readouterr().out
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "digits_summary.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no spec.json" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_the_readmes_all_cells_table_is_what_its_command_prints():
    """README.md's "All cells" table is ``digits_summary.py``'s output for the
    folders its command names, in that order (pasted, so checked here)."""
    readme = (RESULTS / "README.md").read_text()
    command = re.search(r"python benchmarks/digits_summary\.py \$R (.*?)\n(?!\s)", readme, re.S).group(1)
    order = ["."] + [w for part in command.replace("\\\n", " ").split()
                     for w in _brace_expand(part.removeprefix("$R/"))]
    assert sorted(order) == sorted(FOLDERS), "the README's digits_summary command does not name every folder"
    text = load("digits_summary").main([str(RESULTS / w) for w in order])
    assert text in readme, ("README.md's 'All cells' table is stale: paste the output of its "
                            "`python benchmarks/digits_summary.py $R ...` command")


def _brace_expand(word: str) -> list[str]:
    """``a/{b,c}`` -> ``a/b``, ``a/c`` (the shell's brace expansion, one level)."""
    m = re.fullmatch(r"(.*)\{(.*)\}(.*)", word)
    return [m.group(1) + x + m.group(3) for x in m.group(2).split(",")] if m else [word]


def test_the_readmes_matched_budget_table_is_what_its_commands_print():
    """The matched-budget table (per-seed FIDs, means ± std, difference and
    ratio of means) is what the ``$MEAN`` and ``$GAP`` commands beside it print."""
    readme = (RESULTS / "README.md").read_text()
    block = readme[readme.index("MEAN='"):]
    block = block[:block.index("```")]
    script = block.replace("python -c", f"{sys.executable} -c").replace("cd benchmarks/results/digits-d-lambda\n", "")
    out = subprocess.run(["bash", "-c", script], cwd=RESULTS, capture_output=True, text=True, check=True).stdout
    means = re.findall(r"^\w+ ([\d. /]+) mean ([\d.]+) ± ([\d.]+) over 3 seeds$", out, re.M)
    gaps = re.findall(r"^difference of means ([\d.]+), ratio of means ([\d.]+)$", out, re.M)
    assert len(means) == 6 and len(gaps) == 3, out
    for epochs, (ae, moca, gap) in zip((30, 100, 300), zip(means[:3], means[3:], gaps)):
        row = f"| {epochs} | {ae[0]}: {ae[1]} ± {ae[2]} | {moca[0]}: {moca[1]} ± {moca[2]} | {gap[0]} | {gap[1]} |"
        assert row in readme, f"the README's matched-budget row for {epochs} epochs is not {row!r}"
