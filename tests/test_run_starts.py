"""What a run's ``config.json`` says about its starts and its plugin's
``aux_steps``: every start (a new run, each resume from a checkpoint) is
listed under ``starts`` with its step, time, CPU thread counts, source
revision and versions, carried over by each resume (a run started on 2
threads and resumed on 1 says both; its FID moves ~0.1 between them,
docs/evaluation.md), and a resume whose settings differ from the first
start's says so in one line; the effective ``aux_steps`` is recorded and a
resume with another is refused as a changed setting is; a ``config.json``
from before either was recorded resumes."""
from __future__ import annotations

import contextlib
import json
from typing import Iterator

import pytest
import torch

from tests.reliability_helpers import TINY, cli, final_state, one_thread
from wae_bench.registry import REGULARIZERS
from wae_bench.run import checkpoint, directory
from wae_bench.run.directory import RunDir

# 6 steps with a checkpoint every 2, all kept: deleting the last two leaves a
# run killed after the checkpoint of step 2.
BASE = ["run", *TINY, "--set", "max_steps=6", "--set", "ckpt_every=2", "--set", "keep_checkpoints=5",
        "--set", "expost=[]"]


def _record(out) -> dict:
    return json.loads((out / "config.json").read_text())


def _kill_after_step_2(out) -> None:
    """Leave the run as a kill after its checkpoint of step 2 would."""
    for p in checkpoint.checkpoints(out):
        if int(p.stem.split("-")[1]) > 2:
            p.unlink()


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block (2: the first part of a run on both cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_a_run_started_on_2_threads_and_resumed_on_1_records_both_starts_and_says_it_mixes(tmp_path, capsys):
    out = tmp_path / "run"
    with threads(2):
        code, _, err = cli([*BASE, "--out", out], capsys)
    assert code == 0, err
    first = _record(out)
    assert [s["step"] for s in first["starts"]] == [0] and first["starts"][0]["threads"]["intra_op"] == 2
    assert first["threads"] == first["starts"][0]["threads"]          # the top level: the latest start's
    _kill_after_step_2(out)
    with one_thread():
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    rec = _record(out)
    assert final_state(out)["t"] == 6
    assert [(s["step"], s["threads"]["intra_op"]) for s in rec["starts"]] == [(0, 2), (2, 1)]
    assert rec["starts"][0] == first["starts"][0]                      # carried over as it was
    assert rec["threads"]["intra_op"] == 1 and {"time", "source", "versions"} <= set(rec["starts"][1])
    assert rec["starts"][1]["versions"] == rec["versions"] and rec["starts"][1]["source"] == rec["source"]
    notes = [ln for ln in err.splitlines() if "mixes settings" in ln]
    assert notes == ['note: this run mixes settings that change its numbers: intra-op threads 2 -> 1 since its '
                     'first start (step 0); config.json lists each start under "starts"'], err
    assert "error" not in err
    # resumed again from step 2 (the start at 2 trained steps this resume trains again): it replaces that start
    _kill_after_step_2(out)
    with one_thread():
        assert cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)[0] == 0
    assert [(s["step"], s["threads"]["intra_op"]) for s in _record(out)["starts"]] == [(0, 2), (2, 1)]


def test_a_resume_on_the_same_settings_says_nothing_of_mixed_settings(tmp_path, capsys):
    out = tmp_path / "run"
    with one_thread():
        assert cli([*BASE, "--out", out], capsys)[0] == 0
        _kill_after_step_2(out)
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0 and "mixes settings" not in err, err
    assert [s["step"] for s in _record(out)["starts"]] == [0, 2]


def test_a_resume_with_no_checkpoint_starts_the_list_afresh(tmp_path, capsys):
    """Killed before its first checkpoint, a run resumes from step 0 on the
    data and settings of now: nothing of its earlier start is in its state."""
    out = tmp_path / "run"
    with one_thread():
        assert cli([*BASE, "--out", out], capsys)[0] == 0
        for p in checkpoint.checkpoints(out):
            p.unlink()
        assert cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)[0] == 0
    assert [s["step"] for s in _record(out)["starts"]] == [0]


@pytest.fixture
def wae_gan():
    REGULARIZERS.load_entry_points()
    if "wae-gan" not in REGULARIZERS:
        pytest.skip("needs the wae-gan plugin")
    return REGULARIZERS.get("wae-gan")


def test_the_effective_aux_steps_is_recorded_and_a_resume_with_another_is_refused(tmp_path, capsys, monkeypatch,
                                                                                   wae_gan):
    """A plugin whose default aux_steps changed (WAE-GAN's 1 -> 2) would
    resume an old run with another count: refused in one line naming it,
    as a changed setting is, and a stale cell for a bench; --force goes on
    and records the new count."""
    out = tmp_path / "run"
    with one_thread():
        assert cli([*BASE, "--reg", "wae-gan", "--set", "reg.d_hidden=16", "--out", out], capsys)[0] == 0
        assert cli([*BASE, "--set", "max_steps=2", "--out", tmp_path / "moca"], capsys)[0] == 0
        assert _record(out)["aux_steps"] == 1 and _record(tmp_path / "moca")["aux_steps"] == 1   # (no aux optimiser)
        _kill_after_step_2(out)
        files = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        monkeypatch.setattr(wae_gan, "aux_steps", 2)
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert ("error: --resume with a different config (aux_steps changed) would not reproduce the run; drop "
                "those options, or pass --force to resume anyway") in err
        assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
        assert directory.stale(RunDir(out), RunDir(out).saved_config()) == ["aux_steps 1 -> 2"]
        # a property reading the plugin's Config gives it the same way
        monkeypatch.setattr(wae_gan, "aux_steps", property(lambda self: self.cfg.d_layers))
        layers = RunDir(out).saved_config()["reg"]["d_layers"]
        want = [] if layers == 1 else [f"aux_steps 1 -> {layers}"]
        assert directory.stale(RunDir(out), RunDir(out).saved_config()) == want
        monkeypatch.setattr(wae_gan, "aux_steps", 2)
        code, _, err = cli(["run", "--resume", "--force", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert _record(out)["aux_steps"] == 2 and final_state(out)["t"] == 6
    assert {int(s["step"]) for s in final_state(out)["aux_opt"]["state"].values()} == {2 + 2 * 4}


def test_an_aux_steps_set_on_the_instance_is_refused_in_one_line(tmp_path, capsys, monkeypatch, wae_gan):
    """Set in ``__init__`` instead of declared, the count a run compares on
    resume (the class's) is not the one it trains with: refused when the run is built."""
    real = wae_gan.__init__

    def init(self, cfg, setup):
        real(self, cfg, setup)
        self.aux_steps = 3
    monkeypatch.setattr(wae_gan, "__init__", init)
    with one_thread():
        code, _, err = cli([*BASE, "--reg", "wae-gan", "--out", tmp_path / "run"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert ("error: plugin 'wae-gan': aux_steps = 3 on the built plugin but 1 on its class, so a run cannot record "
            "it; declare aux_steps as a class attribute, or a property reading the plugin's Config") in err
    assert not (tmp_path / "run").exists()


def test_a_config_json_from_before_starts_and_aux_steps_were_recorded_resumes(tmp_path, capsys, monkeypatch,
                                                                               wae_gan):
    """No ``starts``, no ``aux_steps``, no ``plugin_sha256``: it resumes (even where the plugin's
    count is not 1 now: an unrecorded count is not a change); its top-level
    settings, those of its latest start, become a synthesised first start."""
    out = tmp_path / "run"
    with one_thread():
        assert cli([*BASE, "--reg", "wae-gan", "--set", "reg.d_hidden=16", "--out", out], capsys)[0] == 0
        rec = _record(out)
        del rec["starts"], rec["aux_steps"], rec["plugin_sha256"]
        rec["threads"] = {"intra_op": 7, "interop": rec["threads"]["interop"]}
        (out / "config.json").write_text(json.dumps(rec))
        _kill_after_step_2(out)
        monkeypatch.setattr(wae_gan, "aux_steps", 2)
        assert directory.stale(RunDir(out), RunDir(out).saved_config()) == []
        code, _, err = cli(["run", "--resume", "--out", out, "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    after = _record(out)
    assert after["aux_steps"] == 2
    old, new = after["starts"]
    assert old == {"step": None, "time": None, "threads": rec["threads"], "source": rec["source"],
                   "versions": rec["versions"], "world_size": rec["world_size"], "synthesised": True}
    assert new["step"] == 2 and new["threads"]["intra_op"] == 1
    assert ("intra-op threads 7 -> 1 since its first recorded start" in err and err.count("mixes settings") == 1), err


def test_starts_kept_by_a_resume_and_the_mixed_settings_line():
    starts = [{"step": 0, "threads": {"intra_op": 2, "interop": 2}, "source": "abc1234", "versions": {"torch": "2.1"}},
              {"step": 40, "threads": {"intra_op": 2, "interop": 2}, "source": "abc1234", "versions": {"torch": "2.1"}},
              {"step": 80, "threads": {"intra_op": 1, "interop": 2}, "source": None, "versions": {"torch": "2.2"}}]
    assert [s["step"] for s in directory.earlier_starts({"starts": starts}, 80)] == [0, 40]
    assert [s["step"] for s in directory.earlier_starts({"starts": starts}, 40)] == [0]
    assert directory.mixed_settings(starts[:2]) is None and directory.mixed_settings(starts[:1]) is None
    assert directory.mixed_settings(starts) == (
        'this run mixes settings that change its numbers: intra-op threads 2 -> 1, source abc1234 -> unknown, '
        'torch 2.1 -> 2.2 since its first start (step 0); config.json lists each start under "starts"')
    # a record from before starts were listed; one from before any of the settings were
    assert directory.recorded_starts({"threads": {"intra_op": 2}, "n_train": 5}) == [
        {"step": None, "time": None, "threads": {"intra_op": 2}, "synthesised": True}]
    assert directory.recorded_starts({"n_train": 5}) == []


def test_a_start_records_its_processes_and_a_resume_in_another_number_says_so(tmp_path, capsys):
    """A 2-process run resumed in 1 trains at half the global batch, twice
    the steps per epoch: the starts did not record process counts, so
    nothing said the run mixed them (multi-gpu.md)."""
    out = tmp_path / "run"
    with one_thread():
        assert cli([*BASE, "--out", out], capsys)[0] == 0
    rec = _record(out)
    assert [s["world_size"] for s in rec["starts"]] == [1] and rec["world_size"] == 1
    two = {**rec["starts"][0], "world_size": 2}
    assert directory.mixed_settings([two, rec["starts"][0]]) == (
        'this run mixes settings that change its numbers: processes 2 -> 1 since its first start (step 0); '
        'config.json lists each start under "starts"')
