"""``ltbounds bench``: the standard rows, the numpy baseline, other backends, refusals."""

from __future__ import annotations

import json

import pytest

from ltbounds.cli import main
from ltbounds.cli.bench import run_benchmarks

ROWS = [
    "solver n=15", "solver n=24", "concentration", "construct digits_cnn_relu",
    "construct ResNet-20", "certify digits_cnn_relu",
]


@pytest.fixture(scope="module")
def quick_numpy() -> dict:
    return run_benchmarks("numpy", quick=True)


def test_quick_json_has_every_row_and_the_machine(capsys) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["backend"] == "numpy" and document["workers"] == 1 and document["quick"]
    assert [row["name"] for row in document["rows"]] == ROWS
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["numpy"] and machine["device"] == "host CPU"
    assert len(machine["load_average"]) == 2


def test_numpy_in_one_process_is_its_own_baseline(quick_numpy) -> None:
    for row in quick_numpy["rows"]:
        if row["name"] == "construct ResNet-20":
            assert row["baseline"] is None and row["ratio"] is None
            assert row["note"].startswith("not available")
            continue
        assert row["baseline"] > 0 and row["measured"] == row["baseline"] and row["ratio"] == 1.0
    rates = {row["name"]: row for row in quick_numpy["rows"]}
    assert rates["solver n=15"]["unit"] == "instances/s" and rates["construct digits_cnn_relu"]["unit"] == "s"


def test_table_names_backend_ratio_and_notes(capsys) -> None:
    assert main(["bench", "--quick", "--backend", "array-api-strict", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "backend array-api-strict, workers 2" in out and "ratio" in out
    assert "array-API twin" in out and "same counts as the baseline" in out
    assert "not available" in out


def test_unusable_backends_are_one_line_refusals(capsys) -> None:
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    assert main(["bench", "--quick", "--backend", "cupy"]) == 1
    err = capsys.readouterr().err
    assert "backend='cupy' is not usable here" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", "--backend", "jax"]) == 1
    assert "--backend='jax' must be one of 'numpy', 'cupy', 'array-api-strict'" in capsys.readouterr().err
    assert main(["bench", "--workers", "0"]) == 1
    assert main(["bench", "--repeats", "0"]) == 1
