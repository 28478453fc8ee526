"""Layer 8, experiments: training into a run directory, comparisons of methods, sweeps."""
