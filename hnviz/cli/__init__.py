"""Layer 10, the interface: the argument parser (``parser``) and what each command does
(``commands``). ``hnviz.cli.main`` is the console script (``hnviz ...``)."""
from .parser import main

__all__ = ["main"]
