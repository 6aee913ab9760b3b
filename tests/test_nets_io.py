"""Reading and writing targets: the real foreign target, round trips, hostile files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet, load_npz, save_npz
from ltbounds.nets.embedded import embedded_sidecar
from ltbounds.nets.io import ARCHITECTURE_KEY, read_npz_arrays

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_CNN = SHARED / "lt_existence_mnist_cnn.npz"


# -- the real foreign target -------------------------------------------------------------------


def reference_mnist_cnn(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A float64 forward pass written from shared/data/README.md, independent of ltbounds."""

    def weight(key: str) -> np.ndarray:
        value = arrays[key].astype(np.float64)
        if f"{key}_mask" in arrays:
            value = value * arrays[f"{key}_mask"]
        return value

    def conv_same(h: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
        batch, _, height, width = h.shape
        padded = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((batch, kernel.shape[0], height, width))
        for u in range(3):
            for v in range(3):
                window = padded[:, :, u : u + height, v : v + width]
                out += np.einsum("bchw,oc->bohw", window, kernel[:, :, u, v])
        return out + bias[None, :, None, None]

    h = np.maximum(conv_same(x, weight("0.weight"), weight("0.bias")), 0)
    h = np.maximum(conv_same(h, weight("2.weight"), weight("2.bias")), 0)
    h = h.reshape(h.shape[0], -1)
    return h @ weight("5.weight").T + weight("5.bias")


@pytest.mark.skipif(
    not MNIST_CNN.is_file(), reason="shared/data/lt_existence_mnist_cnn.npz not present"
)
def test_mnist_cnn_with_sidecar_matches_independent_reimplementation() -> None:
    target = load_npz(MNIST_CNN, sidecar=embedded_sidecar("lt_existence_mnist_cnn"))
    assert target.activation == "relu"
    assert target.input_shape == (1, 28, 28)
    low, high = target.input_domain
    assert low <= (0 - 0.1307) / 0.3081 and high >= (1 - 0.1307) / 0.3081
    assert target.shape_summary().widths == (1, 32, 32, 10)
    assert target.notes == ()
    with np.load(MNIST_CNN, allow_pickle=False) as handle:
        arrays = {key: handle[key] for key in handle.files}
    x = target.sample_inputs(6, seed=11)
    expected = reference_mnist_cnn(arrays, x)
    got = target.forward(x)
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    # Densities quoted in shared/data/README.md.
    assert int(np.count_nonzero(target.layers[0].weight)) == 29
    assert int(np.count_nonzero(target.layers[1].weight)) == 922
    # Inference from the key order gives the same network, and says so.
    inferred = load_npz(MNIST_CNN, activation="relu")
    assert any("inferred" in note for note in inferred.notes)
    assert any("assumed [-1, 1]" in note for note in inferred.notes)
    assert np.array_equal(inferred.forward(x), got)


# -- round trips --------------------------------------------------------------------------------


def small_target() -> TargetNet:
    rng = np.random.default_rng(0)
    layers = [
        Conv2d(rng.uniform(-1, 1, (2, 1, 3, 3)), rng.uniform(-1, 1, 2), stride=(1, 2), padding=1),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (3, 8)), None),
    ]
    return TargetNet(layers, (1, 4, 8), "tanh", (0.0, 1.0), name="small", metadata={"note": "x"})


def test_save_and_load_round_trip(tmp_path) -> None:
    target = small_target()
    path = save_npz(target, tmp_path / "sub" / "small.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["small.npz"]  # no temp files
    loaded = load_npz(path)
    assert loaded.to_config() == target.to_config()
    assert loaded.name == "small" and loaded.metadata == {"note": "x"} and loaded.notes == ()
    for (_, a), (_, b) in zip(loaded.linear_layers, target.linear_layers, strict=True):
        assert np.array_equal(a.weight, b.weight)
        assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)
    x = target.sample_inputs(3, seed=0)
    assert np.array_equal(loaded.forward(x), target.forward(x))
    # Arguments override the embedded architecture.
    assert load_npz(path, activation="relu", input_domain=(-1, 1)).activation == "relu"


def test_sidecar_with_pooling_and_masks(tmp_path) -> None:
    rng = np.random.default_rng(1)
    conv_w = rng.uniform(-1, 1, (2, 1, 3, 3)).astype(np.float32)
    mask = (rng.uniform(size=conv_w.shape) > 0.5).astype(np.float32)
    dense_w = rng.uniform(-1, 1, (3, 8))
    np.savez(
        tmp_path / "m.npz",
        **{
            "conv.weight": conv_w,
            "conv.weight_mask": mask,
            "conv.bias": np.zeros(2),
            "fc.weight": dense_w,
        },
    )
    sidecar = {
        "input_shape": [1, 4, 4],
        "input_domain": [0, 1],
        "activation": "sigmoid",
        "layers": [
            {"type": "conv2d", "key": "conv", "padding": 1},
            {"type": "maxpool2d", "kernel": 2},
            {"type": "flatten"},
            {"type": "dense", "key": "fc"},
        ],
    }
    (tmp_path / "m.json").write_text(json.dumps(sidecar))
    target = load_npz(tmp_path / "m.npz", sidecar=tmp_path / "m.json")
    assert np.array_equal(target.layers[0].weight, conv_w.astype(np.float64) * mask)
    assert target.layers[3].bias is None
    assert target.activation == "sigmoid" and target.input_domain == (0.0, 1.0)


def test_inference_for_plain_mlp(tmp_path) -> None:
    rng = np.random.default_rng(2)
    arrays = {
        "10.weight": rng.uniform(-1, 1, (2, 3)),
        "2.weight": rng.uniform(-1, 1, (3, 4)),
        "2.bias": rng.uniform(-1, 1, 3),
    }
    np.savez(tmp_path / "mlp.npz", **arrays)
    target = load_npz(tmp_path / "mlp.npz", activation="relu", input_domain=(0, 1))
    assert target.input_shape == (4,)  # natural order: 2 before 10
    assert [layer.out_channels for _, layer in target.linear_layers] == [3, 2]
    assert any("inferred" in note for note in target.notes)


# -- hostile and malformed files ----------------------------------------------------------------


def _npy_bytes(descr: str, shape: tuple[int, ...], payload: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + payload


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _refuse(exc_type, match: str, *args, **kwargs) -> None:
    with pytest.raises(exc_type, match=match) as info:
        load_npz(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_not_a_zip_truncated_and_missing(tmp_path) -> None:
    _refuse(ModelFormatError, "no such file", tmp_path / "missing.npz", activation="relu")
    (tmp_path / "junk.npz").write_bytes(b"\x00\x01not a zip at all" * 10)
    _refuse(
        ModelFormatError, "not a readable .npz archive", tmp_path / "junk.npz", activation="relu"
    )
    path = save_npz(small_target(), tmp_path / "good.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 40):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        _refuse(ModelFormatError, "cut.npz", tmp_path / "cut.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    _refuse(ModelFormatError, "empty.npz", tmp_path / "empty.npz", activation="relu")


def test_object_string_and_complex_arrays_are_refused(tmp_path) -> None:
    np.savez(tmp_path / "obj.npz", **{"0.weight": np.array([{"a": 1}], dtype=object)})
    _refuse(ModelFormatError, "dtype object", tmp_path / "obj.npz", activation="relu")
    np.savez(tmp_path / "str.npz", **{"0.weight": np.array(["ab", "cd"])})
    _refuse(
        ModelFormatError,
        "expected bool, integer or floating",
        tmp_path / "str.npz",
        activation="relu",
    )
    np.savez(tmp_path / "cplx.npz", **{"0.weight": np.ones((2, 2), dtype=complex)})
    _refuse(ModelFormatError, "complex128", tmp_path / "cplx.npz", activation="relu")
    np.savez(tmp_path / "int.npz", **{"0.weight": np.ones((2, 2), dtype=np.int64)})
    _refuse(ModelFormatError, "expected floating point", tmp_path / "int.npz", activation="relu")
    structured = np.zeros(2, dtype=[("a", "<f8"), ("b", "<f8")])
    np.savez(tmp_path / "rec.npz", **{"0.weight": structured})
    _refuse(ModelFormatError, "plain numeric", tmp_path / "rec.npz", activation="relu")


def test_huge_declared_shapes_are_refused_before_reading(tmp_path) -> None:
    huge = _zip(
        tmp_path / "huge.npz", {"0.weight.npy": _npy_bytes("<f8", (10**6, 10**6), b"\x00" * 64)}
    )
    _refuse(
        ModelFormatError,
        r"declares shape \(1000000, 1000000\).*over the cap",
        huge,
        activation="relu",
    )
    liar = _zip(
        tmp_path / "liar.npz", {"0.weight.npy": _npy_bytes("<f8", (100, 100), b"\x00" * 64)}
    )
    _refuse(ModelFormatError, "80,000 bytes.*stores 64 bytes", liar, activation="relu")
    path = save_npz(small_target(), tmp_path / "ok.npz")
    _refuse(ModelFormatError, "over the cap max_bytes=100", path, max_bytes=100)
    _refuse(ModelFormatError, "max_elements=5", path, max_elements=5)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0.weight.npy", _npy_bytes("<f8", (2**21,), bytes(8 * 2**21)))
    assert bomb.stat().st_size < 100_000
    _refuse(ModelFormatError, "expands to", bomb, activation="relu", max_bytes=2**20)


def test_foreign_members_and_keys(tmp_path) -> None:
    path = _zip(
        tmp_path / "odd.npz",
        {"0.weight.npy": _npy_bytes("<f8", (1, 1), bytes(8)), "evil.pkl": b"x"},
    )
    _refuse(ModelFormatError, "'evil.pkl' is not a .npy array", path, activation="relu")
    np.savez(
        tmp_path / "bn.npz",
        **{"0.weight": np.ones((2, 2)), "1.running_mean": np.ones(2), "1.num_batches": np.ones(1)},
    )
    _refuse(
        ModelFormatError,
        "unsupported keys.*1.num_batches, 1.running_mean",
        tmp_path / "bn.npz",
        activation="relu",
    )
    np.savez(tmp_path / "orphan.npz", **{"0.bias": np.ones(2)})
    _refuse(
        ModelFormatError,
        "'0.bias' has no matching '0.weight'",
        tmp_path / "orphan.npz",
        activation="relu",
    )
    np.savez(
        tmp_path / "mask.npz",
        **{"0.weight": np.ones((2, 2)), "0.weight_mask": np.full((2, 2), 0.5)},
    )
    _refuse(ModelFormatError, "other than 0 and 1", tmp_path / "mask.npz", activation="relu")
    np.savez(tmp_path / "mask2.npz", **{"0.weight": np.ones((2, 2)), "0.weight_mask": np.ones(2)})
    _refuse(ModelFormatError, "0.weight_mask has shape", tmp_path / "mask2.npz", activation="relu")
    np.savez(tmp_path / "mask3.npz", **{"0.weight": np.ones((2, 2)), "1.weight_mask": np.ones(2)})
    _refuse(
        ModelFormatError,
        "masks without a tensor: 1.weight_mask",
        tmp_path / "mask3.npz",
        activation="relu",
    )


def test_nan_is_a_format_error_naming_key_and_position(tmp_path) -> None:
    weight = np.ones((2, 3))
    weight[1, 2] = np.nan
    np.savez(tmp_path / "nan.npz", **{"0.weight": weight})
    _refuse(
        ModelFormatError,
        r"'0.weight' holds nan at index \(1, 2\)",
        tmp_path / "nan.npz",
        activation="relu",
    )


def test_shapes_that_do_not_chain(tmp_path) -> None:
    np.savez(tmp_path / "chain.npz", **{"0.weight": np.ones((4, 3)), "1.weight": np.ones((2, 5))})
    _refuse(
        ModelFormatError,
        r"layer 1 \(Dense 5→2, no bias\).*\(4,\)",
        tmp_path / "chain.npz",
        activation="relu",
    )
    np.savez(
        tmp_path / "conv.npz", **{"0.weight": np.ones((4, 1, 3, 3)), "1.weight": np.ones((2, 7))}
    )
    _refuse(ModelFormatError, "not 4 channels", tmp_path / "conv.npz", activation="relu")
    np.savez(tmp_path / "even.npz", **{"0.weight": np.ones((4, 1, 2, 2))})
    _refuse(ModelFormatError, "even kernel", tmp_path / "even.npz", activation="relu")
    np.savez(tmp_path / "act.npz", **{"0.weight": np.ones((4, 3))})
    _refuse(ModelFormatError, "activation is not recorded", tmp_path / "act.npz")
    _refuse(InvalidInput, "activation='nope'", tmp_path / "act.npz", activation="nope")


def test_bad_sidecars(tmp_path) -> None:
    np.savez(
        tmp_path / "t.npz",
        **{"0.weight": np.ones((2, 3)), "0.bias": np.ones(2), "1.weight": np.ones((1, 2))},
    )
    sidecar = tmp_path / "s.json"

    def refuse(document, match) -> None:
        sidecar.write_text(document if isinstance(document, str) else json.dumps(document))
        _refuse(ModelFormatError, match, tmp_path / "t.npz", sidecar=sidecar)

    base = {"input_shape": [3], "input_domain": [0, 1], "activation": "relu"}
    dense0 = {"type": "dense", "key": "0"}
    dense1 = {"type": "dense", "key": "1"}
    refuse("{not json", "not valid JSON")
    refuse([1, 2], "must be a JSON object")
    refuse(
        {**base, "layers": [dense0, {"type": "lstm"}, {"type": "attention"}]}, "'lstm'.*'attention'"
    )
    refuse({**base, "layers": [dense0, {**dense1, "dilation": 2}]}, "unknown fields dilation")
    refuse(
        {**base, "layers": [dense0, {"type": "dense", "key": "7"}]},
        "'7.weight', which the file does not hold",
    )
    refuse({**base, "layers": [dense0]}, "tensors not used by any layer: 1.weight")
    refuse({**base, "layers": [dense0, dense0]}, "used twice")
    refuse({**base, "layers": [{**dense0, "bias": False}, dense1]}, "bias=false but the file holds")
    refuse({**base, "layers": [dense0, {**dense1, "bias": True}]}, "expects '1.bias', missing")
    refuse(
        {**base, "layers": [dense0, {**dense1, "bias": "yes"}]}, "bias='yes' must be true or false"
    )
    refuse({**base, "layers": [{"type": "conv2d", "key": "0"}, dense1]}, "expected 4 dimensions")
    refuse({**base, "input_shape": [5], "layers": [dense0, dense1]}, "does not fit")
    refuse({**base, "input_domain": [1, 0], "layers": [dense0, dense1]}, "low < high")
    refuse({**base, "activation": "swish", "layers": [dense0, dense1]}, "activation='swish'")
    refuse(
        {**base, "colour": "red", "layers": [dense0, dense1]}, "unknown architecture fields colour"
    )
    refuse({**base, "layers": [dense0, {"type": "avgpool2d"}, dense1]}, "kernel=None")
    refuse({**base, "version": 2, "layers": [dense0, dense1]}, "version=2")
    sidecar.write_text(json.dumps({**base, "layers": [dense0, dense1]}))
    assert load_npz(tmp_path / "t.npz", sidecar=sidecar).depth == 2


def test_embedded_architecture_must_be_bytes(tmp_path) -> None:
    np.savez(tmp_path / "a.npz", **{"0.weight": np.ones((1, 1)), ARCHITECTURE_KEY: np.ones(3)})
    _refuse(ModelFormatError, "1-D uint8 array", tmp_path / "a.npz")


def test_read_arrays_accepts_fortran_order_and_bool(tmp_path) -> None:
    values = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    np.savez(tmp_path / "f.npz", a=values, b=np.array([True, False]))
    arrays = read_npz_arrays(tmp_path / "f.npz")
    assert np.array_equal(arrays["a"], values) and arrays["b"].dtype == bool
