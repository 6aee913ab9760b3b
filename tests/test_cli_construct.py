"""``ltbounds construct`` and ``ltbounds demo`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from ltbounds.nets import load_embedded
from ltbounds.ticket import Ticket

PUBLIC_KEYS = {
    "target", "activation", "depth", "eps", "delta", "rho", "source_params", "ticket_params",
    "target_params", "missed_subset_sums", "max_sampled_error", "target_accuracy",
    "ticket_accuracy", "agreement", "seconds",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltbounds", *args], capture_output=True, text=True, timeout=600
    )


def test_construct_writes_a_ticket_and_json(tmp_path) -> None:
    output = tmp_path / "ticket.npz"
    completed = run_cli("construct", "digits_cnn", "--activation", "tanh", "--rho", "6",
                        "--samples", "100", "-o", str(output), "--json")
    assert completed.returncode == 0, completed.stderr
    row = json.loads(completed.stdout)
    assert PUBLIC_KEYS <= set(row)
    assert row["target"] == "digits_cnn_tanh" and row["rho"] == 6
    ticket = Ticket.load(output)
    target = load_embedded("digits_cnn_tanh")
    ticket.check_target(target)
    inputs = target.sample_inputs(10, seed=0)
    assert np.all(np.isfinite(ticket.forward(inputs)))


def test_construct_bad_input_is_one_line_and_writes_nothing(tmp_path) -> None:
    output = tmp_path / "ticket.npz"
    for args, needle in [
        (("--eps", "-0.1"), "eps=-0.1 must be > 0"),
        (("--delta", "2"), "delta=2.0"),
        (("--depth", "3L"), "depth='3L'"),
        (("--activation", "swish"), "swish"),
        (("--backend", "jax"), "--backend='jax' must be one of 'numpy', 'cupy', 'array-api-strict'"),
    ]:
        completed = run_cli("construct", "digits_cnn_relu", "-o", str(output), *args)
        assert completed.returncode == 1, completed.stderr
        assert needle in completed.stderr
        assert "Traceback" not in completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1
        assert not output.exists()
    completed = run_cli("construct", "no_such_target", "-o", str(output))
    assert completed.returncode == 1 and "neither an embedded target" in completed.stderr


def test_construct_nan_weights_refused(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"0.weight": np.array([[np.nan, 1.0]]), "0.bias": np.zeros(1)})
    completed = run_cli("construct", str(bad), "--activation", "relu", "-o", str(tmp_path / "t.npz"))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr and "nan" in completed.stderr.lower()
    assert not (tmp_path / "t.npz").exists()


PLAIN_DEMO_TARGETS = ["digits_cnn_relu", "digits_cnn_tanh", "digits_cnn_sigmoid", "digits_cnn_gelu", "digits_mlp_relu"]


def _demo_rows(*args: str) -> list[dict]:
    completed = run_cli("demo", "--samples", "200", "--budget", "1", "--json", *args)
    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)
    for row in rows:
        assert PUBLIC_KEYS <= set(row)
        assert row["max_sampled_error"] <= row["attacked_error"] <= row["certified_error"]
        assert row["verdict"] in {"CERTIFIED", "TESTED", "UNKNOWN"}
        assert abs(row["ticket_accuracy"] - row["target_accuracy"]) <= 0.005
    return rows


def test_demo_json_has_the_sandwich_for_l_plus_1_tickets() -> None:
    """The default construction at the theorem's width, on a ReLU and a non-monotone target (the
    other plain targets' L+1 tickets are built in tests/test_construct_embedded.py)."""
    rows = _demo_rows("--targets", "digits_cnn_relu,digits_cnn_gelu")
    assert [(row["target"], row["depth"]) for row in rows] == [("digits_cnn_relu", "L+1"), ("digits_cnn_gelu", "L+1")]


def test_demo_json_lists_every_plain_target_with_the_sandwich_for_2l_tickets() -> None:
    """``demo --depth 2L`` runs every plain demo target; each 2L ticket certifies within ε
    (measured at most 1.7e-3 against ε = 0.01, docs/certify.md)."""
    rows = _demo_rows("--depth", "2L")
    assert [row["target"] for row in rows] == PLAIN_DEMO_TARGETS
    for row in rows:
        assert row["depth"] == "2L" and row["verdict"] == "CERTIFIED", row["target"]
        assert row["certified_error"] <= row["eps"]
