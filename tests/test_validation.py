"""Argument checks: each refusal names the value and what was expected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltbounds.errors import InvalidInput, ResourceLimitError
from ltbounds.validation import (
    check_choice,
    check_finite_array,
    check_int,
    check_interval,
    check_memory,
    check_open_unit,
    check_positive,
)


@pytest.mark.parametrize("bad", [-0.1, 0, math.nan, math.inf, "0.1", None, True])
def test_check_positive_refuses(bad) -> None:
    with pytest.raises(InvalidInput, match="eps="):
        check_positive("eps", bad)


def test_check_positive_message_quotes_value() -> None:
    with pytest.raises(InvalidInput, match=r"eps=-0\.1 must be > 0"):
        check_positive("eps", -0.1)


@pytest.mark.parametrize("bad", [0, 1, -0.5, 1.5, math.nan])
def test_check_open_unit_refuses(bad) -> None:
    with pytest.raises(InvalidInput, match="delta="):
        check_open_unit("delta", bad)


def test_accepts_good_values() -> None:
    assert check_positive("eps", 0.01) == 0.01
    assert check_open_unit("delta", 0.05) == 0.05
    assert check_int("n", np.int64(5), minimum=1) == 5
    assert check_choice("depth", "L+1", ["L+1", "2L"]) == "L+1"
    assert check_interval("domain", -1, 1) == (-1.0, 1.0)
    check_finite_array("w", np.ones(3))
    check_memory("solve", 10, 100)


def test_int_and_choice_and_interval_refuse() -> None:
    with pytest.raises(InvalidInput, match=r"n=0 must be >= 1"):
        check_int("n", 0, minimum=1)
    with pytest.raises(InvalidInput, match="must be an integer"):
        check_int("n", 2.5)
    with pytest.raises(InvalidInput, match="depth='3L'"):
        check_choice("depth", "3L", ["L+1", "2L"])
    with pytest.raises(InvalidInput, match="low < high"):
        check_interval("domain", 1, 1)


def test_finite_array_names_position() -> None:
    values = np.zeros((2, 3))
    values[1, 2] = np.nan
    with pytest.raises(InvalidInput, match=r"index \(1, 2\)"):
        check_finite_array("weights", values)


def test_memory_budget_states_estimate() -> None:
    with pytest.raises(ResourceLimitError, match="MiB"):
        check_memory("solve", 2 * 2**30, 2**30)
