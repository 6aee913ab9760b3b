"""L+1 tickets of residual targets (Burkholz, ICML 2022 blocks; NeurIPS 2022 depth L+1).

Checked against the targets themselves: every usable copy the ticket says carries a target
unit (or a block's output) is compared with that unit on sampled inputs, against the
construction's own per-layer bound; the whole ticket's sampled error against the residual
composition lemma evaluated on the realised per-parameter errors. The folded batch-norm round
trip of a stride-2 projection block is tested in ``tests/test_nets_residual.py``
(``test_folded_batchnorm_equals_unfolded_and_round_trips``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _small_nets import tiny_resnet
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.construct import construct
from ltbounds.construct.evaluation import compact, digits_scores, max_sampled_error
from ltbounds.construct.residual import (
    allot_residual_tolerances,
    chain_bound,
    sensitivities,
    target_facts,
)
from ltbounds.errors import InvalidInput
from ltbounds.nets import Conv2d, Dense, Flatten, ResidualBlock, TargetNet, load_embedded
from ltbounds.strategies import residual_target_nets
from ltbounds.ticket import Ticket


def ticket_layer(target: TargetNet, index: int) -> int:
    """Position in the ticket network of target layer ``index`` (one univariate layer before
    the first linear layer, then one ticket layer per target layer)."""
    first = target.linear_layers[0][0]
    return index + (1 if index >= first else 0)


def check_carried_copies(target: TargetNet, ticket: Ticket, inputs: np.ndarray) -> None:
    """Every usable copy the matches name is within its match's error of its target unit."""
    target_out = target.forward_all(inputs)
    ticket_out = ticket.network().forward_all(inputs)
    sites = [site for site in target.linear_sites if site.role != "skip"]
    for site, match in zip(sites, ticket.matches, strict=True):
        if site.role == "branch" and site.position < len(target.layers[site.index].branch) - 1:
            continue  # inside a block: no top-level output to compare with
        mine = ticket_out[ticket_layer(target, site.index)]
        theirs = target_out[site.index]
        copies, usable = match["copies"], match["usable"]
        for unit in range(copies.shape[0]):
            for k in np.flatnonzero(usable[unit]):
                difference = np.max(np.abs(mine[:, copies[unit, k]] - theirs[:, unit]))
                assert difference <= match["error"] * (1 + 1e-9) + 1e-12
        values = mine[:, match["constants"]]
        expected = np.broadcast_to(
            match["constant_values"].reshape((1, -1) + (1,) * (values.ndim - 2)), values.shape
        )
        np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_tiny_resnet_ticket_carries_every_unit_within_its_bound(activation: str) -> None:
    target = tiny_resnet(activation)
    ticket = construct(target, eps=0.05, rho=6, seed=1)
    inputs = target.sample_inputs(300, seed=4)
    check_carried_copies(target, ticket, inputs)
    sampled = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
    assert sampled <= ticket.metadata["bookkeeping_error"] <= ticket.metadata["predicted_error"]
    # The ticket network has the target's blocks, in order, with the target's skip kinds.
    network = ticket.network()
    blocks = [layer for layer in network.layers if isinstance(layer, ResidualBlock)]
    target_blocks = [block for _, block in target.residual_blocks]
    assert len(blocks) == len(target_blocks) == len(ticket.residual)
    for mine, theirs, record in zip(blocks, target_blocks, ticket.residual, strict=True):
        assert (mine.skip is None) == (theirs.skip is None)
        assert record["skip_kind"] == ("identity" if theirs.skip is None else "projection")
        assert len(mine.branch) == len(theirs.branch) == len(record["branch"])
        if theirs.skip is not None:
            assert mine.skip.stride == theirs.skip.stride and mine.skip.kernel_size == 1
            assert ticket.kept_weights[record["skip"]].size > 0
        assert record["output_error"] == pytest.approx(
            (target.activation_function.lipschitz if theirs.activation_out else 1.0)
            * (record["skip_error"] + record["branch_error"])
        )


def test_identity_skip_is_aligned_with_the_copy_layout() -> None:
    target = tiny_resnet()
    ticket = construct(target, eps=0.05, rho=5, seed=2)
    before, after = ticket.matches[0], ticket.matches[2]  # stem, then the identity block's output
    np.testing.assert_array_equal(before["copies"], after["copies"])
    np.testing.assert_array_equal(before["constants"], after["constants"])
    assert not np.any(after["usable"] & ~before["usable"])  # a usable output needs its skip copy


def test_lemma_drives_the_budget_and_the_prediction() -> None:
    target = tiny_resnet("tanh")
    eps = 0.02
    tolerances = allot_residual_tolerances(target, eps)
    assert len(tolerances) == len(target.linear_sites)
    facts = target_facts(target)
    assert chain_bound(target, facts, tolerances) <= eps
    assert chain_bound(target, facts, [1.001 * t for t in tolerances]) > eps  # the budget is used
    gains = sensitivities(target, facts)
    shares = [t * g for t, g in zip(tolerances, gains, strict=True)]
    assert max(shares) == pytest.approx(min(shares), rel=1e-9)  # equal shares
    ticket = construct(target, eps=eps, rho=6, seed=0)
    assert ticket.metadata["tolerances"] == pytest.approx(tolerances)
    assert ticket.metadata["allotted_bound"] <= eps


def test_residual_ticket_file_is_version_2_and_round_trips(tmp_path) -> None:
    target = tiny_resnet()
    ticket = construct(target, eps=0.05, rho=4, seed=3)
    loaded = Ticket.load(ticket.save(tmp_path / "ticket.npz"))
    import json  # noqa: PLC0415

    with np.load(tmp_path / "ticket.npz", allow_pickle=False) as archive:
        header = json.loads(bytes(archive["header"]).decode())
    assert header["version"] == 2
    assert loaded.residual == ticket.residual
    assert [m["residual_block"] for m in loaded.matches] == [m["residual_block"] for m in ticket.matches]
    inputs = target.sample_inputs(20, seed=0)
    assert np.array_equal(loaded.forward(inputs), ticket.forward(inputs))
    plain = construct(TargetNet([Dense(np.ones((1, 2)), np.zeros(1))], (2,), "relu"), eps=0.1, rho=3)
    plain.save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz", allow_pickle=False) as archive:
        assert json.loads(bytes(archive["header"]).decode())["version"] == 1
    assert Ticket.load(tmp_path / "plain.npz").residual == ()


def test_compaction_of_residual_tickets_computes_the_same_function() -> None:
    target = tiny_resnet("gelu")
    ticket = construct(target, eps=0.05, rho=6, seed=5)
    network = ticket.network()
    small = compact(network)
    assert sum(layer.weight.size for _, layer in small.linear_layers) < sum(
        layer.weight.size for _, layer in network.linear_layers
    )
    inputs = target.sample_inputs(100, seed=1)
    np.testing.assert_allclose(small.forward(inputs), network.forward(inputs), rtol=1e-12, atol=1e-12)


def test_refusals_are_one_line_and_name_the_problem() -> None:
    target = tiny_resnet()
    with pytest.raises(InvalidInput, match="only the L\\+1 construction handles residual"):
        construct(target, eps=0.1, depth="2L", rho=3)
    block_first = TargetNet(
        [ResidualBlock((Dense(np.eye(2)),)), Dense(np.ones((1, 2)))], (2,), "relu", name="bf"
    )
    with pytest.raises(InvalidInput, match="residual block before any linear layer"):
        construct(block_first, eps=0.1, rho=3)
    flat_identity = TargetNet(
        [Conv2d(np.ones((1, 1, 1, 1))), Flatten(), ResidualBlock((Dense(np.eye(4)),)), Dense(np.ones((1, 4)))],
        (1, 2, 2), "relu", name="fi",
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="identity skip cannot be carried"):
        construct(flat_identity, eps=0.1, rho=3)


@settings(max_examples=12, deadline=None)
@given(
    target=residual_target_nets(
        stem=True, bias=True, max_channels=2, max_size=3, max_blocks=2,
        activations=["relu", "leaky_relu", "tanh", "sigmoid", "gelu"], input_domain=(0.0, 1.0),
    ),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_realised_error_never_exceeds_the_lemma_on_realised_errors(target: TargetNet, seed: int) -> None:
    ticket = construct(target, eps=0.05, rho=4, seed=seed)
    assert len(ticket.metadata["site_parameter_errors"]) == len(target.linear_sites)
    inputs = target.sample_inputs(200, seed=seed)
    sampled = float(np.max(np.abs(ticket.forward(inputs) - target.forward(inputs))))
    assert sampled <= ticket.metadata["predicted_error"]
    assert sampled <= ticket.metadata["bookkeeping_error"] * (1 + 1e-9) + 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_l_plus_1_ticket_of_embedded_resnet(activation: str) -> None:
    """Issue 7 acceptance: theorem's ρ, ε = 0.01, 10,000 domain inputs, digits accuracy."""
    target = load_embedded(f"digits_resnet_{activation}")
    ticket = construct(target, eps=0.01, delta=0.05, seed=0)
    sampled = max_sampled_error(target, ticket, 10_000, seed=123)
    assert sampled < 0.01
    assert sampled < ticket.metadata["predicted_error"]
    scores = digits_scores(target, ticket)
    assert abs(scores["ticket_accuracy"] - scores["target_accuracy"]) <= 0.005
    assert ticket.metadata["rho_origin"] == "subset-sum lemma"
