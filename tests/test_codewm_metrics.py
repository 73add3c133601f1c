"""Shared metric helpers (tables 3 and 4) and the code-model evaluation built on them."""
import math

import pytest

from cassandra_wm.envs.base import VariableSpec
from cassandra_wm.metrics import (accuracy, confusion, f1_score, invalid_rate, minmax_range, minmax_rmse,
                                  observation_metrics, value_is_valid)


def test_accuracy_and_f1():
    t = [True, True, False, False, True]
    p = [True, False, False, True, True]
    assert accuracy(t, p) == pytest.approx(0.6)
    assert confusion(t, p) == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert f1_score(t, p) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert f1_score([False, False], [False, False]) == 0.0
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_minmax_rmse():
    assert minmax_range([2, 4, 6]) == (2.0, 6.0)
    assert minmax_rmse([2, 4, 6], [2, 4, 6]) == 0.0
    assert minmax_rmse([2, 4, 6], [6, 4, 2]) == pytest.approx(math.sqrt((1 + 0 + 1) / 3))
    # non-numbers are left out of the RMSE (they are invalid values instead)
    assert minmax_rmse([0, 10], [0, None]) == 0.0
    # constant truth: the declared bounds give the scale
    assert minmax_rmse([5, 5], [6, 6], low=0, high=10) == pytest.approx(0.1)
    assert math.isnan(minmax_rmse([1], ["x"]))


def test_invalid_values_and_table4_summary():
    price = VariableSpec("price", "/price", "", "deterministic", low=1, high=10)
    level = VariableSpec("level", "/level", "", "deterministic", low=0, high=5, integer=True)
    mode = VariableSpec("mode", "/mode", "", "deterministic", type="categorical", categories=("open", "closed"))
    assert value_is_valid(price, 3) and not value_is_valid(price, 11) and not value_is_valid(price, "3")
    assert not value_is_valid(level, 1.5) and not value_is_valid(mode, "ajar") and not value_is_valid(price, None)
    assert invalid_rate([1, 20, None, 5], lambda v: value_is_valid(price, v)) == 0.5
    rows, s = observation_metrics([price, level, mode],
                                  {"price": [1, 3, 5], "level": [0, 1, 2], "mode": ["open", "open", "closed"]},
                                  {"price": [1, 3, 5], "level": [0, 1, 9], "mode": ["open", "closed", "closed"]})
    assert s["cat_acc"] == pytest.approx(2 / 3) and s["n_categorical"] == 1 and s["n_numeric"] == 2
    assert s["inv"] == pytest.approx((0 + 1 / 3 + 0) / 3)
    assert rows[0]["num_rmse"] == 0.0 and rows[1]["num_rmse"] == pytest.approx(math.sqrt(((9 - 2) / 2) ** 2 / 3))
