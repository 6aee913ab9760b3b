"""SourceNet: weights regenerated from (seed, layer, index), blocks, budgets, backends."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from ltbounds.backend import namespace, to_numpy
from ltbounds.errors import InvalidInput, ResourceLimitError
from ltbounds.nets import SourceNet
from ltbounds.rng import stream_id, uniform
from ltbounds.strategies import source_nets


def make() -> SourceNet:
    return SourceNet(
        42,
        [(6, 5), (4, 6, 3, 3), (3, 4)],
        [None, (4,), (3,)],
        [(-2.0, 2.0), (-1.0, 1.0), (-1.0, 1.0)],
        [None, (0.0, 2.0), None],
    )


def test_weights_follow_the_documented_formula() -> None:
    source = make()
    index = np.arange(30)
    expected = -2.0 + 4.0 * uniform(42, stream_id("source", 0), index)
    assert np.array_equal(source.weights(0, index), expected)
    assert np.array_equal(source.full_weight(0).ravel(), expected)
    bias = source.full_bias(1)
    assert np.array_equal(bias, 2.0 * uniform(42, stream_id("source", 3), np.arange(4)))
    assert np.all(bias >= 0) and np.all(bias < 2)
    assert source.bias_ranges[2] == (-1.0, 1.0)  # defaults to the weight range
    assert source.num_params == 30 + 216 + 4 + 12 + 3


def test_streams_never_collide() -> None:
    source = make()
    streams = [source.stream(layer, kind) for layer in range(3) for kind in ("weight", "bias")]
    assert len(set(streams)) == 6
    first = [source.full_weight(0).ravel()[:3], source.full_weight(2).ravel()[:3]]
    first.append(source.full_bias(2)[:3])
    assert len({tuple(values) for values in first}) == 3


def test_blocks_equal_slices_of_the_full_tensor() -> None:
    source = make()
    full = source.full_weight(1)
    rows = np.array([3, 0, 2])
    cols = np.array([5, 1])
    assert np.array_equal(source.weight_block(1, (rows, cols)), full[np.ix_(rows, cols)])
    assert np.array_equal(source.weight_block(1, (slice(1, 3), 2)), full[1:3, 2])
    assert np.array_equal(source.weight_block(1, (2, slice(None), 1, -1)), full[2, :, 1, -1])
    assert np.array_equal(source.weight_block(1, (slice(None, None, 2),)), full[::2])
    assert np.array_equal(source.bias_block(1, np.array([3, 1])), source.full_bias(1)[[3, 1]])
    flat = np.array([[0, 215], [17, 100]])
    assert np.array_equal(source.weights(1, flat), full.ravel()[flat])


def test_order_and_batching_do_not_matter() -> None:
    source = make()
    full = source.full_weight(1).ravel()
    permutation = np.random.default_rng(0).permutation(full.size)
    assert np.array_equal(source.weights(1, permutation), full[permutation])
    again = SourceNet.from_config(source.to_config())
    assert np.array_equal(again.full_weight(1).ravel(), full)


def test_every_backend_gives_the_same_bits(xp) -> None:
    source = make()
    index = np.arange(216)
    weights = source.weights(1, xp.asarray(index))
    assert namespace(weights) is xp
    assert np.array_equal(to_numpy(weights), source.weights(1, index))
    full = source.full_weight(1, xp=xp)
    assert np.array_equal(to_numpy(full), source.full_weight(1))
    block = source.weight_block(1, (np.array([1, 2]), 0), xp=xp)
    assert np.array_equal(to_numpy(block), source.weight_block(1, (np.array([1, 2]), 0)))


def test_memory_budget_is_enforced_with_the_estimate() -> None:
    source = SourceNet(0, [(10_000, 10_000)], max_bytes=2**20)
    with pytest.raises(
        ResourceLimitError, match=r"needs about 1,525\.9 MiB, over the budget of 1\.0 MiB"
    ):
        source.full_weight(0)
    with pytest.raises(ResourceLimitError, match="source layer 1"):
        make().full_weight(1, max_bytes=100)
    # Slices of a huge layer are still cheap.
    assert source.weight_block(0, (slice(0, 2), slice(9_998, None))).shape == (2, 2)


def test_refusals() -> None:
    source = make()
    with pytest.raises(InvalidInput, match="layer=3 must be <= 2"):
        source.weights(3, np.arange(2))
    with pytest.raises(InvalidInput, match="layer=0 of the source network has no bias"):
        source.full_bias(0)
    with pytest.raises(InvalidInput, match=r"expected \[0, 29\]"):
        source.weights(0, np.array([30]))
    with pytest.raises(InvalidInput, match="integer array"):
        source.weights(0, np.array([0.5]))
    with pytest.raises(InvalidInput, match="outside"):
        source.weight_block(0, (np.array([6]),))
    with pytest.raises(InvalidInput, match="3 selectors"):
        source.weight_block(0, (0, 0, 0))
    with pytest.raises(InvalidInput, match="kind='x'"):
        source.stream(0, "x")
    with pytest.raises(InvalidInput, match="bias_shapes has 1 entries"):
        SourceNet(0, [(1, 1), (1, 1)], [None])
    with pytest.raises(InvalidInput, match=r"ranges\[0\]"):
        SourceNet(0, [(1, 1)], None, [(1.0, -1.0)])
    with pytest.raises(InvalidInput, match="seed=-1"):
        SourceNet(-1, [(1, 1)])
    with pytest.raises(InvalidInput, match=r"weight_shapes\[0\] entry=0"):
        SourceNet(0, [(0, 1)])


@settings(max_examples=25)
@given(source=source_nets())
def test_random_sources_stay_in_range_and_are_reproducible(source) -> None:
    for layer in range(source.num_layers):
        low, high = source.ranges[layer]
        values = source.full_weight(layer)
        assert values.shape == source.weight_shapes[layer]
        assert np.all(values >= low) and np.all(values <= high)
        assert np.array_equal(values, SourceNet.from_config(source.to_config()).full_weight(layer))
        if source.bias_shapes[layer] is not None:
            assert source.full_bias(layer).shape == source.bias_shapes[layer]
