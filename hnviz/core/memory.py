"""Resident memory of this process: its peak so far, and (on Linux) a reset of that peak,
so that in a process that trains several runs one after another (a comparison) each
run's figure is the peak while it trained rather than the largest of all before it."""
from __future__ import annotations

import platform
from pathlib import Path

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory afresh from what it holds now (Linux:
    ``5`` into ``/proc/self/clear_refs``); False where the OS offers no reset."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB since it started or since the last
    :func:`reset_peak_rss` (Linux's ``VmHWM``; elsewhere the peak since the start; NaN
    where the OS does not say)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024
