"""The shipped default targets and the digits test split."""

from __future__ import annotations

import numpy as np
import pytest

from ltbounds.errors import InvalidInput
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, ResidualBlock
from ltbounds.nets.embedded import (
    digits_accuracy,
    digits_test_split,
    embedded_sidecar,
    list_embedded,
    load_embedded,
)

CNNS = ["digits_cnn_gelu", "digits_cnn_relu", "digits_cnn_sigmoid", "digits_cnn_tanh"]
MLPS = ["digits_mlp_relu", "digits_mlp_tanh"]
RESNETS = ["digits_resnet_relu", "digits_resnet_tanh"]


def test_list_embedded() -> None:
    assert list_embedded() == CNNS + MLPS + RESNETS


@pytest.mark.parametrize("name", CNNS + MLPS + RESNETS)
def test_targets_load_and_reach_their_recorded_accuracy(name) -> None:
    target = load_embedded(name)
    assert target.name == name
    assert target.input_domain == (0.0, 1.0)
    assert target.notes == ()
    accuracy = digits_accuracy(target)
    assert accuracy == target.metadata["test_accuracy"]
    assert accuracy >= 0.9
    for _, layer in target.linear_layers:
        for values in layer.parameters().values():
            assert np.all(np.abs(values) <= 1.0)  # clipped to [-1, 1] in training
        assert layer.has_bias


@pytest.mark.parametrize("name", CNNS)
def test_cnn_architecture(name) -> None:
    target = load_embedded(name)
    assert target.activation == name.rsplit("_", 1)[1]
    kinds = [type(layer) for layer in target.layers]
    assert kinds == [Conv2d, AvgPool2d, Conv2d, AvgPool2d, Flatten, Dense]
    assert target.input_shape == (1, 8, 8)
    summary = target.shape_summary()
    assert summary.widths == (1, 4, 8, 10)
    assert summary.kernel_sizes == (9, 9, 1)
    assert target.layers[0].padding == (1, 1)
    assert target.shapes[5] == (32,)


@pytest.mark.parametrize("name", RESNETS)
def test_resnet_architecture(name) -> None:
    target = load_embedded(name)
    assert target.activation == name.rsplit("_", 1)[1]
    kinds = [type(layer) for layer in target.layers]
    assert kinds == [Conv2d, ResidualBlock, ResidualBlock, AvgPool2d, Flatten, Dense]
    assert target.input_shape == (1, 8, 8)
    assert target.shapes[1:] == ((8, 8, 8), (8, 8, 8), (16, 4, 4), (16, 1, 1), (16,), (10,))
    identity, downsample = target.layers[1], target.layers[2]
    assert identity.skip is None and identity.activation_out
    assert downsample.skip.kernel_shape == (1, 1) and downsample.skip.stride == (2, 2)
    assert downsample.branch[0].stride == (2, 2)
    summary = target.shape_summary()
    assert summary.widths == (1, 8, 8, 8, 16, 16, 10)
    assert [(b.first_layer, b.last_layer, b.skip) for b in summary.residual_blocks] == [
        (2, 3, "identity"),
        (4, 5, "conv2d"),
    ]
    assert target.num_params.total == 5050


@pytest.mark.parametrize("name", MLPS)
def test_mlp_architecture(name) -> None:
    target = load_embedded(name)
    assert target.input_shape == (64,)
    assert target.shape_summary().widths == (64, 32, 16, 10)


def test_digits_test_split() -> None:
    inputs, labels = digits_test_split()
    assert inputs.shape == (450, 64) and inputs.dtype == np.float64
    assert labels.shape == (450,) and labels.dtype == np.int64
    assert inputs.min() == 0.0 and inputs.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))
    images, _ = digits_test_split((1, 8, 8))
    assert images.shape == (450, 1, 8, 8)
    assert np.array_equal(images.reshape(450, 64), inputs)


def test_refusals_and_sidecar() -> None:
    with pytest.raises(InvalidInput, match="name='resnet' is not an embedded target"):
        load_embedded("resnet")
    assert embedded_sidecar("lt_existence_mnist_cnn").name == "lt_existence_mnist_cnn.json"
    with pytest.raises(InvalidInput, match="no shipped sidecar"):
        embedded_sidecar("nothing")
