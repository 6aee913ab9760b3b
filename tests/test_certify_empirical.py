"""Sampling and the gradient attack (``ltbounds.certify._empirical``) on every namespace.

The empirical side is the heavy part of certifying a wide ticket, so it runs on the chosen
backend; the inputs come from the counter-based generator and must be the same everywhere.
Each namespace is compared with numpy, and numpy with a slow per-input loop.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _small_nets import small_conv

from ltbounds.backend import get_backend
from ltbounds.certify._empirical import attack, evaluate, sample_errors
from ltbounds.cli import main
from ltbounds.construct import construct
from ltbounds.errors import InvalidInput
from ltbounds.nets.io import save_npz


@pytest.fixture(scope="module")
def pair():
    target = small_conv(name="emp1")
    ticket = construct(target, eps=0.5, rho=5, seed=3, param_eps=0.02)
    return target, ticket.network()


def test_sampled_error_is_the_max_of_a_per_input_loop(pair) -> None:
    target, net = pair
    witness, starts_inf, _ = sample_errors(target, net, 300, seed=4, keep=3)
    inputs = target.sample_inputs(300, 4)
    slow = [float(np.max(np.abs(net.forward(x[None]) - target.forward(x[None])))) for x in inputs]
    assert witness.linf == pytest.approx(max(slow), rel=1e-12)
    assert np.array_equal(witness.input_linf, inputs[int(np.argmax(slow))])
    assert starts_inf.shape == (3, *target.input_shape)


def test_attack_never_loses_its_start_and_reports_its_witness(pair) -> None:
    target, net = pair
    sampled, starts_inf, starts_two = sample_errors(target, net, 200, seed=5, keep=2)
    attacked = attack(target, net, starts_inf, starts_two, steps=15)
    assert attacked.linf >= sampled.linf
    assert attacked.l2 >= sampled.l2
    linf, l2 = evaluate(target, net, attacked.input_linf[None])
    assert float(linf[0]) == pytest.approx(attacked.linf, rel=1e-12)
    _, l2_at = evaluate(target, net, attacked.input_l2[None])
    assert float(l2_at[0]) == pytest.approx(attacked.l2, rel=1e-12)
    low, high = target.input_domain
    assert low <= attacked.input_linf.min() and attacked.input_linf.max() <= high


def test_attack_in_chunks_of_runs_finds_the_same_witness(pair, monkeypatch) -> None:
    # The runs are independent: one run a chunk (a wide ticket's memory bound) or all at once.
    from ltbounds.certify import _empirical

    target, net = pair
    _, starts_inf, starts_two = sample_errors(target, net, 200, seed=7, keep=3)
    whole = attack(target, net, starts_inf, starts_two, steps=12)
    monkeypatch.setattr(_empirical, "ATTACK_CHUNK_ENTRIES", 1)
    chunked = attack(target, net, starts_inf, starts_two, steps=12)
    assert chunked.linf == pytest.approx(whole.linf, rel=1e-12)
    assert chunked.l2 == pytest.approx(whole.l2, rel=1e-12)
    assert np.allclose(chunked.input_linf, whole.input_linf, rtol=0, atol=1e-12)
    assert np.allclose(chunked.input_l2, whole.input_l2, rtol=0, atol=1e-12)


def test_every_namespace_sees_the_same_inputs_and_errors(pair, xp) -> None:
    target, net = pair
    host_sampled, host_inf, host_two = sample_errors(target, net, 250, seed=6, keep=2)
    host_attacked = attack(target, net, host_inf, host_two, steps=8)
    sampled, starts_inf, starts_two = sample_errors(target, net, 250, seed=6, keep=2, xp=xp)
    attacked = attack(target, net, starts_inf, starts_two, steps=8)
    assert isinstance(sampled.input_linf, np.ndarray) and isinstance(attacked.input_linf, np.ndarray)
    assert np.array_equal(sampled.input_linf, host_sampled.input_linf)
    assert np.array_equal(sampled.input_l2, host_sampled.input_l2)
    assert sampled.linf == pytest.approx(host_sampled.linf, rel=1e-12)
    # Sign steps may part ways only where a gradient entry is a rounding error from zero.
    assert attacked.linf == pytest.approx(host_attacked.linf, rel=1e-9)
    assert attacked.l2 == pytest.approx(host_attacked.l2, rel=1e-9)


def test_certify_cli_backend(tmp_path, capsys) -> None:
    target = small_conv(name="emp1")
    save_npz(target, tmp_path / "target.npz")
    construct(target, eps=0.5, rho=5, seed=3, param_eps=0.02).save(tmp_path / "ticket.npz")
    common = ["certify", str(tmp_path / "target.npz"), str(tmp_path / "ticket.npz"), "--samples", "300",
              "--restarts", "2", "--steps", "4", "--budget", "1", "--json"]
    documents = {}
    for backend in ("numpy", "array-api-strict"):
        assert main([*common, "--backend", backend]) == 0
        documents[backend] = json.loads(capsys.readouterr().out)
    assert documents["array-api-strict"]["sampled_error"] == pytest.approx(documents["numpy"]["sampled_error"], rel=1e-12)
    assert documents["array-api-strict"]["certified_error"] == documents["numpy"]["certified_error"]
    try:
        get_backend("cupy")
    except InvalidInput:
        assert main([*common, "--backend", "cupy"]) == 1
        assert "backend='cupy' is not usable here" in capsys.readouterr().err
