"""Residual blocks and batch-norm folding (Burkholz, ICML 2022: residual targets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS
from ltbounds.backend import to_numpy
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import (
    AvgPool2d,
    Conv1d,
    Conv2d,
    Dense,
    Flatten,
    MaxPool2d,
    ResidualBlock,
    TargetNet,
    fold_batchnorm,
    load_npz,
    save_npz,
)
from ltbounds.strategies import residual_target_nets

DATA = Path(__file__).resolve().parent / "data"
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- literal reference implementations -----------------------------------------------------------


def literal_conv2d(x, weight, bias, stride, padding):
    """Convolution as four nested loops over the definition (PyTorch's cross-correlation)."""
    batch, cin, height, width = x.shape
    cout, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((batch, cout, oh, ow))
    for o in range(cout):
        for i in range(oh):
            for j in range(ow):
                total = np.zeros(batch) if bias is None else np.full(batch, bias[o])
                for c in range(cin):
                    for u in range(kh):
                        for v in range(kw):
                            r, s = i * sh + u - ph, j * sw + v - pw
                            if 0 <= r < height and 0 <= s < width:
                                total = total + weight[o, c, u, v] * x[:, c, r, s]
                out[:, o, i, j] = total
    return out


def literal_linear(layer, x):
    if isinstance(layer, Dense):
        out = np.array([[sum(layer.weight[o, i] * row[i] for i in range(row.size))
                         for o in range(layer.out_channels)] for row in x])  # fmt: skip
        return out if layer.bias is None else out + layer.bias
    if isinstance(layer, Conv1d):
        as2d = literal_conv2d(x[:, :, None, :], layer.weight[:, :, None, :], layer.bias,
                              (1, layer.stride[0]), (0, layer.padding[0]))  # fmt: skip
        return as2d[:, :, 0, :]
    return literal_conv2d(x, layer.weight, layer.bias, layer.stride, layer.padding)


def literal_forward(target: TargetNet, x: np.ndarray) -> np.ndarray:
    """The residual rule written out: y = φ_out(skip(x) + W_k φ(... φ(W_1 x))), φ after every
    top-level linear layer that has another linear layer or block after it."""
    phi = ACTIVATIONS[target.activation].forward
    units = [i for i, layer in enumerate(target.layers)
             if layer.is_linear or isinstance(layer, ResidualBlock)]  # fmt: skip
    for index, layer in enumerate(target.layers):
        if isinstance(layer, ResidualBlock):
            h = x
            for position, inner in enumerate(layer.branch):
                h = literal_linear(inner, h)
                if position < len(layer.branch) - 1:
                    h = phi(h)
            skip = x if layer.skip is None else literal_linear(layer.skip, x)
            x = phi(skip + h) if layer.activation_out else skip + h
        elif layer.is_linear:
            x = literal_linear(layer, x)
            if index != units[-1]:
                x = phi(x)
        else:
            x = layer.forward(x)  # pooling and flatten are tested in test_nets_layers.py
    return x


def rng_target(activation: str = "relu") -> TargetNet:
    """Stem conv, an identity block, a stride-2 projection block, pooling and a dense head."""
    rng = np.random.default_rng(7)

    def conv(cout, cin, k, stride=1, padding=0, bias=True):
        return Conv2d(rng.uniform(-1, 1, (cout, cin, k, k)), rng.uniform(-1, 1, cout) if bias else None,
                      stride=stride, padding=padding)  # fmt: skip

    layers = [
        conv(3, 1, 3, padding=1),
        ResidualBlock((conv(3, 3, 3, padding=1), conv(3, 3, 3, padding=1, bias=False))),
        ResidualBlock((conv(4, 3, 3, 2, 1), conv(4, 4, 3, padding=1)), conv(4, 3, 1, 2)),
        AvgPool2d(3),
        Flatten(),
        Dense(rng.uniform(-1, 1, (5, 4)), rng.uniform(-1, 1, 5)),
    ]
    return TargetNet(layers, (1, 6, 6), activation, (0.0, 1.0), name="res")


# -- forward -------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_forward_matches_literal_loops(activation) -> None:
    target = rng_target(activation)
    x = target.sample_inputs(3, seed=1)
    assert np.allclose(target.forward(x), literal_forward(target, x), rtol=1e-12, atol=1e-12)
    assert target.shapes == ((1, 6, 6), (3, 6, 6), (3, 6, 6), (4, 3, 3), (4, 1, 1), (4,), (5,))
    # φ after the stem (a block follows), none after the head; blocks apply their own.
    assert [target.is_activated(i) for i in range(6)] == [True, False, False, False, False, False]


@FAST
@given(residual_target_nets(max_channels=2, max_size=4), st.integers(0, 2**32 - 1))
def test_forward_matches_literal_loops_on_random_targets(target, seed) -> None:
    x = target.sample_inputs(2, seed=seed)
    expected = literal_forward(target, x)
    assert np.allclose(target.forward(x), expected, rtol=1e-11, atol=1e-11)


def test_every_backend_gives_the_numpy_results(xp) -> None:
    target = rng_target("gelu")
    x = target.sample_inputs(3, seed=2)
    assert np.allclose(to_numpy(target.forward(xp.asarray(x))), target.forward(x), rtol=1e-13, atol=1e-13)
    low, high = target.interval(xp.asarray(x[0] - 0.1), xp.asarray(x[0] + 0.1))
    ref_low, ref_high = target.interval(x[0] - 0.1, x[0] + 0.1)
    assert np.allclose(to_numpy(low), ref_low, atol=1e-13) and np.allclose(to_numpy(high), ref_high, atol=1e-13)


def test_block_hooks_take_the_activation() -> None:
    block = rng_target().layers[2]
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 6, 6))
    by_name = block.forward(x, "tanh")
    by_object = block.forward(x, ACTIVATIONS["tanh"])
    assert np.array_equal(by_name, by_object)
    manual = np.tanh(block.skip.forward(x) + block.branch[1].forward(np.tanh(block.branch[0].forward(x))))
    assert np.allclose(by_name, manual, atol=1e-14)
    linear = ResidualBlock(block.branch, block.skip, activation_out=False)
    assert np.allclose(np.tanh(linear.forward(x, "tanh")), by_name, atol=1e-14)
    with pytest.raises(InvalidInput, match="activation='nope'"):
        block.forward(x, "nope")
    assert block.takes_activation and not block.is_linear
    assert block.linear_layers == (*block.branch, block.skip) and block.depth == 2
    assert "skip: Conv2d 3→4, kernel 1×1, stride 2" in block.describe()


# -- interval bounds and Lipschitz constants --------------------------------------------------------


@FAST
@given(residual_target_nets(max_channels=3, max_size=4), st.integers(0, 2**32 - 1))
def test_interval_bounds_are_sound_by_sampling(target, seed) -> None:
    samples = target.sample_inputs(200, seed=seed)
    outputs = target.forward_all(samples)
    for (low, high), values in zip(target.layer_bounds(), outputs, strict=True):
        slack = 1e-9 * (1 + np.abs(values))
        assert np.all(values >= low - slack) and np.all(values <= high + slack)
    # Inputs of every linear layer, branch interiors included.
    inputs = _linear_inputs(target, samples)
    bounds = target.linear_input_bounds()
    assert len(bounds) == len(inputs) == len(target.linear_layers)
    for (low, high), values in zip(bounds, inputs, strict=True):
        slack = 1e-9 * (1 + np.abs(values))
        assert np.all(values >= low - slack) and np.all(values <= high + slack)
    norms = target.input_norm_bounds()
    for bound, values in zip(norms, inputs, strict=True):
        assert np.max(np.abs(values)) <= bound * (1 + 1e-9) + 1e-12


def _linear_inputs(target: TargetNet, x: np.ndarray) -> list[np.ndarray]:
    """The value entering every linear layer, as TargetNet.linear_layers orders them."""
    phi = target.activation_function
    out = []
    for index, layer in enumerate(target.layers):
        if isinstance(layer, ResidualBlock):
            h = x
            for position, inner in enumerate(layer.branch):
                out.append(h)
                h = inner.forward(h)
                if position < len(layer.branch) - 1:
                    h = phi.forward(h)
            if layer.skip is not None:
                out.append(x)
            x = layer.forward(x, phi)
        else:
            if layer.is_linear:
                out.append(x)
            x = layer.forward(x)
            if target.is_activated(index):
                x = phi.forward(x)
    return out


@FAST
@given(residual_target_nets(max_channels=3, max_size=4), st.integers(0, 2**32 - 1))
def test_block_lipschitz_bound_holds_on_sampled_pairs(target, seed) -> None:
    rng = np.random.default_rng(seed)
    for index, block in target.residual_blocks:
        shape = target.shapes[index]
        x = rng.uniform(-1, 1, (64, *shape))
        y = x + rng.uniform(-1e-3, 1e-3, x.shape)
        phi = target.activation_function
        linear = ResidualBlock(block.branch, block.skip, activation_out=False)
        change = np.abs(linear.forward(x, phi) - linear.forward(y, phi)).reshape(64, -1).max(axis=1)
        distance = np.abs(x - y).reshape(64, -1).max(axis=1)
        bound = block.lipschitz_inf(phi)
        assert np.all(change <= bound * distance * (1 + 1e-9) + 1e-15)


def test_lipschitz_formula() -> None:
    block = rng_target().layers[2]
    norms = [layer.lipschitz_inf() for layer in block.branch]
    sigmoid = ACTIVATIONS["sigmoid"]
    expected = block.skip.lipschitz_inf() + norms[0] * norms[1] * sigmoid.lipschitz
    assert block.lipschitz_inf("sigmoid") == pytest.approx(expected, rel=1e-15)
    identity = rng_target().layers[1]
    assert identity.lipschitz_inf("relu") == pytest.approx(
        1 + identity.branch[0].lipschitz_inf() * identity.branch[1].lipschitz_inf()
    )


def test_interval_of_identity_block_with_zero_branch_is_the_input() -> None:
    zero = ResidualBlock((Dense(np.zeros((2, 2))),), None, activation_out=False)
    low, high = np.array([[-1.0, 0.0]]), np.array([[0.5, 2.0]])
    assert all(np.array_equal(a, b) for a, b in zip(zero.interval(low, high, "relu"), (low, high), strict=True))


# -- TargetNet bookkeeping ---------------------------------------------------------------------


def test_target_accounts_for_blocks() -> None:
    target = rng_target()
    sites = target.linear_sites
    assert [(s.index, s.role, s.position) for s in sites] == [
        (0, "plain", 0), (1, "branch", 0), (1, "branch", 1),
        (2, "branch", 0), (2, "branch", 1), (2, "skip", 0), (5, "plain", 0),
    ]  # fmt: skip
    assert [s.key for s in sites] == ["0", "1.branch.0", "1.branch.1", "2.branch.0", "2.branch.1", "2.skip", "5"]
    assert [i for i, _ in target.linear_layers] == [0, 1, 1, 2, 2, 2, 5]
    assert [i for i, _ in target.residual_blocks] == [1, 2]
    assert target.depth == 6  # the projection runs parallel to its branch
    count = target.num_params
    assert count.total == sum(v.size for _, layer in target.linear_layers for v in layer.parameters().values())
    assert count.total == (27 + 3) + (81 + 3) + 81 + (108 + 4) + (144 + 4) + (12 + 4) + (20 + 5)
    summary = target.shape_summary()
    assert summary.widths == (1, 3, 3, 3, 4, 4, 5) and summary.depth == 6
    assert summary.kernel_sizes == (9, 9, 9, 9, 9, 1)
    assert [(b.first_layer, b.last_layer, b.skip, b.skip_kernel_size) for b in summary.residual_blocks] == [
        (2, 3, "identity", 0), (4, 5, "conv2d", 1),
    ]  # fmt: skip
    assert summary.to_dict()["residual_blocks"][1]["skip"] == "conv2d"
    assert len(target.lipschitz_inf()) == len(target.input_norm_bounds()) == 7
    norms = target.input_norm_bounds()
    assert norms[0] == 1.0 and norms[3] == norms[5]  # the projection sees its block's input
    assert "ResidualBlock φ(skip + branch)" in target.describe()


def test_plain_targets_are_unchanged() -> None:
    rng = np.random.default_rng(3)
    net = TargetNet([Dense(rng.uniform(-1, 1, (3, 2))), Dense(rng.uniform(-1, 1, (1, 3)))], (2,), "tanh")
    assert net.shape_summary().residual_blocks == () and net.residual_blocks == []
    assert [s.role for s in net.linear_sites] == ["plain", "plain"]
    assert net.input_norm_bounds()[0] == 1.0


def test_a_target_of_one_block_is_allowed() -> None:
    block = ResidualBlock((Dense(np.eye(2)),), None, activation_out=False)
    target = TargetNet([block], (2,), "relu")
    x = np.array([[0.5, -0.25]])
    assert np.array_equal(target.forward(x), 2 * x)
    assert target.depth == 1 and target.shape_summary().widths == (2, 2)


# -- shape and argument errors ----------------------------------------------------------------------


def test_shape_errors_name_block_and_shapes() -> None:
    rng = np.random.default_rng(0)
    conv = lambda cout, cin, k=3, **kw: Conv2d(rng.uniform(-1, 1, (cout, cin, k, k)), **kw)  # noqa: E731
    identity_changes_channels = ResidualBlock((conv(4, 3, padding=1),))
    with pytest.raises(InvalidInput, match=r"layer 1 \(residual block\): branch output \(4, 6, 6\) and skip "
                       r"output \(3, 6, 6\) differ.*use a projection skip") as info:  # fmt: skip
        TargetNet([conv(3, 1, padding=1), identity_changes_channels], (1, 6, 6), "relu")
    assert "\n" not in str(info.value)
    wrong_stride = ResidualBlock((conv(4, 3, stride=2, padding=1),), conv(4, 3, 1))
    with pytest.raises(InvalidInput, match=r"branch output \(4, 3, 3\) and skip output \(4, 6, 6\) differ"):
        wrong_stride.output_shape((3, 6, 6), index=2)
    broken_branch = ResidualBlock((conv(4, 3, padding=1), conv(4, 5, padding=1)), conv(4, 3, 1))
    with pytest.raises(InvalidInput, match=r"layer 2 \(residual block\), branch: layer 1 \(Conv2d 5→4"):
        broken_branch.output_shape((3, 6, 6), index=2)
    bad_skip = ResidualBlock((conv(4, 3, padding=1),), Dense(np.ones((4, 3))))
    with pytest.raises(InvalidInput, match=r"residual block\), skip: .*Dense 3→4"):
        bad_skip.output_shape((3, 6, 6))


def test_constructor_refusals() -> None:
    dense = Dense(np.ones((2, 2)))
    with pytest.raises(InvalidInput, match="at least one linear layer"):
        ResidualBlock(())
    with pytest.raises(InvalidInput, match="branch layer 1 is MaxPool2d"):
        ResidualBlock((dense, MaxPool2d(2)))
    with pytest.raises(InvalidInput, match="branch layer 0 is ResidualBlock.*do not nest"):
        ResidualBlock((ResidualBlock((dense,)),))
    with pytest.raises(InvalidInput, match="must be a sequence"):
        ResidualBlock(dense)
    with pytest.raises(InvalidInput, match="skip is Flatten"):
        ResidualBlock((dense,), Flatten())
    with pytest.raises(InvalidInput, match="activation_out=1 must be True or False"):
        ResidualBlock((dense,), None, 1)
    nan = np.ones((2, 2))
    nan[0, 1] = np.nan
    with pytest.raises(InvalidInput, match=r"layer 0 skip \(Dense 2→2, no bias\) weight holds nan at index \(0, 1\)"):
        TargetNet([ResidualBlock((dense,), Dense(nan))], (2,), "relu")


# -- batch normalisation ---------------------------------------------------------------------------


def test_fold_batchnorm_formula() -> None:
    rng = np.random.default_rng(4)
    weight, bias = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    gamma, beta, mean = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3)
    var, eps = rng.uniform(0.1, 2, 3), 1e-3
    folded_weight, folded_bias = fold_batchnorm(weight, bias, gamma, beta, mean, var, eps)
    for c in range(3):
        scale = gamma[c] / np.sqrt(var[c] + eps)
        assert np.allclose(folded_weight[c], weight[c] * scale, rtol=1e-15)
        assert folded_bias[c] == pytest.approx((bias[c] - mean[c]) * scale + beta[c], rel=1e-14)
    _, no_bias = fold_batchnorm(weight, None, gamma, beta, mean, var, eps)
    assert np.allclose(no_bias, -mean * gamma / np.sqrt(var + eps) + beta)
    with pytest.raises(InvalidInput, match=r"var holds -1.0 at index 1"):
        fold_batchnorm(weight, bias, gamma, beta, mean, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(InvalidInput, match=r"gamma has shape \(2,\); expected \(3,\)"):
        fold_batchnorm(weight, bias, gamma[:2], beta, mean, var)
    with pytest.raises(InvalidInput, match="eps=0 must be a finite number > 0"):
        fold_batchnorm(weight, bias, gamma, beta, mean, var, 0)


def _bn_checkpoint(rng) -> dict[str, np.ndarray]:
    """A PyTorch-style state dict: conv-BN stem, a stride-2 block with BN and a BN projection."""

    def bn(prefix, channels):
        return {
            f"{prefix}.weight": rng.uniform(0.5, 1.5, channels),
            f"{prefix}.bias": rng.uniform(-0.3, 0.3, channels),
            f"{prefix}.running_mean": rng.uniform(-0.5, 0.5, channels),
            f"{prefix}.running_var": rng.uniform(0.2, 2.0, channels),
            f"{prefix}.num_batches_tracked": np.array(120, dtype=np.int64),
        }

    return {
        "conv1.weight": rng.uniform(-0.5, 0.5, (3, 1, 3, 3)),
        **bn("bn1", 3),
        "layer1.conv1.weight": rng.uniform(-0.3, 0.3, (4, 3, 3, 3)),
        **bn("layer1.bn1", 4),
        "layer1.conv2.weight": rng.uniform(-0.3, 0.3, (4, 4, 3, 3)),
        **bn("layer1.bn2", 4),
        "layer1.down.0.weight": rng.uniform(-0.5, 0.5, (4, 3, 1, 1)),
        **bn("layer1.down.1", 4),
        "fc.weight": rng.uniform(-1, 1, (2, 4)),
        "fc.bias": rng.uniform(-1, 1, 2),
    }


BN_SIDECAR = {
    "input_shape": [1, 6, 6],
    "input_domain": [0, 1],
    "activation": "relu",
    "layers": [
        {"type": "conv2d", "key": "conv1", "padding": 1},
        {"type": "batchnorm2d", "key": "bn1", "eps": 1e-5},
        {
            "type": "residual",
            "branch": [
                {"type": "conv2d", "key": "layer1.conv1", "stride": 2, "padding": 1},
                {"type": "batchnorm2d", "key": "layer1.bn1", "eps": 1e-5},
                {"type": "conv2d", "key": "layer1.conv2", "padding": 1},
                {"type": "batchnorm2d", "key": "layer1.bn2"},
            ],
            "skip": [
                {"type": "conv2d", "key": "layer1.down.0", "stride": 2},
                {"type": "batchnorm2d", "key": "layer1.down.1", "eps": 1e-5},
            ],
            "activation_out": True,
        },
        {"type": "avgpool2d", "kernel": 3},
        {"type": "flatten"},
        {"type": "dense", "key": "fc"},
    ],
}


def unfolded_forward(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The checkpoint with explicit inference-mode batch norm, independent of ltbounds."""

    def bn(h, prefix, eps=1e-5):
        shape = (1, -1, 1, 1)
        normed = (h - state[f"{prefix}.running_mean"].reshape(shape)) / np.sqrt(
            state[f"{prefix}.running_var"].reshape(shape) + eps
        )
        return state[f"{prefix}.weight"].reshape(shape) * normed + state[f"{prefix}.bias"].reshape(shape)

    def conv(h, key, stride=1, padding=0):
        return literal_conv2d(h, state[f"{key}.weight"], None, (stride, stride), (padding, padding))

    relu = lambda h: np.maximum(h, 0)  # noqa: E731
    h = relu(bn(conv(x, "conv1", padding=1), "bn1"))
    branch = bn(conv(relu(bn(conv(h, "layer1.conv1", 2, 1), "layer1.bn1")), "layer1.conv2", 1, 1), "layer1.bn2")
    skip = bn(conv(h, "layer1.down.0", 2), "layer1.down.1")
    h = relu(skip + branch)
    pooled = h.reshape(h.shape[0], 4, 1, 3, 1, 3).mean(axis=(3, 5)).reshape(h.shape[0], 4)
    return pooled @ state["fc.weight"].T + state["fc.bias"]


def _write_bn(tmp_path: Path, state=None, sidecar=None) -> tuple[Path, Path]:
    state = _bn_checkpoint(np.random.default_rng(5)) if state is None else state
    np.savez(tmp_path / "bn.npz", **state)
    (tmp_path / "bn.json").write_text(json.dumps(BN_SIDECAR if sidecar is None else sidecar))
    return tmp_path / "bn.npz", tmp_path / "bn.json"


def test_folded_batchnorm_equals_unfolded_and_round_trips(tmp_path) -> None:
    state = _bn_checkpoint(np.random.default_rng(5))
    npz, sidecar = _write_bn(tmp_path, state)
    target = load_npz(npz, sidecar=sidecar)
    kinds = [type(layer).__name__ for layer in target.layers]
    assert kinds == ["Conv2d", "ResidualBlock", "AvgPool2d", "Flatten", "Dense"]
    block = target.layers[1]
    assert block.skip.stride == (2, 2) and block.branch[0].stride == (2, 2)
    assert all(layer.has_bias for _, layer in target.linear_layers)  # BN adds the bias
    x = target.sample_inputs(8, seed=3)
    expected = unfolded_forward(state, x)
    assert np.max(np.abs(target.forward(x) - expected)) <= 1e-6
    assert np.allclose(target.forward(x), expected, rtol=1e-12, atol=1e-12)
    saved = save_npz(target, tmp_path / "folded.npz")
    reloaded = load_npz(saved)
    assert reloaded.to_config() == target.to_config()
    assert np.array_equal(reloaded.forward(x), target.forward(x))
    stored = np.load(saved, allow_pickle=False)
    assert {"1.branch.0.weight", "1.branch.1.bias", "1.skip.weight", "4.weight"} <= set(stored.files)


def test_pytorch_batchnorm_fixture_is_reproduced() -> None:
    """A ResNet-style checkpoint saved by PyTorch (scripts/train_default_targets.py)."""
    target = load_npz(DATA / "resnet_bn_fixture.npz", sidecar=DATA / "resnet_bn_fixture.json")
    recorded = np.load(DATA / "resnet_bn_fixture_outputs.npz", allow_pickle=False)
    assert target.layers[1].skip.kernel_shape == (1, 1)
    assert np.max(np.abs(target.forward(recorded["inputs"]) - recorded["logits"])) <= 1e-6


def test_batchnorm_without_sidecar_is_refused(tmp_path) -> None:
    npz, _ = _write_bn(tmp_path)
    with pytest.raises(ModelFormatError, match=r"batch-norm tensors \(bn1.running_mean, .*need a sidecar"):
        load_npz(npz, activation="relu")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.pop("bn1.running_var"), r"unsupported keys.*bn1.running_mean"),
        (lambda s: [s.pop(k) for k in ("bn1.running_mean", "bn1.running_var")],
         r"unsupported keys.*bn1.num_batches_tracked"),  # fmt: skip
        (lambda s: s.pop("bn1.bias"), r"batch norm 'bn1' has 'bn1.weight' but no 'bn1.bias'"),
        (lambda s: s.update({"bn1.running_var": np.ones(5)}),
         r"'bn1.running_var' has shape \(5,\); expected \(3,\) for the Conv2d 1→3"),  # fmt: skip
        (lambda s: s.update({"bn1.running_var": -np.ones(3)}), "var holds -1.0 at index 0"),
        (lambda s: s.update({"bn1.running_mean": np.ones(3, dtype=np.int64)}),
         "'bn1.running_mean' has dtype int64; expected floating point"),  # fmt: skip
    ],
)
def test_hostile_batchnorm_tensors(tmp_path, edit, match) -> None:
    state = _bn_checkpoint(np.random.default_rng(5))
    edit(state)
    npz, sidecar = _write_bn(tmp_path, state)
    with pytest.raises(ModelFormatError, match=match) as info:
        load_npz(npz, sidecar=sidecar)
    assert "\n" not in str(info.value)


def test_batchnorm_without_affine_parameters(tmp_path) -> None:
    state = _bn_checkpoint(np.random.default_rng(5))
    del state["bn1.weight"], state["bn1.bias"]
    npz, sidecar = _write_bn(tmp_path, state)
    target = load_npz(npz, sidecar=sidecar)
    state["bn1.weight"], state["bn1.bias"] = np.ones(3), np.zeros(3)
    x = target.sample_inputs(2, seed=0)
    assert np.allclose(target.forward(x), unfolded_forward(state, x), rtol=1e-12, atol=1e-12)


# -- hostile sidecars --------------------------------------------------------------------------


def _with_block(**changes) -> dict:
    document = json.loads(json.dumps(BN_SIDECAR))
    document["layers"][2].update(changes)
    return document


def _layers(*replace: tuple[int, object]) -> dict:
    document = json.loads(json.dumps(BN_SIDECAR))
    for index, entry in replace:
        document["layers"][index] = entry
    return document


BRANCH = BN_SIDECAR["layers"][2]["branch"]
SKIP = BN_SIDECAR["layers"][2]["skip"]
HOSTILE = [
    (_with_block(colour="red"), r"layer 2 \(residual\): unknown fields colour"),
    (_with_block(branch=[*BRANCH[:3], {**BRANCH[3], "momentum": 0.1}]), r"layer 2 branch 3 \(batchnorm2d\): unknown fields momentum"),
    (_with_block(branch=[]), "'branch' must be a non-empty list"),
    (_with_block(branch={"type": "conv2d"}), "'branch' must be a non-empty list"),
    (_with_block(skip=7), "'skip' must be null"),
    (_with_block(skip=[]), "'skip' must be null"),
    (_with_block(activation_out="yes"), "activation_out='yes' must be true or false"),
    (_with_block(branch=[*BRANCH, {"type": "maxpool2d", "kernel": 2}]), r"layer 2 branch 4 \(maxpool2d\): a residual branch holds only"),
    (_with_block(branch=[{"type": "residual", "branch": BRANCH, "skip": None}]), "residual blocks do not nest"),
    (_with_block(branch=[*BRANCH, {"type": [1, 2]}]), r"layer 2 branch 4: type \[1, 2\]"),
    (_with_block(skip=SKIP[:1]), "tensors not used by any layer: layer1.down.1.running_mean"),
    (_with_block(skip=SKIP[::-1]), r"layer 2 skip 0 \(batchnorm2d\) must directly follow a conv2d entry"),
    (_with_block(branch=[BRANCH[1], *BRANCH]), r"layer 2 branch 0 \(batchnorm2d\) must directly follow"),
    (_with_block(branch=[BRANCH[0], BRANCH[1], BRANCH[1], *BRANCH[2:]]), "must directly follow"),
    (_with_block(branch=[{**BRANCH[0], "key": "layer1.bn1"}, *BRANCH[1:]]), "holds batch-norm statistics; expected a conv2d weight"),
    (_with_block(skip=[SKIP[0], {**SKIP[1], "key": "fc"}]), "'fc', which holds no running_mean/running_var"),
    (_with_block(skip=[SKIP[0], {**SKIP[1], "type": "batchnorm1d"}]), "must directly follow a dense or conv1d entry"),
    (_with_block(skip=[SKIP[0], {**SKIP[1], "eps": -1}]), "eps=-1 must be a finite number > 0"),
    (_with_block(skip=[SKIP[0], {**SKIP[1], "eps": "tiny"}]), "eps='tiny' must be a finite number > 0"),
    (_with_block(skip=[{**SKIP[0], "stride": 1}, SKIP[1]]), r"branch output \(4, 3, 3\) and skip output \(4, 6, 6\) differ"),
    (_with_block(branch=[{**BRANCH[0], "stride": 1}, *BRANCH[1:]]), r"branch output \(4, 6, 6\) and skip output \(4, 3, 3\) differ"),
    (_with_block(branch=BRANCH[:2] + [{**BRANCH[2], "key": "conv1"}, BRANCH[3]]), "key prefix 'conv1' is used twice"),
    (_layers((1, {"type": "batchnorm2d", "key": "layer1.bn2"})), r"'layer1.bn2.weight' has shape \(4,\); expected \(3,\)"),
    (_layers((3, {"type": "batchnorm2d", "key": "bn1"})), r"layer 3 \(batchnorm2d\) must directly follow"),
]


@pytest.mark.parametrize(("document", "match"), HOSTILE)
def test_hostile_sidecars_are_one_line_format_errors(tmp_path, document, match) -> None:
    npz, sidecar = _write_bn(tmp_path, sidecar=document)
    with pytest.raises(ModelFormatError, match=match) as info:
        load_npz(npz, sidecar=sidecar)
    assert "\n" not in str(info.value)


def test_identity_skip_that_does_not_fit_and_skip_of_two_layers(tmp_path) -> None:
    state = _bn_checkpoint(np.random.default_rng(5))
    down = {key: state.pop(key) for key in list(state) if key.startswith("layer1.down")}
    npz, sidecar = _write_bn(tmp_path, state, _with_block(skip=None))
    with pytest.raises(ModelFormatError, match=r"layer 1 \(residual block\): branch output \(4, 3, 3\) "
                       r"and skip output \(3, 6, 6\) differ") as info:  # fmt: skip
        load_npz(npz, sidecar=sidecar)
    assert "\n" not in str(info.value)
    state.update(down, **{"extra.weight": np.ones((4, 4, 1, 1))})
    npz, sidecar = _write_bn(tmp_path, state, _with_block(skip=[*SKIP, {"type": "conv2d", "key": "extra"}]))
    with pytest.raises(ModelFormatError, match=r"layer 2 \(residual\): 'skip' folds to 2 layers"):
        load_npz(npz, sidecar=sidecar)


def test_deeply_nested_json_is_refused(tmp_path) -> None:
    npz, sidecar = _write_bn(tmp_path)
    depth = 100_000
    sidecar.write_text('{"layers": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ModelFormatError, match="nested too deeply"):
        load_npz(npz, sidecar=sidecar)
    nested = {"type": "residual", "branch": [{"type": "dense", "key": "fc"}], "skip": None}
    for _ in range(50):
        nested = {"type": "residual", "branch": [nested], "skip": None}
    sidecar.write_text(json.dumps({**BN_SIDECAR, "layers": [nested]}))
    with pytest.raises(ModelFormatError, match="residual blocks do not nest") as info:
        load_npz(npz, sidecar=sidecar)
    assert "\n" not in str(info.value) and len(str(info.value)) < 2000


# -- round trips -------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(residual_target_nets(max_channels=3, max_size=4))
def test_save_load_round_trip_of_random_residual_targets(tmp_path, target) -> None:
    loaded = load_npz(save_npz(target, tmp_path / "r.npz"))
    assert loaded.to_config() == target.to_config()
    for (_, a), (_, b) in zip(loaded.linear_layers, target.linear_layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and type(a) is type(b)
    x = target.sample_inputs(3, seed=0)
    assert np.array_equal(loaded.forward(x), target.forward(x))


def test_sidecar_with_identity_skip_as_json_null(tmp_path) -> None:
    rng = np.random.default_rng(9)
    np.savez(tmp_path / "d.npz", **{"a.weight": rng.uniform(-1, 1, (3, 3)), "b.weight": rng.uniform(-1, 1, (2, 3))})
    sidecar = {
        "input_shape": [3], "input_domain": [-1, 1], "activation": "tanh",
        "layers": [{"type": "residual", "branch": [{"type": "dense", "key": "a"}], "skip": None,
                    "activation_out": False}, {"type": "dense", "key": "b"}],
    }  # fmt: skip
    (tmp_path / "d.json").write_text(json.dumps(sidecar))
    target = load_npz(tmp_path / "d.npz", sidecar=tmp_path / "d.json")
    block = target.layers[0]
    assert block.skip is None and block.activation_out is False
    x = target.sample_inputs(2, seed=1)
    a, b = target.layers[0].branch[0].weight, target.layers[1].weight
    assert np.allclose(target.forward(x), (x + x @ a.T) @ b.T, atol=1e-14)
