"""Layer 9, speed benchmarks (``python -m hnviz bench ...``): ratios against a reference
measured in the same run. ``hnviz.bench`` was one module (now ``step``) up to 0.4; its
names are still here."""
import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    """The names of 0.4's ``hnviz.bench`` (``run_bench``, ``CONFIGS``, ...), from ``step``."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(f"{__name__}.step"), name)
    except AttributeError:
        raise AttributeError(f"module 'hnviz.bench' has no attribute {name!r}") from None
