"""Layer 4, data: datasets on disk (``datasets``, one reader per file format), the
scenarios cl1/cl2/cl3, the sequence builders (``sequences``) and the benchmarks by name
(``benchmarks``: one spec per benchmark).

``hnviz.data`` was one module (now ``datasets``) up to 0.4; its names are still here."""
import importlib
from typing import Any

from .datasets import load_dataset

__all__ = ["load_dataset"]


def __getattr__(name: str) -> Any:
    """The names of 0.4's ``hnviz.data`` (``DATASETS``, ``read_idx``, ...), from ``datasets``."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(f"{__name__}.datasets"), name)
    except AttributeError:
        raise AttributeError(f"module 'hnviz.data' has no attribute {name!r}") from None
