"""The fingerprint of the data a run trains on: recorded in ``config.json``
when the run starts (``data_fingerprint``) and compared when it resumes, so
that a resume after the data changed (images added, removed or replaced) is
refused instead of training on other images, with other step counts and
another hold-out (docs/resume.md: the folder may move; its contents may not).

The fingerprint is the training split's size (``holdout_of``: before the
hold-out is taken out), the number of images trained on and of test images,
and a hash of the bytes of the images trained on
(:func:`wae_bench.metrics.reference.content_hash`, the hash that keys the
reference statistics).  A run made before the fingerprint existed has only
its counts recorded: those are compared, the hash is not.
"""
from __future__ import annotations

from torch import Tensor

from wae_bench import worded
from wae_bench.errors import WaeError
from wae_bench.metrics.reference import content_hash

KEY = "data_fingerprint"
#: What ``config.json`` records about the data when a run starts, kept as it
#: is when the run resumes (:meth:`~wae_bench.run.directory.RunDir.write_config`).
RECORDED_AT_START = ("n_train", "n_test", "holdout", KEY)


def of(train: Tensor, test: Tensor, holdout: int) -> dict:
    """The fingerprint of a run's data: ``train`` the images trained on (the
    hold-out taken out), ``test`` the test split, ``holdout`` its size."""
    return {"holdout_of": len(train) + holdout, "n_train": len(train), "n_test": len(test),
            "train_content": content_hash(train)}


def recorded(info: dict) -> dict | None:
    """The fingerprint in a run's ``config.json`` (``info``: the record less
    its config); for a run from before fingerprints, its counts alone; None
    when the record has no counts."""
    if isinstance(info.get(KEY), dict):
        return info[KEY]
    if not isinstance(info.get("n_train"), int) or not isinstance(info.get("n_test"), int):
        return None
    held = info.get("holdout") if isinstance(info.get("holdout"), dict) else {}
    return {"holdout_of": held.get("of", info["n_train"]), "n_train": info["n_train"], "n_test": info["n_test"]}


def differences(before: dict, now: dict) -> list[str]:
    """How the data ``now`` differs from the data ``before`` (fingerprints), in
    words: ``["train split 40 -> 70 images"]``; [] when it is the same."""
    out = []
    if before.get("holdout_of") != now["holdout_of"]:
        out.append(f"train split {before.get('holdout_of')} -> {now['holdout_of']} images")
    elif before.get("n_train") != now["n_train"]:
        out.append(f"{before.get('n_train')} -> {now['n_train']} images trained on")
    elif "train_content" in before and before["train_content"] != now["train_content"]:
        out.append(f"train split: the same {now['holdout_of']} images in number, other contents")
    if before.get("n_test") != now["n_test"]:
        out.append(f"test split {before.get('n_test')} -> {now['n_test']} images")
    return out


def check(info: dict, now: dict, where: str, force: bool) -> str | None:
    """Refuse to resume the run whose ``config.json`` is ``info`` on data
    (``now``, its fingerprint) that differs from the data it started on
    (``where``: which data, "the data in 'dcopy'"); with ``force``, return
    the warning to print instead.  None when the data is the same (or the
    record has nothing to compare)."""
    before = recorded(info)
    changed = differences(before, now) if before else []
    if not changed:
        return None
    what = f"{where} changed since this run started ({'; '.join(changed)})"
    if force:
        return (f"{what}; resuming anyway ({worded.flag('--force')}): the result is not that of one run on one "
                f"dataset, and config.json keeps the data it started on")
    again = worded.start_again("start a new --out (--force resumes anyway)",
                               "start a new out (force=True resumes anyway)")
    raise WaeError(f"{what}; restore it (the folder may move, its contents may not), or {again}")
