"""Layer 9, speed benchmarks (``python -m hnviz bench ...``): ratios against a reference
measured in the same run. ``hnviz.bench`` was one module (now ``step``) up to 0.4; its
names are still here."""
from ..core.aliases import forward_names

__getattr__ = forward_names(__name__, "step")  # the names of 0.4's hnviz.bench
