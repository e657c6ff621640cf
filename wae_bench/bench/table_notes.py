"""The notes stated above the results table: the spec's description as run
(amended for ``--set`` overrides), the budget every cell of a dataset was
given, each regularizer's settings and where they came from, and the
evaluation protocol asked for and as the scored cells recorded it
(:func:`protocol_basis`: the parts that decide whether two scores compare;
:func:`~wae_bench.bench.folder.evaluation`: the recorded evaluation the spec asks for);
and stated under it, which code each regularizer that is not built in is
(:func:`regularizer_code`), with the rows that pool cells trained by
different plugin code marked :data:`MIXED_CODE` (:func:`mixed_code`)."""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

from wae_bench import results
from wae_bench.bench import grid, tune
from wae_bench.bench.aggregate import OTHER_PROTOCOL
from wae_bench.bench.compare import assignment
from wae_bench.bench.folder import ResultsDir, evaluation
from wae_bench.bench.grid import Cell, axis_label, display_value
from wae_bench.bench.spec import WHAT_LABELS, EvalSettings, Spec, flat_keys
from wae_bench.config import to_dict
from wae_bench.errors import WaeError
from wae_bench.metrics.fid import few_images_note
from wae_bench.registry import DATASETS, OWN, REGULARIZERS
from wae_bench.run.directory import SHOWN_CHARS, mixed_settings, recorded_starts

BUDGET_KEYS = ("arch", "epochs", "max_steps", "batch_size", "lr", "lr_halve_every", "latent_dim", "image_size",
               "precision")


def metric_label(spec: Spec, metric: str) -> str:
    """``FID``, or a plain warning when the features are a stand-in."""
    if spec.eval.features != "inception":
        return f"{metric} on {spec.eval.features} features (NOT {metric.upper()})"
    return metric.upper()


def score_name(spec: Spec, metric: str) -> str:
    """A score's name in CSV headers: ``fid``, or ``standin-fid`` where the
    features are a stand-in (NOT FID), so a CSV says what it holds."""
    return named_score(metric, spec.eval.features == "inception")


def standin_warning(features: str, metric: str = "fid") -> str:
    """What scores on the stand-in ``features`` are (the Evaluation block's
    line, the report's banner): a smoke test that the cells trained and
    scored, not a ranking of sample quality, and never comparable to
    published numbers."""
    return (f"NOT {metric.upper()}: eval.features = {features!r} is a stand-in feature extractor, a smoke test: "
            f"these numbers do not rank sample quality (not even between the rows of this table) and never compare "
            f"with published {metric.upper()}s")


def named_score(metric: str, real: bool) -> str:
    """``metric`` as a CSV names it: itself when computed on the Inception
    features, else ``standin-`` before it."""
    return metric if real else f"standin-{metric}"


def overrides(folder: ResultsDir) -> list[str]:
    """The settings the folder's spec ran with other than its file says:
    the ``--set`` overrides spec.json records (``["train.epochs=300"]``);
    for a folder recorded before it kept them, the keys where the resolved
    spec it records differs from its TOML text."""
    rec = folder.record() or {}
    if isinstance(rec.get("overrides"), list):
        return [str(o) for o in rec["overrides"]]
    try:
        written = tomllib.loads(rec.get("toml") or "")
    except tomllib.TOMLDecodeError:
        return []
    if not written:
        return []
    a, b = flat_keys({k: v for k, v in written.items() if k != "cited"}), \
        flat_keys({k: v for k, v in (rec.get("spec") or {}).items() if k != "cited"})
    return [_assign(k, b[k]) for k in b if a.get(k) != b[k]]


def _assign(key: str, value: Any) -> str:
    try:
        return assignment(key, value)
    except TypeError:     # (no TOML form: a table or none)
        return f"{key}={json.dumps(value)}"


def description(folder: ResultsDir, spec: Spec) -> str:
    """The spec's description, with the settings it ran with other than its
    file says (:func:`overrides`) appended, so the text does not contradict
    the budget (as :func:`wae_bench.bench.compare.description` names a
    head-to-head's overrides)."""
    text = (spec.bench.description or "").strip()
    changed = overrides(folder)
    if not changed:
        return text
    return (text + " " if text else "") + (f"As run, with --set: {', '.join(changed)} (the spec file "
                                           f"says otherwise; the budget below is what ran).")


def resolved(cell: Cell) -> dict[str, Any]:
    """The cell's TrainConfig as it resolves now, as a dict."""
    try:
        return to_dict(grid.resolve(cell))
    except WaeError:  # a plugin no longer installed: show the spec's own values
        return dict(cell.overrides)


def one_or_varies(xs: list[Any], mark: bool = True) -> str:
    """``8``, or ``8 / 16 (varies)``: the distinct values of ``xs`` (``mark``
    false: without "(varies)", for values that differ by definition)."""
    distinct = list(dict.fromkeys(display_value(x) if x is not None else "none" for x in xs))
    return distinct[0] if len(distinct) == 1 else " / ".join(distinct) + (" (varies)" if mark else "")


def _halving(every: str) -> str:
    """``halved every 60 epochs``; ``lr_halve_every = 0`` never halves it: ``constant``."""
    return "constant" if every == "0" else f"halved every {every} epoch{'' if every == '1' else 's'}"


def budget(folder: ResultsDir, spec: Spec, cells: list[Cell]) -> list[str]:
    """One line per dataset: what every cell of it was given."""
    lines = []
    for ds in spec.bench.datasets:
        mine = [c for c in cells if c.dataset == ds]
        cfgs = [resolved(c) for c in mine]
        runs = [r for r in (folder.config(c.id) for c in mine) if r]
        v = {k: one_or_varies([c.get(k) for c in cfgs]) for k in BUDGET_KEYS}
        text = (f"{ds}: {len(mine)} cell{'s' if len(mine) != 1 else ''}, arch {v['arch']}, "
                f"{v['epochs']} epoch{'' if v['epochs'] == '1' else 's'}"
                + (f" capped at {v['max_steps']} step{'' if v['max_steps'] == '1' else 's'}"
                   if v["max_steps"] not in ("0", "none") else "")
                + f", batch {v['batch_size']}, Adam lr {v['lr']} {_halving(v['lr_halve_every'])}, "
                  f"latent d {v['latent_dim']}, {v['image_size']}×{v['image_size']} images, {v['precision']}")
        if runs:
            r = {k: one_or_varies([run.get(k) for run in runs]) for k in ("total_steps", "data_variant", "n_train", "n_test")}
            text += (f"; steps per run {r['total_steps']}, data {r['data_variant']} "
                     f"({r['n_train']} train / {r['n_test']} test)")
        lines.append(text)
    return lines


NOT_CHOSEN = "not chosen yet"   # a tuned setting of a final cell whose tuning is not complete
NONE_SCORED = "none (every tuned value diverged)"   # ... whose tuning is complete and chose nothing


def _unchosen(tuning: tune.Tuning, cell: Cell) -> str:
    """What a final cell's tuned setting says before it has one:
    :data:`NOT_CHOSEN` while its group's tuning is not complete,
    :data:`NONE_SCORED` once it is and no value scored (it will never be
    chosen: the tuned column says ``every tuned λ diverged``)."""
    return NONE_SCORED if tuning.choice(cell).complete else NOT_CHOSEN


def _reg_of(tuning: tune.Tuning, cell: Cell) -> dict[str, Any]:
    """The regularizer settings a cell ran with (its config.json), else as it
    will run: as they resolve now, with a final cell's tuned values once its
    tuning has chosen them (:func:`_unchosen` until then, never the plugin
    default it will not use)."""
    cfg = (tuning.folder.config(cell.id) or {}).get("config")
    reg = cfg.get("reg") if isinstance(cfg, dict) else None
    if isinstance(reg, dict):
        return reg
    reg = dict(resolved(cell).get("reg") or {})
    if cell.role == "final":
        values = tuning.chosen(cell) or {}
        reg.update({k[4:]: values.get(k, _unchosen(tuning, cell)) for k in cell.tuned if k.startswith("reg.")})
    return reg


def _tuned_outside_reg(tuning: tune.Tuning, cell: Cell) -> dict[str, Any]:
    """A final cell's tuned values outside the reg table (``lr``): those it
    trained at, else its group's choice, else :func:`_unchosen`."""
    keys = [k for k in cell.tuned if not k.startswith("reg.")]
    values = (tune.trained_values(tuning.folder, cell) or tuning.chosen(cell) or {}) if keys else {}
    return {k: values.get(k) if k in values else _unchosen(tuning, cell) for k in keys}


def _origin(spec: Spec, cell: Cell, key: str) -> str:
    """Where a cell's setting ``reg.KEY`` came from."""
    if f"reg.{key}" in cell.tuned:
        return "tuned"
    if f"reg.{key}" in dict(cell.axes):
        return "grid"
    table = spec.reg.get(cell.regularizer, {})
    if key in spec.reg_settings(cell.regularizer) or key in table.get("dataset", {}).get(cell.dataset, {}) \
            or key in table.get("arch", {}).get(cell.arch, {}):
        return f"[reg.{cell.regularizer}]"
    return f"plugin default for {cell.dataset}/{cell.arch}"


def row_settings(tuning: tune.Tuning, cells: list[Cell]) -> dict[str, Any]:
    """The regularizer settings of a row's cells: each key's value, or the
    list of its distinct values where the cells differ (table.csv's ``settings``;
    a tuned value not chosen (yet) is null there, not :func:`_unchosen`'s text)."""
    regs = [{k: None if v in (NOT_CHOSEN, NONE_SCORED) else v for k, v in _reg_of(tuning, c).items()}
            for c in cells]
    out: dict[str, Any] = {}
    for k in dict.fromkeys(k for r in regs for k in r):
        vs = list(dict.fromkeys(json.dumps(r.get(k), sort_keys=True) for r in regs))
        out[k] = json.loads(vs[0]) if len(vs) == 1 else [json.loads(v) for v in vs]
    return out


def settings(tuning: tune.Tuning, cells: list[Cell]) -> list[str]:
    """One line per regularizer: its settings (``λ = 100``) as its cells ran
    with them, grouped by where they came from (the plugin's default for the
    dataset/arch, the spec's ``[reg.X]``, a grid axis, tuning -- every tuned
    axis, ``lr`` too; ``cells``: the table's), and how many of its cells are
    stale (:meth:`~wae_bench.bench.tune.Tuning.changes`), as their rows say."""
    spec = tuning.spec
    lines = []
    for reg in dict.fromkeys(c.regularizer for c in cells):
        mine = [c for c in cells if c.regularizer == reg]
        regs = [_reg_of(tuning, c) for c in mine]
        by_origin: dict[str, list[str]] = {}
        for k in dict.fromkeys(k for r in regs for k in r):
            origin = " / ".join(dict.fromkeys(_origin(spec, c, k) for c in mine))
            # (a grid axis's values differ by definition: "λ = 10 / 100", no "(varies)")
            values = one_or_varies([r.get(k) for r in regs], mark=origin != "grid")
            by_origin.setdefault(origin, []).append(f"{axis_label('reg.' + k)} = {values}")
        for k in dict.fromkeys(k for c in mine for k in c.tuned if not k.startswith("reg.")):   # (lr: not in reg)
            by_origin.setdefault("tuned", []).append(
                f"{axis_label(k)} = {one_or_varies([_tuned_outside_reg(tuning, c).get(k) for c in mine])}")
        text = "; ".join(f"{origin}: {', '.join(parts)}" for origin, parts in by_origin.items())
        stale = [d for c in mine for d in [tuning.changes(c)] if d]   # (as the rows mark them)
        n = f"{len(mine)} cell{'s' * (len(mine) != 1)}"
        lines.append(f"{reg}: {text or 'no settings'}" + (f" ({len(stale)} of {n} stale: {stale[0][0]})" if stale else ""))
    return lines


def _weights_source(w: dict[str, Any]) -> str:
    """Where the FID weights came from, without a local path (``file
    /tmp/x.pth``: a file given with --fid-weights; its sha256 names it)."""
    source = str(w.get("source", "?"))
    return "a --fid-weights file" if source.startswith("file ") else source


def protocol_basis(p: dict[str, Any], generated: bool = True) -> dict[str, Any]:
    """The parts of a recorded protocol that decide whether two scores
    compare: the implementation, features, weights (where from, their
    sha256), the number of generated images per column (``generated``),
    the reference images (split, number, data variant, size, and the hash of
    their content where recorded), the seed, the KID / precision-recall
    settings where recorded (:data:`wae_bench.results.METRIC_SETTINGS`), and
    TF32 where it applies.  Not its timings, paths, device names or versions
    (the code that scored, :func:`code_version`, is stated beside it and
    makes no protocol of its own).  The table's protocol lines
    (:func:`protocol`) and cells.json's protocol id
    (:func:`wae_bench.bench.export.protocol_id`) are both this: equal ids,
    one protocol line."""
    w, ref = p.get("weights") or {}, p.get("reference") or {}
    gen = p.get("generated") or {}
    tf32 = p.get("tf32") or {}
    return {"implementation": str(p.get("implementation", "?")), "features": p.get("features", "?"),
            "weights": {"source": _weights_source(w), "sha256": w.get("sha256")},
            **({"generated": {k: v.get("n", "?") for k, v in gen.items() if isinstance(v, dict)}} if generated else {}),
            "reference": {"split": ref.get("split", "?"), "n": ref.get("n", "?"),
                          "dataset_variant": ref.get("dataset_variant", p.get("dataset_variant", "?")),
                          "image_size": p.get("image_size", "?")},
            **({"reference_content": ref["content_sha256"]} if ref.get("content_sha256") else {}),
            "seed": p.get("seed", "?"),
            **{k: p[k] for k in results.METRIC_SETTINGS if p.get(k) is not None},   # KID subsets, PR's k
            **({"tf32": {"cuda_matmul": tf32.get("cuda_matmul"), "cudnn_conv": tf32.get("cudnn_conv")}}
               if tf32.get("applies") else {})}


def protocol_summary(p: dict[str, Any], generated: bool = True) -> str:
    """:func:`protocol_basis` in words (the weights' sha256 by its first 12 digits)."""
    return _summary(protocol_basis(p, generated))


def _summary(b: dict[str, Any]) -> str:
    w, ref = b["weights"], b["reference"]
    parts = [b["implementation"], f"features {b['features']}",
             f"weights {w['source']}" + (f" sha256 {str(w['sha256'])[:12]}" if w["sha256"] else ""),
             *(["generated " + ", ".join(f"{k} {n}" for k, n in b["generated"].items())] if "generated" in b else []),
             f"reference {ref['split']} split, {ref['n']} images of {ref['dataset_variant']} at {ref['image_size']}px",
             f"seed {b['seed']}"]
    if "tf32" in b:
        parts.append(f"TF32 matmul {b['tf32']['cuda_matmul']} / cuDNN {b['tf32']['cudnn_conv']}")
    return "; ".join(parts)


def code_version(p: dict[str, Any], source: str | None = None) -> str:
    """``wae-bench 0.1.0 (a4921ac), torch 2.14.1``: the code that scored
    under protocol ``p`` (its versions; ``source``: config.json's commit)."""
    v = p.get("versions") or {}
    if not (v or source):
        return ""
    return ("wae-bench" + (f" {v['wae_bench']}" if v.get("wae_bench") else "") + (f" ({source})" if source else "")
            + (f", torch {v['torch']}" if v.get("torch") else ""))


def protocol(folder: ResultsDir, spec: Spec, cells: list[Cell], generated: bool = True,
             other: list[str] = ()) -> list[str]:
    """The evaluation protocol asked for, and as the scored cells recorded it
    (each distinct one with its number of cells and the code that scored
    them, :func:`code_version`, which does not make a protocol of its own;
    the one each table entry reads: :func:`evaluation`); ``other``: the
    cells scored under another protocol than asked, named in the warning.  With Inception features and
    fewer images than feature dimensions, the few-images FID note."""
    e = spec.eval
    lines = [f"asked: {'/'.join(e.metrics)} of {', '.join(WHAT_LABELS[w] for w in e.what)}, "
             f"{e.fid_samples or 'the dataset’s number of'} generated images vs the {e.split} split, features {e.features}, seed {e.seed}"]
    if e.features != "inception":
        lines.append(standin_warning(e.features))
    seen: dict[str, list[str]] = {}           # protocol (its basis) -> its cells
    shown: dict[str, str] = {}                # protocol -> its words
    codes: dict[str, dict[str, int]] = {}     # protocol -> the code that scored its cells, with their number
    fewest: tuple[int, int] | None = None     # (n, feature dimensions) of the Inception FID from the fewest images
    mixed: dict[str, str] = {}                # cell -> how its starts differ (a resume across commits or threads)
    for c in cells:
        res = folder.results(c.id)
        if not res:
            continue
        how = mixed_settings(recorded_starts(folder.config(c.id) or {}))
        if how:
            mixed[c.id] = how
        for p in dict.fromkeys(json.dumps(evaluation(e, res, w, c.dataset)[0].get("protocol") or {}, sort_keys=True)
                               for w in e.what):
            p = json.loads(p)
            if not p:
                continue
            b = protocol_basis(p, generated)
            summary = json.dumps(b, sort_keys=True)
            shown.setdefault(summary, _summary(b))
            seen.setdefault(summary, []).append(c.id)
            code = code_version(p, (folder.config(c.id) or {}).get("source"))
            if code:
                codes.setdefault(summary, {})[code] = codes.get(summary, {}).get(code, 0) + 1
            n = _fewest_images(p)
            if n is not None and results.inception(p) and (fewest is None or n < fewest[0]):
                fewest = (n, int(p["feature_layer"]) if str(p.get("feature_layer", "")).isdigit() else 2048)
    for s, ids in seen.items():
        n, by = len(ids), codes.get(s, {})
        code = ", ".join(f"{v} ({k} cell{'s' if k > 1 else ''})" if len(by) > 1 else v for v, k in by.items())
        lines.append(f"recorded ({n} cell{'s' if n > 1 else ''}): {shown[s]}" + (f"; scored by {code}" if code else ""))
    if mixed:
        lines.append(mixed_starts_line(mixed))
    note = few_images_note(*fewest) if fewest else None      # (None where the images outnumber the dimensions)
    if note and "fid" in e.metrics:
        lines.append(f"note: {note}")
    if other:
        lines.append(other_protocol_line(other))
    if len(seen) > 1:
        most = max(seen.values(), key=len)
        named = "; ".join(f"recorded line {i}: {', '.join(ids)}" for i, ids in enumerate(seen.values(), 1)
                          if ids is not most)
        lines.append(f"WARNING: the cells were scored under different protocols (above; {named}); compare with care")
    return lines


def mixed_starts_line(mixed: dict[str, str], shown: int = 3) -> str:
    """The warning on the cells whose starts (a resume) trained with other
    settings than their first (:func:`~wae_bench.run.directory.mixed_settings`:
    the commit, the threads, the versions): the commit a "scored by" line
    names is the latest start's, not every step's."""
    n = len(mixed)
    named = "; ".join(f"{cid}: {how}" for cid, how in list(mixed.items())[:shown])
    return (f"WARNING: {n} cell{'s' if n > 1 else ''} trained across starts with different settings (the code "
            f"named above is the latest start's): {named}" + (f"; and {n - shown} more" if n > shown else ""))


def other_protocol_line(other: list[str], paper: bool = False) -> str:
    """The line naming the cells scored under another protocol than asked,
    with the fix (``paper``: without it, for a caption)."""
    n = len(other)
    fix = "" if paper else (f" (no evaluation of {'them' if n > 1 else 'it'} matches; `wae-bench eval` "
                            f"it as asked)")
    return f"{OTHER_PROTOCOL} {n} seed{'s' if n > 1 else ''} scored under another protocol than asked{fix}: " \
           f"{', '.join(other)}"


def _fewest_images(p: dict[str, Any]) -> int | None:
    """The fewest images any FID of protocol ``p`` was computed from (generated or reference)."""
    ns = [v.get("n") for v in (p.get("generated") or {}).values() if isinstance(v, dict)]
    ns.append((p.get("reference") or {}).get("n"))
    ns = [n for n in ns if isinstance(n, int)]
    return min(ns) if ns else None


MIXED_CODE = "§"   # a row whose cells were trained by different regularizer code (provider or source sha256)


@dataclass(frozen=True)
class PluginCode:
    """The regularizer code a cell trained with, as its ``config.json``
    recorded it (its latest start's ``versions`` and ``plugin_sha256``,
    :func:`~wae_bench.run.directory.run_versions`, :func:`~wae_bench.run.directory.run_sources`)."""

    provider: str | None      # "mypull-pkg 0.2", "wae-bench 0.1.0", "module my_mod from /abs/pull.py"
    sha256: str | None        # of the plugin's source file

    @property
    def built_in(self) -> bool:
        """Whether wae-bench's own entry points provided it."""
        return (self.provider or "").partition(" ")[0] == OWN

    def text(self, paper: bool = False) -> str:
        """``mypull-pkg 0.2, source sha256 3f2a9c1d0b4e``; ``paper``: without
        a local path (an in-process plugin's ``from /abs/pull.py``)."""
        provider = self.provider or "provider not recorded"
        if paper:
            provider = provider.partition(" from ")[0]
        cut = SHOWN_CHARS["plugin_sha256"]
        return provider + (f", source sha256 {self.sha256[:cut]}" if self.sha256 else "")

    def as_json(self) -> dict[str, Any]:
        """cells.json's ``regularizer_code`` of a cell (the sha256 in full)."""
        return {"provider": self.provider, "built_in": self.built_in, "source_sha256": self.sha256}


def plugin_code(record: dict[str, Any] | None) -> PluginCode | None:
    """The regularizer code of a cell's ``config.json`` (``record``): who
    provided its regularizer (``versions``'s ``"regularizer": "NAME:
    PROVIDER"``) and its source file's sha256 (``plugin_sha256``); None for
    a cell not begun, or recorded before either was."""
    record = record if isinstance(record, dict) else {}
    cfg = record.get("config") if isinstance(record.get("config"), dict) else {}
    was = (record.get("versions") or {}).get("regularizer")
    name = cfg.get("regularizer")
    provider = was[len(name) + 2:] if isinstance(was, str) and isinstance(name, str) \
        and was.startswith(f"{name}: ") else None
    sha = (record.get("plugin_sha256") or {}).get("regularizer")
    return None if provider is None and sha is None else PluginCode(provider, sha if isinstance(sha, str) else None)


def _codes(folder: ResultsDir, cells: list[Cell]) -> dict[PluginCode, list[str]]:
    """Each distinct regularizer code the ``cells`` recorded, with the ids of its cells."""
    out: dict[PluginCode, list[str]] = {}
    for c in cells:
        code = plugin_code(folder.config(c.id))
        if code is not None:
            out.setdefault(code, []).append(c.id)
    return out


def row_code(folder: ResultsDir, cells: list[Cell]) -> str:
    """table.csv's ``code`` of a row (``cells``: its cells): the regularizer
    code its cells recorded (:meth:`PluginCode.text`), the distinct ones
    joined by `` / `` (a row :func:`mixed_code` marks); "" before any recorded it."""
    return " / ".join(code.text() for code in _codes(folder, cells))


def regularizer_paper(name: str) -> str:
    """The paper a plugin declares (:attr:`~wae_bench.regularizer.Regularizer.paper`), "" if none."""
    try:
        return str(getattr(REGULARIZERS.get(name), "paper", "") or "").strip()
    except WaeError:
        return ""


def regularizer_code(folder: ResultsDir, cells: list[Cell], paper: bool = False) -> list[str]:
    """Which code each regularizer of the table is, where one is not built
    in (a third-party plugin, an in-process one): one line each with its
    provider and version and source sha256 as its cells' ``config.json``
    recorded them (each distinct one with its number of cells), and the
    paper the plugin declares; then the built-ins named once.  Nothing for
    a table of built-ins only.  A regularizer no cell recorded yet is named
    as installed now.  ``paper``: without local paths (table.tex)."""
    lines, built_in = [], []
    for reg in dict.fromkeys(c.regularizer for c in cells):
        codes = _codes(folder, [c for c in cells if c.regularizer == reg])
        if not codes:
            now = PluginCode(REGULARIZERS.provider(reg) if reg in REGULARIZERS else None, None)
            codes_text = None if now.built_in else f"{now.text(paper)} as installed now (no cell recorded it yet)"
        elif all(code.built_in for code in codes):
            codes_text = None
        else:
            codes_text = " / ".join(code.text(paper) + (f" ({count(len(ids), 'cell')})" if len(codes) > 1 else "")
                                    for code, ids in codes.items())
            whose = "its cell's" if sum(map(len, codes.values())) == 1 else "its cells'"
            codes_text += f", as {whose} config.json recorded it"
        if codes_text is None:
            built_in.append(reg)
            continue
        cite = regularizer_paper(reg)
        lines.append(f"{reg}: {codes_text}" + (f"; paper: {cite}" if cite else ""))
    if lines and built_in:
        lines.append(f"{', '.join(built_in)}: built in (wae-bench's own)")
    return lines


def count(n: Any, noun: str) -> str:
    """``1 step``, ``6 steps``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def row_label(row: tuple) -> str:
    """``mypull · tiny · λ = 10``: a table row (regularizer, arch, axes) as a note names it."""
    reg, arch, axes = row
    return " · ".join([reg, arch or "(not stated)", *(f"{axis_label(k)} = {display_value(v)}" for k, v in axes)])


def mixed_code(folder: ResultsDir, rows: dict[tuple, list[Cell]], paper: bool = False) -> dict[tuple, str]:
    """The note on each row (``rows``: row -> its cells) whose cells were
    trained by different regularizer code (:func:`plugin_code`: another
    provider or version, or the same version with another source sha256,
    the plugin edited between seeds) though the row pools them in one mean:
    its :data:`MIXED_CODE` line naming the row, what differs and the cells of
    each code.  (A cell resumed across such a change is the Evaluation
    block's warning, :func:`mixed_starts_line`.)"""
    out = {}
    for row, cells in rows.items():
        codes = _codes(folder, cells)
        if len(codes) < 2:
            continue
        differs = [what for what, key in (("provider/version", "provider"), ("source sha256", "sha256"))
                   if len({getattr(code, key) for code in codes}) > 1]
        named = "; ".join(f"{code.text(paper)}: {', '.join(ids)}" for code, ids in codes.items())
        out[row] = (f"{MIXED_CODE} {row_label(row)}: its mean pools cells trained by different regularizer code "
                    f"({' and '.join(differs)} differ{'s' if len(differs) == 1 else ''}; compare with care): {named}")
    return out
