"""Layer 4, data: datasets on disk (``datasets``, one reader per file format), the
scenarios cl1/cl2/cl3, the sequence builders (``sequences``) and the benchmarks by name
(``benchmarks``: one spec per benchmark).

``hnviz.data`` was one module (now ``datasets``) up to 0.4; its names are still here."""
from ..core.aliases import forward_names
from .datasets import load_dataset

__all__ = ["load_dataset"]

__getattr__ = forward_names(__name__, "datasets")  # the names of 0.4's hnviz.data
