"""Bad input: each row of the table in docs/bad-input.md, run through the
CLI.  Every row must give a non-zero exit status, exactly one line on stderr
starting ``error:`` that names the problem (and the fix), no traceback, and
lose nothing: files of an existing run are byte-identical afterwards.

Most rows call ``wae_bench.cli.main`` in this process (fast); a few run
``python -m wae_bench`` to show that no traceback reaches a real stderr.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from tests.reliability_helpers import TINY, assert_one_line_error, cli, install_plugin, one_thread, start
from wae_bench import atomic
from wae_bench.cli import main
from wae_bench.run import checkpoint
from wae_bench.errors import WaeError

RUN = ["run", *TINY, "--set", "max_steps=4", "--set", "ckpt_every=2", "--set", "expost=[]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny MoCA run (checkpoints at steps 2 and 4)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    with one_thread():
        try:
            main([*RUN, "--out", str(out)])
        except SystemExit as e:
            assert e.code in (0, None)
    return out


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def png(path: Path, size: int = 8, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(np.full((size, size), 40000, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (size, size), color=(200, 30, 30) if mode == "RGB" else 128).save(path)
    return path


class World:
    """Builds the files a row needs under ``tmp`` (copies of the finished run,
    data folders, config files)."""

    def __init__(self, tmp: Path, finished: Path):
        self.tmp, self.finished, self.keep = tmp, finished, None

    def run_copy(self, name: str = "copy", keep: bool = True) -> Path:
        dst = self.tmp / name
        shutil.copytree(self.finished, dst)
        if keep:
            self.keep = dst
        return dst

    def edit_config(self, run: Path, **changes) -> None:
        cfg = json.loads((run / "config.json").read_text())
        cfg["config"].update(changes)
        (run / "config.json").write_text(json.dumps(cfg))

    def images(self, name: str, n: int = 4, size: int = 8, mode: str = "RGB") -> Path:
        root = self.tmp / name
        for split in ("train", "test"):
            for i in range(n):
                png(root / split / "cls" / f"{i}.png", size, mode)
        return root

    def file(self, name: str, data: bytes | str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p


def _truncated_zip(w: World) -> Path:
    root = w.images("z")
    for split in ("train", "test"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for p in sorted((root / split).rglob("*.png")):
                zf.write(p, str(p.relative_to(root / split)))
        shutil.rmtree(root / split)
        raw = buf.getvalue()
        (root / f"{split}.zip").write_bytes(raw[: len(raw) // 2])
    return root


def _corrupt_zip_member(w: World) -> Path:
    """Whole archives (central directory intact) whose deflated member data is damaged."""
    root = w.tmp / "cz"
    root.mkdir()
    for split in ("train", "test"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for i in range(3):
                img = io.BytesIO()
                Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img, "BMP")
                zf.writestr(f"cls/{i}.bmp", img.getvalue())
        raw = bytearray(buf.getvalue())
        start = raw.index(b"cls/0.bmp") + len("cls/0.bmp")
        raw[start + 5: start + 60] = bytes(55)                   # zero out deflated bytes of member 0
        (root / f"{split}.zip").write_bytes(bytes(raw))
    return root


def _truncate_checkpoints(w: World) -> Path:
    run = w.run_copy()
    for p in checkpoint.checkpoints(run):
        p.write_bytes(p.read_bytes()[:200])
    return run


def _data_changed(w: World) -> Path:
    """A run whose config.json records a train split of 1,400 images; digits has 1,500 now."""
    run = w.run_copy()
    rec = json.loads((run / "config.json").read_text())
    rec["data_fingerprint"]["holdout_of"] = 1400
    (run / "config.json").write_text(json.dumps(rec))
    return run


def _other_arch(w: World) -> Path:
    run = w.run_copy()
    w.edit_config(run, latent_dim=32)
    return run


def _other_regularizer(w: World) -> Path:
    """A WAE-MMD run's folder holding MoCA checkpoints (copied in by hand)."""
    from wae_bench.config import TrainConfig, from_dict, to_dict
    from wae_bench.run.build import resolve

    run = w.run_copy()
    saved = json.loads((run / "config.json").read_text())["config"]
    mmd = resolve(from_dict(TrainConfig, {**saved, "regularizer": "wae-mmd", "reg": {}})).cfg
    w.edit_config(run, **to_dict(mmd))
    return run


LONG = "a" * 300                                 # one path component over the filesystem's 255-byte limit


def _foreign_config(w: World) -> Path:
    """A folder whose config.json is not a run's (``[1, 2]``)."""
    d = w.tmp / "foreign"
    d.mkdir()
    (d / "config.json").write_text("[1, 2]\n")
    w.keep = d
    return d


def _unknown_key(w: World) -> Path:
    """A run whose config.json has a key this version does not know, written by another version."""
    run = w.run_copy()
    rec = json.loads((run / "config.json").read_text())
    rec["config"]["foo"] = 1
    rec["versions"]["wae_bench"] = "9.9.9"
    (run / "config.json").write_text(json.dumps(rec))
    return run


def _results_folder(w: World, drop: tuple[str, ...] = ()) -> Path:
    """A results folder of a one-cell spec that scores FID, with a table.md
    (made by hand: nothing trained); ``drop``: fields left out of spec.json."""
    from wae_bench.bench.folder import FORMAT
    from wae_bench.bench.spec import spec_hash

    raw = {"bench": {"name": "t", "datasets": ["digits"], "regularizers": ["ae"]}}
    root = w.tmp / "res"
    root.mkdir()
    rec = {"format": FORMAT, "name": "t", "hash": spec_hash(raw), "source": "", "toml": "", "spec": raw}
    (root / "spec.json").write_text(json.dumps({k: v for k, v in rec.items() if k not in drop}))
    (root / "table.md").write_text("the table of the last run\n")
    (root / "notes.html").write_text("<p>my notes</p>\n")
    w.keep = root
    return root


def _spec(w: World, name: str = "s", extra: str = "") -> Path:
    return w.file(f"spec-{len(list(w.tmp.glob('spec-*')))}.toml",
                  f'[bench]\nname = {json.dumps(name)}\ndatasets = ["digits"]\nregularizers = ["moca"]\n{extra}')


@dataclass
class Row:
    id: str
    problem: str                                 # docs/bad-input.md's "bad input" column
    args: Callable[[World], list]
    needles: tuple[str, ...]


ROWS = [
    Row("unknown-regularizer", "`--reg mocaa`", lambda w: [*RUN, "--reg", "mocaa"],
        ("unknown regularizer 'mocaa'", "did you mean 'moca'", "wae-bench list")),
    Row("unknown-arch", "`--arch a3`", lambda w: [*RUN, "--arch", "a3"], ("unknown architecture 'a3'",)),
    Row("unknown-dataset", "`--dataset cifar100`", lambda w: ["run", "--dataset", "cifar100"],
        ("unknown dataset 'cifar100'", "did you mean 'cifar10'")),
    Row("unknown-metric", "`eval RUN --metrics fidd`", lambda w: ["eval", w.run_copy(), "--metrics", "fidd"],
        ("bad --metrics fidd", "choose from")),
    Row("negative-lambda", "`--lambda -1`", lambda w: [*RUN, "--lambda", "-1"], ("lambda must be >= 0",)),
    Row("K-below-batch", "`--set reg.K=16` (batch 64)", lambda w: [*RUN, "--set", "reg.K=16"],
        ("K (16) must be >= the global batch size (64)", "--batch-size")),
    Row("tau-not-positive", "`--set reg.tau=0`", lambda w: [*RUN, "--set", "reg.tau=0"], ("tau must be > 0",)),
    Row("m0-outside-0-1", "`--set reg.m0=1.5`", lambda w: [*RUN, "--set", "reg.m0=1.5"], ("m0 must be in [0, 1]",)),
    Row("epochs-zero", "`--epochs 0`", lambda w: [*RUN, "--epochs", "0"], ("epochs must be >= 1",)),
    Row("unknown-key", "`--set foo=1`", lambda w: [*RUN, "--set", "foo=1"], ("unknown config key 'foo'", "valid keys")),
    Row("unknown-reg-key", "`--set reg.queue=5`", lambda w: [*RUN, "--set", "reg.queue=5"],
        ("unknown config key", "queue", "valid keys")),
    Row("other-regs-key", "`--reg ae --set reg.K=4096` (a MoCA setting)",
        lambda w: [*RUN, "--reg", "ae", "--set", "reg.K=4096"],
        ("unknown config key 'reg.K' of regularizer 'ae'", "valid keys: lambda")),
    Row("top-level-reg-key", "`--set lambda=10`", lambda w: [*RUN, "--set", "lambda=10"],
        ("unknown config key 'lambda'; did you mean 'reg.lambda'?",)),
    Row("value-for-a-table", "`--set reg=5` (or `reg = 5` in a `--config` TOML)", lambda w: [*RUN, "--set", "reg=5"],
        ("bad value 5 for reg: expected a table of settings", "--set reg.KEY=VALUE")),
    Row("bad-value-type", "`--set epochs=abc`", lambda w: [*RUN, "--set", "epochs=abc"], ("expected an integer",)),
    Row("bad-set-syntax", "`--set epochs`", lambda w: [*RUN, "--set", "epochs"], ("write key=value",)),
    Row("bad-option-value", "`--epochs abc`", lambda w: [*RUN, "--epochs", "abc"],
        ("not a valid integer", "--help")),
    Row("unknown-option", "`--epoch 3`", lambda w: [*RUN, "--epoch", "3"], ("no such option", "--epochs")),
    Row("option-without-value", "`run --reg` (no value)", lambda w: ["run", "--reg"],
        ("option '--reg' requires an argument", "see 'wae-bench run --help'")),
    Row("malformed-toml", "`--config bad.toml` (`epochs = [`)",
        lambda w: [*RUN, "--config", w.file("bad.toml", "epochs = [\n")], ("malformed TOML", "bad.toml")),
    Row("config-is-a-bench-spec", "`--config smoke.toml` (a bench spec, `[bench]`)",
        lambda w: [*RUN, "--config", _spec(w)], ("is a bench spec ([bench]), not the settings of one run",
                                                  "run it with `wae-bench bench")),
    Row("config-with-a-train-table", "`--config` TOML with a `[train]` table (`[train]` `epochs = 1`)",
        lambda w: [*RUN, "--config", w.file("t.toml", "[train]\nepochs = 1\n")],
        ("has a [train] table, as a bench spec does", "keys at the top level")),
    Row("missing-config-file", "`--config missing.toml`", lambda w: [*RUN, "--config", w.tmp / "missing.toml"],
        ("not found", "--config")),
    Row("cifar10-without-data-root", "`--dataset cifar10` without `--data-root`",
        lambda w: ["run", "--dataset", "cifar10", "--no-eval"], ("dataset 'cifar10' needs --data-root DIR",)),
    Row("missing-data-folder", "`--dataset folder --data-root /no/such/dir`",
        lambda w: ["run", "--dataset", "folder", "--data-root", w.tmp / "nope"], ("does not exist", "--data-root")),
    Row("empty-data-folder", "`--data-root` an empty folder",
        lambda w: ["run", "--dataset", "folder", "--data-root", (w.tmp / "empty").mkdir() or w.tmp / "empty"],
        ("no folder train split", "--data-root")),
    Row("empty-split", "`train/` and `test/` hold no images",
        lambda w: ["run", "--dataset", "folder", "--data-root",
                   [(w.tmp / "e" / s).mkdir(parents=True) for s in ("train", "test")] and w.tmp / "e"],
        ("no images", "--data-root")),
    Row("wrong-image-size", "`--dataset cifar10` with 16×16 images",
        lambda w: ["run", "--dataset", "cifar10", "--data-root", w.images("small", size=16)],
        ("is 16x16, expected 32x32", "--dataset folder")),
    Row("wrong-image-mode", "a 16-bit grayscale PNG", lambda w: ["run", "--dataset", "folder", "--data-root",
                                                                w.images("i16", mode="I;16")],
        ("has mode I;16", "convert it to 8-bit RGB")),
    Row("corrupt-image", "a `.png` that is not an image",
        lambda w: ["run", "--dataset", "folder", "--data-root",
                   (w.file("bad/train/a/0.png", b"not a png"), w.file("bad/test/a/0.png", b"x"))[0].parents[2]],
        ("cannot read image", "0.png", "remove or replace")),
    Row("truncated-zip", "`train.zip` cut in half", lambda w: ["run", "--dataset", "folder", "--data-root",
                                                              _truncated_zip(w)],
        ("train.zip", "re-download or re-pack")),
    Row("corrupt-zip-member", "a zip whose member data is damaged",
        lambda w: ["run", "--dataset", "folder", "--data-root", _corrupt_zip_member(w)],
        ("train.zip", "truncated or corrupt", "re-download or re-pack")),
    Row("truncated-checkpoint", "every checkpoint of the run truncated",
        lambda w: ["run", "--resume", "--out", _truncate_checkpoints(w), "--no-eval"],
        ("no loadable checkpoint", "truncated")),
    Row("data-changed", "`--resume` after images were added to the data the run started on",
        lambda w: ["run", "--resume", "--out", _data_changed(w), "--no-eval"],
        ("changed since this run started (train split 1400 -> 1500 images)", "restore it", "start a new --out")),
    Row("checkpoint-other-arch", "a checkpoint of latent_dim 16 in a run of latent_dim 32",
        lambda w: ["run", "--resume", "--out", _other_arch(w), "--no-eval"],
        ("latent_dim 16, not 32", "start a new --out")),
    Row("checkpoint-other-regularizer", "a MoCA checkpoint in a WAE-MMD run",
        lambda w: ["run", "--resume", "--out", _other_regularizer(w), "--no-eval"],
        ("regularizer 'moca', not 'wae-mmd'",)),
    Row("out-holds-another-run", "`--out` of an existing run, without `--resume`",
        lambda w: [*RUN, "--lr", "0.01", "--out", w.run_copy()], ("holds a run", "--resume", "another --out")),
    Row("out-is-a-file", "`--out` names a file", lambda w: [*RUN, "--out", w.file("afile", "x")],
        ("is a file",)),
    Row("resume-changed-config", "`--resume --lr 0.5`", lambda w: ["run", "--resume", "--lr", "0.5", "--out",
                                                                   w.run_copy(), "--no-eval"],
        ("different config (lr changed)", "--force")),
    Row("resume-other-regularizer", "`--resume --reg ae` of a MoCA run (also with `--force`)",
        lambda w: ["run", "--resume", "--force", "--reg", "ae", "--out", w.run_copy(), "--no-eval"],
        ("a run of regularizer 'moca', with --reg ae", "drop --reg, or start a new --out for ae")),
    Row("force-without-resume", "`--force` without `--resume` (say, to replace a run in `--out`)",
        lambda w: [*RUN, "--force", "--out", w.run_copy()],
        ("--force goes with --resume", "add --resume, or drop --force")),
    Row("resume-nothing", "`--resume` into an empty folder",
        lambda w: ["run", "--resume", "--out", w.tmp / "fresh", "--no-eval"], ("nothing to resume",)),
    Row("eval-checkpoints-folder", "`eval RUN/checkpoints` (the checkpoints folder, not the run)",
        lambda w: ["eval", w.run_copy() / "checkpoints", "--features", "standin"],
        ("is the checkpoints folder of the run", "pass the run directory: wae-bench eval")),
    Row("eval-results-folder", "`eval RESULTS` (a bench's results folder)",
        lambda w: ["eval", _results_folder(w), "--features", "standin"],
        ("is a benchmark results folder, not a run", "/cells/CELL", "wae-bench table")),
    Row("eval-folder-of-runs", "`eval DIR` of a folder holding runs (`DIR/a`, `DIR/b`)",
        lambda w: ["eval", w.run_copy("many/a").parent, "--features", "standin"],
        ("is not a run but holds runs (a", "pass one of them, e.g. wae-bench eval")),
    Row("eval-not-a-run", "`eval DIR` of a folder that is not a run (no `config.json`)",
        lambda w: ["eval", (w.tmp / "plain").mkdir() or w.tmp / "plain", "--features", "standin"],
        ("is not a run directory (no config.json)", "--out of a `wae-bench run`")),
    Row("batch-larger-than-data", "`--batch-size 4096` (1,500 images)",
        lambda w: [*RUN, "--batch-size", "4096", "--set", "reg.K=8192"], ("fewer than one batch", "--batch-size")),
    Row("image-size-vs-arch", "`--set image_size=10` (tiny takes multiples of 4)",
        lambda w: [*RUN, "--set", "image_size=10"], ("cannot take 10x10", "image_size")),
    Row("bad-device", "`--device tpu`", lambda w: [*RUN, "--device", "tpu"], ("bad device 'tpu'",)),
    Row("holdout-too-large", "`--set holdout=1500` (1,500 training images)",
        lambda w: [*RUN, "--set", "holdout=1500"], ("holdout = 1,500 must be between 1 and 1,499", "lower holdout")),
    Row("val-split-without-holdout", "`eval RUN --split val` (the run held out nothing)",
        lambda w: ["eval", w.run_copy(), "--split", "val", "--features", "standin"],
        ("held out no validation images", "--set holdout=N")),
    Row("seed-out-of-range", "`--seed 99999999999999999999`", lambda w: [*RUN, "--seed", "99999999999999999999"],
        ("for seed", "out of range")),
    Row("seed-over-32-bits", "`--seed 4294967296`", lambda w: [*RUN, "--seed", "4294967296"],
        ("seed must be in [0, 4294967295]",)),
    Row("eval-seed-negative", "`eval RUN --seed -1`", lambda w: ["eval", w.run_copy(), "--seed", "-1"],
        ("--seed must be in [0, 4294967295]",)),
    Row("out-holds-foreign-config", "`--out` holding a `config.json` that is not a run's (`[1, 2]`)",
        lambda w: [*RUN, "--out", _foreign_config(w)], ("is not empty and is not a run folder", "another --out")),
    Row("out-inside-a-run", "`--out RUN/sub` (inside a run folder)",
        lambda w: [*RUN, "--out", w.run_copy() / "sub"], ("lies inside the run folder", "/copy'", "choose an --out "
                                                          "outside it (e.g. beside it: ", "copy-sub'")),
    Row("resume-foreign-config", "`--resume` into a folder whose `config.json` is `[1, 2]`",
        lambda w: ["run", "--resume", "--out", _foreign_config(w), "--no-eval"],
        ("config.json", "unreadable", "not the config.json of a run")),
    Row("resume-unknown-key", "`--resume` of a run whose `config.json` has a key this version does not know",
        lambda w: ["run", "--resume", "--out", _unknown_key(w), "--no-eval"],
        ("the config saved in", "config.json", "written by version 9.9.9", "unknown config key 'foo'",
         "use version 9.9.9 for this run")),
    Row("data-root-name-too-long", "`--data-root` with a 300-byte folder name",
        lambda w: ["run", "--dataset", "folder", "--data-root", w.tmp / LONG], ("File name too long", "shorten the path")),
    Row("config-name-too-long", "`--config` with a 300-byte file name",
        lambda w: [*RUN, "--config", w.tmp / f"{LONG}.toml"], ("File name too long", "shorten the path")),
    Row("eval-name-too-long", "`eval` of a 300-byte folder name", lambda w: ["eval", w.tmp / LONG],
        ("File name too long", "shorten the path")),
    Row("out-name-too-long", "`--out new/` + a 300-byte folder name", lambda w: [*RUN, "--out", w.tmp / "new" / LONG],
        ("cannot write to output directory", "File name too long")),
    Row("huge-queue", "`--set reg.K=1000000000000` (a 64 TB queue)",
        lambda w: [*RUN, "--set", "reg.K=1000000000000"],
        ("the run needs at least", "MoCA's queue of reg.K × latent_dim", "GB free", "lower the setting it names")),
    Row("celeba-small-images", "`--dataset celeba` with 32×32 images",
        lambda w: ["run", "--dataset", "celeba", "--arch", "tiny", "--data-root", w.images("c32", size=32),
                   "--quiet", "--no-eval"],
        ("is 32x32, smaller than the 140x140 centre crop", "--dataset folder")),
    Row("kid-reference-too-small", "`eval RUN --metrics kid` (digits: 297 test images, subsets of 1,000)",
        lambda w: ["eval", w.run_copy(), "--metrics", "kid", "--features", "standin"],
        ("reference split has only 297", "lower --kid-subset-size to 297", "more samples cannot help")),
    Row("kid-subsets-zero", "`eval RUN --kid-subsets 0`",
        lambda w: ["eval", w.run_copy(), "--metrics", "kid", "--kid-subsets", "0"], ("--kid-subsets must be >= 1",)),
    Row("spec-name-absolute", "a spec whose `name` is `\"/abs/dir\"`",
        lambda w: ["bench", _spec(w, "/abs/dir"), "--quiet"], ("bench.name '/abs/dir'", "one plain folder name")),
    Row("spec-name-parent", "a spec whose `name` is `\"../../x\"`", lambda w: ["bench", _spec(w, "../../x"), "--quiet"],
        ("bench.name '../../x'", "one plain folder name")),
    Row("spec-missing-keys", "a spec whose `[bench]` holds only `name`",
        lambda w: ["bench", w.file("spec-bare.toml", '[bench]\nname = "x"\n'), "--dry-run"],
        ("[bench] needs datasets and regularizers", 'datasets = ["digits"]', "see the 'Benchmarks: specs, the tuning protocol, tables and plots' page of wae-bench's docs, "
                                                                  "section 'The spec in full'")),
    Row("grid-repeated-value", "a grid axis `\"reg.lambda\" = [1, 1.0]`",
        lambda w: ["bench", _spec(w, extra='[grid]\n"reg.lambda" = [1, 1.0]\n'), "--dry-run"],
        ('grid axis [grid] "reg.lambda" lists a value twice', "list each once")),
    Row("tune-axis-two-spellings", "`[reg.moca.tune]` giving `\"reg.lambda_\"` (the Python field) and `\"reg.lambda\"`",
        lambda w: ["bench", _spec(w, extra='[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.lambda_" = [1]\n'
                                          '"reg.lambda" = [10]\n'), "--dry-run"],
        ('[reg.moca.tune] "reg.lambda" is given twice', 'give it once, as "reg.lambda"')),
    Row("tune-axis-unknown-setting", "`[reg.moca.tune] \"reg.gamma\" = [1, 2]`, no setting of moca",
        lambda w: ["bench", _spec(w, extra='[tune]\nholdout = 10\n[reg.moca.tune]\n"reg.gamma" = [1, 2]\n'),
                   "--dry-run"],
        ('[reg.moca.tune] "reg.gamma": unknown setting of moca', "valid keys: lambda, K")),
    Row("spec-json-lacks-a-field", "`table RESULTS` whose `spec.json` lacks `spec`",
        lambda w: ["table", _results_folder(w, drop=("spec",))], ("spec.json", "unreadable (no spec)")),
    Row("table-unknown-metric", "`table RESULTS --metric foo`", lambda w: ["table", _results_folder(w), "--metric", "foo"],
        ("unknown --metric 'foo'", "choose one of")),
    Row("table-metric-not-scored", "`table RESULTS --metric kid` (the spec scores FID, no cell has KID)",
        lambda w: ["table", _results_folder(w), "--metric", "kid"], ("has a kid score", "--metric fid")),
    Row("report-over-a-foreign-file", "`report RESULTS --out notes.html` (a file that is not a report)",
        lambda w: ["report", _results_folder(w), "--out", w.tmp / "res" / "notes.html"],
        ("is not a report written by wae-bench", "another --out")),
    Row("trust-needed", "a checkpoint that would run pickled code", lambda w: ["run", "--resume", "--out",
                                                                             _evil(w), "--no-eval"],
        ("would run pickled code", "--trust-checkpoint")),
]
if not torch.cuda.is_available():
    ROWS.append(Row("no-gpu", "`--device cuda` without a GPU", lambda w: [*RUN, "--device", "cuda"],
                    ("no CUDA GPU", "--device cpu")))


# -- data layouts: CelebA's partition file, finding the splits, TOML spelling (helper `data`) --
DATA = ["run", "--arch", "tiny", "--set", "image_size=16", "--no-eval"]


def _celeba(w: World, partition: str | None, sizes: dict[int, tuple[int, int]] | None = None,
            folders: tuple[str, ...] = ("celeba/img_align_celeba",)) -> Path:
    """CelebA's layout with 4 images of the aligned size (or ``sizes[i]``) in
    each of ``folders`` and ``partition`` (None: none) as list_eval_partition.txt."""
    root = w.tmp / "cel"
    for folder in folders:
        for i in range(4):
            p = root / folder / f"{i + 1:06d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (sizes or {}).get(i + 1, (178, 218)), (90, 60, 40)).save(p)
    if partition is not None:
        (root / "celeba" / "list_eval_partition.txt").write_text(partition)
    return root


PART4 = "000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n000004.jpg 2\n"   # train 1-2, test 3-4


def _zips(w: World, names: tuple[str, ...], folders: tuple[str, ...] = ()) -> Path:
    """A data root holding a zip of images under each of ``names`` and image folders ``folders``."""
    src = w.images("src")
    root = w.tmp / "zips"
    root.mkdir()
    for name in names:
        with zipfile.ZipFile(root / name, "w") as zf:
            for f in sorted((src / "train").rglob("*.png")):
                zf.write(f, str(f.relative_to(src / "train")))
    for folder in folders:
        shutil.copytree(src / "train", root / folder)
    return root


ROWS += [
    Row("celeba-partition-bad-line", "`--dataset celeba`, a `list_eval_partition.txt` line with 3 fields",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root",
                   _celeba(w, "image_id partition extra\n000001.jpg 0\n")],
        ("list_eval_partition.txt' line 1 ('image_id partition extra')", "expected '<file> <0|1|2>'")),
    Row("celeba-partition-empty-split", "`--dataset celeba`, a `list_eval_partition.txt` with no test (`2`) entries",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root",
                   _celeba(w, "".join(f"{i:06d}.jpg {p}\n" for i, p in zip(range(1, 5), "0001")))],
        ("list_eval_partition.txt' puts no image in the test split (2)", "move it aside")),
    Row("celeba-partition-lists-missing-images", "`--dataset celeba`, `list_eval_partition.txt` lists an image "
        "the folder lacks (an unzip cut short)",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root", _celeba(w, PART4 + "000005.jpg 2\n")],
        ("1 of the 5 images that", "list_eval_partition.txt' lists are not in", "(train: 0 of 2, test: 1 of 3; first: "
         "000005.jpg)", "restore them", "move the partition file aside")),
    Row("celeba-partition-lists-twice", "`--dataset celeba`, `list_eval_partition.txt` lists an image twice",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root", _celeba(w, PART4 + "000001.jpg 2\n")],
        ("lists 000001.jpg twice (line 1 and line 5)", "keep one of the two lines")),
    Row("celeba-two-image-folders", "`--dataset celeba`, no partition file, images in two folders "
        "(`copy1/`, `copy2/`)",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root", _celeba(w, None, folders=("copy1", "copy2"))],
        ("2 image folders under", "(copy1, copy2); pass the one to use as --data-root")),
    Row("celeba-not-aligned-size", "`--dataset celeba`, an image of 356×436 (not aligned CelebA's 178×218)",
        lambda w: [*DATA, "--dataset", "celeba", "--data-root", _celeba(w, PART4, sizes={2: (356, 436)})],
        ("image '000002.jpg'", "is 356x436, not the 178x218 of aligned CelebA", "pass the aligned images",
         "variant celeba-files")),
    Row("split-val-without-holdout", "`run --split val` with `holdout = 0` (refused before training)",
        lambda w: ["run", *TINY[:-1], "--set", "max_steps=4", "--split", "val", "--features", "standin",
                   "--fid-samples", "8"],
        ("the run held out no validation images (holdout = 0)", "--set holdout=N")),
    Row("two-train-zips", "`--data-root` holding `data-train.zip`, `data-train-old.zip`, `data-test.zip`",
        lambda w: [*DATA, "--dataset", "folder", "--data-root",
                   _zips(w, ("data-train.zip", "data-train-old.zip", "data-test.zip"))],
        ("2 candidates for the train split", "(data-train-old.zip, data-train.zip)", "rename it train.zip")),
    Row("train-folder-and-zip", "`--data-root` holding both `train/` and `train.zip`",
        lambda w: [*DATA, "--dataset", "folder", "--data-root", _zips(w, ("train.zip",), ("train", "test"))],
        ("both 'train/' and 'train.zip'", "move one of them aside")),
    Row("split-folder-as-root", "`--data-root DIR/train` (the split folder, not the folder holding it)",
        lambda w: [*DATA, "--dataset", "folder", "--data-root", w.images("mine") / "train"],
        ("no folder train split in", "pass its parent")),
    Row("train-only-folder", "`--data-root` holding `train/` only",
        lambda w: [*DATA, "--dataset", "folder", "--data-root",
                   shutil.rmtree(w.images("one") / "test") or w.tmp / "one"],
        ("no folder test split in", "move some of the training images (e.g. 10%) into")),
    Row("toml-bool-for-an-integer", "`epochs = true` in a `--config` TOML",
        lambda w: [*RUN, "--config", w.file("b.toml", "epochs = true\n")], ("bad value true for epochs",)),
]


def _evil(w: World) -> Path:
    from tests.test_security import plant_evil_checkpoint

    run = w.run_copy()
    plant_evil_checkpoint(run, w.tmp / "pwned")
    return run


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_one_line_and_loses_nothing(row, finished, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # a default --out would land here
    w = World(tmp_path, finished)
    args = row.args(w)
    before = snapshot(w.keep) if w.keep else None
    code, _, err = cli(args, capsys)
    assert_one_line_error(code, err, *row.needles)
    if before is not None:
        assert snapshot(w.keep) == before, "files of the existing run changed"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "pwned").exists()


def test_missing_fid_weights_offline(finished, tmp_path, capsys, monkeypatch):
    for k, v in {"WAE_BENCH_OFFLINE": "1", "WAE_BENCH_CACHE": tmp_path / "cache",
                 "TORCH_HOME": tmp_path / "torch"}.items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.delenv("WAE_BENCH_FID_WEIGHTS", raising=False)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)
    code, _, err = cli(["eval", run, "--quiet"], capsys)
    assert_one_line_error(code, err, "FID Inception weights not found (offline)", "wae-bench fid-weights",
                          "--fid-weights")
    assert snapshot(run) == before


def test_disk_full_while_writing_a_checkpoint(tmp_path, capsys, monkeypatch):
    """ENOSPC (simulated) when checkpoint 4 is written: one line, the run's
    checkpoint 2 intact and loadable, no temp file left, and a resume (disk
    freed) finishes the run."""
    import errno
    import os

    real = atomic._open_temp

    class Full(io.FileIO):
        def write(self, b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def open_temp(path):
        f, tmp = real(path)
        if path.name != "step-00000004.pt":
            return f, tmp
        f.close()
        return Full(tmp, "wb"), tmp

    monkeypatch.setattr(atomic, "_open_temp", open_temp)
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli([*RUN, "--out", out], capsys)
    assert_one_line_error(code, err, "could not write", "step-00000004.pt", "No space left on device",
                          "previous version of the file is intact")
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step-00000002.pt"]
    assert checkpoint.load(out / "checkpoints" / "step-00000002.pt")["t"] == 2
    assert not list(out.rglob(".*.tmp"))
    monkeypatch.undo()
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert checkpoint.load(checkpoint.checkpoints(out)[-1])["finished"]


def test_eval_that_cannot_write_its_results_gives_advice_eval_can_follow(finished, tmp_path, capsys, monkeypatch):
    """No "--out" (eval has none): the fix is the disk's; results.json is as it was."""
    import errno
    import os

    real = atomic._open_temp

    def open_temp(path):
        if path.name == "results.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path)

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    monkeypatch.setattr(atomic, "_open_temp", open_temp)
    code, _, err = cli(["eval", run, "--features", "standin", "--fid-samples", "8", "--quiet"], capsys)
    line = assert_one_line_error(code, err, "could not write", "results.json", "No space left on device",
                                 "free disk space")
    assert "--out" not in line and not (run / "results.json").exists()


def test_the_memory_estimate_counts_the_nets_and_the_queue():
    """The up-front estimate (wae_bench.run.memory) of an a1 MoCA run: 30.4M
    parameters × 4 floats (weight, gradient, Adam's two moments) and the K×d queue."""
    from wae_bench.config import TrainConfig, from_dict
    from wae_bench.run import memory
    from wae_bench.run.build import resolve

    plan = resolve(from_dict(TrainConfig, {"dataset": "cifar10", "arch": "a1"}))
    parts = {k.split(" ")[1] if k.startswith("the ") else k.split("'")[0]: b for k, (b, _) in
             memory.estimate(plan, 3, 100).items()}
    assert parts["a1"] == pytest.approx(16 * 30.43e6, rel=0.01)
    assert parts["MoCA"] == 4 * 30000 * 128


def test_an_unwritable_new_out_leaves_nothing_behind(tmp_path, capsys):
    code, _, err = cli([*RUN, "--out", tmp_path / "new" / LONG], capsys)
    assert_one_line_error(code, err, "File name too long")
    assert not (tmp_path / "new").exists()


BROKEN = '''
    raise ImportError("this plugin needs libfoo 9")
'''


def test_broken_third_party_plugin_is_reported_not_fatal(tmp_path):
    """A real entry point (a dist-info on PYTHONPATH) whose module raises on
    import: `list` still works and shows it; `run --reg broken` is one line.
    Also shows, in real processes, that no traceback reaches stderr (unless
    --debug asks for it)."""
    root = install_plugin(tmp_path / "plugins", "wae_broken_plugin", BROKEN,
                          {"broken": "wae_broken_plugin:Broken"})
    procs = {"list": start(["list"], [root]),
             "run": start([*RUN, "--reg", "broken", "--out", tmp_path / "r"], [root]),
             "debug": start(["--debug", *RUN, "--reg", "mocaa", "--out", tmp_path / "d"])}
    res = {k: (p.wait(timeout=120), *p.communicate()) for k, p in procs.items()}
    code, out, err = res["list"]
    assert code == 0 and "Traceback" not in err, err
    assert "broken" in out and "failed to load" in out and "libfoo 9" in out and "moca" in out
    assert_one_line_error(res["run"][0], res["run"][2],
                          "regularizer 'broken' from wae_broken_plugin 0.0.1 failed to load", "ImportError",
                          "libfoo 9", "fix or uninstall")
    assert res["run"][0] == 2
    code, _, err = res["debug"]                                     # --debug: the traceback, on request
    assert code != 0 and "Traceback" in err and "WaeError: unknown regularizer" in err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(WaeError, match="unknown regularizer"):
        main(["--debug", *RUN, "--reg", "mocaa"])
    code, _, err = cli([*RUN, "--reg", "mocaa"], capsys)    # and the flag does not stick
    assert_one_line_error(code, err, "unknown regularizer")


def test_a_read_only_run_folder_is_copied_to_resume(finished, tmp_path, capsys, monkeypatch):
    """ops 7: a resume cannot choose another --out; it is told to copy the run (EROFS simulated: root ignores modes)."""
    import errno
    import os

    from wae_bench.run import directory

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = snapshot(run)

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(directory.tempfile, "mkstemp", read_only)
    code, _, err = cli(["run", "--resume", "--out", run, "--no-eval"], capsys)
    assert_one_line_error(code, err, "cannot write to output directory", "Read-only file system",
                          "copy the run to a writable place and resume it there")
    assert "choose another --out" not in err and snapshot(run) == before


def test_a_read_only_weights_cache_names_the_setting_that_moves_it(tmp_path, monkeypatch):
    """ops 7: provisioning the FID weights into a cache it cannot write names
    $WAE_BENCH_CACHE and --fid-weights (EROFS simulated)."""
    import errno
    import os

    from wae_bench.metrics import weights

    def read_only(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setenv("WAE_BENCH_CACHE", str(tmp_path / "rocache"))
    monkeypatch.setattr(atomic, "_open_temp", read_only)
    with pytest.raises(atomic.WriteFailed) as e:
        weights._install({}, {"source": "test"})
    text = str(e.value)
    assert "Read-only file system" in text and "set WAE_BENCH_CACHE to a writable folder" in text
    assert "--fid-weights PATH" in text and str(tmp_path / "rocache") in text and "\n" not in text


def test_a_key_of_another_commit_names_the_commit_that_wrote_the_run(finished, tmp_path, capsys, monkeypatch):
    """A run written by a newer checkout of the same version (a config key
    this code lacks): resume and eval name the run's commit, not only "edit
    the file back"."""
    from wae_bench.run.directory import SOURCE_ENV

    monkeypatch.setenv(SOURCE_ENV, "1234567")
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    rec = json.loads((run / "config.json").read_text())
    rec["config"]["foo"], rec["source"] = 1, "89abcde-dirty"
    (run / "config.json").write_text(json.dumps(rec))
    ckpt = max((run / "checkpoints").glob("step-*.pt"))   # (eval rebuilds from its config)
    state = torch.load(ckpt, weights_only=False)
    state["config"]["foo"] = 1
    torch.save(state, ckpt)
    for args in (["run", "--resume", "--out", run, "--no-eval"], ["eval", run, "--features", "standin"]):
        code, _, err = cli(args, capsys)
        assert_one_line_error(code, err, "unknown config key 'foo'", "written at commit 89abcde-dirty",
                              "this wae-bench is at 1234567", "git checkout 89abcde)", "or edit the file back")
