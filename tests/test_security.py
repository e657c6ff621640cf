"""Security: checkpoints and cached files are loaded without
executing pickled code; a file that needs it is refused in one line unless
``--trust-checkpoint``; image archives are read in place, never extracted,
so member names like ``../x.png`` cannot write anywhere.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.reliability_helpers import TINY, assert_one_line_error, cli, one_thread
from wae_bench.run import checkpoint
from wae_bench.data.files import read_images

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def plant_evil_checkpoint(run: Path, marker: Path) -> Path:
    """Make the run's newest checkpoint a real one plus a code-running object."""
    newest = checkpoint.checkpoints(run)[-1]
    state = checkpoint.load(newest)
    state["payload"] = _Payload(marker)
    with open(newest, "wb") as f:
        torch.save(state, f)
    return newest


@pytest.fixture
def run_dir(tmp_path, capsys) -> Path:
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", *TINY, "--set", "max_steps=4", "--set", "ckpt_every=2", "--set", "expost=[]",
                            "--out", out], capsys)
    assert code == 0, err
    return out


def test_checkpoint_that_runs_code_is_refused_unless_trusted(run_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"
    plant_evil_checkpoint(run_dir, marker)
    code, _, err = cli(["run", "--resume", "--out", run_dir, "--quiet", "--no-eval"], capsys)
    assert_one_line_error(code, err, "step-00000004.pt", "would run pickled code", "posix.mkdir",
                          "--trust-checkpoint")
    assert not marker.exists()
    # refused, not silently skipped for the older (safe) checkpoint 2
    with pytest.raises(checkpoint.UnsafeFile):
        checkpoint.latest(run_dir)
    # the explicit trust flag loads it (and the payload runs: that is what trust means)
    code, _, err = cli(["run", "--resume", "--out", run_dir, "--quiet", "--no-eval", "--trust-checkpoint"], capsys)
    assert code == 0, err
    assert marker.is_dir()


def test_model_loading_for_evaluation_refuses_it_too(run_dir, tmp_path):
    from wae_bench.run.reload import load_model

    plant_evil_checkpoint(run_dir, tmp_path / "pwned")
    with pytest.raises(checkpoint.UnsafeFile, match="pass trust=True"):       # (load_model's argument)
        load_model(run_dir, device="cpu")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", ["torch-zip", "plain-pickle"])
def test_any_pickle_with_code_is_refused(kind, tmp_path):
    p, marker = tmp_path / "stats.pt", tmp_path / "pwned"
    obj = {"mu": torch.zeros(3), "x": _Payload(marker)}
    if kind == "torch-zip":
        torch.save(obj, p)
    else:
        p.write_bytes(pickle.dumps(obj))
    with pytest.raises(checkpoint.UnsafeFile) as e:
        checkpoint.load_torch(p, what="cached statistics")
    assert "cached statistics" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_plain_tensors_and_values_load_without_trust(tmp_path):
    state = {"t": 3, "rng": {"python": [1, 2], "gauss": None}, "x": torch.arange(3), "s": "a", "f": 0.5}
    checkpoint.save(tmp_path / "step-00000003.pt", state)
    loaded = checkpoint.load(tmp_path / "step-00000003.pt")
    assert torch.equal(loaded.pop("x"), state["x"]) and {k: loaded[k] for k in state if k != "x"} == \
        {k: v for k, v in state.items() if k != "x"}


def test_no_module_unpickles_unsafely():
    """Every ``torch.load`` in the package passes ``weights_only=True`` (or the
    caller's explicit trust flag, in :func:`checkpoint.load_torch`); nothing
    uses ``pickle.load``/``np.load(allow_pickle=True)``/``yaml.load``."""
    offenders = []
    for path in [*(REPO / "wae_bench").rglob("*.py"), *(REPO / "regularizers").rglob("*.py")]:
        src = path.read_text()
        for m in re.finditer(r"torch\.load\(", src):
            call = src[m.start(): src.find("\n", src.find(")", m.start()))]
            if not re.search(r"weights_only\s*=\s*(True|not trust)", call):
                offenders.append(f"{path.relative_to(REPO)}: {call.strip()[:80]}")
        for bad in (r"pickle\.loads?\(", r"allow_pickle\s*=\s*True", r"yaml\.load\(", r"\bdill\b"):
            offenders += [f"{path.relative_to(REPO)}: {bad}" for _ in re.finditer(bad, src)]
    assert offenders == []


def _png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (color, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


EVIL_NAMES = ["../escape.png", "../../../../tmp/escape-abs.png", "/etc/escape.png", "a/../../up.png",
              "ok/1.png", "x\\..\\..\\win.png"]


def _evil_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(EVIL_NAMES):
            zf.writestr(zipfile.ZipInfo(name), _png(10 * (i + 1)))     # ZipInfo keeps the name verbatim
    return path


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def test_zip_member_names_never_become_paths(tmp_path, monkeypatch):
    data = tmp_path / "data" / "deep"
    data.mkdir(parents=True)
    monkeypatch.chdir(data)
    z = _evil_zip(data / "train.zip")
    assert [i.filename for i in zipfile.ZipFile(z).infolist()] == EVIL_NAMES     # the names really are hostile
    before = _tree(tmp_path)
    x = read_images(z, 3)
    assert _tree(tmp_path) == before and not Path("/tmp/escape-abs.png").exists()
    # read as image data, in name order, each member exactly once
    reds = sorted(10 * (i + 1) for i in range(len(EVIL_NAMES)))
    assert x.shape == (len(EVIL_NAMES), 3, 8, 8) and sorted(x[:, 0, 0, 0].tolist()) == reds


def test_training_on_a_hostile_zip_writes_only_the_run(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.chdir(data)
    _evil_zip(data / "train.zip"), _evil_zip(data / "test.zip")
    before = _tree(tmp_path)
    out = tmp_path / "run"
    with one_thread():
        code, _, err = cli(["run", "--dataset", "folder", "--data-root", data, "--arch", "tiny", "--batch-size", "2",
                            "--set", "image_size=8", "--set", "latent_dim=4", "--set", "max_steps=2",
                            "--set", "reg.K=4", "--set", "expost=[]", "--quiet", "--no-eval", "--out", out], capsys)
    assert code == 0, err
    assert {p for p in _tree(tmp_path) - before if not p.startswith(str(out))} == set()
    assert np.isfinite(checkpoint.load(checkpoint.checkpoints(out)[-1])["ae"]["encoder.0.weight"].numpy()).all()


def _flip_bytes(path: Path, every: int = 4096) -> None:
    """Bit rot in the pickle inside the torch zip: one byte in every ``every``
    of it flipped, from its first (so the unpickler meets it, not a tensor's
    bytes or the zip's headers, which torch reports as a bad archive)."""
    import zipfile

    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        member = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    name_len, extra_len = int.from_bytes(raw[member.header_offset + 26:member.header_offset + 28], "little"), \
        int.from_bytes(raw[member.header_offset + 28:member.header_offset + 30], "little")
    start = member.header_offset + 30 + name_len + extra_len
    for k in range(start, start + member.compress_size, every):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_corrupt_checkpoint_is_unreadable_not_unsafe_and_is_skipped_with_a_warning(run_dir, capsys):
    """ops 2, 3: a byte-flipped checkpoint ("Unsupported operand ...") is not
    a file that would run code: resume and eval fall back to the checkpoint
    before it, each with one warning line naming the skipped file and the step used."""
    newest = run_dir / "checkpoints" / "step-00000004.pt"
    _flip_bytes(newest)
    with pytest.raises(checkpoint.Unreadable, match="truncated or corrupt: UnpicklingError: Unsupported operand"):
        checkpoint.load(newest)
    skipped = []
    path, state = checkpoint.latest(run_dir, on_skip=lambda p, why: skipped.append(p))
    assert state["t"] == 2 and skipped == [newest]
    code, _, err = cli(["eval", run_dir, "--features", "standin", "--fid-samples", "8", "--quiet"], capsys)
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if "skipped" in ln]
    assert warned == [f"warning: skipped unreadable checkpoint {newest} (truncated or corrupt: UnpicklingError: "
                      f"Unsupported operand 127); scoring step 2 ({run_dir / 'checkpoints' / 'step-00000002.pt'})"]
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", run_dir, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if "skipped" in ln]
    assert len(warned) == 1 and "; resuming from step 2 (" in warned[0] and "delete it" not in warned[0], err
