"""Layer 9, speed benchmarks (``python -m hnviz bench ...``): ratios against a reference measured in the same run."""
