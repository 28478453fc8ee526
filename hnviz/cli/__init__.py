"""Layer 10, the interface: the argument parser (``parser``) and what each command does
(``commands``). ``hnviz.cli.main`` is the console script (``hnviz ...``); ``hnviz.cli``
was one module (now ``parser``) up to 0.4, and its names are still here."""
import importlib
from typing import Any

from .parser import main

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    """The names of 0.4's ``hnviz.cli`` (``build_parser``, ``USER_ERRORS``, ...)."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(f"{__name__}.parser"), name)
    except AttributeError:
        raise AttributeError(f"module 'hnviz.cli' has no attribute {name!r}") from None
