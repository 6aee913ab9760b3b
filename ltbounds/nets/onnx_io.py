"""Reading targets from ONNX graphs and writing targets (and tickets) as ONNX models.

**Reading** (:func:`load_onnx`) walks the graph instead of trusting it. The file is read under
a byte cap and parsed as a ``ModelProto`` (protobuf only: no ``onnx.load``, which would follow
external-data paths, and no checker run on untrusted input); every initializer and
``Constant`` is decoded by our own code after its declared shape is checked against
``max_elements`` and its stored bytes (external data, sparse tensors and odd dtypes are
refused). The nodes are sorted topologically (a cycle, a value produced twice or an input
that nothing produces is a :class:`~ltbounds.errors.ModelFormatError`), nodes that do not
reach the output are ignored, and what is left is translated into layers:

* ``Conv`` (1-D or 2-D, one group, no dilation, symmetric padding), ``Gemm`` (any ``alpha``,
  ``beta``, ``transB``), ``MatMul`` with a constant matrix, followed optionally by ``Add`` of
  a constant bias and ``BatchNormalization`` (folded, :func:`~ltbounds.nets.io.fold_batchnorm`);
* activations, found as *elementwise regions*: the nodes downstream of one value that use only
  it, each other and scalar constants (``Relu``, ``LeakyRelu``, ``Tanh``, ``Sigmoid``, ``Elu``,
  ``Softplus``, ``Gelu``, ``Erf``, ``Exp``, ``Add``, ``Sub``, ``Mul``, ``Div``, ``Neg``,
  ``Pow``, ``Sqrt``). The region is evaluated on probe points and matched against the
  registered activations (:mod:`ltbounds.activations`) within :data:`ACTIVATION_MATCH_TOL`, so
  ``Relu`` and PyTorch's exports of GELU (``Div``, ``Erf``, ``Add``, ``Mul``, ``Mul``) and SiLU
  (``Sigmoid``, ``Mul``) are all recognised and anything else is refused by name;
* ``AveragePool``/``MaxPool`` (no padding, no ceil mode), ``GlobalAveragePool``,
  ``GlobalMaxPool``, ``Flatten`` (axis 1) and ``Reshape`` to ``(batch, -1)``;
  ``Identity`` and ``Dropout`` pass through;
* ``Add`` of two computed values is a residual join: the graph must fork at one value into two
  paths (linear layers with the activation between them, and the identity or one linear layer)
  that meet at the ``Add``, optionally followed by the activation
  (:class:`~ltbounds.nets.residual.ResidualBlock`).

The activation must then sit where :class:`~ltbounds.nets.target.TargetNet` puts it: after
every linear layer but the last (a ``Flatten``, or for a monotone φ a ``MaxPool``, may come in
between, since they commute with φ). Any other operator or structure is refused with the node
and operator named.

**Writing** (:func:`target_to_onnx`, :func:`save_onnx`) emits float32 ``Conv``/``Gemm``/pooling
/``Flatten``/``Add`` nodes at opset :data:`DEFAULT_OPSET`, each activation as the operator (or
the PyTorch-style decomposition for GELU and SiLU) that the reader recognises, with the
input domain, name and metadata in ``metadata_props``, so target → ONNX → target is exact up to
float32 rounding of the weights. **Cross-checks** (:func:`cross_check`) run a model with
onnxruntime on inputs sampled from the target's domain and compare with our float64 forward
pass.

``onnx`` (and ``onnxruntime`` for cross-checks) are optional dependencies: ``pip install
'ltbounds[io]'``.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._defaults import DEFAULT_CROSS_CHECK_TOL as _DEFAULT_CROSS_CHECK_TOL
from ltbounds._io_util import atomic_path
from ltbounds._version import __version__
from ltbounds.activations import ACTIVATIONS, get_activation
from ltbounds.errors import InvalidInput, LtboundsError, ModelFormatError
from ltbounds.nets._base import Layer, LinearLayer
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.io import (
    DEFAULT_BATCHNORM_EPS,
    DEFAULT_INPUT_DOMAIN,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    check_file_size,
    fold_batchnorm,
)
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.residual import ResidualBlock
from ltbounds.nets.target import TargetNet

#: Opset of the models :func:`target_to_onnx` writes (supported by every current runtime).
DEFAULT_OPSET = 17
#: IR version written with :data:`DEFAULT_OPSET`.
IR_VERSION = 8
#: Largest number of graph nodes read by default.
DEFAULT_MAX_NODES = 100_000
#: An elementwise region matches an activation when it differs from it by at most this much
#: (times ``max(1, |x|)``) on the probe points; float32 constants (``√2``, ``0.01``) stay far
#: below it.
ACTIVATION_MATCH_TOL = 1e-6
#: Probe points for matching elementwise regions against the registered activations.
_PROBES = np.concatenate([np.linspace(-8.0, 8.0, 641), [-30.0, -15.0, 15.0, 30.0]])
#: Default tolerance of :func:`cross_check`: largest |ours − onnxruntime| allowed, relative to
#: ``max(1, max |our output|)``. ONNX models hold float32 weights and onnxruntime computes in
#: float32, our forward pass in float64. (Defined in :mod:`ltbounds._defaults`, for the CLI.)
DEFAULT_CROSS_CHECK_TOL = _DEFAULT_CROSS_CHECK_TOL
#: Export dtypes and their ONNX element types (FLOAT, DOUBLE).
_EXPORT_DTYPES = {"float32": 1, "float64": 11}
#: Metadata keys written into (and read back from) ``metadata_props``.
META_DOMAIN = "ltbounds.input_domain"
META_NAME = "ltbounds.name"
META_METADATA = "ltbounds.metadata"
META_ACTIVATION = "ltbounds.activation"
#: Most dimensions of a tensor, and the largest stride, padding or kernel entry read.
_MAX_DIMS = 8
_MAX_WINDOW = 2**16

_ELEMENTWISE = {
    "Relu", "LeakyRelu", "Tanh", "Sigmoid", "Elu", "Softplus", "Gelu", "Erf", "Exp",
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt",
}  # fmt: skip
_STRUCTURAL = {"Flatten", "Reshape", "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool"}
_SUPPORTED = sorted(
    _ELEMENTWISE | _STRUCTURAL
    | {"Conv", "Gemm", "MatMul", "BatchNormalization", "Identity", "Dropout", "Constant"}
)  # fmt: skip
#: Activations that commute with max pooling (nondecreasing).
_MONOTONE = {"relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus"}


def _onnx() -> Any:
    try:
        import onnx  # noqa: PLC0415
    except ImportError:
        raise ModelFormatError(
            "reading or writing .onnx files needs the optional package onnx: pip install 'ltbounds[io]'"
        ) from None
    return onnx


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


# -- reading: bytes, tensors, attributes -------------------------------------------------------
def _parse_model(where: Path, max_bytes: int) -> Any:
    check_file_size(where, max_bytes)
    onnx = _onnx()
    try:
        data = where.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{where}: cannot read ({exc.strerror})") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError, and RuntimeError/ValueError in places
        raise ModelFormatError(
            f"{where}: not a readable ONNX model ({type(exc).__name__}: {_one_line(exc)[:200]})"
        ) from None
    if not model.HasField("graph"):
        raise ModelFormatError(f"{where}: the file holds no ONNX graph")
    return model


#: ONNX TensorProto data types read, with the repeated field their values may live in.
_TENSOR_TYPES = {
    1: (np.dtype("<f4"), "float_data"),
    11: (np.dtype("<f8"), "double_data"),
    10: (np.dtype("<f2"), "int32_data"),
    7: (np.dtype("<i8"), "int64_data"),
    6: (np.dtype("<i4"), "int32_data"),
    9: (np.dtype("?"), "int32_data"),
}


def _decode_tensor(where: Path, tensor: Any, label: str, max_elements: int) -> np.ndarray:
    """One TensorProto as a numpy array, checked before any data is touched."""
    if tensor.data_location == 1 or len(tensor.external_data):
        raise ModelFormatError(f"{where}: {label} refers to external data; ltbounds reads self-contained models only")
    if tensor.HasField("segment"):
        raise ModelFormatError(f"{where}: {label} is a segmented tensor; not supported")
    dims = [int(d) for d in tensor.dims]
    if len(dims) > _MAX_DIMS or any(d < 0 for d in dims):
        raise ModelFormatError(f"{where}: {label} has dims {dims[:10]}; expected at most {_MAX_DIMS} non-negative sizes")
    count = math.prod(dims)
    if count > max_elements:
        raise ModelFormatError(
            f"{where}: {label} declares shape {tuple(dims)} ({count:,} entries), over the cap max_elements={max_elements:,}"
        )
    if tensor.data_type not in _TENSOR_TYPES:
        raise ModelFormatError(
            f"{where}: {label} has ONNX data type {tensor.data_type}; expected float, double, float16, int32, int64 or bool"
        )
    dtype, field_name = _TENSOR_TYPES[tensor.data_type]
    raw = tensor.raw_data
    if raw:
        if len(raw) != count * dtype.itemsize:
            raise ModelFormatError(
                f"{where}: {label} declares shape {tuple(dims)} of {dtype.name} ({count * dtype.itemsize:,} bytes) "
                f"but stores {len(raw):,} bytes"
            )
        values = np.frombuffer(raw, dtype=dtype)
    else:
        stored = getattr(tensor, field_name)
        if len(stored) != count:
            raise ModelFormatError(
                f"{where}: {label} declares shape {tuple(dims)} ({count:,} entries) but stores {len(stored):,} values"
            )
        if tensor.data_type == 10:
            values = np.array(stored, dtype=np.int64).astype(np.uint16).view(np.float16)
        else:
            values = np.array(stored, dtype=dtype.newbyteorder("="))
    return np.array(values.reshape(dims), dtype=values.dtype.newbyteorder("="))


def _attributes(where: Path, node: Any, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in node.attribute:
        if not isinstance(attribute.name, str):  # protobuf hands back bytes that are not UTF-8
            raise ModelFormatError(f"{where}: {label} has an attribute name that is not UTF-8 text")
        kind = attribute.type
        if kind == 1:
            out[attribute.name] = float(attribute.f)
        elif kind == 2:
            out[attribute.name] = int(attribute.i)
        elif kind == 3:
            out[attribute.name] = bytes(attribute.s).decode("utf-8", "replace")
        elif kind == 4:
            out[attribute.name] = attribute.t
        elif kind == 6:
            out[attribute.name] = [float(v) for v in attribute.floats]
        elif kind == 7:
            out[attribute.name] = [int(v) for v in attribute.ints]
        else:
            raise ModelFormatError(
                f"{where}: {label} has attribute {attribute.name!r} of a kind ltbounds does not read (type {kind})"
            )
    return out


# -- reading: the graph ------------------------------------------------------------------------
@dataclass(eq=False)
class _Value:
    """A computed value of the graph, after translation into ltbounds terms."""

    kind: str  # "input", "linear", "act", "struct", "add"
    inputs: tuple[_Value, ...]
    shape: tuple[int, ...]
    label: str
    layer: Layer | None = None
    act: str | None = None
    consumers: list[_Value] = field(default_factory=list)


class _Reader:
    """Translate one parsed ModelProto into a :class:`TargetNet` (see the module docstring)."""

    def __init__(
        self, where: Path, model: Any, max_elements: int, max_nodes: int,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:  # fmt: skip
        self.override = input_shape
        self.where = where
        self.model = model
        self.graph = model.graph
        self.max_elements = max_elements
        self.max_nodes = max_nodes
        self.consts: dict[str, np.ndarray] = {}
        self.values: dict[str, _Value] = {}
        self.claimed: set[int] = set()

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: {message}")

    def label(self, index: int) -> str:
        node = self.nodes[index]
        name = node.name or f"#{index}"
        return f"node {_one_line(name)[:60]!r} ({_one_line(node.op_type)[:40]})"

    # -- structure of the protobuf graph ------------------------------------------------------
    def read(self) -> tuple[list[Layer], tuple[int, ...], str | None, int | None]:
        graph = self.graph
        for opset in self.model.opset_import:
            if opset.domain in ("", "ai.onnx") and not 7 <= opset.version <= 100:
                raise self.fail(f"opset version {opset.version}; expected 7 or later")
        if len(graph.sparse_initializer):
            raise self.fail("sparse initializers are not supported")
        if len(graph.node) > self.max_nodes:
            raise self.fail(f"graph has {len(graph.node):,} nodes, over the cap max_nodes={self.max_nodes:,}")
        for position, tensor in enumerate(graph.initializer):
            name = tensor.name
            if name in self.consts:
                raise self.fail(f"initializer {name!r} appears twice")
            self.consts[name] = _decode_tensor(self.where, tensor, f"initializer {name!r}" if name else f"initializer #{position}", self.max_elements)
        inputs = [v for v in graph.input if v.name not in self.consts]
        if len(inputs) != 1:
            raise self.fail(
                f"graph has {len(inputs)} inputs besides its initializers ({', '.join(repr(v.name) for v in inputs[:5])}); expected one"
            )
        if len(graph.output) != 1:
            raise self.fail(f"graph has {len(graph.output)} outputs; expected one")
        self.input_name = inputs[0].name
        self.output_name = graph.output[0].name
        shape, batch = self.input_shape(inputs[0])
        self.nodes = list(graph.node)
        order = self.topological_order()
        live = self.live_nodes(order)
        self.uses: dict[str, int] = {}
        self.users: dict[str, list[int]] = {}
        for index in live:
            for name in self.nodes[index].input:
                if name:
                    self.uses[name] = self.uses.get(name, 0) + 1
                    self.users.setdefault(name, []).append(index)
        self.uses[self.output_name] = self.uses.get(self.output_name, 0) + 1
        self.order = [i for i in order if i in live]
        self.position = {index: k for k, index in enumerate(self.order)}
        self.batch = batch
        start = _Value("input", (), shape, f"graph input {self.input_name!r}")
        self.values[self.input_name] = start
        for index in self.order:
            if index in self.claimed:
                continue
            try:
                self.translate(index)
            except LtboundsError:
                raise
            except (ValueError, TypeError, LookupError, ArithmeticError, AttributeError) as exc:
                # Operands or attributes hostile in a way no specific check names (an int
                # list where a float goes, a missing output): still a refusal of the file.
                raise self.fail(
                    f"{self.label(index)}: malformed operands or attributes ({type(exc).__name__}: {_one_line(exc)[:200]})"
                ) from None
        out = self.values.get(self.output_name)
        if out is None:
            raise self.fail(f"graph output {self.output_name!r} is a constant; expected a computed value")
        layers, activation = self.structure(start, out)
        return layers, shape, activation, batch

    def input_shape(self, value: Any) -> tuple[tuple[int, ...], int | None]:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            raise self.fail(f"graph input {value.name!r} is not a tensor")
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in (1, 10, 11):
            raise self.fail(
                f"graph input {value.name!r} has ONNX data type {tensor_type.elem_type}; expected float, float16 or double"
            )
        if not tensor_type.HasField("shape"):
            raise self.fail(f"graph input {value.name!r} has no shape; pass input_shape=")
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2 or len(dims) > 4:
            raise self.fail(
                f"graph input {value.name!r} has {len(dims)} dimensions; expected (batch, features), (batch, C, L) or (batch, C, H, W)"
            )
        batch = dims[0].dim_value if dims[0].WhichOneof("value") == "dim_value" else None
        if self.override is not None:
            shape = [int(s) for s in self.override]
            if len(shape) != len(dims) - 1 or not all(1 <= s <= 2**31 for s in shape):
                raise InvalidInput(f"input_shape={tuple(self.override)} does not fit the graph input of {len(dims)} dimensions")
            return tuple(shape), (int(batch) if batch else None)
        shape = []
        for dim in dims[1:]:
            if dim.WhichOneof("value") != "dim_value" or not 1 <= dim.dim_value <= 2**31:
                raise self.fail(f"graph input {value.name!r} has a symbolic or invalid sample dimension; pass input_shape=")
            shape.append(int(dim.dim_value))
        if math.prod(shape) > self.max_elements:
            raise self.fail(f"graph input {value.name!r} has shape {tuple(shape)}, over max_elements={self.max_elements:,}")
        return tuple(shape), (int(batch) if batch else None)

    def topological_order(self) -> list[int]:
        producer: dict[str, int] = {}
        for index, node in enumerate(self.nodes):
            for name in node.output:
                if not name:
                    continue
                if name in producer or name in self.consts or name == self.input_name:
                    raise self.fail(f"value {name!r} is produced twice (again by {self.label(index)})")
                producer[name] = index
        indegree = [0] * len(self.nodes)
        dependants: list[list[int]] = [[] for _ in self.nodes]
        for index, node in enumerate(self.nodes):
            if node.domain not in ("", "ai.onnx"):
                continue  # reported as unsupported if it is live
            for name in node.input:
                if not name or name in self.consts or name == self.input_name:
                    continue
                if name not in producer:
                    raise self.fail(f"{self.label(index)} reads {name!r}, which no node, input or initializer provides")
                indegree[index] += 1
                dependants[producer[name]].append(index)
        ready = deque(i for i, d in enumerate(indegree) if d == 0)
        order = []
        while ready:
            index = ready.popleft()
            order.append(index)
            for after in dependants[index]:
                indegree[after] -= 1
                if indegree[after] == 0:
                    ready.append(after)
        if len(order) != len(self.nodes):
            stuck = [self.label(i) for i, d in enumerate(indegree) if d > 0]
            raise self.fail(f"graph has a cycle (nodes on or after it: {', '.join(stuck[:4])}{' …' if len(stuck) > 4 else ''})")
        self.producer = producer
        return order

    def live_nodes(self, order: list[int]) -> set[int]:
        if self.output_name not in self.producer:
            if self.output_name == self.input_name:
                raise self.fail("graph output is its input; expected at least one layer")
            raise self.fail(f"graph output {self.output_name!r} is produced by no node")
        live: set[int] = set()
        stack = [self.producer[self.output_name]]
        while stack:
            index = stack.pop()
            if index in live:
                continue
            live.add(index)
            stack += [self.producer[n] for n in self.nodes[index].input if n in self.producer]
        return live

    # -- nodes into values ----------------------------------------------------------------------
    def operand(self, name: str) -> _Value | np.ndarray | None:
        if not name:
            return None
        if name in self.consts:
            return self.consts[name]
        return self.values.get(name)

    def new_value(self, name: str, value: _Value) -> None:
        if math.prod(value.shape) > self.max_elements:
            raise self.fail(f"{value.label} produces {value.shape} per sample, over max_elements={self.max_elements:,}")
        self.values[name] = value

    def translate(self, index: int) -> None:
        node = self.nodes[index]
        label = self.label(index)
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in _SUPPORTED:
            domain = f" of domain {_one_line(node.domain)[:40]!r}" if node.domain not in ("", "ai.onnx") else ""
            raise self.fail(f"{label} uses operator {_one_line(op)[:40]!r}{domain}, which ltbounds does not read; supported: {', '.join(_SUPPORTED)}")
        attrs = _attributes(self.where, node, label)
        if op == "Constant":
            if set(attrs) != {"value"}:
                raise self.fail(f"{label}: only Constant with a 'value' tensor is supported")
            self.consts[node.output[0]] = _decode_tensor(self.where, attrs["value"], label, self.max_elements)
            return
        operands = [self.operand(name) for name in node.input]
        for name, operand in zip(node.input, operands, strict=True):
            if name and operand is None:
                raise self.fail(f"{label} reads {name!r}, which an unsupported construct produced")
        runtime = [o for o in operands if isinstance(o, _Value)]
        if not runtime:
            if op in _ELEMENTWISE or op == "Identity":
                self.consts[node.output[0]] = self.evaluate_constant(index, operands)
                return
            raise self.fail(f"{label} computes only on constants; expected it to act on the network's input")
        try:
            self.translate_op(index, label, op, attrs, operands, runtime)
        except InvalidInput as exc:
            raise self.fail(f"{label}: {_one_line(exc)}") from None

    def translate_op(
        self, index: int, label: str, op: str, attrs: dict[str, Any],
        operands: list[Any], runtime: list[_Value],
    ) -> None:  # fmt: skip
        node = self.nodes[index]
        out = node.output[0]
        x = operands[0]
        if op in ("Identity", "Dropout"):
            if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
                raise self.fail(f"{label}: the dropout mask output is used; expected inference mode")
            if op == "Dropout" and len(operands) > 2 and isinstance(operands[2], np.ndarray) and operands[2].any():
                raise self.fail(f"{label}: training_mode is true; expected inference mode")
            self.values[out] = self.need_runtime(label, x)
            return
        if op == "Conv":
            self.conv(label, out, attrs, operands)
        elif op == "Gemm":
            self.gemm(label, out, attrs, operands)
        elif op == "MatMul":
            x, weight = operands
            if not isinstance(x, _Value) or not isinstance(weight, np.ndarray) or weight.ndim != 2:
                raise self.fail(f"{label}: expected MatMul(value, constant matrix)")
            self.dense(label, out, x, _float(weight).T, None)
        elif op == "Add" and len(runtime) == 1 and self.is_bias(operands):
            self.add_bias(label, out, operands)
        elif op == "Add" and len(runtime) == 2 and runtime[0] is not runtime[1]:
            a, b = runtime
            if a.shape != b.shape:
                raise self.fail(f"{label} adds values of shapes {a.shape} and {b.shape}; expected equal shapes")
            self.new_value(out, _Value("add", (a, b), a.shape, label))
        elif op == "BatchNormalization":
            self.batchnorm(label, out, attrs, operands)
        elif op in _ELEMENTWISE:
            self.activation_region(index, label, runtime)
        else:
            self.structural(label, out, op, attrs, operands)

    def need_runtime(self, label: str, operand: Any) -> _Value:
        if not isinstance(operand, _Value):
            raise self.fail(f"{label}: expected a computed input, got a constant")
        return operand

    def sole_use(self, value: _Value) -> bool:
        names = [n for n, v in self.values.items() if v is value]
        return sum(self.uses.get(n, 0) for n in names) == 1

    # linear layers
    def conv(self, label: str, out: str, attrs: dict[str, Any], operands: list[Any]) -> None:
        x = self.need_runtime(label, operands[0])
        if len(operands) < 2 or not isinstance(operands[1], np.ndarray):
            raise self.fail(f"{label}: expected a constant weight")
        weight = _float(operands[1])
        if len(operands) > 2 and operands[2] is not None and not isinstance(operands[2], np.ndarray):
            raise self.fail(f"{label}: expected a constant bias")
        bias = _float(operands[2]) if len(operands) > 2 and operands[2] is not None else None
        if weight.ndim not in (3, 4):
            raise self.fail(f"{label}: weight has shape {weight.shape}; expected a 1-D or 2-D convolution")
        dims = weight.ndim - 2
        extra = set(attrs) - {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"}
        if extra:
            raise self.fail(f"{label}: attributes {', '.join(sorted(extra))} are not supported")
        if attrs.get("group", 1) != 1:
            raise self.fail(f"{label}: group={attrs['group']}; expected 1 (grouped and depthwise convolutions are not supported)")
        if any(d != 1 for d in attrs.get("dilations", [1] * dims)):
            raise self.fail(f"{label}: dilations={attrs['dilations']}; expected 1")
        if attrs.get("kernel_shape", list(weight.shape[2:])) != list(weight.shape[2:]):
            raise self.fail(f"{label}: kernel_shape={attrs['kernel_shape']} disagrees with the weight {weight.shape}")
        strides = self.window("strides", label, attrs.get("strides", [1] * dims), dims, 1)
        padding = self.pads(label, attrs, dims)
        if bias is not None and bias.shape != (weight.shape[0],):
            raise self.fail(f"{label}: bias has shape {bias.shape}; expected ({weight.shape[0]},)")
        cls = Conv1d if dims == 1 else Conv2d
        layer = cls(weight, bias, stride=strides, padding=padding)
        self.new_value(out, _Value("linear", (x,), layer.output_shape(x.shape), label, layer=layer))

    def gemm(self, label: str, out: str, attrs: dict[str, Any], operands: list[Any]) -> None:
        x = self.need_runtime(label, operands[0])
        if len(operands) < 2 or not isinstance(operands[1], np.ndarray) or operands[1].ndim != 2:
            raise self.fail(f"{label}: expected Gemm(value, constant matrix[, constant bias])")
        extra = set(attrs) - {"alpha", "beta", "transA", "transB"}
        if extra:
            raise self.fail(f"{label}: attributes {', '.join(sorted(extra))} are not supported")
        if attrs.get("transA", 0):
            raise self.fail(f"{label}: transA=1; expected the batch on the first axis")
        matrix = _float(operands[1]) * attrs.get("alpha", 1.0)
        weight = matrix if attrs.get("transB", 0) else matrix.T
        bias = None
        if len(operands) > 2 and operands[2] is not None:
            if not isinstance(operands[2], np.ndarray):
                raise self.fail(f"{label}: expected a constant bias C")
            bias = self.broadcast_bias(label, _float(operands[2]) * attrs.get("beta", 1.0), weight.shape[0], 0)
        self.dense(label, out, x, weight, bias)

    def dense(self, label: str, out: str, x: _Value, weight: np.ndarray, bias: np.ndarray | None) -> None:
        if len(x.shape) != 1:
            raise self.fail(f"{label}: input has shape {x.shape} per sample; expected a vector (insert Flatten)")
        layer = Dense(weight, bias)
        self.new_value(out, _Value("linear", (x,), layer.output_shape(x.shape), label, layer=layer))

    def is_bias(self, operands: list[Any]) -> bool:
        """Add(linear output, constant) where nothing else reads the linear output: a bias."""
        run = next(o for o in operands if isinstance(o, _Value))
        const = any(isinstance(o, np.ndarray) for o in operands)
        return const and run.kind == "linear" and self.sole_use(run)

    def add_bias(self, label: str, out: str, operands: list[Any]) -> None:
        run = next(o for o in operands if isinstance(o, _Value))
        const = _float(next(o for o in operands if isinstance(o, np.ndarray)))
        layer = run.layer
        assert isinstance(layer, LinearLayer)
        spatial = len(run.shape) - 1
        bias = self.broadcast_bias(label, const, layer.out_channels, spatial)
        combined = bias if layer.bias is None else layer.bias + bias
        self.new_value(out, _Value("linear", run.inputs, run.shape, run.label, layer=_rebuild(layer, layer.weight, combined)))

    def broadcast_bias(self, label: str, const: np.ndarray, channels: int, spatial: int) -> np.ndarray:
        """A per-channel bias from a constant broadcast against ``(batch, channels, *spatial)``."""
        shape = const.shape
        squeezed = list(shape)
        # Accepted: (), (1,), (C,) for dense; (C, 1, ..., 1) or (1, C, 1, ..., 1) for convolutions.
        if const.size == 1:
            return np.full(channels, float(const.reshape(-1)[0]))
        target = [channels] + [1] * spatial
        while len(squeezed) > len(target) and squeezed[0] == 1:
            squeezed = squeezed[1:]
        if squeezed != target:
            raise self.fail(
                f"{label}: constant of shape {shape} is not a per-channel bias for {channels} channels"
            )
        return const.reshape(channels)

    def batchnorm(self, label: str, out: str, attrs: dict[str, Any], operands: list[Any]) -> None:
        run = self.need_runtime(label, operands[0])
        if run.kind != "linear" or not self.sole_use(run):
            raise self.fail(
                f"{label}: batch norm must directly follow a Conv, Gemm or MatMul whose output it alone reads, to be folded into it"
            )
        if len(operands) != 5 or not all(isinstance(o, np.ndarray) for o in operands[1:]):
            raise self.fail(f"{label}: expected constant scale, bias, mean and variance")
        if attrs.get("training_mode", 0):
            raise self.fail(f"{label}: training_mode=1; expected inference mode")
        extra = set(attrs) - {"epsilon", "momentum", "training_mode", "spatial", "is_test"}
        if extra:
            raise self.fail(f"{label}: attributes {', '.join(sorted(extra))} are not supported")
        layer = run.layer
        assert isinstance(layer, LinearLayer)
        gamma, beta, mean, var = (_float(o).reshape(-1) for o in operands[1:])
        weight, bias = fold_batchnorm(
            layer.weight, layer.bias, gamma, beta, mean, var, attrs.get("epsilon", DEFAULT_BATCHNORM_EPS)
        )
        self.new_value(out, _Value("linear", run.inputs, run.shape, run.label, layer=_rebuild(layer, weight, bias)))

    # structural layers
    def structural(self, label: str, out: str, op: str, attrs: dict[str, Any], operands: list[Any]) -> None:
        x = self.need_runtime(label, operands[0])
        layer: Layer
        if op == "Flatten":
            axis = attrs.get("axis", 1)
            if axis not in (1, 1 - len(x.shape) - 1) or set(attrs) - {"axis"}:
                raise self.fail(f"{label}: axis={axis}; expected 1 (keep the batch axis)")
            layer = Flatten()
        elif op == "Reshape":
            if len(operands) != 2 or not isinstance(operands[1], np.ndarray) or operands[1].dtype.kind not in "iu":
                raise self.fail(f"{label}: expected a constant integer shape")
            if attrs.get("allowzero", 0):
                raise self.fail(f"{label}: allowzero=1 is not supported")
            self.check_flatten_shape(label, [int(v) for v in operands[1].reshape(-1)], x.shape)
            layer = Flatten()
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            if len(x.shape) not in (2, 3):
                raise self.fail(f"{label}: input has shape {x.shape}; expected (C, L) or (C, H, W)")
            kernel = x.shape[1:]
            cls = {("GlobalAveragePool", 2): AvgPool1d, ("GlobalAveragePool", 3): AvgPool2d,
                   ("GlobalMaxPool", 2): MaxPool1d, ("GlobalMaxPool", 3): MaxPool2d}[(op, len(x.shape))]  # fmt: skip
            layer = cls(kernel, kernel)
        else:  # AveragePool, MaxPool
            kernel = attrs.get("kernel_shape")
            if not isinstance(kernel, list) or len(kernel) not in (1, 2) or len(kernel) != len(x.shape) - 1:
                raise self.fail(f"{label}: kernel_shape={kernel}; expected one entry per spatial axis of {x.shape}")
            dims = len(kernel)
            extra = set(attrs) - {"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations", "count_include_pad", "storage_order"}
            if extra:
                raise self.fail(f"{label}: attributes {', '.join(sorted(extra))} are not supported")
            if attrs.get("ceil_mode", 0):
                raise self.fail(f"{label}: ceil_mode=1 is not supported")
            if any(d != 1 for d in attrs.get("dilations", [1] * dims)):
                raise self.fail(f"{label}: dilations={attrs['dilations']}; expected 1")
            if any(self.pads(label, attrs, dims)):
                raise self.fail(f"{label}: pads={attrs.get('pads')}; pooling with padding is not supported")
            kernel = self.window("kernel_shape", label, kernel, dims, 1)
            strides = self.window("strides", label, attrs.get("strides", [1] * dims), dims, 1)
            cls = {("AveragePool", 1): AvgPool1d, ("AveragePool", 2): AvgPool2d,
                   ("MaxPool", 1): MaxPool1d, ("MaxPool", 2): MaxPool2d}[(op, dims)]  # fmt: skip
            layer = cls(kernel, strides)
        self.new_value(out, _Value("struct", (x,), layer.output_shape(x.shape), label, layer=layer))

    def check_flatten_shape(self, label: str, shape: list[int], sample: tuple[int, ...]) -> None:
        total = math.prod(sample)
        ok = len(shape) == 2 and (
            (shape[0] in (0, -1) and shape[1] in (-1, total) and shape != [-1, -1])
            or (self.batch is not None and shape[0] == self.batch and shape[1] in (-1, total))
        )
        if not ok:
            raise self.fail(f"{label}: reshape to {shape[:8]}; only flattening to (batch, {total}) is supported")

    def window(self, what: str, label: str, values: Any, dims: int, minimum: int) -> tuple[int, ...]:
        if not isinstance(values, list) or len(values) != dims or not all(minimum <= v <= _MAX_WINDOW for v in values):
            raise self.fail(f"{label}: {what}={str(values)[:60]}; expected {dims} integers in [{minimum}, {_MAX_WINDOW}]")
        return tuple(values)

    def pads(self, label: str, attrs: dict[str, Any], dims: int) -> tuple[int, ...]:
        auto = attrs.get("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "VALID", ""):
            raise self.fail(f"{label}: auto_pad={auto!r}; expected explicit pads (NOTSET) or VALID")
        if auto == "VALID":
            return (0,) * dims
        pads = attrs.get("pads", [0] * 2 * dims)
        if not isinstance(pads, list) or len(pads) != 2 * dims or not all(0 <= p <= _MAX_WINDOW for p in pads):
            raise self.fail(f"{label}: pads={str(pads)[:60]}; expected {2 * dims} integers in [0, {_MAX_WINDOW}]")
        if pads[:dims] != pads[dims:]:
            raise self.fail(f"{label}: pads={pads} are asymmetric; expected equal begin and end padding")
        return tuple(pads[:dims])

    # activations: elementwise regions
    def activation_region(self, first: int, label: str, runtime: list[_Value]) -> None:
        x = runtime[0]
        if any(r is not x for r in runtime):
            raise self.fail(f"{label} combines two different values elementwise; only residual Add joins are supported")
        inside = {name for name, value in self.values.items() if value is x}
        region: list[int] = []
        for index in self.order[self.position[first]:]:
            if len(region) >= 64:
                break
            node = self.nodes[index]
            if index in self.claimed or node.op_type not in _ELEMENTWISE or node.domain not in ("", "ai.onnx"):
                continue
            names = [n for n in node.input if n]
            if not any(n in inside for n in names):
                continue
            if all(n in inside or (n in self.consts and self.consts[n].size == 1) for n in names):
                region.append(index)
                inside.update(n for n in node.output if n)
        members = set(region)
        outputs = [n for i in region for n in self.nodes[i].output if n]
        escaping = [n for n in outputs if self.uses.get(n, 0) > sum(1 for u in self.users.get(n, []) if u in members)]
        x_names = [name for name, value in self.values.items() if value is x]
        x_outside = [n for n in x_names if self.uses.get(n, 0) > sum(1 for u in self.users.get(n, []) if u in members)]
        nodes = ", ".join(self.label(i) for i in region[:4]) + (" …" if len(region) > 4 else "")
        if len(escaping) != 1:
            raise self.fail(f"elementwise nodes {nodes} feed {len(escaping)} later values; expected one activation output")
        if x_outside:
            raise self.fail(
                f"{x.label} is read both by the elementwise nodes {nodes} and elsewhere; ltbounds targets apply φ to a linear layer's whole output"
            )
        name = self.match_activation(region, x_names, escaping[0], nodes)
        self.claimed.update(region)
        self.new_value(escaping[0], _Value("act", (x,), x.shape, nodes, act=name))

    def match_activation(self, region: list[int], x_names: list[str], output: str, nodes: str) -> str:
        env = {n: _PROBES for n in x_names}
        with np.errstate(all="ignore"):
            for index in region:
                node = self.nodes[index]
                args = [env[n] if n in env else float(self.consts[n].reshape(-1)[0]) for n in node.input if n]
                attrs = _attributes(self.where, node, self.label(index))
                env[node.output[0]] = _elementwise(node.op_type, args, attrs, self.fail, self.label(index))
        result = env[output]
        best, best_error = None, math.inf
        scale = np.maximum(1.0, np.abs(_PROBES))
        for activation in ACTIVATIONS.values():
            with np.errstate(all="ignore"):
                error = float(np.max(np.abs(np.asarray(result, dtype=np.float64) - activation.forward(_PROBES)) / scale))
            if not math.isnan(error) and error < best_error:
                best, best_error = activation.name, error
        if best is None or best_error > ACTIVATION_MATCH_TOL:
            closest = "" if best is None else f" (closest: {best}, off by {best_error:.3g})"
            raise self.fail(
                f"elementwise nodes {nodes} compute a function that matches no registered activation{closest}; "
                f"expected one of {', '.join(sorted(ACTIVATIONS))}"
            )
        return best

    def evaluate_constant(self, index: int, operands: list[Any]) -> np.ndarray:
        node = self.nodes[index]
        label = self.label(index)
        if node.op_type == "Identity":
            return operands[0]
        if any(o is not None and o.size > 1 for o in operands):
            raise self.fail(f"{label} computes on constant tensors; only scalar constant arithmetic is folded")
        args = [float(o.reshape(-1)[0]) for o in operands if o is not None]
        with np.errstate(all="ignore"):
            value = _elementwise(node.op_type, args, _attributes(self.where, node, label), self.fail, label)
        return np.asarray(value, dtype=np.float64).reshape(())

    # -- values into layers ---------------------------------------------------------------------
    def structure(self, start: _Value, out: _Value) -> tuple[list[Layer], str | None]:
        live: list[_Value] = []
        seen: set[int] = set()
        stack = [out]
        while stack:
            value = stack.pop()
            if id(value) in seen:
                continue
            seen.add(id(value))
            live.append(value)
            stack += list(value.inputs)
        if id(start) not in seen:
            raise self.fail("graph output does not depend on the graph input")
        for value in live:
            for source in value.inputs:
                source.consumers.append(value)
        tokens: list[Any] = []
        current = start
        while current is not out:
            consumers = current.consumers
            if len(consumers) == 1 and consumers[0].kind != "add":
                current = consumers[0]
                tokens.append(current)
                continue
            block, current = self.block(current)
            tokens.append(block)
        return self.layers_from(tokens)

    def block(self, x: _Value) -> tuple[tuple[str, Any], _Value]:
        consumers = x.consumers
        if len(consumers) != 2:
            raise self.fail(
                f"{x.label} feeds {len(consumers)} computations; the graph may fork only into the two paths of a residual block"
            )
        paths, merges, ends = [], [], []
        for first in consumers:
            path: list[_Value] = []
            value = first
            if value.kind != "add":
                path.append(value)
                while len(value.consumers) == 1 and value.consumers[0].kind != "add":
                    value = value.consumers[0]
                    path.append(value)
                if len(value.consumers) != 1:
                    raise self.fail(
                        f"{value.label} feeds {len(value.consumers)} computations inside a residual block; nested forks are not supported"
                    )
                ends.append(value)
                value = value.consumers[0]
            else:
                ends.append(x)
            paths.append(path)
            merges.append(value)
        if merges[0] is not merges[1]:
            raise self.fail(f"the paths leaving {x.label} end at different Add nodes ({merges[0].label}, {merges[1].label})")
        merge = merges[0]
        if {id(v) for v in merge.inputs} != {id(e) for e in ends} or len(ends) != 2:
            raise self.fail(f"{merge.label} does not join the two paths leaving {x.label}")
        for path in paths:
            for value in path:
                if value.kind not in ("linear", "act"):
                    raise self.fail(
                        f"{value.label} lies inside a residual block; a block's paths hold linear layers and the activation only"
                    )

        def is_skip(path: list[_Value]) -> bool:
            return not path or (len(path) == 1 and path[0].kind == "linear")

        first_branch = 0 if merge.inputs[0] is ends[0] else 1
        if is_skip(paths[0]) != is_skip(paths[1]):
            branch_at = 1 if is_skip(paths[0]) else 0
        else:
            branch_at = first_branch
        branch, skip = paths[branch_at], paths[1 - branch_at]
        if not is_skip(skip):
            raise self.fail(
                f"neither path from {x.label} to {merge.label} is the identity or one linear layer; expected a residual block"
            )
        if not branch:
            raise self.fail(f"{merge.label} adds a value to itself; expected a residual block")
        acts = []
        layers: list[LinearLayer] = []
        for position, value in enumerate(branch):
            expect_linear = position % 2 == 0
            if (value.kind == "linear") != expect_linear or (position == len(branch) - 1 and not expect_linear):
                raise self.fail(
                    f"{value.label}: a residual branch alternates linear layers and the activation, starting and ending with a linear layer"
                )
            if value.kind == "linear":
                layers.append(value.layer)  # type: ignore[arg-type]
            else:
                acts.append(value.act)
        end = merge
        activation_out = False
        if len(merge.consumers) == 1 and merge.consumers[0].kind == "act":
            end = merge.consumers[0]
            activation_out = True
            acts.append(end.act)
        block = ResidualBlock(tuple(layers), skip[0].layer if skip else None, activation_out)  # type: ignore[arg-type]
        return ("block", block, acts, merge.label), end

    def layers_from(self, tokens: list[Any]) -> tuple[list[Layer], str | None]:
        def is_unit(token: Any) -> bool:
            return isinstance(token, tuple) or token.kind == "linear"

        last_unit = max((k for k, t in enumerate(tokens) if is_unit(t)), default=-1)
        if last_unit < 0:
            raise self.fail("graph holds no Conv, Gemm or MatMul; expected at least one linear layer")
        layers: list[Layer] = []
        acts: list[str] = []
        pending: _Value | None = None  # a linear layer still waiting for its activation
        between: list[_Value] = []  # structural layers since that linear layer
        for position, token in enumerate(tokens):
            if isinstance(token, tuple):
                _, block, block_acts, label = token
                if pending is not None:
                    raise self.fail(f"no activation between {pending.label} and the residual block at {label}")
                acts += block_acts
                layers.append(block)
                continue
            if token.kind == "linear":
                if pending is not None:
                    raise self.fail(f"no activation between {pending.label} and {token.label}")
                layers.append(token.layer)  # type: ignore[arg-type]
                pending, between = token, []
            elif token.kind == "struct":
                layers.append(token.layer)  # type: ignore[arg-type]
                if pending is not None:
                    between.append(token)
            elif token.kind == "act":
                if position > last_unit:
                    raise self.fail(
                        f"{token.label} applies an activation after the last linear layer; ltbounds targets end with a linear layer"
                    )
                if pending is None:
                    raise self.fail(f"{token.label} applies an activation that does not follow a linear layer")
                for layer_value in between:
                    layer = layer_value.layer
                    if isinstance(layer, Flatten):
                        continue
                    if isinstance(layer, (MaxPool1d, MaxPool2d)) and token.act in _MONOTONE:
                        continue
                    raise self.fail(
                        f"{layer_value.label} comes between {pending.label} and its activation {token.label}; "
                        "φ must directly follow the linear layer (it commutes only with Flatten and, when monotone, MaxPool)"
                    )
                acts.append(token.act)  # type: ignore[arg-type]
                pending, between = None, []
            else:  # "add" outside a recognised block
                raise self.fail(f"{token.label} joins values outside a recognised residual block")
        names = sorted(set(acts))
        if len(names) > 1:
            raise self.fail(f"graph mixes activations {', '.join(names)}; a target has one")
        return layers, (names[0] if names else None)


def _float(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f":
        raise InvalidInput(f"a weight has dtype {array.dtype}; expected floating point")
    with np.errstate(all="ignore"):  # NaN and inf are reported by TargetNet, naming the layer
        return np.asarray(array, dtype=np.float64)


def _rebuild(layer: LinearLayer, weight: np.ndarray, bias: np.ndarray | None) -> LinearLayer:
    if isinstance(layer, Dense):
        return Dense(weight, bias)
    return type(layer)(weight, bias, stride=layer.stride, padding=layer.padding)  # type: ignore[call-arg]


def _elementwise(op: str, args: list[Any], attrs: dict[str, Any], fail: Any, label: str) -> Any:
    """The float64 numpy meaning of the elementwise operators an activation region may use."""
    from scipy.special import erf  # noqa: PLC0415

    unary = {"Relu", "LeakyRelu", "Tanh", "Sigmoid", "Elu", "Softplus", "Gelu", "Erf", "Exp", "Neg", "Sqrt"}
    if op in unary and len(args) != 1 or op not in unary and len(args) != 2:
        raise fail(f"{label}: {len(args)} inputs; expected {1 if op in unary else 2}")
    a = args[0]
    if op == "Relu":
        return np.maximum(a, 0.0)
    if op == "LeakyRelu":
        return np.where(a > 0, a, attrs.get("alpha", 0.01) * a)
    if op == "Tanh":
        return np.tanh(a)
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-np.asarray(a)))
    if op == "Elu":
        return np.where(a > 0, a, attrs.get("alpha", 1.0) * (np.exp(np.minimum(a, 0.0)) - 1.0))
    if op == "Softplus":
        return np.logaddexp(0.0, a)
    if op == "Gelu":
        if attrs.get("approximate", "none") == "tanh":
            return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * np.power(a, 3))))
        return 0.5 * a * (1.0 + erf(np.asarray(a) / math.sqrt(2.0)))
    if op == "Erf":
        return erf(a)
    if op == "Exp":
        return np.exp(a)
    if op == "Neg":
        return np.negative(a)
    if op == "Sqrt":
        return np.sqrt(a)
    b = args[1]
    return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}[op](a, b)


def load_onnx(
    path: str | os.PathLike[str],
    *,
    activation: str | None = None,
    input_domain: tuple[float, float] | None = None,
    input_shape: tuple[int, ...] | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> TargetNet:
    """Load a target network from an ONNX model (see the module docstring for what is read).

    Parameters
    ----------
    path : path
        The ``.onnx`` file (self-contained; external data is refused).
    activation : str, optional
        Names φ for a graph without any activation (one linear layer); otherwise it must agree
        with the activation the graph applies.
    input_domain : (float, float), optional
        The input box; else the one :func:`save_onnx` records, else ``[-1, 1]`` (noted).
    input_shape : tuple of int, optional
        One sample's shape, for graphs whose input declares symbolic sample dimensions.
    name : str, optional
        Label of the target (default: the recorded name or the file stem).
    max_bytes, max_elements, max_nodes : int
        Caps on the file size, on one tensor's (and one layer output's) entries, and on the
        number of graph nodes.

    Raises
    ------
    ModelFormatError
        Malformed or hostile file, unsupported operators or structure (naming the node and
        operator), cycles, NaN or infinite weights.
    InvalidInput
        A bad or conflicting ``activation=`` argument.
    """
    where = Path(path)
    model = _parse_model(where, max_bytes)
    reader = _Reader(where, model, max_elements, max_nodes, input_shape)
    try:
        layers, shape, found, _ = reader.read()
    except RecursionError:
        raise ModelFormatError(f"{where}: graph is nested too deeply") from None
    meta = {p.key: p.value for p in model.metadata_props}
    notes: list[str] = []
    if activation is not None:
        get_activation(activation)
        if found is not None and found != activation:
            raise InvalidInput(f"activation={activation!r} but the graph applies {found!r}")
    phi = found or activation or meta.get(META_ACTIVATION)
    if phi is None:
        phi = "relu"
        notes.append("the graph applies no activation (one linear layer); relu recorded")
    domain: Any = input_domain
    if domain is None and META_DOMAIN in meta:
        domain = _json_meta(where, meta[META_DOMAIN], META_DOMAIN)
    if domain is None:
        domain = DEFAULT_INPUT_DOMAIN
        notes.append(f"input domain not recorded; assumed [{domain[0]:g}, {domain[1]:g}] per entry")
    metadata = _json_meta(where, meta[META_METADATA], META_METADATA) if META_METADATA in meta else {}
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{where}: {META_METADATA} must be a JSON object")
    label = name or meta.get(META_NAME) or where.stem
    try:
        return TargetNet(
            layers, input_shape if input_shape is not None else shape, phi,
            tuple(domain) if isinstance(domain, (list, tuple)) else domain,
            name=str(label), notes=notes, metadata=metadata,
        )  # fmt: skip
    except (InvalidInput, TypeError) as exc:
        raise ModelFormatError(f"{where}: {_one_line(exc)}") from None


def _json_meta(where: Path, text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFormatError(f"{where}: metadata {key} is nested too deeply") from None
    except ValueError as exc:
        raise ModelFormatError(f"{where}: metadata {key} is not JSON ({_one_line(exc)})") from None


# -- writing -----------------------------------------------------------------------------------
class _Builder:
    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        out = self.fresh(name)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=self.dtype), name))
        return name

    def linear(self, layer: LinearLayer, x: str, key: str) -> str:
        inputs = [x, self.const(f"{key}.weight", layer.weight)]
        if layer.bias is not None:
            inputs.append(self.const(f"{key}.bias", layer.bias))
        if isinstance(layer, Dense):
            return self.node("Gemm", inputs, key, transB=1)
        return self.node(
            "Conv", inputs, key, kernel_shape=list(layer.weight.shape[2:]),
            strides=list(layer.stride), pads=list(layer.padding) * 2,  # type: ignore[attr-defined]
        )  # fmt: skip

    def activation(self, name: str, x: str, key: str) -> str:
        if name == "relu":
            return self.node("Relu", [x], key)
        if name == "leaky_relu":
            return self.node("LeakyRelu", [x], key, alpha=float(get_activation(name).relu_like_negative_slope or 0.01))
        if name == "tanh":
            return self.node("Tanh", [x], key)
        if name == "sigmoid":
            return self.node("Sigmoid", [x], key)
        if name == "elu":
            return self.node("Elu", [x], key, alpha=1.0)
        if name == "softplus":
            return self.node("Softplus", [x], key)
        if name == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x], key)], key)
        if name == "gelu":  # PyTorch's export: x * 0.5 * (1 + erf(x / √2))
            root2 = self.const(self.fresh("sqrt2"), np.array(math.sqrt(2.0)))
            one = self.const(self.fresh("one"), np.array(1.0))
            half = self.const(self.fresh("half"), np.array(0.5))
            erf = self.node("Erf", [self.node("Div", [x, root2], key)], key)
            return self.node("Mul", [self.node("Mul", [x, self.node("Add", [erf, one], key)], key), half], key)
        raise InvalidInput(f"activation={name!r} has no ONNX form here")


def target_to_onnx(target: TargetNet, *, opset: int = DEFAULT_OPSET, dtype: str = "float32") -> Any:
    """``target`` as an ``onnx.ModelProto`` with batch axis ``N`` symbolic.

    ``dtype`` is ``"float32"`` (the default: what every runtime implements for every operator)
    or ``"float64"`` (exact weights; onnxruntime runs ``Gemm`` and the activations in double,
    but not ``Conv``, so use it for dense targets).

    Initializer names follow :func:`~ltbounds.nets.io.save_npz` (``0.weight``,
    ``3.branch.1.bias``, ``3.skip.weight``); dense layers are ``Gemm(transB=1)``, convolutions
    ``Conv``, pools ``AveragePool``/``MaxPool``, flatten ``Flatten``, residual joins ``Add``.
    The input domain, name, activation and metadata go into ``metadata_props``.
    """
    if dtype not in _EXPORT_DTYPES:
        raise InvalidInput(f"dtype={dtype!r} must be one of {', '.join(map(repr, _EXPORT_DTYPES))}")
    if not isinstance(opset, int) or not 13 <= opset <= 21:
        raise InvalidInput(f"opset={opset!r} must be an integer from 13 to 21")
    onnx = _onnx()
    helper = onnx.helper
    build = _Builder(onnx, np.dtype(dtype))
    elem = _EXPORT_DTYPES[dtype]
    act = target.activation
    x = "input"
    for index, layer in enumerate(target.layers):
        key = str(index)
        if isinstance(layer, ResidualBlock):
            h = x
            for j, part in enumerate(layer.branch):
                h = build.linear(part, h, f"{key}.branch.{j}")
                if j < len(layer.branch) - 1:
                    h = build.activation(act, h, f"{key}.branch.{j}.act")
            s = x if layer.skip is None else build.linear(layer.skip, x, f"{key}.skip")
            y = build.node("Add", [h, s], f"{key}.add")
            if layer.activation_out:
                y = build.activation(act, y, f"{key}.act")
        elif isinstance(layer, LinearLayer):
            y = build.linear(layer, x, key)
            if target.is_activated(index):
                y = build.activation(act, y, f"{key}.act")
        elif isinstance(layer, Flatten):
            y = build.node("Flatten", [x], key, axis=1)
        elif isinstance(layer, (AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d)):
            op = "AveragePool" if isinstance(layer, (AvgPool1d, AvgPool2d)) else "MaxPool"
            y = build.node(op, [x], key, kernel_shape=list(layer.kernel), strides=list(layer.stride))
        else:
            raise InvalidInput(f"layer {index} ({layer.describe()}) has no ONNX form here")
        x = y
    build.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    graph = helper.make_graph(
        build.nodes, target.name or "target",
        [helper.make_tensor_value_info("input", elem, ["N", *target.input_shape])],
        [helper.make_tensor_value_info("output", elem, ["N", *target.output_shape])],
        build.initializers,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="ltbounds",
        producer_version=__version__, ir_version=IR_VERSION,
    )  # fmt: skip
    low, high = target.input_domain
    props = {
        META_DOMAIN: json.dumps([low, high]),
        META_NAME: str(target.name),
        META_ACTIVATION: act,
        META_METADATA: json.dumps(target.metadata, sort_keys=True, default=str),
    }
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def save_onnx(
    target: TargetNet, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET, dtype: str = "float32"
) -> Path:
    """Write ``target`` as an ONNX model (:func:`target_to_onnx`), atomically."""
    model = target_to_onnx(target, opset=opset, dtype=dtype)
    destination = Path(path)
    with atomic_path(destination) as temporary:
        temporary.write_bytes(model.SerializeToString())
    return destination


# -- cross-checks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossCheck:
    """Our forward pass against onnxruntime on ``samples`` inputs from the target's domain.

    ``max_abs_error`` is the largest |ours − onnxruntime| over all outputs, ``scale`` is
    ``max(1, max |ours|)``, and the check passes when ``max_abs_error <= tolerance · scale``.
    """

    samples: int
    max_abs_error: float
    scale: float
    tolerance: float

    @property
    def passed(self) -> bool:
        """True when the two forward passes agree within the tolerance."""
        return self.max_abs_error <= self.tolerance * self.scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (plus ``passed``)."""
        return {
            "samples": self.samples, "max_abs_error": self.max_abs_error, "scale": self.scale,
            "tolerance": self.tolerance, "passed": self.passed,
        }  # fmt: skip


def onnxruntime_forward(model: Any, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Run an ONNX model (a path, bytes or ``ModelProto``) with onnxruntime on ``x`` (float64 out)."""
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        raise ModelFormatError(
            "cross-checks need the optional package onnxruntime: pip install 'ltbounds[io]'"
        ) from None
    if isinstance(model, (str, os.PathLike)):
        data = Path(model).read_bytes()
    elif isinstance(model, bytes):
        data = model
    else:
        data = model.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types are not importable portably
        raise ModelFormatError(f"onnxruntime refuses the model ({_one_line(exc)[:300]})") from None
    feed = session.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}.get(feed.type, np.float32)
    outputs = [
        session.run(None, {feed.name: np.asarray(x[i : i + batch], dtype=dtype)})[0]
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(outputs).astype(np.float64)


def cross_check(
    target: TargetNet,
    model: Any,
    *,
    samples: int = 1000,
    seed: int = 0,
    tolerance: float = DEFAULT_CROSS_CHECK_TOL,
) -> CrossCheck:
    """Compare ``target.forward`` with onnxruntime running ``model`` on sampled domain inputs.

    ``model`` is the ONNX model (path, bytes or ``ModelProto``) that should compute what
    ``target`` computes: the export of ``target``, or the file ``target`` was imported from.
    Inputs are ``target.sample_inputs(samples, seed)``.
    """
    x = np.asarray(target.sample_inputs(samples, seed), dtype=np.float64)
    ours = np.asarray(target.forward(x), dtype=np.float64)
    theirs = onnxruntime_forward(model, x)
    if theirs.shape != ours.shape:
        raise ModelFormatError(f"onnxruntime returns shape {theirs.shape}; ours is {ours.shape}")
    error = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    if math.isnan(error):
        error = math.inf
    scale = max(1.0, float(np.max(np.abs(ours)))) if ours.size else 1.0
    return CrossCheck(samples, error, scale, tolerance)


__all__ = [
    "ACTIVATION_MATCH_TOL",
    "DEFAULT_CROSS_CHECK_TOL",
    "DEFAULT_MAX_NODES",
    "DEFAULT_OPSET",
    "CrossCheck",
    "cross_check",
    "load_onnx",
    "onnxruntime_forward",
    "save_onnx",
    "target_to_onnx",
]
