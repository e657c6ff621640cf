"""What the commands say in the cases a newcomer found silent or wrong
(docs/cli.md, docs/resume.md): where a resume starts from, plugin errors in
`wae-bench list` printed literally, why a default --out is refused, wide
output without a terminal, the run header's precision, the exit statuses
and wording of a deliberate stop, and progress lines before slow phases."""
from __future__ import annotations

import shutil

from tests.helpers import run_cli

TINY = ["--no-eval", "--set", "max_steps=4", "--set", "latent_dim=8", "--set", "expost=[]"]


def test_a_resume_says_which_checkpoint_it_starts_from(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run_cli(["run", "--out", str(out), "--quiet", "--set", "ckpt_every=2", *TINY], capsys)
    assert code == 0, err
    assert "resuming" not in stdout and "no checkpoint" not in stdout          # a new run says nothing of it
    code, stdout, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert f"resuming from step 4 (checkpoint {out / 'checkpoints' / 'step-00000004.pt'})" in stdout
    shutil.rmtree(out / "checkpoints")                                          # as if killed before the first
    code, stdout, err = run_cli(["run", "--resume", "--out", str(out), "--quiet", "--no-eval"], capsys)
    assert code == 0, err
    assert f"no checkpoint in {out}: starting from step 0" in stdout
