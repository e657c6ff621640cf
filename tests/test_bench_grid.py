"""Benchmark specs and grids: validation (one-line refusals before anything
runs), expansion and layering of settings, --only, --shard, the spec hash and
the results-folder guard.  No training here (fast)."""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from tests.bench_helpers import run_cli
from tests.helpers import builtin_names
from wae_bench.bench import grid
from wae_bench.bench import spec as specs
from wae_bench.bench.folder import ResultsDir
from wae_bench.errors import WaeError
from wae_bench.registry import REGULARIZERS

ROOT = Path(__file__).resolve().parents[1]
BASE = """
[bench]
name = "t"
datasets = ["digits"]
archs = ["tiny"]
regularizers = ["moca"]
seeds = [0, 1, 2]

[train]
epochs = 1
max_steps = 4
image_size = 8
latent_dim = 4

[eval]
features = "standin"
fid_samples = 16

[reg.moca]
K = 64
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def load(tmp_path: Path, extra: str = "", sets=()) -> specs.Spec:
    return specs.load(write(tmp_path, BASE + extra), sets)


# -- validation --------------------------------------------------------------------
@pytest.mark.parametrize("extra, sets, message", [
    ("", ["train.epochz=3"], "unknown config key 'train.epochz'"),
    ("", ["eval.fid_sampels=3"], "'eval.fid_sampels'"),
    ("", ["bench.colour=1"], "'bench.colour'"),
    ("\n[results]\nx = 1\n", [], "'results'"),
    ("", ["bench.seeds=[]"], "empty grid"),
    ("", ["bench.regularizers=[]"], "empty grid"),
    ("\n[grid]\n\"reg.lambda\" = []\n", [], "empty grid"),
    ("\n[grid]\nlatent_dimm = [2, 4]\n", [], "unknown grid axis"),
    ("\n[grid]\nlatent_dim = 4\n", [], "is not a list"),
    ("\n[grid]\n\"reg.lambda\" = [1, 1]\n", [], "lists a value twice"),
    ("", ["train.regularizer=\"swae\""], "set by the grid"),
    ("\n[reg.swae]\nlambda = 1\n", [], "not in bench.regularizers"),
    ("\n[dataset.cifar10]\nepochs = 1\n", [], "not in bench.datasets"),
    ("\n[reg.moca.arch.a9]\nlambda = 1\n", [], "not in bench.archs"),
])
def test_bad_specs_are_refused_in_one_line(tmp_path, extra, sets, message):
    with pytest.raises(WaeError) as e:
        load(tmp_path, extra, sets)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("sets, said", [
    # a typo lists the keys [train] takes, never those it refuses (the grid's own: regularizer, seed, reg, ...)
    (["train.epoch=3"], "unknown config key 'train.epoch'; did you mean 'train.epochs'? valid keys: data_root, "),
    (["train.sed=3"], "unknown config key 'train.sed'; valid keys: data_root, "),          # (not 'train.seed')
    (["dataset.digits.archh=3"], "unknown config key 'dataset.digits.archh'; valid keys: data_root, "),
    # a regularizer's setting is named as the [reg.NAME] key it is, not 'train.reg.lambda'
    (["train.lambda=3"], "train.lambda is a regularizer's setting, not a training one; set it in a [reg.NAME] "
                         "table (e.g. [reg.moca] lambda = ...)"),
])
def test_a_train_table_typo_lists_only_what_the_table_takes(tmp_path, sets, said):
    with pytest.raises(WaeError) as e:
        load(tmp_path, "", sets)
    assert str(e.value).startswith(said), e.value
    listed = str(e.value).split("valid keys: ")[-1].split(", ")
    assert not set(listed) & set(specs.CELL_KEYS), e.value


@pytest.mark.parametrize("sets, message", [
    (["bench.regularizers=[\"moca\", \"mocca\"]"], "unknown regularizer 'mocca'; did you mean 'moca'"),
    (["reg.moca.Kay=3"], "unknown config key 'reg.moca.Kay'"),
    (["bench.archs=[\"a7\"]"], "unknown architecture 'a7'"),
    (["bench.datasets=[\"digitz\"]"], "unknown dataset 'digitz'"),
    (["reg.moca.tau=-1"], "tau must be > 0"),
])
def test_registry_errors_name_the_cell_before_anything_runs(tmp_path, sets, message, capsys):
    spec = write(tmp_path, BASE)
    out = tmp_path / "results"
    code, _, err = run_cli(["bench", str(spec), "--out", str(out), *(f"--set={s}" for s in sets)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()                                    # refused before anything ran


# -- axes spelled as a Config field (the plugintuner report's F2 and N2) ---------------------
@pytest.mark.parametrize("table", ['[tune]\nholdout = 10\n[reg.moca.tune]\n', "[reg.moca.grid]\n", "[grid]\n"])
def test_an_axis_spelled_as_its_python_field_is_the_axis_of_its_key(tmp_path, table):
    """``reg.lambda_`` (RegularizerConfig's field) is ``reg.lambda``: the same
    cells, ids, tuned axes and settings, and the same spec hash."""
    python, key = (load(tmp_path, f'\n{table}"reg.{name}" = [1, 10]\n') for name in ("lambda_", "lambda"))
    cells = grid.expand(python)
    assert [(c.id, c.axes, c.tuned, c.overrides) for c in cells] == \
        [(c.id, c.axes, c.tuned, c.overrides) for c in grid.expand(key)]
    assert not any("lambda_" in c.id or "lambda_" in c.overrides["reg"] for c in cells)
    assert python.hash() == key.hash()
    # (a folder recorded with the Python spelling takes the key's, and back)
    assert specs.grow(python.raw, key.raw)[2] == [] and specs.grow(key.raw, python.raw)[2] == []


def test_both_spellings_of_one_axis_in_one_table_are_refused(tmp_path):
    with pytest.raises(WaeError) as e:
        load(tmp_path, '\n[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.lambda_" = [1]\n"reg.lambda" = [10]\n')
    assert str(e.value) == ('[reg.moca.tune] "reg.lambda" is given twice, as \'reg.lambda_\' and \'reg.lambda\'; '
                            'give it once, as "reg.lambda"')
    # (a --set of an axis, a dotted key, overrides the file's quoted one, in either spelling)
    for key in ("lambda", "lambda_"):
        s = load(tmp_path, '\n[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.lambda" = [1, 10]\n',
                 [f"reg.moca.tune.reg.{key}=[3]"])
        assert s.tune_axes("moca") == {"reg.lambda": [3]}


def test_a_shared_grid_value_a_regularizer_refuses_names_the_axis_and_where_it_goes(tmp_path, capsys):
    """``[grid] "reg.lambda"`` beside ``ae`` (no penalty) was refused in ae's
    words for a run, naming a cell and ``drop --lambda``, a flag a spec has
    not; it names the [grid] axis and the tables it belongs in."""
    spec = BASE.replace('regularizers = ["moca"]', 'regularizers = ["moca", "ae", "swae"]')
    code, _, err = run_cli(["bench", str(write(tmp_path, spec + '\n[grid]\n"reg.lambda" = [10, 100]\n')),
                            "--dry-run", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith('error: [grid] "reg.lambda" = 10 is refused by ae (ae has no penalty, got lambda=10.0'), err
    assert err.rstrip().endswith("a [grid] axis applies to every regularizer of bench.regularizers; move it to the "
                                 "[reg.NAME.grid] of each regularizer it applies to (here: [reg.moca.grid], "
                                 "[reg.swae.grid])"), err
    assert "cell " not in err


@pytest.mark.parametrize("reg, extra, sets", [
    ("ae", "\n[reg.ae]\nlambda = 1\n", []),
    ("rae-sn", "", ["reg.rae-sn.lambda=2"]),
])
def test_a_lambda_a_regularizer_refuses_in_a_spec_names_the_spec_not_a_flag(tmp_path, capsys, reg, extra, sets):
    """``[reg.ae] lambda = 1`` was refused with ``drop --lambda``, a run's
    flag that a bench has not (the cells were resolved before the bench's
    wording was set): it names where a spec sets it."""
    spec = BASE.replace('regularizers = ["moca"]', f'regularizers = ["moca", "{reg}"]') + extra
    code, _, err = run_cli(["bench", str(write(tmp_path, spec)), "--dry-run", "--out", str(tmp_path / "r"),
                            *(a for s in sets for a in ("--set", s))], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--lambda" not in err, err
    assert f"drop lambda for {reg} from the spec (its [reg.{reg}] lambda, a 'reg.lambda' grid axis, " \
           f"--set reg.{reg}.lambda=...)" in err, err


@pytest.mark.parametrize("extra, message", [
    ('[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.gamma" = [1, 2]\n',
     '[reg.moca.tune] "reg.gamma": unknown setting of moca; valid keys: lambda, '),
    ('[reg.moca.grid]\n"reg.tua" = [1, 2]\n', '[reg.moca.grid] "reg.tua": unknown setting of moca; did you mean '
                                                '"reg.tau"? valid keys: lambda, '),
    ('[grid]\n"reg.gamma" = [1, 2]\n', '[grid] "reg.gamma": unknown setting of moca; valid keys: '),
    # a bare setting is named as the reg.KEY it means, and a tuning table lists only what may be tuned
    ('[tune]\nholdout = 10\n[reg.moca.tune]\n"lambda" = [1, 2]\n',
     'unknown grid axis [reg.moca.tune] "lambda"; use reg.KEY for a regularizer setting ("reg.lambda") or one of: '
     'batch_size, channels_last, compile, data_variant, decoder_output, image_size, latent_dim, lr, '
     'lr_halve_every, precision, step_mode, sync_bn\n'),
    ('[grid]\nlatent_dimm = [2, 4]\n', 'unknown grid axis [grid] "latent_dimm"; use reg.KEY for a regularizer '
                                         'setting or one of: batch_size, '),
])
def test_an_unknown_axis_is_named_by_its_spec_table_not_a_cell(tmp_path, capsys, extra, message):
    code, _, err = run_cli(["bench", str(write(tmp_path, BASE + "\n" + extra)), "--dry-run",
                            "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
    assert "cell " not in err
    if "latent_dimm" in extra:   # (the axis meant, where one is close)
        assert err.rstrip().endswith('; did you mean "latent_dim"?'), err


# -- expansion ---------------------------------------------------------------------------
def test_expansion_is_the_full_product_with_readable_unique_ids(tmp_path):
    s = load(tmp_path, '\n[grid]\n"reg.lambda" = [10, 100.0]\nlatent_dim = [4, 8]\n'
                       '\n[reg.moca.grid]\n"reg.m0" = [0.9, 0.99]\n')
    cells = grid.expand(s)
    assert len(cells) == 2 * 2 * 2 * 3
    assert len({c.id for c in cells}) == len(cells)
    assert cells[0].id == "moca-tiny-digits-lambda10-d4-m0_0.9-s0"
    assert "moca-tiny-digits-lambda100-d8-m0_0.99-s2" in {c.id for c in cells}
    # the same product, brute force, as (lambda, d, m0, seed)
    want = set(itertools.product([10, 100.0], [4, 8], [0.9, 0.99], [0, 1, 2]))
    got = {(c.overrides["reg"]["lambda"], c.overrides["latent_dim"], c.overrides["reg"]["m0"], c.seed) for c in cells}
    assert got == want
    assert [c.seed for c in cells[:3]] == [0, 1, 2]            # seeds innermost


def test_settings_are_layered_reg_dataset_arch_then_grid(tmp_path):
    s = load(tmp_path, '\n[dataset.digits]\nlatent_dim = 6\n'
                       '\n[reg.moca.dataset.digits]\nK = 96\ntau = 0.2\n'
                       '\n[reg.moca.arch.tiny]\ntau = 0.3\nm0 = 0.5\n'
                       '\n[grid]\n"reg.m0" = [0.7]\n', ["bench.seeds=[4]"])
    (c,) = grid.expand(s)
    o = c.overrides
    assert o["latent_dim"] == 6 and o["seed"] == 4 and o["epochs"] == 1
    assert o["reg"] == {"K": 96, "tau": 0.3, "m0": 0.7}
    cfg = grid.resolve(c)
    assert cfg.reg["K"] == 96 and cfg.reg["tau"] == 0.3 and cfg.reg["m0"] == 0.7 and cfg.arch == "tiny"


def test_default_arch_comes_from_the_dataset(tmp_path):
    s = load(tmp_path, "", ["bench.archs=[]", "bench.seeds=[0]"])
    assert [c.arch for c in grid.expand(s)] == ["tiny"]       # digits' default


def test_only_filters_by_id_or_glob(tmp_path):
    s = load(tmp_path, '\n[grid]\n"reg.lambda" = [10, 100]\n')
    cells = grid.expand(s)
    assert [c.id for c in grid.select(cells, "*-s1")] == ["moca-tiny-digits-lambda10-s1",
                                                          "moca-tiny-digits-lambda100-s1"]
    assert len(grid.select(cells, "moca-tiny-digits-lambda10-s0, *lambda100*")) == 4
    with pytest.raises(WaeError, match="matches no cell"):
        grid.select(cells, "swae-*")


# -- sharding ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 24, 30])
def test_shards_cover_every_cell_exactly_once(tmp_path, n):
    s = load(tmp_path, '\n[grid]\n"reg.lambda" = [10, 100]\nlatent_dim = [4, 8]\n')
    cells = grid.expand(s)                                      # 24 cells
    shares = [grid.shard(grid.expand(s), grid.parse_shard(f"{i}/{n}")) for i in range(n)]
    counts = Counter(c.id for share in shares for c in share)
    assert set(counts) == {c.id for c in cells} and set(counts.values()) == {1}
    sizes = [len(x) for x in shares]
    assert max(sizes) - min(sizes) <= 1                         # balanced
    again = grid.shard(grid.expand(s), (n - 1, n))
    assert [c.id for c in again] == [c.id for c in shares[-1]]  # deterministic


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_bad_shard_is_refused(text):
    with pytest.raises(WaeError, match="bad --shard"):
        grid.parse_shard(text)


# -- the spec hash and the results folder -----------------------------------------------------
def test_hash_ignores_locations_but_not_results(tmp_path):
    h = load(tmp_path).hash()
    assert load(tmp_path, "", ["train.data_root=\"/x\"", "train.device=\"cpu\"", "eval.fid_weights=\"/w\"",
                               "bench.description=\"other words\""]).hash() == h
    assert load(tmp_path, "", ["train.epochs=2"]).hash() != h
    assert load(tmp_path, "", ["reg.moca.K=128"]).hash() != h


TUNE = """
[tune]
holdout = 300
epochs = 1
"""


def test_hash_leaves_out_the_seeds_but_not_the_tuning_seeds_they_imply(tmp_path):
    h = load(tmp_path).hash()                                       # seeds 0, 1, 2
    assert load(tmp_path, "", ["bench.seeds=[0]"]).hash() == h
    assert load(tmp_path, "", ["bench.seeds=[0,1,2,3,4]"]).hash() == h
    # with [tune] and no tune.seeds, the first seed is the tuning seed: it decides every choice
    t = load(tmp_path, TUNE).hash()
    assert t != h and load(tmp_path, TUNE, ["bench.seeds=[0,5]"]).hash() == t
    assert load(tmp_path, TUNE, ["bench.seeds=[1,0]"]).hash() != t
    assert load(tmp_path, TUNE, ["tune.seeds=[0]"]).hash() == t      # the same seeds, spelled out
    fixed = load(tmp_path, TUNE, ["tune.seeds=[7]"]).hash()
    assert fixed != t and load(tmp_path, TUNE, ["tune.seeds=[7]", "bench.seeds=[3]"]).hash() == fixed


def test_more_seeds_are_added_to_a_folder_and_its_record_keeps_every_seed(tmp_path):
    folder = ResultsDir(tmp_path / "results")
    assert folder.claim(load(tmp_path, "", ["bench.seeds=[0]"])) == {}
    assert folder.claim(load(tmp_path, "", ["bench.seeds=[0,1,2]"])) == {"seeds": [1, 2]}
    assert folder.spec().bench.seeds == [0, 1, 2]
    assert folder.claim(load(tmp_path, "", ["bench.seeds=[1]"])) == {}        # fewer: nothing dropped
    assert folder.spec().bench.seeds == [0, 1, 2]
    assert folder.claim(load(tmp_path, "", ["bench.seeds=[4,0]"])) == {"seeds": [4]}
    assert folder.spec().bench.seeds == [0, 1, 2, 4]
    with pytest.raises(WaeError, match="different spec"):                   # the grid itself still counts
        folder.claim(load(tmp_path, "", ["bench.seeds=[5]", "train.max_steps=5"]))


def test_the_record_keeps_every_set_override_given_and_the_resolved_spec(tmp_path):
    import json

    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path, "", ["train.max_steps=4", "bench.seeds=[0]"]))
    folder.claim(load(tmp_path, "", ["bench.seeds=[0,1]", "train.max_steps=4"]))
    rec = json.loads(folder.spec_path.read_text())
    assert rec["overrides"] == ["train.max_steps=4", "bench.seeds=[0]", "bench.seeds=[0,1]"]
    assert rec["spec"]["bench"]["seeds"] == [0, 1] and "seeds = [0, 1, 2]" in rec["toml"]   # the file as written
    assert rec["hash"] == specs.spec_hash(rec["spec"])


def test_regularizers_archs_and_datasets_are_added_to_a_folder_like_seeds(tmp_path):
    """Cell ids name the regularizer, arch and dataset too: a grid grows by
    them, and a run of fewer keeps the others' cells and settings."""
    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path))
    swae = '\n[reg.swae]\nlambda = 5.0\n'
    grown = load(tmp_path, swae, ['bench.regularizers=["moca", "swae"]'])
    assert folder.claim(grown) == {"regularizers": ["swae"]}
    assert folder.spec().bench.regularizers == ["moca", "swae"]
    assert folder.spec().reg["swae"] == {"lambda": 5.0}
    assert folder.claim(load(tmp_path, swae, ['bench.regularizers=["swae", "moca"]'])) == {}   # order: the same grid
    # a run of moca alone leaves swae and its settings in the record
    assert folder.claim(load(tmp_path)) == {}
    assert folder.spec().bench.regularizers == ["moca", "swae"] and folder.spec().reg["swae"] == {"lambda": 5.0}
    assert folder.claim(load(tmp_path, "", ['bench.archs=["tiny", "dcgan"]'])) == {"archs": ["dcgan"]}
    assert folder.spec().bench.archs == ["tiny", "dcgan"]
    assert folder.spec().hash() == specs.spec_hash(folder.record()["spec"])


def test_a_set_that_lists_fewer_members_runs_them_alone_and_the_folder_keeps_the_others_tables(tmp_path):
    """docs/benchmarks.md: "A later run with fewer seeds or regularizers trains
    only those" -- with --set too, although the file has [reg.NAME] tables for
    the ones it leaves out (they were refused: "configures a regularizer not
    in bench.regularizers ... remove the table", which --set cannot do)."""
    path = write(tmp_path, BASE.replace('regularizers = ["moca"]', 'regularizers = ["moca", "swae"]')
                 + '\n[reg.swae]\nlambda = 5.0\n[reg.moca.dataset.digits]\nK = 32\n[reg.swae.arch.tiny]\nlambda = 4.0\n'
                 + '[dataset.digits]\nepochs = 1\n')
    only_swae = specs.load(path, ['bench.regularizers=["swae"]'])
    assert only_swae.bench.regularizers == ["swae"] and set(only_swae.reg) == {"swae"}
    assert [c.regularizer for c in grid.expand(only_swae)] == ["swae"] * 3
    assert specs.load(path, ['bench.archs=["dcgan"]']).reg["swae"].get("arch", {}) == {}
    no_digits = specs.load(path, ['bench.datasets=["mnist"]'])
    assert no_digits.dataset == {} and no_digits.reg["moca"].get("dataset", {}) == {}
    folder = ResultsDir(tmp_path / "results")
    folder.claim(only_swae)
    assert folder.claim(specs.load(path)) == {"regularizers": ["moca"]}        # then all of them: moca added
    assert folder.spec().reg["moca"]["dataset"] == {"digits": {"K": 32}}
    assert folder.claim(specs.load(path, ['bench.regularizers=["moca"]'])) == {}   # and fewer again: nothing lost
    assert folder.spec().reg["swae"]["lambda"] == 5.0
    # a table the file has for a member the file does not list is still a misspelling
    with pytest.raises(WaeError, match=r"\[reg.sawe\] configures a regularizer not in bench.regularizers"):
        specs.load(write(tmp_path, BASE + "\n[reg.sawe]\nlambda = 1.0\n", "typo.toml"),
                   ['bench.regularizers=["moca"]'])


@pytest.mark.parametrize("extra, sets, named", [
    ("\n[reg.swae]\nlambda = 6.0\n", ['bench.regularizers=["moca", "swae"]'], "reg.swae.lambda"),  # swae changed
    ("", ["reg.moca.K=128", 'bench.regularizers=["moca", "ae"]'], "reg.moca.K"),   # added one, changed another
    ("", ['bench.regularizers=["moca", "ae"]', "train.max_steps=5"], "train.max_steps"),
    ("\n[reg.moca.arch.tiny]\nlambda = 3.0\n", ['bench.archs=["tiny", "dcgan"]'], "reg.moca.arch.tiny.lambda"),
    ("", ["bench.archs=[]"], "bench.archs"),                     # the defaults are another grid
])
def test_growing_a_folder_refuses_any_change_to_its_cells_by_name(tmp_path, extra, sets, named):
    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path, "\n[reg.swae]\nlambda = 5.0\n", ['bench.regularizers=["moca", "swae"]']))
    before = folder.spec_path.read_text()
    with pytest.raises(WaeError) as e:
        folder.claim(load(tmp_path, extra, sets))
    assert "different spec" in str(e.value) and named in str(e.value) and "\n" not in str(e.value)
    assert folder.spec_path.read_text() == before


def test_the_tuning_seed_a_run_implies_must_be_the_folders(tmp_path):
    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path, TUNE))
    with pytest.raises(WaeError, match="tune.seeds"):
        folder.claim(load(tmp_path, TUNE, ["bench.seeds=[1,0]"]))       # would tune on seed 1
    assert folder.claim(load(tmp_path, TUNE, ["bench.seeds=[0,5]"])) == {"seeds": [5]}


def test_a_folder_recorded_under_an_older_hash_stays_its_specs(tmp_path):
    """What the hash covers may change between versions (it left out the seeds
    later): the recorded spec is hashed again, so its folder is not refused."""
    import json

    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path))
    rec = json.loads(folder.spec_path.read_text())
    folder.spec_path.write_text(json.dumps({**rec, "hash": "0123456789abcdef"}))
    folder.claim(load(tmp_path))
    assert json.loads(folder.spec_path.read_text())["hash"] == load(tmp_path).hash()


def test_a_folder_of_another_spec_is_refused_before_anything_runs(tmp_path, capsys):
    folder = ResultsDir(tmp_path / "results")
    folder.claim(load(tmp_path))
    folder.claim(load(tmp_path, "", ["train.data_root=\"/elsewhere\""]))   # same spec, another machine: fine
    with pytest.raises(WaeError) as e:
        folder.claim(load(tmp_path, "", ["train.max_steps=5"]))
    assert "different spec" in str(e.value) and "train.max_steps" in str(e.value)
    spec = write(tmp_path, BASE)
    code, _, err = run_cli(["bench", str(spec), "--out", str(folder.path), "--set", "train.max_steps=5"], capsys)
    assert code == 2 and "different spec" in err and len(err.strip().splitlines()) == 1
    assert not folder.cells_path.exists()


def test_dry_run_lists_cells_and_resolved_configs(tmp_path, capsys):
    import json

    spec = write(tmp_path, BASE + '\n[grid]\n"reg.lambda" = [10, 100]\n')
    code, out, err = run_cli(["bench", str(spec), "--out", str(tmp_path / "r"), "--dry-run", "--json",
                              "--shard", "1/2"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["moca-tiny-digits-lambda10-s1", "moca-tiny-digits-lambda100-s0",
                                       "moca-tiny-digits-lambda100-s2"]
    assert all(r["state"] == "pending" for r in rows)
    assert rows[1]["config"]["reg"]["lambda"] == 100.0 and rows[1]["config"]["reg"]["K"] == 64
    assert rows[1]["config"]["arch"] == "tiny" and rows[1]["config"]["max_steps"] == 4
    assert not (tmp_path / "r").exists()                       # a dry run writes nothing


# -- the shipped specs ----------------------------------------------------------------------
SPECS = sorted((ROOT / "benchmarks").glob("*.toml"))
# What the Table 1 specs list: the paper's methods, MoCA and the baselines its Table 1 compares
# (docs/benchmarks.md "Specs").  A fixed list, not "every built-in": the list is part of the spec's
# hash, so a new built-in added here would make every committed Table 1 results folder refuse the spec.
PAPER_METHODS = {"moca", "wae-mmd", "wae-gan", "swae", "sinkhorn", "rae-l2", "rae-gp", "rae-sn", "ae"}


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_specs_parse_and_expand(path):
    s = specs.load(path)
    cells = grid.expand(s)
    assert cells and len({c.id for c in cells}) == len(cells)
    assert "data_root" not in s.train                          # no machine's paths in a spec
    missing = [r for r in s.bench.regularizers if r not in REGULARIZERS]
    if missing:
        pytest.skip(f"regularizers not registered yet: {missing}")
    configs = grid.resolve_all(cells)
    if path.stem.startswith("table1"):
        assert set(s.bench.regularizers) == PAPER_METHODS
        # the full-budget cells (their tuning cells: tests/test_bench_tune.py; the λ below is MoCA's
        # default, the centre of its tuning grid, until tuning chooses one)
        configs = {cid: c for cid, c in configs.items() if not cid.startswith(grid.TUNE_PREFIX)}
        budget = {(c["epochs"], c["batch_size"], c["lr"], c["lr_halve_every"], c["latent_dim"])
                  for c in configs.values()}
        assert budget == {(100 if "cifar" in path.stem else 200, 64, 1e-3, 60, 128)}
        moca = {cid: c["reg"] for cid, c in configs.items() if cid.startswith("moca-")}
        K = 30000 if "cifar" in path.stem else 60000
        assert all(r["K"] == K and r["tau"] == 0.05 and r["m0"] == 0.99 for r in moca.values())
        assert all(r["lambda"] == (1000.0 if "-a1-" in cid else 100.0) for cid, r in moca.items())


def test_smoke_spec_lists_every_builtin_regularizer():
    s = specs.load(ROOT / "benchmarks" / "smoke.toml")
    assert sorted(s.bench.regularizers) == builtin_names(), "benchmarks/smoke.toml lists every built-in"
    assert PAPER_METHODS <= set(builtin_names())          # the paper's methods are all built in


def test_the_dry_run_names_the_results_folder_absolute_and_whether_it_holds_cells(tmp_path, capsys, monkeypatch):
    """The default folder (``runs/bench/<name>``) is relative to the working
    directory: the dry run's first line names it absolute, new or holding N
    cells, so that a finished grid shown all pending from another directory
    is seen for what it is (plugintuner F4)."""
    spec = write(tmp_path, BASE)
    monkeypatch.chdir(tmp_path)
    where = tmp_path.resolve() / "runs" / "bench" / "t"
    code, out, _ = run_cli(["bench", str(spec), "--dry-run"], capsys)
    assert code == 0 and out.splitlines()[0] == f"results folder: {where} (new)", out
    folder = ResultsDir("runs/bench/t")
    folder.claim(specs.load(spec))
    for c in grid.expand(specs.load(spec))[:2]:
        folder.cell_dir(c.id).mkdir(parents=True)
        (folder.cell_dir(c.id) / "config.json").write_text("{}")
    code, out, _ = run_cli(["bench", str(spec), "--dry-run"], capsys)
    assert code == 0 and out.splitlines()[0] == f"results folder: {where} (holds 2 cells)", out


def test_the_dry_run_prints_names_paths_and_values_rich_would_read_as_markup_whole(tmp_path, capsys, monkeypatch):
    """A spec named ``[bold]t``, a data root ``[old]`` and a rates file under ``[rates]``: Rich took each
    bracketed word for a style and dropped it from the dry run's lines."""
    spec = write(tmp_path, BASE.replace('name = "t"', 'name = "[bold]t"'))
    monkeypatch.setenv("WAE_BENCH_RATES", str(tmp_path / "[rates]" / "rates.json"))
    code, out, err = run_cli(["bench", str(spec), "--out", str(tmp_path / "r"), "--dry-run",
                              "--data-root", str(tmp_path / "[old]")], capsys)
    said = " ".join((out + err).split())
    assert "[bold]t: 3 cell(s); shared settings:" in said
    assert f'data_root="{tmp_path / "[old]"}"' in said
    assert f"no measured rates at {tmp_path / '[rates]' / 'rates.json'}" in said


@pytest.mark.parametrize("setting, said", [
    ('eval.what=["samples","nn"]', "error: bad eval.what nn; choose from samples,n,gmm,rec,interp"),
    ("eval.seed=-1", "error: eval.seed must be in [0, 4294967295], got -1"),
    ("eval.fid_samples=1", "error: eval.fid_samples must be >= 2, got 1"),
])
def test_a_bad_eval_value_of_a_spec_names_its_spec_key_not_an_eval_flag(tmp_path, capsys, setting, said):
    """A spec's [eval] (or --set eval.KEY) is checked by the evaluation's own checks, which named the flags
    of `wae-bench eval` (`bad --what nn`, `--seed must be`: a bench has neither)."""
    code, out, err = run_cli(["bench", str(ROOT / "benchmarks" / "smoke.toml"), "--dry-run", "--set", setting,
                              "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err == said + "\n", err


def test_compares_fid_samples_flag_is_named_as_given(tmp_path, capsys):
    code, out, err = run_cli(["compare", "moca", "ae", "--fid-samples", "1", "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and err == "error: --fid-samples must be >= 2, got 1\n" and not (tmp_path / "c").exists()
