"""The reverse mode (``ltbounds.certify._autodiff``) through sparse layers.

Numpy backward passes through wide, mostly-zero layers run through their nonzero weights
(the transposes of :mod:`ltbounds.nets._sparse`). Their slow, obvious twins here: the dense
transposes every namespace takes (``sparse=False``) and central finite differences. Small
layers never qualify for the sparse path on their own, so the ``always_sparse`` fixture sends
every layer down it; the other tests of the reverse mode (dense paths, every activation) are
in ``test_certify.py`` and ``test_certify_residual.py``.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from _finite_differences import central_vjp
from _small_nets import small_conv, tiny_resnet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.backend import to_numpy
from ltbounds.certify._autodiff import Tape, _linear_vjp
from ltbounds.certify._empirical import attack, sample_errors
from ltbounds.construct import construct
from ltbounds.nets import Conv1d, Conv2d, Dense, Flatten, MaxPool2d, ResidualBlock, TargetNet
from ltbounds.nets._sparse import is_sparse
from ltbounds.strategies import residual_target_nets, target_nets


@pytest.fixture
def always_sparse(monkeypatch):
    """Send every layer down the sparse numpy paths, however small or dense."""
    from ltbounds.nets import _base

    monkeypatch.setattr(_base, "SPARSE_MIN_ENTRIES", 0)
    monkeypatch.setattr(_base, "SPARSE_DENSITY", 1.0)


def _pruned(layer, rng: np.random.Generator, keep: float):
    """``layer`` with about ``1 − keep`` of its weights zeroed (blocks: every inner layer)."""
    if isinstance(layer, ResidualBlock):
        skip = None if layer.skip is None else _pruned(layer.skip, rng, keep)
        return ResidualBlock(tuple(_pruned(inner, rng, keep) for inner in layer.branch), skip, layer.activation_out)
    if not hasattr(layer, "weight"):
        return layer
    return dataclasses.replace(layer, weight=layer.weight * (rng.random(layer.weight.shape) < keep))


def _pruned_net(net: TargetNet, seed: int, keep: float = 0.4) -> TargetNet:
    rng = np.random.default_rng(seed)
    layers = [_pruned(layer, rng, keep) for layer in net.layers]
    return TargetNet(layers, net.input_shape, net.activation, net.input_domain)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0) / (np.max(np.abs(b), initial=0.0) + 1e-300))


def _agree(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return float(np.max(np.abs(a - b), initial=0.0)) <= 1e-12 * scale


# -------------------------------------------------------------------- single layers
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 5), st.integers(0, 5)),
)
def test_sparse_conv2d_vjp_matches_the_dense_transpose(always_sparse, seed, size, kernel, stride, padding) -> None:
    # Padding beyond kernel − 1 makes the transpose crop instead of pad: drawn on purpose.
    if any(s + 2 * p < k for s, p, k in zip(size, padding, kernel, strict=True)):
        return
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), *kernel)
    weight = rng.uniform(-1, 1, shape) * (rng.random(shape) < 0.3)
    layer = Conv2d(weight, None, stride=stride, padding=padding)
    x = rng.normal(size=(2, shape[1], *size))
    grad = rng.normal(size=layer.forward(x).shape)
    assert is_sparse(layer)
    fast = _linear_vjp(layer, x, grad)
    dense = _linear_vjp(layer, x, grad, sparse=False)
    assert fast.shape == dense.shape == x.shape
    scale = 1.0 + np.abs(weight).sum() * np.abs(grad).max()
    assert _agree(fast, dense, scale)
    # The transpose: <g, W x> = <Wᵀ g, x> (bias-free layer).
    assert float(np.sum(grad * layer.forward(x))) == pytest.approx(float(np.sum(fast * x)), rel=1e-10, abs=1e-12)


def test_sparse_conv1d_vjp_matches_the_dense_transpose(always_sparse) -> None:
    rng = np.random.default_rng(3)
    for stride, padding, kernel in itertools.product((1, 2, 3), (0, 1, 4), (1, 3)):
        weight = rng.uniform(-1, 1, (5, 4, kernel)) * (rng.random((5, 4, kernel)) < 0.4)
        layer = Conv1d(weight, rng.normal(size=5), stride=stride, padding=padding)
        x = rng.normal(size=(3, 4, 11))
        grad = rng.normal(size=layer.forward(x).shape)
        assert _agree(_linear_vjp(layer, x, grad), _linear_vjp(layer, x, grad, sparse=False), 1.0 + np.abs(weight).sum() * 4)


def test_sparse_vjp_skips_dead_units_and_never_reads_them(always_sparse) -> None:
    rng = np.random.default_rng(4)
    weight = rng.uniform(-1, 1, (6, 5, 3, 3)) * (rng.random((6, 5, 3, 3)) < 0.3)
    weight[[1, 4]] = 0.0  # two dead outputs: their cotangents are never read
    weight[:, 2] = 0.0  # one input nobody reads: its cotangent is zero
    layer = Conv2d(weight, None, stride=(2, 1), padding=1)
    x = rng.normal(size=(3, 5, 7, 6))
    grad = rng.normal(size=layer.forward(x).shape)
    dense = _linear_vjp(layer, x, grad, sparse=False)
    grad[:, [1, 4]] = np.nan
    fast = _linear_vjp(layer, x, grad)
    assert np.all(fast[:, 2] == 0.0)
    assert _agree(fast, dense, 1.0 + np.abs(weight).sum() * 4)

    matrix = rng.uniform(-1, 1, (12, 40)) * (rng.random((12, 40)) < 0.1)
    matrix[3] = 0.0
    matrix[:, 7] = 0.0
    dense_layer = Dense(matrix, rng.normal(size=12))
    cotangent = rng.normal(size=(4, 12))
    expected = cotangent @ matrix
    cotangent[:, 3] = np.nan
    product = _linear_vjp(dense_layer, rng.normal(size=(4, 40)), cotangent)
    assert np.all(product[:, 7] == 0.0)
    assert _agree(product, expected, 1.0 + np.abs(matrix).sum() * 4)


def test_small_dense_layers_keep_the_dense_transpose() -> None:
    # Under the default rule (as for the forward pass) a small layer never builds a plan.
    rng = np.random.default_rng(5)
    layer = Conv2d(rng.uniform(-1, 1, (3, 2, 3, 3)) * (rng.random((3, 2, 3, 3)) < 0.05), None, padding=1)
    x = rng.normal(size=(2, 2, 5, 5))
    _linear_vjp(layer, x, rng.normal(size=(2, 3, 5, 5)))
    assert not is_sparse(layer)
    assert not any(key[0].startswith("sparse-conv") for key in layer._cache if isinstance(key[0], str))


# ---------------------------------------------------------------------- whole networks
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=st.one_of(target_nets(), residual_target_nets()), seed=st.integers(0, 2**16))
def test_tape_vjp_sparse_matches_dense_on_pruned_nets(always_sparse, net, seed) -> None:
    net = _pruned_net(net, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (3, *net.input_shape))
    tape = Tape(net, x)
    cotangent = rng.normal(size=tape.output.shape)
    fast, dense = tape.vjp(cotangent), tape.vjp(cotangent, sparse=False)
    scale = 1.0 + float(np.abs(dense).max()) + np.prod([1.0 + net_layer_norm(layer) for layer in net.layers])
    assert _agree(fast, dense, scale)


def net_layer_norm(layer) -> float:
    """A crude scale of one layer's products (for the rounding tolerance)."""
    if isinstance(layer, ResidualBlock):
        return sum(net_layer_norm(inner) for inner in (*layer.branch, *([layer.skip] if layer.skip else [])))
    return float(np.abs(layer.weight).sum()) if hasattr(layer, "weight") else 0.0


@pytest.mark.parametrize("build", ["conv", "resnet"])
def test_tape_vjp_on_a_ticket_matches_dense_to_1e12(always_sparse, build) -> None:
    target = small_conv(name="ad1") if build == "conv" else tiny_resnet()
    ticket = construct(target, eps=0.5, rho=4, seed=1, param_eps=0.05).network()
    rng = np.random.default_rng(6)
    x = target.sample_inputs(4, 7)
    tape = Tape(ticket, x)
    cotangent = rng.normal(size=tape.output.shape)
    fast, dense = tape.vjp(cotangent), tape.vjp(cotangent, sparse=False)
    assert _relative(fast, dense) <= 1e-12


def test_sparse_tape_matches_finite_differences(always_sparse) -> None:
    rng = np.random.default_rng(8)
    layers = [
        Conv2d(rng.normal(size=(3, 2, 3, 2)) * (rng.random((3, 2, 3, 2)) < 0.6), rng.normal(size=3), stride=(2, 1), padding=(1, 2)),
        MaxPool2d(2),
        Conv2d(rng.normal(size=(2, 3, 2, 2)), None, 1, 1),
        Flatten(),
        Dense(rng.normal(size=(4, 30)) * (rng.random((4, 30)) < 0.5), rng.normal(size=4)),
    ]
    net = TargetNet(layers, (2, 9, 6), "tanh")
    x = rng.uniform(-1, 1, (2, 2, 9, 6))
    cotangent = rng.normal(size=(2, 4))
    gradient = Tape(net, x).vjp(cotangent)
    numeric = central_vjp(net, x, cotangent)
    assert np.allclose(gradient, numeric, atol=1e-6 * (1 + np.abs(numeric).max()))


def test_other_namespaces_keep_the_dense_transposes(always_sparse, xp) -> None:
    target = small_conv(name="ad2")
    ticket = construct(target, eps=0.5, rho=4, seed=2, param_eps=0.05).network()
    rng = np.random.default_rng(9)
    x = target.sample_inputs(3, 1)
    cotangent = rng.normal(size=(3, 3))
    host = Tape(ticket, x).vjp(cotangent)
    there = to_numpy(Tape(ticket, xp.asarray(x)).vjp(xp.asarray(cotangent)))
    assert _relative(there, host) <= 1e-12


# ------------------------------------------------------------------------------ attack
def test_attack_through_sparse_transposes_finds_the_dense_witness(always_sparse) -> None:
    target = small_conv(name="ad3")
    ticket = construct(target, eps=0.5, rho=5, seed=3, param_eps=0.02).network()
    _, starts_inf, starts_two = sample_errors(target, ticket, 200, seed=4, keep=3)
    fast = attack(target, ticket, starts_inf, starts_two, steps=10)
    dense = attack(target, ticket, starts_inf, starts_two, steps=10, sparse=False)
    # Sign steps part ways only where a gradient entry is a rounding error from zero.
    assert fast.linf == pytest.approx(dense.linf, rel=1e-12)
    assert fast.l2 == pytest.approx(dense.l2, rel=1e-12)
    assert np.allclose(fast.input_linf, dense.input_linf, rtol=0, atol=1e-12)
