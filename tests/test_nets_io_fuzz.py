"""Every model loader against damaged and hostile files: ModelFormatError and nothing else.

Valid files of each format (``.npz``, ``.safetensors``, ``.onnx``; dense, convolutional and
residual targets) are truncated, bit-flipped and overwritten by hypothesis; hand-made hostile
files declare huge shapes, hold NaN weights or wrong dtypes, or put a cycle in an ONNX graph.
A loader may accept a damaged file that is still valid (a flipped bit in a weight), but every
refusal must be a :class:`ModelFormatError`. The speed goal (each refusal within 1 s) is
measured by ``benchmarks/bench_io_fuzz.py``, not asserted here.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from ltbounds.errors import ModelFormatError
from ltbounds.nets import TargetNet, load_embedded, load_npz, save_npz
from ltbounds.nets.onnx_io import load_onnx, save_onnx
from ltbounds.nets.safetensors_io import load_safetensors, save_safetensors

LOADERS = {".npz": load_npz, ".safetensors": load_safetensors, ".onnx": load_onnx}
SAVERS = {".npz": save_npz, ".safetensors": save_safetensors, ".onnx": save_onnx}
TARGETS = ("digits_mlp_relu", "digits_cnn_gelu", "digits_resnet_relu")
_WORKDIR = Path(tempfile.mkdtemp(prefix="ltbounds-fuzz-"))


@cache
def valid_bytes(suffix: str, name: str) -> bytes:
    path = _WORKDIR / f"{name}{suffix}"
    SAVERS[suffix](load_embedded(name), path)
    return path.read_bytes()


def load_bytes(suffix: str, data: bytes, **kwargs: object) -> TargetNet | None:
    """Load ``data`` as a ``suffix`` file: a target, or None after a ModelFormatError."""
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=_WORKDIR, delete=False) as handle:
        handle.write(data)
    path = Path(handle.name)
    try:
        return LOADERS[suffix](path, **kwargs)
    except ModelFormatError as error:
        message = str(error)
        assert message and "\n" not in message, message
        return None
    finally:
        path.unlink()


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(sorted(LOADERS)))
    data = bytearray(valid_bytes(suffix, draw(st.sampled_from(TARGETS))))
    how = draw(st.sampled_from(["truncate", "flip", "overwrite", "flip_header"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how in ("flip", "flip_header"):
        top = len(data) - 1 if how == "flip" else min(len(data) - 1, 400)
        for position in draw(st.lists(st.integers(0, top), min_size=1, max_size=8)):
            data[position] ^= 1 << draw(st.integers(0, 7))
    else:
        start = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[start : start + len(chunk)] = chunk
    return suffix, bytes(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_give_model_format_errors_only(case: tuple[str, bytes]) -> None:
    suffix, data = case
    result = load_bytes(suffix, data)
    assert result is None or isinstance(result, TargetNet)


@pytest.mark.parametrize("suffix", sorted(LOADERS))
def test_empty_and_garbage_files(suffix: str) -> None:
    assert load_bytes(suffix, b"") is None
    assert load_bytes(suffix, b"\x00" * 7) is None
    assert load_bytes(suffix, bytes(range(256)) * 4) is None
    with pytest.raises(ModelFormatError, match="no such file"):
        LOADERS[suffix](_WORKDIR / f"missing{suffix}")


# -- hand-made hostile files: .npz ---------------------------------------------------------------
def _npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_hostile_npz() -> None:
    nan = np.ones((3, 4))
    nan[2, 1] = np.nan
    cases = {
        "huge shape": {"0.weight.npy": _npy_header((2**20, 2**20))},
        "shape beyond stored bytes": {"0.weight.npy": _npy_header((1000, 1000)) + b"\x00" * 64},
        "NaN": {"0.weight.npy": _npy(nan)},
        "infinite": {"0.weight.npy": _npy(np.full((2, 2), np.inf))},
        "complex dtype": {"0.weight.npy": _npy(np.ones((2, 2), np.complex128))},
        "string dtype": {"0.weight.npy": _npy(np.array([["a", "b"]]))},
        "pickled object": {"0.weight.npy": _npy(np.array([{"x": 1}, None], dtype=object))},
        "integer weight": {"0.weight.npy": _npy(np.ones((2, 2), np.int64))},
        "zip bomb": {f"{i}.weight.npy": _npy_header((8192, 8192)) + bytes(8 * 8192 * 8192) for i in range(2)},
        "architecture not JSON": {
            "0.weight.npy": _npy(np.ones((2, 2))),
            "__ltbounds_architecture__.npy": _npy(np.frombuffer(b"{" * 100_000, np.uint8)),
        },
    }
    for label, members in cases.items():
        assert load_bytes(".npz", _npz(members), activation="relu", max_bytes=2**28) is None, label


# -- hand-made hostile files: .safetensors --------------------------------------------------------
def _safetensors(header: object, payload: bytes = b"", *, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + payload


def test_hostile_safetensors() -> None:
    nan = np.array([1.0, np.nan, 2.0, 3.0]).tobytes()
    cases = {
        "header longer than file": _safetensors({}, length=2**60),
        "huge shape": _safetensors({"0.weight": {"dtype": "F64", "shape": [2**31, 2**31], "data_offsets": [0, 8]}}, bytes(8)),
        "shape vs offsets": _safetensors({"0.weight": {"dtype": "F64", "shape": [100, 100], "data_offsets": [0, 8]}}, bytes(8)),
        "offsets outside": _safetensors({"0.weight": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}, bytes(8)),
        "overlap": _safetensors(
            {"0.weight": {"dtype": "F64", "shape": [1, 1], "data_offsets": [0, 8]},
             "0.bias": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)),  # fmt: skip
        "gap": _safetensors({"0.weight": {"dtype": "F64", "shape": [1, 1], "data_offsets": [8, 16]}}, bytes(16)),
        "NaN": _safetensors({"0.weight": {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]}}, nan),
        "unknown dtype": _safetensors({"0.weight": {"dtype": "C64", "shape": [1, 1], "data_offsets": [0, 8]}}, bytes(8)),
        "string shape": _safetensors({"0.weight": {"dtype": "F64", "shape": "big", "data_offsets": [0, 8]}}, bytes(8)),
        "negative dims": _safetensors({"0.weight": {"dtype": "F64", "shape": [-1, -8], "data_offsets": [0, 8]}}, bytes(8)),
        "integer weight": _safetensors({"0.weight": {"dtype": "I64", "shape": [1, 1], "data_offsets": [0, 8]}}, bytes(8)),
        "duplicate key": _safetensors(
            b'{"0.weight": {"dtype": "F64", "shape": [1, 1], "data_offsets": [0, 8]},'
            b' "0.weight": {"dtype": "F64", "shape": [1, 1], "data_offsets": [0, 8]}}', bytes(8)),  # fmt: skip
        "deep JSON": _safetensors(b"[" * 200_000 + b"]" * 200_000),
        "not an object": _safetensors([1, 2, 3]),
        "bad metadata": _safetensors({"__metadata__": {"a": 1}}),
        "bad UTF-8": _safetensors(b"\xff\xfe{}"),
    }
    for label, data in cases.items():
        assert load_bytes(".safetensors", data, activation="relu") is None, label


# -- hand-made hostile files: .onnx ---------------------------------------------------------------
def _model(nodes: list, initializers: list, *, inputs: list | None = None, output: str = "y") -> bytes:
    graph = helper.make_graph(
        nodes, "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 2])],
        initializers,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _weight(values: np.ndarray, name: str = "W") -> object:
    return numpy_helper.from_array(values, name)


def test_hostile_onnx() -> None:
    w = np.ones((2, 4), np.float32)
    gemm = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2**31, 2**31], raw_data=b"\x00" * 8)
    short = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 4], raw_data=b"\x00" * 8)
    external = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 4], data_location=TensorProto.EXTERNAL)
    external.external_data.add(key="location", value="/etc/passwd")
    nan = w.copy()
    nan[1, 2] = np.nan
    cases = {
        "cycle": _model(
            [helper.make_node("Gemm", ["x", "W"], ["a"], transB=1), helper.make_node("Add", ["a", "c"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Identity", ["c"], ["y"])], [_weight(w)]),  # fmt: skip
        "self loop": _model([helper.make_node("Add", ["x", "y"], ["y"])], []),
        "huge declared shape": _model([gemm], [huge]),
        "short raw data": _model([gemm], [short]),
        "external data": _model([gemm], [external]),
        "NaN weight": _model([gemm], [_weight(nan)]),
        "string weight": _model([gemm], [helper.make_tensor("W", TensorProto.STRING, [1], [b"a"])]),
        "integer weight": _model([gemm], [_weight(np.ones((2, 4), np.int64))]),
        "complex weight": _model([gemm], [helper.make_tensor("W", TensorProto.COMPLEX64, [1], [1 + 2j])]),
        "unsupported op": _model([helper.make_node("Softmax", ["x"], ["y"])], []),
        "custom domain": _model([helper.make_node("Gemm", ["x", "W"], ["y"], domain="evil.ops")], [_weight(w)]),
        "missing value": _model([helper.make_node("Gemm", ["x", "nowhere"], ["y"], transB=1)], []),
        "produced twice": _model([gemm, helper.make_node("Relu", ["x"], ["y"])], [_weight(w)]),
        "no weight matrix": _model([helper.make_node("MatMul", ["x", "x"], ["y"])], []),
        "symbolic sample dim": _model(
            [gemm], [_weight(w)], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "F"])]),  # fmt: skip
        "huge input": _model(
            [gemm], [_weight(w)], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2**31, 2**31])]),  # fmt: skip
        "string input": _model(
            [gemm], [_weight(w)], inputs=[helper.make_tensor_value_info("x", TensorProto.STRING, ["N", 4])]),  # fmt: skip
        "output is input": _model([], [], output="x"),
        "activation after output": _model(
            [helper.make_node("Gemm", ["x", "W"], ["a"], transB=1), helper.make_node("Relu", ["a"], ["y"])], [_weight(w)]),  # fmt: skip
        "unknown activation": _model(
            [helper.make_node("Gemm", ["x", "W"], ["a"], transB=1), helper.make_node("LeakyRelu", ["a"], ["b"], alpha=0.3),
             helper.make_node("Gemm", ["b", "V"], ["y"], transB=1)], [_weight(w), _weight(np.ones((2, 2), np.float32), "V")]),  # fmt: skip
        "huge pads": _model(
            [helper.make_node("Conv", ["x", "K"], ["y"], pads=[2**40, 2**40])], [_weight(np.ones((2, 4, 1), np.float32), "K")],
            inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3])]),  # fmt: skip
    }
    for label, data in cases.items():
        assert load_bytes(".onnx", data) is None, label


def test_cycle_and_unsupported_messages_name_nodes(tmp_path: Path) -> None:
    w = _weight(np.ones((2, 4), np.float32))
    cyclic = _model(
        [helper.make_node("Relu", ["b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second"),
         helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)], [w])  # fmt: skip
    (tmp_path / "c.onnx").write_bytes(cyclic)
    with pytest.raises(ModelFormatError, match=r"cycle \(nodes on or after it: node 'first' \(Relu\), node 'second' \(Relu\)"):
        load_onnx(tmp_path / "c.onnx")
    softmax = _model([helper.make_node("Softmax", ["x"], ["y"], name="probs")], [])
    (tmp_path / "s.onnx").write_bytes(softmax)
    with pytest.raises(ModelFormatError, match=r"node 'probs' \(Softmax\) uses operator 'Softmax'"):
        load_onnx(tmp_path / "s.onnx")
