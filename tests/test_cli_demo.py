"""``ltbounds demo``: residual rows, the certify fallback, target selection, and
``ltbounds construct`` on a residual target as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ltbounds.cli.demo import (
    DEMO_TARGETS,
    RESIDUAL_NOT_CERTIFIED,
    _for_depth,
    certify_row,
)
from ltbounds.construct import construct
from ltbounds.errors import InvalidInput
from ltbounds.nets import Conv2d, Dense, Flatten, ResidualBlock, TargetNet, load_embedded
from ltbounds.ticket import Ticket


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltbounds", *args], capture_output=True, text=True, timeout=600
    )


def small_resnet() -> TargetNet:
    rng = np.random.default_rng(3)
    layers = [
        Conv2d(rng.uniform(-0.5, 0.5, (2, 1, 3, 3)), rng.uniform(-0.1, 0.1, 2), padding=1),
        ResidualBlock((Conv2d(rng.uniform(-0.5, 0.5, (2, 2, 3, 3)), None, padding=1),)),
        Flatten(),
        Dense(rng.uniform(-1, 1, (2, 18)), rng.uniform(-0.1, 0.1, 2)),
    ]
    return TargetNet(layers, (1, 3, 3), "relu", (0.0, 1.0), name="small_resnet")


def test_demo_runs_the_embedded_residual_cnns() -> None:
    assert {"digits_resnet_relu", "digits_resnet_tanh"} <= set(DEMO_TARGETS)


def test_certify_row_of_a_residual_ticket_is_honest() -> None:
    target = small_resnet()
    ticket = construct(target, eps=0.05, rho=4, seed=0)
    row = certify_row({"seconds": 0.0}, target, ticket, samples=200, seed=1, budget=1)
    inputs = target.sample_inputs(200, seed=1)
    if row["verdict"] == RESIDUAL_NOT_CERTIFIED:
        # certify refuses residual targets: the sampled error alone, and no invented bounds.
        assert row["certified_error"] is None and row["attacked_error"] is None
        expected = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
        assert row["max_sampled_error"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    else:  # certify handles residual tickets now
        assert row["max_sampled_error"] <= row["certified_error"]
    assert row["max_sampled_error"] <= ticket.metadata["predicted_error"]


def test_certify_row_does_not_swallow_other_refusals() -> None:
    target = small_resnet()
    ticket = construct(target, eps=0.05, rho=3, seed=0)
    other = TargetNet([Dense(np.ones((1, 2)))], (2,), "relu", name="other")
    with pytest.raises(InvalidInput):
        certify_row({"seconds": 0.0}, other, ticket, samples=10, seed=0, budget=1)


def test_demo_refuses_unknown_targets_in_one_line() -> None:
    completed = run_cli("demo", "--targets", "digits_cnn_relu,nope", "--json")
    assert completed.returncode == 1
    assert "targets='digits_cnn_relu,nope'" in completed.stderr
    assert "Traceback" not in completed.stderr and completed.stdout == ""


def test_demo_2l_leaves_out_the_residual_targets_by_default() -> None:
    """2L has no residual construction: the default 2L run is the plain targets (it used to
    build them all and then stop with an error at the first ResNet, printing nothing)."""
    every = [load_embedded(name) for name in DEMO_TARGETS]
    kept, left_out = _for_depth(every, "2L", named=False)
    assert [target.name for target in kept] == [t.name for t in every if not t.residual_blocks]
    assert left_out == ["digits_resnet_relu", "digits_resnet_tanh"]
    assert _for_depth(every, "L+1", named=True) == (every, [])
    with pytest.raises(InvalidInput, match="digits_resnet_relu, digits_resnet_tanh have residual blocks"):
        _for_depth(every, "2L", named=True)


def test_demo_2l_refuses_a_named_residual_target_before_any_work() -> None:
    completed = run_cli("demo", "--depth", "2L", "--targets", "digits_cnn_relu,digits_resnet_tanh", "--json")
    assert completed.returncode == 1
    assert "digits_resnet_tanh have residual blocks" in completed.stderr and "--depth L+1" in completed.stderr
    assert "Traceback" not in completed.stderr and completed.stdout == ""


def test_demo_2l_certifies_a_plain_target() -> None:
    completed = run_cli("demo", "--depth", "2L", "--targets", "digits_mlp_relu", "--samples", "500",
                        "--budget", "1", "--json")
    assert completed.returncode == 0, completed.stderr
    (row,) = json.loads(completed.stdout)
    assert row["target"] == "digits_mlp_relu" and row["depth"] == "2L"
    assert row["max_sampled_error"] <= row["attacked_error"] <= row["certified_error"]
    assert row["verdict"] in ("CERTIFIED", "TESTED")


def test_construct_cli_builds_a_residual_ticket(tmp_path) -> None:
    output = tmp_path / "resnet.npz"
    completed = run_cli(
        "construct", "digits_resnet_tanh", "--rho", "4", "--samples", "50", "-o", str(output), "--json"
    )
    assert completed.returncode == 0, completed.stderr
    row = json.loads(completed.stdout)
    assert row["target"] == "digits_resnet_tanh" and row["rho"] == 4
    ticket = Ticket.load(output)
    assert [block["skip_kind"] for block in ticket.residual] == ["identity", "projection"]
    target = load_embedded("digits_resnet_tanh")
    ticket.check_target(target)
    assert row["max_sampled_error"] <= row["predicted_error"]


def test_demo_backend_gives_the_same_rows(capsys) -> None:
    """``demo --backend array-api-strict`` builds the same tickets and measures the same errors.

    On the 2L ticket (seconds instead of a minute); tests/reliability/test_reproducible.py
    builds an L+1 and a 2L ticket on every backend byte for byte."""
    from ltbounds.cli import main  # noqa: PLC0415

    rows = {}
    for backend in ("numpy", "array-api-strict"):
        code = main(["demo", "--targets", "digits_cnn_relu", "--depth", "2L", "--samples", "300", "--budget", "1",
                     "--backend", backend, "--json"])
        assert code == 0
        rows[backend] = json.loads(capsys.readouterr().out)[0]
    numpy_row, strict_row = rows["numpy"], rows["array-api-strict"]
    for key in ("ticket_params", "predicted_error", "worst_parameter_error", "certified_error", "verdict",
                "ticket_accuracy"):
        assert strict_row[key] == numpy_row[key], key
    assert strict_row["max_sampled_error"] == pytest.approx(numpy_row["max_sampled_error"], rel=1e-12)
    assert strict_row["provenance"]["backend"] == "array-api-strict"
