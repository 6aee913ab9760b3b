"""ONNX import and export: round trips, onnxruntime cross-checks, PyTorch-style graphs, refusals."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper, numpy_helper

from ltbounds.activations import ACTIVATIONS
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import Dense, TargetNet, load_embedded
from ltbounds.nets.onnx_io import (
    cross_check,
    load_onnx,
    onnxruntime_forward,
    save_onnx,
    target_to_onnx,
)
from ltbounds.strategies import residual_target_nets, target_nets

ROUND_TRIP_TARGETS = ("digits_mlp_relu", "digits_cnn_relu", "digits_cnn_gelu", "digits_resnet_relu")


def _describe(target: TargetNet) -> list[str]:
    return [layer.describe() for layer in target.layers]


@pytest.mark.parametrize("name", ROUND_TRIP_TARGETS)
def test_target_onnx_target_round_trip_within_1e5(tmp_path: Path, name: str) -> None:
    target = load_embedded(name)
    path = save_onnx(target, tmp_path / f"{name}.onnx")
    back = load_onnx(path)
    assert _describe(back) == _describe(target)
    assert (back.activation, back.input_shape, back.input_domain, back.name) == (
        target.activation, target.input_shape, target.input_domain, target.name,
    )  # fmt: skip
    assert back.metadata == target.metadata and back.notes == ()
    x = target.sample_inputs(1000, seed=1)
    assert np.max(np.abs(back.forward(x) - target.forward(x))) < 1e-5
    # the export under onnxruntime against our forward pass, and the import check
    exported = cross_check(target, path, samples=1000, seed=2)
    imported = cross_check(back, path, samples=1000, seed=3)
    assert exported.max_abs_error < 1e-5 and imported.max_abs_error < 1e-5
    assert exported.passed and imported.passed


def test_float64_export_is_exact_for_dense_targets() -> None:
    target = load_embedded("digits_mlp_tanh")
    check = cross_check(target, target_to_onnx(target, dtype="float64"), samples=1000)
    assert check.max_abs_error < 1e-12


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=target_nets() | residual_target_nets())
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, target: TargetNet) -> None:
    path = save_onnx(target, tmp_path_factory.mktemp("p") / "t.onnx")
    back = load_onnx(path)
    assert _describe(back) == _describe(target)
    assert back.activation == target.activation
    x = target.sample_inputs(50, seed=0)
    ours = target.forward(x)
    scale = max(1.0, float(np.max(np.abs(ours))))
    assert np.max(np.abs(back.forward(x) - ours)) <= 1e-5 * scale
    assert cross_check(target, path, samples=50).passed


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_survives_export(name: str) -> None:
    rng = np.random.default_rng(0)
    target = TargetNet([Dense(rng.uniform(-1, 1, (4, 3))), Dense(rng.uniform(-1, 1, (2, 4)))], (3,), name, (-3, 3))
    model = target_to_onnx(target)
    assert load_model_bytes(model.SerializeToString()).activation == name
    assert cross_check(target, model, samples=200).max_abs_error < 1e-5


def load_model_bytes(data: bytes, **kwargs: object) -> TargetNet:
    with tempfile.NamedTemporaryFile(suffix=".onnx", delete=False) as handle:
        handle.write(data)
    try:
        return load_onnx(handle.name, **kwargs)
    finally:
        Path(handle.name).unlink()


# -- graphs as PyTorch exports them ----------------------------------------------------------------
def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-1, 1, shape).astype(np.float32)


def _bn(prefix: str, channels: int, rng: np.random.Generator) -> list:
    return [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), f"{prefix}.weight"),
        numpy_helper.from_array(_f32(rng, channels), f"{prefix}.bias"),
        numpy_helper.from_array(_f32(rng, channels), f"{prefix}.running_mean"),
        numpy_helper.from_array(rng.uniform(0.5, 2.0, channels).astype(np.float32), f"{prefix}.running_var"),
    ]


def _bn_node(x: str, prefix: str, y: str) -> onnx.NodeProto:
    return helper.make_node(
        "BatchNormalization",
        [x, f"{prefix}.weight", f"{prefix}.bias", f"{prefix}.running_mean", f"{prefix}.running_var"],
        [y], name=prefix, epsilon=1e-5,
    )  # fmt: skip


def _gelu_nodes(x: str, y: str, tag: str) -> list:
    """torch.onnx's GELU at opset < 20: Div, Erf, Add, Mul, Mul."""
    return [
        helper.make_node("Div", [x, "sqrt2"], [f"{tag}_d"], name=f"{tag}/Div"),
        helper.make_node("Erf", [f"{tag}_d"], [f"{tag}_e"], name=f"{tag}/Erf"),
        helper.make_node("Add", [f"{tag}_e", "one"], [f"{tag}_a"], name=f"{tag}/Add"),
        helper.make_node("Mul", [x, f"{tag}_a"], [f"{tag}_m"], name=f"{tag}/Mul"),
        helper.make_node("Mul", [f"{tag}_m", "half"], [y], name=f"{tag}/Mul_1"),
    ]


def _model(nodes: list, initializers: list, input_shape: list, output_shape: list) -> bytes:
    graph = helper.make_graph(
        nodes, "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *input_shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", *output_shape])],
        initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_pytorch_style_cnn_with_batchnorm_gelu_matmul(tmp_path: Path) -> None:
    """Conv+BN, GELU as Div/Erf/Add/Mul/Mul, MaxPool, Reshape(0, -1), MatMul+Add, Dropout."""
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(_f32(rng, 4, 1, 3, 3), "conv1.weight"),
        numpy_helper.from_array(_f32(rng, 4), "conv1.bias"),
        *_bn("bn1", 4, rng),
        numpy_helper.from_array(_f32(rng, 64, 5), "fc.weight_t"),
        numpy_helper.from_array(_f32(rng, 5), "fc.bias"),
        numpy_helper.from_array(np.array(1.4142135381698608, np.float32), "sqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], name="/conv1/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        _bn_node("c1", "bn1", "b1"),
        *_gelu_nodes("b1", "g1", "/act"),
        helper.make_node("MaxPool", ["g1"], ["p1"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p1", "flat_shape"], ["f1"], name="/Reshape"),
        helper.make_node("Dropout", ["f1"], ["d1"], name="/drop/Dropout"),
        helper.make_node("MatMul", ["d1", "fc.weight_t"], ["m1"], name="/fc/MatMul"),
        helper.make_node("Add", ["m1", "fc.bias"], ["output"], name="/fc/Add"),
    ]  # fmt: skip
    path = tmp_path / "torch.onnx"
    path.write_bytes(_model(nodes, inits, [1, 8, 8], [5]))
    target = load_onnx(path, input_domain=(0.0, 1.0))
    assert target.activation == "gelu"
    assert _describe(target) == [
        "Conv2d 1→4, kernel 3×3, padding 1", "MaxPool2d kernel 2×2", "Flatten", "Dense 64→5",
    ]  # fmt: skip
    check = cross_check(target, path, samples=1000)
    assert check.max_abs_error < 1e-5, check


def test_pytorch_style_resnet_block_with_projection_and_silu(tmp_path: Path) -> None:
    """x → Conv+BN → SiLU → Conv+BN (+) Conv1x1+BN (skip first in the Add) → SiLU → GAP → Gemm."""
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(_f32(rng, 3, 2, 3, 3), "stem.weight"),
        numpy_helper.from_array(_f32(rng, 6, 3, 3, 3), "l1.conv1.weight"), *_bn("l1.bn1", 6, rng),
        numpy_helper.from_array(_f32(rng, 6, 6, 3, 3), "l1.conv2.weight"), *_bn("l1.bn2", 6, rng),
        numpy_helper.from_array(_f32(rng, 6, 3, 1, 1), "l1.down.weight"), *_bn("l1.down.bn", 6, rng),
        numpy_helper.from_array(_f32(rng, 4, 6), "fc.weight"),
        numpy_helper.from_array(_f32(rng, 4), "fc.bias"),
    ]  # fmt: skip

    def silu(x: str, y: str) -> list:
        return [helper.make_node("Sigmoid", [x], [f"{y}_s"], name=f"{y}/Sigmoid"),
                helper.make_node("Mul", [x, f"{y}_s"], [y], name=f"{y}/Mul")]  # fmt: skip

    nodes = [
        helper.make_node("Conv", ["input", "stem.weight"], ["s0"], name="stem", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *silu("s0", "s1"),
        helper.make_node("Conv", ["s1", "l1.conv1.weight"], ["a0"], name="l1.conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        _bn_node("a0", "l1.bn1", "a1"), *silu("a1", "a2"),
        helper.make_node("Conv", ["a2", "l1.conv2.weight"], ["a3"], name="l1.conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _bn_node("a3", "l1.bn2", "a4"),
        helper.make_node("Conv", ["s1", "l1.down.weight"], ["k0"], name="l1.down", kernel_shape=[1, 1], strides=[2, 2]),
        _bn_node("k0", "l1.down.bn", "k1"),
        helper.make_node("Add", ["k1", "a4"], ["r0"], name="l1/Add"),
        *silu("r0", "r1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], name="flatten", axis=1),
        helper.make_node("Gemm", ["fl", "fc.weight", "fc.bias"], ["output"], name="fc", transB=1, alpha=1.0, beta=1.0),
    ]  # fmt: skip
    path = tmp_path / "resnet.onnx"
    path.write_bytes(_model(nodes, inits, [2, 6, 6], [4]))
    target = load_onnx(path)
    assert target.activation == "silu"
    assert any("input domain not recorded" in note for note in target.notes)
    ((_, block),) = target.residual_blocks
    assert len(block.branch) == 2 and block.skip is not None and block.activation_out
    assert block.skip.describe() == "Conv2d 3→6, kernel 1×1, stride 2"
    check = cross_check(target, path, samples=1000)
    assert check.max_abs_error < 1e-5, check


# -- refusals --------------------------------------------------------------------------------------
def _dense_graph(nodes: list, extra: list | None = None) -> bytes:
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(_f32(rng, 4, 3), "W1"),
        numpy_helper.from_array(_f32(rng, 2, 4), "W2"),
        *(extra or []),
    ]
    return _model(nodes, inits, [3], [2])


def test_refusals_name_node_and_reason() -> None:
    gemm1 = helper.make_node("Gemm", ["input", "W1"], ["h"], name="fc1", transB=1)
    gemm2 = helper.make_node("Gemm", ["a"], ["output"], name="fc2", transB=1)
    gemm2.input.append("W2")
    cases = {
        r"no activation between node 'fc1' \(Gemm\) and node 'fc2' \(Gemm\)": [
            gemm1, helper.make_node("Identity", ["h"], ["a"], name="id"), gemm2],
        r"graph mixes activations relu, tanh": [
            gemm1, helper.make_node("Relu", ["h"], ["r"], name="r"), helper.make_node("Gemm", ["r", "W3"], ["h2"], name="fc1b", transB=1),
            helper.make_node("Tanh", ["h2"], ["a"], name="t"), gemm2],
        r"node 'sm' \(Softmax\) uses operator 'Softmax'": [
            gemm1, helper.make_node("Softmax", ["h"], ["a"], name="sm"), gemm2],
    }  # fmt: skip
    w3 = numpy_helper.from_array(np.ones((4, 4), np.float32), "W3")
    for pattern, nodes in cases.items():
        graph_bytes = _dense_graph(nodes, [w3]) if "W3" in str(nodes) else _dense_graph(nodes)
        with pytest.raises(ModelFormatError, match=pattern):
            load_model_bytes(graph_bytes)


def test_activation_must_directly_follow_the_linear_layer(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(_f32(rng, 2, 1, 3, 3), "K"), numpy_helper.from_array(_f32(rng, 3, 8), "W")]

    def graph(pool: str) -> bytes:
        nodes = [
            helper.make_node("Conv", ["input", "K"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node(pool, ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Relu", ["p"], ["r"], name="relu"),
            helper.make_node("Flatten", ["r"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "W"], ["output"], name="fc", transB=1),
        ]  # fmt: skip
        return _model(nodes, inits, [1, 4, 4], [3])

    # max pooling commutes with a monotone φ: accepted, and it computes the same as onnxruntime
    (tmp_path / "max.onnx").write_bytes(graph("MaxPool"))
    target = load_onnx(tmp_path / "max.onnx")
    assert cross_check(target, tmp_path / "max.onnx", samples=200).max_abs_error < 1e-5
    with pytest.raises(ModelFormatError, match=r"node 'pool' \(AveragePool\) comes between node 'conv' \(Conv\) and its activation"):
        load_model_bytes(graph("AveragePool"))


def test_dead_nodes_are_ignored_and_activation_argument_checked() -> None:
    nodes = [
        helper.make_node("Gemm", ["input", "W1"], ["h"], name="fc1", transB=1),
        helper.make_node("Tanh", ["h"], ["a"], name="tanh"),
        helper.make_node("Softmax", ["a"], ["dead"], name="unused_head"),
        helper.make_node("Gemm", ["a", "W2"], ["output"], name="fc2", transB=1),
    ]
    data = _dense_graph(nodes)
    assert load_model_bytes(data).activation == "tanh"
    with pytest.raises(InvalidInput, match="activation='relu' but the graph applies 'tanh'"):
        load_model_bytes(data, activation="relu")


def test_caps_are_configurable(tmp_path: Path) -> None:
    path = save_onnx(load_embedded("digits_cnn_relu"), tmp_path / "c.onnx")
    with pytest.raises(ModelFormatError, match="over the cap max_bytes=1,000"):
        load_onnx(path, max_bytes=1000)
    with pytest.raises(ModelFormatError, match="over the cap max_elements=100"):
        load_onnx(path, max_elements=100)
    with pytest.raises(ModelFormatError, match="over the cap max_nodes=3"):
        load_onnx(path, max_nodes=3)


def test_onnxruntime_forward_matches_batches() -> None:
    target = load_embedded("digits_mlp_relu")
    model = target_to_onnx(target)
    x = target.sample_inputs(300, seed=5)
    whole = onnxruntime_forward(model, x, batch=1000)
    split = onnxruntime_forward(model, x, batch=7)
    assert np.array_equal(whole, split)
    assert math.isclose(float(np.max(np.abs(whole - target.forward(x)))), cross_check(target, model, samples=300, seed=5).max_abs_error)
