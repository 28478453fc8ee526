"""Metrics on a hand-computed matrix."""
import numpy as np
import pytest

from hnviz import metrics

NAN = np.nan
R = np.array([[90.0, NAN, NAN],
              [80.0, 95.0, NAN],
              [70.0, 97.0, 85.0]])


def test_during_final_average():
    np.testing.assert_array_equal(metrics.during(R), [90, 95, 85])
    np.testing.assert_array_equal(metrics.final(R), [70, 97, 85])
    assert metrics.average_final(R) == pytest.approx((70 + 97 + 85) / 3)


def test_bwt_gem():
    # ((70 - 90) + (97 - 95)) / 2
    assert metrics.bwt(R) == pytest.approx(-9.0)


def test_forgetting_chaudhry():
    # task 0: max(90, 80) - 70 = 20; task 1: max(95) - 97 = -2
    assert metrics.forgetting(R) == pytest.approx(9.0)


def test_forgetting_for_mse_is_positive_when_worse():
    M = np.array([[0.1, NAN], [0.4, 0.2]])
    assert metrics.forgetting(M, higher_is_better=False) == pytest.approx(0.3)
    assert metrics.bwt(M) == pytest.approx(0.3)


def test_summary_json_ready():
    s = metrics.summary(R)
    assert s["matrix"][0] == [90.0, None, None]
    assert s["bwt"] == pytest.approx(-9.0) and s["metric"] == "accuracy"


def test_single_task_and_bad_shape():
    assert np.isnan(metrics.bwt(np.array([[50.0]])))
    with pytest.raises(ValueError, match="square"):
        metrics.bwt(np.zeros((2, 3)))


def test_forward_transfer_lopez_paz():
    before, fresh = [10.0, 50.0, 60.0, 40.0], [10.0, 20.0, 30.0, 40.0]
    # tasks 1..3: (50 - 20) + (60 - 30) + (40 - 40), over 3; task 0 is left out
    assert metrics.fwt(before, fresh) == pytest.approx(20.0)
    # MSE: lower is better, so a lower error before training is positive transfer
    assert metrics.fwt([1.0, 0.5, 2.0], [1.0, 1.5, 1.0], higher_is_better=False) == \
        pytest.approx((1.0 - 1.0) / 2)
    assert metrics.fwt([1.0, 0.5], [1.0, 1.5], higher_is_better=False) == pytest.approx(1.0)
    # unknown entries are left out; none known, or one task only: NaN
    assert metrics.fwt([10.0, None, 60.0], [10.0, 20.0, 30.0]) == pytest.approx(30.0)
    assert np.isnan(metrics.fwt([10.0], [10.0]))
    with pytest.raises(ValueError, match="same length"):
        metrics.fwt([1.0, 2.0], [1.0])


def test_transfer_vs_scratch_and_summary():
    # during = diag(R) = 90, 95, 85; alone from scratch 88, 90, 87
    np.testing.assert_allclose(metrics.transfer(metrics.during(R), [88.0, 90.0, 87.0]),
                               [2.0, 5.0, -2.0])
    s = metrics.summary(R, before=[9.0, 40.0, 30.0], fresh=[9.0, 10.0, 20.0],
                        scratch=[88.0, 90.0, 87.0])
    assert s["fwt"] == pytest.approx(20.0) and s["before"] == [9.0, 40.0, 30.0]
    assert s["transfer"] == [2.0, 5.0, -2.0] and s["transfer_mean"] == pytest.approx(5 / 3)
    assert "fwt" not in metrics.summary(R)  # only with what it needs
    M = np.array([[0.1, NAN], [0.4, 0.2]])  # MSE: scratch 0.3 - during 0.2 = +0.1 is a gain
    assert metrics.summary(M, "mse", scratch=[0.1, 0.3])["transfer"] == \
        pytest.approx([0.0, 0.1])
