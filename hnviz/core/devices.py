"""Where hnviz computes (docs/guide.md, "Devices").

A learner's ``device`` ("cpu", "cuda", "cuda:N", "mps" or "auto"; the learner's argument,
``--device`` on the command line, or the environment variable ``HNVIZ_DEVICE``; default
"cpu") holds its networks and everything it learns while it trains and predicts. Data
stays where it was made and goes to the device a batch at a time; random numbers are
drawn on the CPU (one stream whatever the device, so a seed means the same data order
and initial embeddings everywhere) and then moved. Run files and checkpoints hold CPU
tensors and open on any device: a run trained on a GPU opens in the widgets on a laptop.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch

from .validate import env_setting, scoped_env

ENV = "HNVIZ_DEVICE"
KINDS = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def check_device(value: Any, name: str = "device") -> str:
    """``value`` as a device setting (a normalised string; "auto" kept), else one
    ValueError line naming the value and the fix."""
    if isinstance(value, torch.device):
        value = str(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "auto":
        return text
    kind, _, index = (text or "").partition(":")
    if text is None or kind not in KINDS or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"{name}={value!r} is not a device; use cpu, cuda, cuda:N, mps or auto")
    return text


def resolve_device(device: Any = None) -> torch.device:
    """The device in force: ``device`` if given, else ``$HNVIZ_DEVICE``, else the CPU;
    "auto" is CUDA if present, else MPS, else the CPU. A device this machine lacks is a
    ValueError saying so."""
    setting = (env_setting(ENV, check_device) or "cpu") if device is None else \
        check_device(device)
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else
                            "mps" if _mps_available() else "cpu")
    dev = torch.device(setting)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise ValueError(f"device {setting!r}: this machine's torch sees {count} CUDA "
                             "device(s); use --device cpu (or auto)")
    if dev.type == "mps" and not _mps_available():
        raise ValueError(f"device {setting!r}: this machine's torch has no MPS device; use "
                         "--device cpu (or auto)")
    return dev


def to_cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with every value on the CPU (what run files and checkpoints hold)."""
    return {k: v.cpu() for k, v in tensors.items()}


def device_setting(device: Any, name: str = "device") -> AbstractContextManager[None]:
    """``$HNVIZ_DEVICE`` set to ``device`` (checked) within a ``with`` block, then put
    back: the device of learners made without one (``--device``, sweep trials)."""
    return scoped_env(ENV, check_device(device, name))
