"""Layer 10, the interface: the argument parser (``parser``) and what each command does
(``commands``). ``hnviz.cli.main`` is the console script (``hnviz ...``); ``hnviz.cli``
was one module (now ``parser``) up to 0.4, and its names are still here."""
from ..core.aliases import forward_names
from .parser import main

__all__ = ["main"]

__getattr__ = forward_names(__name__, "parser")  # the names of 0.4's hnviz.cli
