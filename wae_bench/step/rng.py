"""The random state of a run: the global RNGs (Python, NumPy, torch CPU and
CUDA) and the plugins' private ``torch.Generator`` attributes, saved in every
checkpoint so that a resumed run draws what an uninterrupted one would."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int) -> None:
    """Seed every global RNG a plugin might draw from (torch, Python, NumPy);
    their states are saved in each checkpoint (:func:`rng_state`)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)


def module_generators(mods: dict[str, nn.Module]) -> dict[str, torch.Generator]:
    """Private ``torch.Generator`` attributes of the modules (e.g. a plugin's
    projection directions), by ``owner.module.attr``; they are not in
    ``state_dict()``, so the trainer saves them with the RNG states."""
    out = {}
    for owner, mod in mods.items():
        for mname, m in mod.named_modules():
            for attr, v in vars(m).items():
                if isinstance(v, torch.Generator):
                    out[".".join(filter(None, (owner, mname, attr)))] = v
    return out


def rng_state() -> dict:
    """Every global RNG: Python's ``random``, NumPy's legacy global, torch CPU
    and (if initialised) CUDA; as tensors and plain values (safe to load)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "python": list(mt), "python_version": version, "python_gauss": gauss,
          "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                    "gauss": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate((st["python_version"], tuple(st["python"]), st.get("python_gauss")))
    if "numpy" in st:
        n = st["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
