"""``.safetensors`` targets: our reader and writer against the safetensors library, naming, caps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import load_embedded
from ltbounds.nets.safetensors_io import (
    ARCHITECTURE_METADATA_KEY,
    load_safetensors,
    read_safetensors_arrays,
    save_safetensors,
    write_safetensors_arrays,
)


@pytest.mark.parametrize("name", ["digits_mlp_relu", "digits_cnn_tanh", "digits_resnet_relu"])
def test_round_trip_is_exact_in_float64(tmp_path: Path, name: str) -> None:
    target = load_embedded(name)
    back = load_safetensors(save_safetensors(target, tmp_path / "t.safetensors"))
    x = target.sample_inputs(200, seed=0)
    assert np.array_equal(back.forward(x), target.forward(x))
    assert (back.name, back.activation, back.input_domain, back.metadata) == (
        target.name, target.activation, target.input_domain, target.metadata,
    )  # fmt: skip


def test_float32_files_open_in_the_safetensors_library(tmp_path: Path) -> None:
    target = load_embedded("digits_cnn_relu")
    path = save_safetensors(target, tmp_path / "t.safetensors", dtype="float32")
    theirs = load_file(path)
    assert theirs["0.weight"].dtype == np.float32
    np.testing.assert_array_equal(theirs["0.weight"], target.layers[0].weight.astype(np.float32))
    with pytest.raises(InvalidInput, match="dtype='float16'"):
        save_safetensors(target, tmp_path / "u.safetensors", dtype="float16")


def test_reader_agrees_with_the_library_on_every_dtype(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "a.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.standard_normal(5),
        "c": rng.standard_normal(2).astype(np.float16),
        "d": np.arange(6, dtype=np.int64).reshape(2, 3),
        "e": np.array([True, False, True]),
        "f": np.arange(4, dtype=np.uint8),
        "g": np.zeros((0, 3), np.float32),
    }
    save_file(arrays, str(tmp_path / "lib.safetensors"), metadata={"k": "v"})
    ours, metadata = read_safetensors_arrays(tmp_path / "lib.safetensors")
    assert metadata == {"k": "v"}
    for key, value in arrays.items():
        assert ours[key].dtype == value.dtype and np.array_equal(ours[key], value), key
    write_safetensors_arrays(arrays, tmp_path / "ours.safetensors", metadata={"k": "v"})
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    for key, value in arrays.items():
        assert np.array_equal(theirs[key], value), key


def test_bfloat16_is_widened_exactly(tmp_path: Path) -> None:
    values = np.array([1.0, -2.5, 0.15625, 2.0**100], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "bf.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bits)
    arrays, _ = read_safetensors_arrays(tmp_path / "bf.safetensors")
    assert arrays["w"].dtype == np.float32
    assert np.array_equal(arrays["w"], values)  # these values are exact in bfloat16


def test_pytorch_names_masks_and_inference(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w1, w2 = rng.uniform(-1, 1, (5, 3)).astype(np.float32), rng.uniform(-1, 1, (2, 5)).astype(np.float32)
    mask = (rng.uniform(size=w1.shape) < 0.5).astype(np.float32)
    save_file(
        {"fc1.weight": w1, "fc1.weight_mask": mask, "fc1.bias": np.zeros(5, np.float32), "fc2.weight": w2},
        str(tmp_path / "m.safetensors"),
    )
    with pytest.raises(ModelFormatError, match="activation is not recorded"):
        load_safetensors(tmp_path / "m.safetensors")
    target = load_safetensors(tmp_path / "m.safetensors", activation="relu", input_domain=(0.0, 1.0))
    assert np.array_equal(target.layers[0].weight, (w1 * mask).astype(np.float64))
    assert any("inferred" in note for note in target.notes)
    x = target.sample_inputs(20, seed=0)
    expected = np.maximum(x @ (w1 * mask).T.astype(np.float64), 0) @ w2.T.astype(np.float64)
    np.testing.assert_allclose(target.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_sidecar_beats_embedded_architecture(tmp_path: Path) -> None:
    target = load_embedded("digits_mlp_relu")
    path = save_safetensors(target, tmp_path / "t.safetensors")
    sidecar = tmp_path / "arch.json"
    document = target.to_config()
    document["activation"] = "tanh"
    sidecar.write_text(json.dumps(document))
    assert load_safetensors(path, sidecar=sidecar).activation == "tanh"
    arrays, metadata = read_safetensors_arrays(path)
    assert json.loads(metadata[ARCHITECTURE_METADATA_KEY])["activation"] == "relu"


def test_caps(tmp_path: Path) -> None:
    path = save_safetensors(load_embedded("digits_cnn_relu"), tmp_path / "t.safetensors")
    with pytest.raises(ModelFormatError, match="over the cap max_bytes=100"):
        load_safetensors(path, max_bytes=100)
    with pytest.raises(ModelFormatError, match="over the cap max_elements=10"):
        load_safetensors(path, max_elements=10)
