"""``RUN_DIR/results.json``: a run's scores with their protocol, never losing
a score once computed.

A new evaluation is merged into the one already there (:func:`merge`): when
the two were computed the same way (:func:`basis` -- the same features,
weights, reference images, sample count, seed, checkpoint, device and
versions), the file keeps every column and metric of both under one
protocol (``eval --what samples`` then ``eval --what rec`` gives both
columns); otherwise the new evaluation replaces the old one at the top --
except that stand-in features never displace an Inception evaluation
(:func:`inception`): whatever the order they were computed in, the top
holds the real FID, and the stand-in scores go to the history.
Either way every score that is no longer at the top -- a whole evaluation of
another protocol, or a value computed again -- is kept in ``history``,
oldest first, with the protocol it was computed under; so are the
diagnostics an evaluation replaces (:func:`replaced_diagnostics`: the
earlier reconstruction error and spectrum summaries, whose
``latent_spectrum.json`` each evaluation rewrites).

The file names its format (``"format": "wae-bench-results/1"``, :data:`FORMAT`;
a results folder's ``spec.json`` names the same).  A file without one (written
before it was recorded) reads as this format; one of another version (a newer
wae-bench's) is refused in one line (:func:`check_format`), before it could be
merged into and rewritten.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from wae_bench import atomic, formats
from wae_bench.errors import WaeError

NAME = "results.json"
FORMAT = "wae-bench-results/1"
# Protocol entries that say what was scored, when and how long it took, not how: not part of the basis.
PER_EVALUATION = ("generated", "metrics", "seconds", "time", "kid", "precision_recall", "warning", "threads")
# Settings of one metric: the same in both evaluations wherever both have them.
METRIC_SETTINGS = ("kid", "precision_recall")
# Entries two evaluations must agree on wherever both record them: the metric settings, and ``threads``
# (the CPU thread counts, on which a CPU FID depends by ~0.1): a file from before they were recorded keeps
# its scores side by side, one scored with other counts goes to the history.
SAME_WHERE_BOTH = (*METRIC_SETTINGS, "threads")


def basis(protocol: dict[str, Any]) -> dict[str, Any]:
    """What makes two evaluations' scores comparable: the protocol without
    the columns and metrics asked for, the timing and the cache hit."""
    out = {k: v for k, v in protocol.items() if k not in PER_EVALUATION}
    if isinstance(out.get("reference"), dict):
        out["reference"] = {k: v for k, v in out["reference"].items() if k != "cached"}
    return out


def compatible(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two protocols' scores may stand side by side."""
    return basis(old) == basis(new) and all(old[k] == new[k] for k in SAME_WHERE_BOTH if k in old and k in new)


def inception(protocol: dict[str, Any]) -> bool:
    """Whether a protocol's features are the FID Inception network's (not a stand-in)."""
    return str(protocol.get("features", "")).startswith("inception")


BELOW_INCEPTION = "stand-in features never displace an Inception evaluation at the top"


def merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` (one evaluation) merged into ``old`` (the file as it was)."""
    if not old or not isinstance(old.get("scores"), dict) or not isinstance(old.get("protocol"), dict):
        return new
    history = list(old.get("history") or [])
    when = new["protocol"].get("time")
    if not compatible(old["protocol"], new["protocol"]) and inception(old["protocol"]) \
            and not inception(new["protocol"]):
        history.append({"scores": new["scores"], "protocol": new["protocol"],
                        "diagnostics": new.get("diagnostics"), "replaced": when, "kept_below": BELOW_INCEPTION})
        return {**old, "history": history}
    if not compatible(old["protocol"], new["protocol"]):
        history.append({"scores": old["scores"], "protocol": old["protocol"],
                        "diagnostics": old.get("diagnostics"), "replaced": when})
        return {**new, "history": history}
    scores = copy.deepcopy(old["scores"])
    redone: dict[str, dict] = {}
    for col, values in new["scores"].items():
        for metric, v in values.items():
            before = scores.setdefault(col, {}).get(metric)
            if before is not None and before != v:
                redone.setdefault(col, {})[metric] = before
            scores[col][metric] = v
    diagnostics = replaced_diagnostics(old.get("diagnostics"), new.get("diagnostics"))
    if redone or diagnostics:
        history.append({"scores": redone, "protocol": old["protocol"], "replaced": when,
                        **({"diagnostics": diagnostics} if diagnostics else {})})
    p, q = old["protocol"], new["protocol"]
    protocol = {**q, "generated": {**p.get("generated", {}), **q.get("generated", {})},
                "metrics": list(dict.fromkeys([*p.get("metrics", []), *q.get("metrics", [])]))}
    for k in SAME_WHERE_BOTH:
        if k in p and k not in q:
            protocol[k] = p[k]
    out = {**new, "scores": scores, "protocol": protocol}
    return {**out, "history": history} if history else out


def replaced_diagnostics(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """The entries of ``old`` (the top's ``diagnostics``) that ``new`` (an
    evaluation of the same protocol) changes or drops: the earlier values a
    merge keeps in the history beside the scores computed again (the
    reconstruction error, the summaries of ``latent_spectrum.json``, which
    each evaluation rewrites)."""
    old, new = old or {}, new or {}
    return {k: v for k, v in old.items() if new.get(k) != v}


def differences(old: dict[str, Any], new: dict[str, Any], most: int = 3) -> str:
    """What makes two protocols incompatible (:func:`compatible`), for a
    reader: ``fid_samples 500 → 200; reference.split test → val``, the first
    ``most`` entries (and how many more)."""
    a, b = basis(old), basis(new)
    a.update({k: old[k] for k in SAME_WHERE_BOTH if k in old and k in new})
    b.update({k: new[k] for k in SAME_WHERE_BOTH if k in old and k in new})
    out = []
    for k in dict.fromkeys([*a, *b]):
        x, y = a.get(k), b.get(k)
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            out += [f"{k}.{s} {_short(x.get(s))} → {_short(y.get(s))}" for s in dict.fromkeys([*x, *y])
                    if x.get(s) != y.get(s)]
        else:
            out.append(f"{k} {_short(x)} → {_short(y)}")
    more = f"; and {len(out) - most} more" if len(out) > most else ""
    return "; ".join(out[:most]) + more


def _short(v: Any) -> str:
    t = "none" if v is None else str(v)
    return t if len(t) <= 40 else t[:37] + "..."


def moved(before: dict[str, Any] | None, after: dict[str, Any]) -> str | None:
    """One line on the scores a write (``before`` → ``after``, :func:`merge`)
    moved from the top of the file to its ``history``, and why: a whole
    earlier evaluation computed otherwise, or values computed again; None
    when nothing moved or only stand-in scores went below an Inception
    evaluation (which :data:`wae_bench.evaluate.KEPT_BELOW` says)."""
    entries = (after.get("history") or [])[len((before or {}).get("history") or []):]
    parts = []
    for e in entries:
        if "kept_below" in e:
            continue
        if not compatible(e["protocol"], after["protocol"]):   # (a whole evaluation, with its diagnostics)
            parts.append(f"the earlier evaluation ({', '.join(e['scores'])}) was computed otherwise "
                         f"({differences(e['protocol'], after['protocol'])}) and moved to its history; the top "
                         f"now holds this evaluation's {', '.join(after['scores'])} only")
        else:
            now, gen = after["scores"], (after["protocol"].get("generated") or {})
            why = [f"{col}.{k} {_short(g.get(k))} → {_short(gen.get(col, {}).get(k))}"
                   for col, g in (e["protocol"].get("generated") or {}).items() if col in e["scores"]
                   for k in g if g.get(k) != gen.get(col, {}).get(k)]
            again = [f"{col} {metric} {_num(v)} → {_num(now[col][metric])}"
                     for col, values in e["scores"].items() for metric, v in values.items()]
            diag, now_diag = e.get("diagnostics") or {}, after.get("diagnostics") or {}
            shown = [f"{k} {_num(v)} → {_num(now_diag[k])}" for k, v in diag.items() if k in now_diag]
            if len(shown) > 3:
                shown = shown[:3] + [f"and {len(shown) - 3} more"]
            dropped = [f"{k} {_num(v)}" for k, v in diag.items() if k not in now_diag]
            again += [f"diagnostics {', '.join(shown)}"] if shown else []
            again += [f"not computed this time: {', '.join(dropped)}"] if dropped else []
            parts.append("computed again: " + ", ".join(again)
                         + (f" ({'; '.join(why)})" if why else "") + "; the earlier values are kept in its history"
                         + (" (latent_spectrum.json holds this evaluation's spectrum)"
                            if any(k.startswith("spectrum") for k in diag) else ""))
    return ("results.json: " + "; ".join(parts)) if parts else None


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def check_format(result: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``result`` (the content of ``path``), unless it names another version
    of :data:`FORMAT` (:class:`~wae_bench.formats.OtherVersion`); a missing
    ``format`` is this one's."""
    formats.check(result.get("format"), FORMAT, f"results file {str(path)!r}",
                  formats.written_by(result.get("protocol")))
    return result


def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``results.json``; None if there is none.  An unreadable one,
    or one of another format version, is refused, naming the fix."""
    p = Path(run_dir) / NAME
    if not p.is_file():
        return None
    try:
        r = json.loads(p.read_text())
        if not isinstance(r, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise WaeError(f"{str(p)!r} is unreadable ({e}); move it aside (its scores are lost otherwise), then "
                       f"score the run again") from None
    return check_format(r, p)


def load(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``results.json`` as :func:`read` gives it, for a reader
    (:func:`wae_bench.evaluate.load_results`): a missing file, or scores
    without their protocol, refused in one line naming the fix."""
    r = read(run_dir)
    p = Path(run_dir) / NAME
    if r is None:
        raise WaeError(f"{str(p)!r} not found; score the run with `wae-bench eval {run_dir}` (or evaluate_run)")
    if not isinstance(r.get("protocol"), dict) or not r["protocol"] or not isinstance(r.get("scores"), dict):
        raise WaeError(f"{str(p)!r} has scores without their protocol; re-run `wae-bench eval {run_dir}`")
    return r


def write(run_dir: str | Path, result: dict[str, Any]) -> dict[str, Any]:
    """Merge one evaluation into the run's ``results.json`` (atomically,
    naming :data:`FORMAT`); returns the file's content."""
    merged = {"format": FORMAT, **{k: v for k, v in merge(read(run_dir), result).items() if k != "format"}}
    atomic.write_json(Path(run_dir) / NAME, merged)
    return merged
