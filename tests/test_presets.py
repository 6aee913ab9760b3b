"""Presets: parameter counts recomputed from the documented layer lists, embedded shapes exact."""

from __future__ import annotations

import pytest

from ltbounds.errors import InvalidInput
from ltbounds.nets.embedded import list_embedded, load_embedded
from ltbounds.presets import get_preset, list_presets, shape_from_target


def conv(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    return c_in * c_out * kernel + (c_out if bias else 0)


def test_lenet5_has_its_textbook_parameter_count() -> None:
    preset = get_preset("lenet5")
    expected = conv(1, 6, 25) + conv(6, 16, 25) + conv(400, 120, 1) + conv(120, 84, 1) + conv(84, 10, 1)
    assert expected == 61_706 == preset.shape.target_params
    assert len(preset.layers) == preset.shape.depth == 5


def test_conv6_counts_every_layer_of_its_list() -> None:
    preset = get_preset("conv6")
    channels = [3, 64, 64, 128, 128, 256, 256]
    expected = sum(conv(a, b, 9, False) for a, b in zip(channels, channels[1:], strict=False))
    expected += conv(256 * 4 * 4, 256, 1, False) + conv(256, 256, 1, False) + conv(256, 10, 1, False)
    assert preset.shape.target_params == expected
    assert not preset.shape.has_bias and len(preset.layers) == preset.shape.depth


def test_resnet20_layers_blocks_and_parameters() -> None:
    preset = get_preset("resnet20")
    shape = preset.shape
    assert shape.depth == 20  # 1 + 3 stages × 3 blocks × 2 + 1
    main = conv(3, 16, 9) + 6 * conv(16, 16, 9) + conv(16, 32, 9) + 5 * conv(32, 32, 9)
    main += conv(32, 64, 9) + 5 * conv(64, 64, 9) + conv(64, 10, 1)
    assert shape.target_params == main == 269_034
    assert conv(16, 32, 1) + conv(32, 64, 1) == 2_656
    assert any("2,656" in caveat for caveat in preset.caveats)
    assert shape.residual_blocks == ((2, 3), (4, 5), (6, 7), (10, 11), (12, 13), (16, 17), (18, 19))
    for first, last in shape.residual_blocks:
        assert shape.widths[first - 1] == shape.widths[last]
    assert len(preset.layers) == 11  # stem, 9 blocks, head


def test_embedded_presets_match_their_networks() -> None:
    names = list_presets()
    assert names[:4] == ["lenet5", "conv6", "resnet20", "lt_existence_mnist_cnn"]
    assert names[4:] == list_embedded()
    target = load_embedded("digits_cnn_relu")
    preset = get_preset("digits_cnn_relu")
    # the dense head reads 8 channels of a 2×2 map: k = 4, so the count is exact
    assert preset.shape.kernel_sizes == (9, 9, 4)
    assert preset.shape.target_params == target.num_params.total == 666
    assert preset.shape.weight_norms is None and preset.caveats == ()


def test_projection_skips_are_stated_not_hidden() -> None:
    target = load_embedded("digits_resnet_relu")
    shape, caveats = shape_from_target(target, measured_norms=True)
    assert shape.residual_blocks == ((2, 3),)
    skip = target.num_params.total - shape.target_params
    assert skip == 8 * 16 + 16 and f"{skip:,} projection-skip parameters" in " ".join(caveats)
    assert shape.weight_norms == pytest.approx([layer.lipschitz_inf() for s in target.linear_sites if s.role != "skip" for layer in [s.layer]])
    assert shape.input_bound == 1.0


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="preset='vgg99' is not known; expected one of lenet5"):
        get_preset("vgg99")
