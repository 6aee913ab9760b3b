"""The L+1 and 2L constructions, checked against slow literal references on tiny networks.

The reference re-derives, with plain Python loops over target parameters, what each kept
source weight must realise (LEMMAS.md 2.5, 2.6, 3 (A)): it reads the pruned weights from the
ticket's own network, not from the construction's bookkeeping.
"""

from __future__ import annotations

import numpy as np
import pytest

from ltbounds.construct import construct
from ltbounds.errors import InvalidInput
from ltbounds.nets import Conv2d, Dense, Flatten, TargetNet
from ltbounds.ticket import Ticket


def tiny_dense(activation: str = "relu", seed: int = 0, domain=(-1.0, 1.0)) -> TargetNet:
    rng = np.random.default_rng(seed)
    layers = [
        Dense(rng.uniform(-1, 1, (4, 3)), rng.uniform(-0.5, 0.5, 4)),
        Dense(rng.uniform(-1, 1, (2, 4)), rng.uniform(-0.5, 0.5, 2)),
    ]
    return TargetNet(layers, (3,), activation, domain, name="tiny")


def tiny_conv(activation: str = "relu") -> TargetNet:
    rng = np.random.default_rng(1)
    layers = [
        Conv2d(rng.uniform(-1, 1, (2, 1, 3, 3)), rng.uniform(-0.3, 0.3, 2), padding=1),
        Flatten(),
        Dense(rng.uniform(-1, 1, (2, 2 * 4 * 4)), rng.uniform(-0.3, 0.3, 2)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, (0.0, 1.0), name="tinyconv")


def linear_weights(ticket: Ticket) -> list[tuple[np.ndarray, np.ndarray | None]]:
    network = ticket.network()
    return [(layer.weight, layer.bias) for _, layer in network.linear_layers]


def check_univariate_pair_literally(
    target_weight: np.ndarray,
    target_bias: np.ndarray,
    univariate: tuple[np.ndarray, np.ndarray],
    implementing: np.ndarray,
    match: dict,
    rho_first: int,
    tolerance: float,
    activation,
    nonnegative_input: bool = False,
) -> int:
    """Loop over target parameters; return how many exceed the tolerance (misses).

    With ``nonnegative_input`` (a ReLU layer's output feeds the block) φ(−x) = 0, so only the
    positive half realises w and no unit with u < 0 may be read.
    """
    u_matrix, beta = univariate
    n_out, n_in = target_weight.shape
    misses = 0
    copies, usable = match["copies"], match["usable"]
    for j in range(n_out):
        for k in range(copies.shape[1]):
            if not usable[j, k]:
                continue
            o = copies[j, k]
            for i in range(n_in):
                positive = negative = 0.0
                for s in range(rho_first):
                    unit = i * rho_first + s
                    v = implementing[o, unit]
                    if v == 0:
                        continue
                    u = u_matrix[unit, i]
                    assert u != 0, "a kept outgoing weight needs its univariate input weight"
                    # Every univariate unit reads only its own input.
                    assert np.count_nonzero(u_matrix[unit]) == 1
                    if u > 0:
                        positive += v * u
                    else:
                        negative += v * abs(u)
                misses += abs(positive - target_weight[j, i]) > tolerance
                if nonnegative_input:
                    assert negative == 0.0
                else:
                    misses += abs(negative + target_weight[j, i]) > tolerance
            bias = 0.0
            for unit in range(n_in * rho_first, u_matrix.shape[0]):
                if implementing[o, unit] != 0:
                    bias += implementing[o, unit] * activation(np.array([beta[unit]]))[0]
            misses += abs(bias - target_bias[j]) > tolerance
    return misses


def test_l_plus_1_dense_relu_matches_literal_reference() -> None:
    target = tiny_dense()
    tolerance = 1e-3
    ticket = construct(target, eps=0.1, rho=12, param_eps=tolerance, seed=3)
    (u_matrix, beta), (v2, _), (v3, _) = linear_weights(ticket)
    w1, b1 = target.layers[0].weight, target.layers[0].bias
    act = target.activation_function
    literal_misses = check_univariate_pair_literally(
        w1, b1, (u_matrix, beta), v2, ticket.matches[0], ticket.metadata["rho_first"], tolerance, act
    )
    # Output layer: each target weight is a plain subset sum over the usable copies.
    w2, b2 = target.layers[1].weight, target.layers[1].bias
    copies, usable = ticket.matches[0]["copies"], ticket.matches[0]["usable"]
    for j in range(2):
        for i in range(4):
            total = sum(v3[j, copies[i, s]] for s in range(copies.shape[1]) if usable[i, s])
            literal_misses += abs(total - w2[j, i]) > tolerance
            for s in range(copies.shape[1]):
                if not usable[i, s]:
                    assert v3[j, copies[i, s]] == 0, "an unusable copy must not be read"
        constants = ticket.matches[0]["constants"]
        values = ticket.matches[0]["constant_values"]
        bias = sum(v3[j, c] * value for c, value in zip(constants, values, strict=True))
        literal_misses += abs(bias - b2[j]) > tolerance
    assert literal_misses == ticket.metadata["missed_subset_sums"]


def test_two_l_dense_relu_matches_literal_reference() -> None:
    target = tiny_dense()
    tolerance = 1e-3
    ticket = construct(target, eps=0.1, depth="2L", rho=12, param_eps=tolerance, seed=5)
    weights = linear_weights(ticket)
    assert len(weights) == 4
    act = target.activation_function
    misses = 0
    rho_first = ticket.metadata["rho_first"]
    for layer in range(2):
        (u_matrix, beta), (v, _) = weights[2 * layer], weights[2 * layer + 1]
        target_layer = target.layers[layer]
        if layer == 1:
            # The univariate layer of pair 2 reads target layer 1's units (one copy each).
            assert ticket.matches[0]["copies"].shape == (4, 1)
        misses += check_univariate_pair_literally(
            target_layer.weight, target_layer.bias, (u_matrix, beta), v,
            ticket.matches[layer], rho_first, tolerance, act, nonnegative_input=layer == 1,
        )
    assert misses == ticket.metadata["missed_subset_sums"]


@pytest.mark.parametrize("depth", ["L+1", "2L"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "gelu"])
def test_ticket_output_error_is_within_the_predicted_bound(depth: str, activation: str) -> None:
    target = tiny_dense(activation)
    ticket = construct(target, eps=0.05, depth=depth, rho=16, seed=7)
    inputs = target.sample_inputs(2000, seed=11)
    sampled = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
    assert sampled <= ticket.metadata["predicted_error"]


def test_conv_l_plus_1_relu_is_accurate() -> None:
    target = tiny_conv()
    ticket = construct(target, eps=0.01, seed=2)
    inputs = target.sample_inputs(500, seed=1)
    sampled = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
    assert sampled <= ticket.metadata["predicted_error"]
    assert sampled < 0.01


def test_sigmoid_offset_is_cancelled_through_padding() -> None:
    target = tiny_conv("sigmoid")
    ticket = construct(target, eps=0.01, seed=2)
    inputs = target.sample_inputs(500, seed=1)
    sampled = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
    assert sampled <= ticket.metadata["predicted_error"]
    assert sampled < 0.01


def test_same_seed_same_ticket_and_file_roundtrip_is_bit_identical(tmp_path) -> None:
    target = tiny_conv()
    first = construct(target, eps=0.05, rho=6, seed=9)
    second = construct(target, eps=0.05, rho=6, seed=9)
    for a, b in zip(first.kept_weights, second.kept_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    path = first.save(tmp_path / "ticket.npz")
    loaded = Ticket.load(path)
    inputs = target.sample_inputs(50, seed=3)
    assert np.array_equal(loaded.forward(inputs), first.forward(inputs))
    assert loaded.metadata == first.metadata
    for a, b in zip(loaded.matches, first.matches, strict=True):
        np.testing.assert_array_equal(a["copies"], b["copies"])
    other = construct(target, eps=0.05, rho=6, seed=10)
    assert any(a.size != b.size or np.any(a != b) for a, b in zip(other.kept_weights, first.kept_weights, strict=True))


def test_misses_are_reported_not_hidden() -> None:
    target = tiny_dense()
    ticket = construct(target, eps=0.01, rho=2, param_eps=1e-6, seed=0)
    assert ticket.metadata["missed_subset_sums"] > 0
    assert ticket.metadata["worst_parameter_error"] > 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, "eps=0.0 must be > 0"),
        ({"eps": -1.0}, "eps=-1.0 must be > 0"),
        ({"eps": 0.1, "delta": 1.5}, "delta=1.5"),
        ({"eps": 0.1, "depth": "3L"}, "depth='3L'"),
        ({"eps": 0.1, "rho": 0}, "rho=0 must be >= 1"),
        ({"eps": 0.1, "objective": "dense"}, "objective='dense'"),
        ({"eps": 0.1, "param_eps": float("nan")}, "param_eps=nan"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        construct(tiny_dense(), **kwargs)


def test_ticket_refuses_a_foreign_target() -> None:
    ticket = construct(tiny_dense(seed=0), eps=0.1, rho=4, seed=0)
    with pytest.raises(InvalidInput, match="ticket was built for target"):
        ticket.check_target(tiny_dense(seed=1))


def test_residual_targets_are_refused_by_the_2l_construction() -> None:
    from ltbounds.nets import load_embedded

    with pytest.raises(InvalidInput, match="only the L\\+1 construction handles residual"):
        construct(load_embedded("digits_resnet_relu"), eps=0.1, depth="2L", rho=4)


def _draw_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the array type of every index array the source draws from during a construction."""
    from ltbounds.nets import SourceNet

    seen: list[str] = []
    original = SourceNet._values

    def spy(self, layer, kind, flat_index, xp):
        seen.append(type(flat_index).__module__.split(".")[0])
        return original(self, layer, kind, flat_index, xp)

    monkeypatch.setattr(SourceNet, "_values", spy)
    return seen


@pytest.mark.parametrize("target", [tiny_conv, lambda: tiny_dense("sigmoid")], ids=["conv_relu", "dense_sigmoid"])
def test_source_weights_are_drawn_on_the_chosen_namespace_and_give_the_same_ticket(
    target, xp, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Issue 11: construct(xp=...) draws every source weight on ``xp`` (no silent numpy
    fallback), and the ticket is byte for byte the numpy one (L+1 and 2L)."""
    network = target()
    seen = _draw_spy(monkeypatch)
    for depth in ("L+1", "2L"):
        seen.clear()
        on_numpy = construct(network, eps=0.05, depth=depth, rho=4, seed=3)
        assert seen and set(seen) == {"numpy"}
        seen.clear()
        on_xp = construct(network, eps=0.05, depth=depth, rho=4, seed=3, xp=xp)
        module = type(xp.asarray([0])).__module__.split(".")[0]
        assert seen and set(seen) == {module}
        a, b = tmp_path / f"numpy{depth}.npz", tmp_path / f"xp{depth}.npz"
        on_numpy.save(a)
        on_xp.save(b)
        assert a.read_bytes() == b.read_bytes()


def test_draw_source_returns_host_arrays_equal_to_the_numpy_draw(xp) -> None:
    from ltbounds.construct.blocks import draw_source
    from ltbounds.nets import SourceNet

    source = SourceNet(5, [(7, 3, 2, 2)], [(7,)], [(-0.5, 2.0)], [(0.0, 1.0)])
    flat = np.arange(84, dtype=np.int64).reshape(12, 7)[::-1]
    for bias, index in ((False, flat), (True, np.array([6, 0, 3]))):
        drawn = draw_source(source, 0, index, xp, bias=bias)
        expected = source.biases(0, index) if bias else source.weights(0, index)
        assert isinstance(drawn, np.ndarray) and drawn.dtype == np.float64
        assert drawn.tobytes() == expected.tobytes()
