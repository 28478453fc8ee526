"""Layer 3, safe files: atomic writes and checked reads (``safeio``), run-directory
locks, the one check of every ``--out``."""
