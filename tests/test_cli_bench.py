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
        assert row["baseline"] > 0 and row["measured"] == row["baseline"] and row["ratio"] == 1.0
    rates = {row["name"]: row for row in quick_numpy["rows"]}
    assert rates["solver n=15"]["unit"] == "instances/s" and rates["construct digits_cnn_relu"]["unit"] == "s"


def test_resnet20_row_is_measured_at_a_stated_small_rho(quick_numpy) -> None:
    from ltbounds.cli.bench import SIZES, resnet20_target
    from ltbounds.construct import allot_tolerances
    from ltbounds.construct.width import default_rho

    row = {row["name"]: row for row in quick_numpy["rows"]}["construct ResNet-20"]
    rho = SIZES["quick"]["resnet20"]["rho"]
    assert row["unit"] == "s" and row["baseline"] > 0 and f"rho={rho}" in row["size"]
    target = resnet20_target(0)
    assert target.input_shape == (3, 32, 32) and len(target.residual_blocks) == 9
    theorem = default_rho(target, min(allot_tolerances(target, 0.01)), 0.05, depth="L+1")
    assert row["theorem_rho"] == theorem > rho
    assert f"not the theorem's rho={theorem}" in row["note"] and "infeasible" in row["note"]
    assert row["missed"] >= 0 and (row["missed"] == 0 or f"{row['missed']:,} subset sums missed" in row["note"])


def test_table_names_backend_ratio_and_notes(capsys) -> None:
    assert main(["bench", "--quick", "--backend", "array-api-strict", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "backend array-api-strict, workers 2" in out and "ratio" in out
    assert "array-API twin" in out and "same counts as the baseline" in out
    text = " ".join(out.split())  # notes may wrap
    assert text.count("array-api-strict: byte-identical ticket to numpy's") == 2  # both constructions
    assert "construct ResNet-20" in out and "not available" not in out
    assert "sampling and attack on array-api-strict, certified methods on the host" in text


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


def test_a_backend_ticket_that_differs_from_numpy_stops_the_run(monkeypatch) -> None:
    """The construction rows compare the saved tickets; a difference is reported as a bug."""
    import ltbounds.construct
    from ltbounds.backend import get_backend
    from ltbounds.cli.bench import _construct_row
    from ltbounds.errors import InvalidInput
    from ltbounds.nets import load_embedded

    target, settings = load_embedded("digits_mlp_relu"), {"eps": 0.1, "rho": 2}
    strict = get_backend("array-api-strict")
    row, _ = _construct_row("mlp", target, settings, xp=strict, backend="array-api-strict", repeats=1, size="")
    assert row["baseline"] > 0 and row["measured"] > 0 and "byte-identical" in row["note"]
    original = ltbounds.construct.construct

    def off_by_one_seed(target, *, seed, xp=None, **options):
        return original(target, seed=seed + (xp is not None), xp=xp, **options)

    monkeypatch.setattr(ltbounds.construct, "construct", off_by_one_seed)
    with pytest.raises(InvalidInput, match="constructed another ticket for 'mlp' than numpy"):
        _construct_row("mlp", target, settings, xp=strict, backend="array-api-strict", repeats=1, size="")
