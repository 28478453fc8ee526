"""Names of a module that became a package (``hnviz.data``, ``hnviz.cli`` and
``hnviz.bench`` were modules up to 0.4): the package answers them from the module that
holds them now, loaded when first asked."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def forward_names(package: str, module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that gives the names of its submodule
    ``module`` (an AttributeError naming ``package`` for others)."""
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    return __getattr__
