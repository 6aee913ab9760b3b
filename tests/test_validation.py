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


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 8 * 2**30), ("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5g", 1.5 * 2**30), ("8GiB", 8 * 2**30), ("1000", 1000)],
)
def test_memory_budget_reads_the_environment(monkeypatch: pytest.MonkeyPatch, text: str, expected: float) -> None:
    from ltbounds.validation import memory_budget  # noqa: PLC0415

    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", text)
    assert memory_budget() == expected


@pytest.mark.parametrize("text", ["abc", "-1G", "G", "0", "nan", "inf", "8 apples"])
def test_memory_budget_refuses_nonsense(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    from ltbounds.validation import memory_budget  # noqa: PLC0415

    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", text)
    with pytest.raises(InvalidInput, match="LTBOUNDS_MEMORY_BUDGET"):
        memory_budget()


def test_output_paths_that_cannot_be_written_are_refused(tmp_path) -> None:
    from ltbounds.validation import check_output_path  # noqa: PLC0415

    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a directory"):
        check_output_path("output", tmp_path)
    with pytest.raises(InvalidInput, match="is a file, not a folder"):
        check_output_path("output", tmp_path / "file" / "t.npz")
    assert check_output_path("output", tmp_path / "new" / "t.npz") == tmp_path / "new" / "t.npz"


def test_samples_are_refused_when_they_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltbounds.validation import SAMPLE_BYTES_PER_ENTRY, check_samples  # noqa: PLC0415

    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", "1M")
    fits = 2**20 // (SAMPLE_BYTES_PER_ENTRY * 64)
    assert check_samples("samples", fits, (64,)) == fits
    with pytest.raises(ResourceLimitError, match="sampling samples="):
        check_samples("samples", fits + 1, (64,))
