"""A run's TensorBoard log (``log = "tensorboard"``, ``--log tensorboard``),
``RUN_DIR/tensorboard/``, beside ``metrics.jsonl``, which is always written:

- every log step: the scalars of its ``metrics.jsonl`` line (``train/loss``,
  ``train/rec``, ``train/reg``, the plugin's terms ``train/moca/pos``, ...,
  ``train/lr``, ``train/img_per_s``, ``train/epoch``; not its wall-clock ``time``,
  which TensorBoard records with every event);
- every checkpoint: the picture grids (``samples``, ``reconstructions``,
  ``interpolations``; :func:`wae_bench.pictures.labelled_grids`);
- when the run is scored (:func:`wae_bench.evaluate.evaluate_run`): the
  resolved config as hparams, with the final scores as their metrics
  (``score/samples/fid``, ...), also as scalars at the run's step; each
  scoring is a session of its own, so a run scored again has a second point
  at that step.

The files are TensorBoard's own event files, written by
``torch.utils.tensorboard.SummaryWriter``; the package comes with the
optional extra ``wae-bench[tensorboard]``.  A resumed run purges the events
after its checkpoint (``purge_step``), as its ``metrics.jsonl`` drops the
lines after it.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from torch import Tensor

from wae_bench.errors import WaeError

SUBDIR = "tensorboard"


def check_installed() -> None:
    """A one-line error, before anything runs, if tensorboard is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise WaeError("--log tensorboard needs the tensorboard package; pip install 'wae-bench[tensorboard]' "
                       "(or tensorboard), or drop --log tensorboard (metrics.jsonl is written either way)")


def _writer(run_dir: Path, purge_step: int | None = None):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(Path(run_dir) / SUBDIR), purge_step=purge_step)


def _numbers(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TrainingLog:
    """The events of training: scalars at log steps, grids at checkpoints."""

    def __init__(self, run_dir: Path, start: int = 0):
        """``start``: the step resumed from; what was logged after it is purged."""
        self.writer = _writer(run_dir, purge_step=start + 1 if start else None)

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        """Written through to disk, as ``metrics.jsonl`` is: a run that stops or
        fails keeps every event it logged."""
        for k, v in _numbers(metrics).items():
            self.writer.add_scalar(f"train/{k}", v, step)
        self.writer.flush()

    def grids(self, step: int, images: dict[str, Tensor]) -> None:
        """uint8 C×H×W grids, written through to disk."""
        for name, image in images.items():
            self.writer.add_image(name, image, step, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def hparam_values(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as TensorBoard hparams: dotted keys (``reg.K``), values
    numbers, booleans or text (lists as JSON, ``None`` as ``"none"``)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(hparam_values(v, f"{prefix}{k}."))
        elif isinstance(v, (bool, int, float, str)):
            out[prefix + k] = v
        else:
            out[prefix + k] = "none" if v is None else json.dumps(v)
    return out


def score_metrics(scores: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{"samples": {"fid": 12.3}}`` -> ``{"score/samples/fid": 12.3}``."""
    return {f"score/{col}/{k}": v for col, s in scores.items() for k, v in _numbers(s).items()}


def write_hparams(run_dir: Path, config: dict[str, Any], scores: dict[str, dict[str, Any]], step: int) -> None:
    """The resolved config as hparams and the final scores as their metrics,
    in the run's own event folder (one TensorBoard session per scoring)."""
    from torch.utils.tensorboard.summary import hparams

    metrics = score_metrics(scores)
    w = _writer(run_dir)
    try:
        for summary in hparams(hparam_values(config), metrics):
            w.file_writer.add_summary(summary)
        for k, v in metrics.items():
            w.add_scalar(k, v, step)
    finally:
        w.close()
