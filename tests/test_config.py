"""Typed config: TOML files and --set go through the same validation."""
from __future__ import annotations

import pytest

from wae_bench.config import TrainConfig, from_dict, load_toml, merge, parse_sets, to_dict
from wae_bench.errors import WaeError, doc_ref

SPEC_PAGE = "see " + doc_ref("benchmarks.md", "The spec in full")   # (a wheel ships no docs/: the page by its title)


def test_parse_sets_nested_and_typed():
    d = parse_sets(["epochs=3", "reg.K=100", "reg.tau=0.1", "precision=bf16", "expost=[]", "download=true"])
    assert d == {"epochs": 3, "reg": {"K": 100, "tau": 0.1}, "precision": "bf16", "expost": [], "download": True}
    cfg = from_dict(TrainConfig, d)
    assert cfg.epochs == 3 and cfg.reg == {"K": 100, "tau": 0.1}


@pytest.mark.parametrize("data, needle", [
    ({"epoch": 3}, "unknown config key 'epoch'"),
    ({"epochs": "three"}, "expected an integer"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": -1.0}, "lr must be > 0"),
    ({"precision": "fp8"}, "choose one of fp32, bf16"),
    ({"download": 1}, "expected true or false"),
    ({"expost": ["kde"]}, "bad expost density"),
    # a table given a plain value (`--set reg=5`) was accepted, then an internal error
    ({"reg": 5}, "bad value 5 for reg: expected a table of settings; set one with --set reg.KEY=VALUE"),
    # the setting every regularizer has, given at the top level
    ({"lambda": 10}, "unknown config key 'lambda'; did you mean 'reg.lambda'?"),
    # a bound without its fix (the resume walk-through)
    ({"keep_checkpoints": 0}, "keep_checkpoints must be >= 1 (the newest checkpoints kept: a resume continues from "
                              "one), got 0; give 1 or more"),
    ({"log_every": 0}, "log_every must be >= 1 step, got 0; give 1 or more"),
])
def test_bad_keys_and_values_are_one_line_errors(data, needle):
    with pytest.raises(WaeError) as e:
        from_dict(TrainConfig, data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_reg_keys_validated_by_the_plugin_config():
    from wae_bench_regularizers.moca import MoCAConfig

    assert from_dict(MoCAConfig, {"lambda": 5}).lambda_ == 5.0
    with pytest.raises(WaeError, match="unknown config key 'reg.k'"):
        from_dict(MoCAConfig, {"k": 5}, where="reg.")
    assert to_dict(MoCAConfig())["lambda"] == 1000.0


def test_toml_file_and_errors(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('dataset = "digits"\nepochs = 2\n[reg]\nK = 512\n')
    d = merge(load_toml(p), parse_sets(["reg.tau=0.2"]))
    assert d == {"dataset": "digits", "epochs": 2, "reg": {"K": 512, "tau": 0.2}}
    p.write_text("epochs = \n")
    with pytest.raises(WaeError, match="malformed TOML"):
        load_toml(p)
    with pytest.raises(WaeError, match="not found"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(WaeError, match="write key=value"):
        parse_sets(["epochs"])


def test_a_table_without_its_required_keys_names_them_with_an_example_and_the_doc():
    """One line naming the section (no trailing dot), each missing key with an
    example (the field's ``example`` metadata, else a value of its type) and
    the page documenting the section; never Python's TypeError text."""
    import dataclasses

    from wae_bench.bench import spec

    with pytest.raises(WaeError) as e:
        spec.parse({"bench": {"name": "x"}})
    assert str(e.value) == ('[bench] needs datasets and regularizers (e.g. datasets = ["digits"], '
                            'regularizers = ["moca", "ae"]); ' + SPEC_PAGE)
    with pytest.raises(WaeError) as e:
        spec.parse({"bench": {"name": "x", "datasets": ["digits"], "regularizers": ["moca"]},
                    "cited": [{"regularizer": "moca", "dataset": "digits", "source": "a paper"}]})
    assert str(e.value) == "[cited] needs value (e.g. value = 54.36); " + SPEC_PAGE

    @dataclasses.dataclass
    class Needs:
        n: int
        out: str = dataclasses.field(metadata={"example": '"runs/x"'})
        lambda_: float = 1.0

    with pytest.raises(WaeError) as e:
        from_dict(Needs, {"lambda": 2.0})
    assert str(e.value) == 'Needs needs n and out (e.g. n = 1, out = "runs/x")'
    with pytest.raises(WaeError, match=r"^\[reg\] needs out \(e\.g\. out = \"runs/x\"\)$"):
        from_dict(Needs, {"n": 3}, where="reg.")


def test_a_bad_value_is_shown_as_toml_spells_it():
    """`epochs = true` in a TOML file (or --set) is shown as `true`, never Python's `True`."""
    with pytest.raises(WaeError, match=r"^bad value true for epochs: expected an integer$"):
        from_dict(TrainConfig, {"epochs": True})
    with pytest.raises(WaeError, match=r"^bad value \{a = \[1, false\]\} for expost: expected a list$"):
        from_dict(TrainConfig, {"expost": {"a": [1, False]}})
    with pytest.raises(WaeError, match=r"^bad value 'abc' for epochs: "):
        from_dict(TrainConfig, parse_sets(["epochs=abc"]))
