"""The process's peak resident memory, and its reset between runs (Linux)."""
import numpy as np
import pytest

from hnviz.core.memory import peak_rss_mib, reset_peak_rss


def test_peak_follows_an_allocation_and_resets():
    if not reset_peak_rss():
        pytest.skip("this OS offers no reset of the peak resident memory (Linux only)")
    before = peak_rss_mib()
    block = np.ones(300 * 2**20 // 8)  # 300 MiB, every page written
    high = peak_rss_mib()
    assert high - before == pytest.approx(300, abs=30)
    del block
    assert peak_rss_mib() == pytest.approx(high, abs=5)  # a peak stays after the free
    assert reset_peak_rss()
    assert peak_rss_mib() < high - 250  # back to what the process holds now
