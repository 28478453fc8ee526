"""Layer 4, data: datasets on disk (``datasets``, one reader per file format), the
scenarios cl1/cl2/cl3 and the benchmarks (``benchmarks``: one spec per benchmark).

``hnviz.data`` was one module up to 0.4; its public names are still here."""
from .datasets import (DATASETS, READERS, DownloadError, cache_dir, download_dataset,
                       load_dataset, read_idx, search_dirs)

__all__ = ["DATASETS", "READERS", "DownloadError", "cache_dir", "download_dataset",
           "load_dataset", "read_idx", "search_dirs"]
