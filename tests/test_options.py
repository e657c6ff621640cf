"""Options declared once (wae_bench/config.py): the flags, the --set keys and
docs/options.md derive from the declarations; one spelling boundary for
``lambda``; comma lists read one way; ``wae-bench --help`` imports no torch;
the built-in plugins install under the project's own name."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import run_cli
from wae_bench.cli import options
from wae_bench.cli.run import overrides_from, run_cmd
from wae_bench.config import EvalSettings, TrainConfig, from_dict, merge, parse_sets
from wae_bench.errors import WaeError
from wae_bench.run.build import resolve

REPO = Path(__file__).resolve().parents[1]


def test_docs_option_table_is_current():
    assert (REPO / "docs" / "options.md").read_text() == options.markdown(), \
        "docs/options.md is stale: regenerate it with `wae-bench options-table > docs/options.md`"


def _flags(args: list[str]) -> dict:
    ctx = run_cmd.make_context("run", args)
    return overrides_from(None, (), options.given(options.TRAIN_FLAGS, dict(ctx.params)))


def test_run_flags_come_from_the_declarations_and_type_like_set():
    o = _flags(["--step-mode", "graph", "--channels-last", "--compile", "default", "--lambda", "3",
                "--epochs", "2", "--lr", "1e-4", "--reg", "swae", "--no-download"])
    assert o == {"step_mode": "graph", "channels_last": True, "compile": "default", "reg": {"lambda": 3.0},
                 "epochs": 2, "lr": 1e-4, "regularizer": "swae", "download": False}
    cfg = from_dict(TrainConfig, o)
    assert (cfg.epochs, cfg.lr, cfg.step_mode, cfg.channels_last) == (2, 1e-4, "graph", True)
    same = from_dict(TrainConfig, parse_sets(["step_mode=graph", "channels_last=true", "compile=default",
                                              "reg.lambda=3", "epochs=2", "lr=1e-4", "regularizer=swae",
                                              "download=false"]))
    assert resolve(cfg).cfg == resolve(same).cfg and resolve(cfg).cfg.reg["lambda"] == 3.0   # one config object
    assert _flags([]) == {}                                   # no flag given: the declared defaults apply
    names = {fl.name for fl in options.TRAIN_FLAGS}
    assert {"--step-mode", "--channels-last", "--compile", "--lambda", "--batch-size"} <= names


def test_eval_options_are_shared_with_one_default_each():
    run_eval = {fl.name for fl in options.RUN_EVAL_FLAGS}
    assert {"--fid-samples", "--metrics", "--what", "--features", "--fid-weights"} <= run_eval
    assert not {"--batch-size", "--seed"} & run_eval          # `run`'s own are the training ones
    assert {fl.name for fl in options.EVAL_FLAGS} >= run_eval | {"--batch-size", "--seed", "--interp-alphas"}
    assert EvalSettings().fid_samples is None                 # the dataset's default, for eval, run and bench


def test_comma_lists_read_one_way():
    flags = from_dict(EvalSettings, {"metrics": "fid, KID,", "interp_alphas": "0.25,0.5"}, flags=True)
    spec = from_dict(EvalSettings, {"metrics": ["fid", "kid"], "interp_alphas": [0.25, 0.5]})
    assert flags == spec and flags.metrics == ["fid", "kid"]
    assert from_dict(TrainConfig, {"expost": "n,gmm"}).expost == ["n", "gmm"]
    with pytest.raises(WaeError, match=r"^bad --interp-alphas 'half': expected a number$"):
        from_dict(EvalSettings, {"interp_alphas": "half"}, flags=True)


def test_lambda_spellings_meet_at_one_boundary():
    assert from_dict(TrainConfig, {"reg": {"lambda_": 2}}).reg == {"lambda": 2}
    assert merge({"reg": {"lambda_": 1}}, {"reg": {"lambda": 2}}) == {"reg": {"lambda": 2}}   # later wins
    with pytest.raises(WaeError) as e:
        from_dict(TrainConfig, {"reg": {"lambda": 1, "lambda_": 2}})
    assert "reg.lambda is given twice" in str(e.value) and "\n" not in str(e.value)


def test_a_config_giving_both_spellings_is_refused_in_one_line(tmp_path, capsys):
    code, _, err = run_cli(["run", "--quiet", "--no-eval", "--out", str(tmp_path / "r"), "--set", "reg.lambda=1",
                            "--set", "reg.lambda_=2"], capsys)
    assert code == 2 and err.startswith("error: reg.lambda is given twice") and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_help_imports_no_torch():
    """`wae-bench --help` (and each command's --help) loads none of torch,
    torchvision, torch_fidelity: the CLI imports what a command runs only
    when it runs."""
    code = ("import sys\nfrom wae_bench.cli import main\n"
            "for args in (['--help'], ['run', '--help'], ['eval', '--help'], ['bench', '--help'], "
            "['table', '--help'], ['list', '--help'], ['fid-weights', '--help']):\n"
            "    main(args)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'torch_fidelity') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_packages_are_listed_and_plugins_install_under_the_project_name(tmp_path):
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "wae_bench").rglob("__init__.py")}
    assert set(tool["packages"]) == found | {"wae_bench_regularizers"}
    assert tool["package-dir"] == {"wae_bench_regularizers": "regularizers"}
    code = ("import importlib.util, wae_bench_regularizers as r\n"
            "print(r.__file__)\nprint(importlib.util.find_spec('regularizers'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env=env)
    assert r.returncode == 0, r.stderr
    path, spec = r.stdout.strip().splitlines()
    assert Path(path).parent == REPO / "regularizers" and spec == "None"
