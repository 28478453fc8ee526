"""Layer 6, results: embedding-space analysis, static figures and tables (numpy and
matplotlib out)."""
