"""Tickets: a pruned random source network, stored as its seed and the kept indices.

A :class:`Ticket` holds the source architecture and its weight laws, the seed, and per source
linear layer the flat indices of the kept weights and biases (plus the realised error of
every subset-sum instance). Weight *values* are never stored: they are regenerated from the
counter-based RNG (:mod:`ltbounds.rng`), so a ticket of a million-parameter source is
kilobytes and the forward pass recomputed from the file is bit-identical to the in-memory one.

File format (``.npz``, read with ``allow_pickle=False``): a UTF-8 JSON header under
``header`` (``format = "ltbounds-ticket"``, ``version``) and integer/float arrays
``kept_weights_<l>``, ``kept_biases_<l>``, ``parameter_errors_<l>``. Readers refuse unknown
formats and versions. Version 1: plain (dense, convolution, pooling, flatten) tickets; version 2
adds residual blocks (``("residual", r)`` entries in ``order``, the ``residual`` list in the
header, and ``residual_block``/``branch_position`` in each match). Tickets without residual
blocks are still written as version 1; both versions are read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._io_util import write_npz_atomic
from ltbounds._version import __version__
from ltbounds.construct.blocks import SourceLayerSpec
from ltbounds.construct.solve import REFINE_WINDOW
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import (
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Dense,
    Flatten,
    MaxPool1d,
    MaxPool2d,
    ResidualBlock,
    SourceNet,
    TargetNet,
)
from ltbounds.nets.io import read_npz_arrays
from ltbounds.validation import check_memory, memory_budget

FORMAT = "ltbounds-ticket"
#: The newest version written (residual tickets); plain tickets are written as version 1.
VERSION = 2
#: Versions this ltbounds reads.
READABLE_VERSIONS = (1, 2)
_STRUCTURAL = {
    "avgpool1d": AvgPool1d,
    "avgpool2d": AvgPool2d,
    "maxpool1d": MaxPool1d,
    "maxpool2d": MaxPool2d,
}
_LINEAR = {"dense": Dense, "conv1d": Conv1d, "conv2d": Conv2d}
_MATCH_ARRAYS = ("copies", "usable", "constants", "constant_values")
_RESIDUAL_MATCH_KEYS = ("residual_block", "branch_position")
#: Largest ticket file read.
MAX_TICKET_BYTES = 256 * 2**20


def target_fingerprint(target: TargetNet) -> str:
    """SHA-256 over the target's architecture and weights (so tickets name their target)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(target.to_config(), sort_keys=True).encode())
    for _, layer in target.linear_layers:
        for name, values in layer.parameters().items():
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Ticket:
    """A strong lottery ticket: source laws + seed + kept indices (+ realised errors).

    Attributes
    ----------
    seed : int
        Seed of the source network.
    specs : tuple of SourceLayerSpec
        Source linear layers (shapes, strides, weight laws, role).
    order : tuple of (str, int)
        The source network in order: ``("linear", spec index)`` or ``("structural", i)``
        with ``i`` an index into ``structural``.
    structural : tuple of dict
        Configs of pooling/flatten layers (``{"type": "avgpool2d", "kernel": [2, 2], ...}``).
    input_shape, input_domain, activation
        As the target's.
    kept_weights, kept_biases : tuple of int arrays
        Flat indices of the kept weights/biases of every source linear layer.
    parameter_errors : tuple of float arrays
        Realised |subset sum − target parameter| of every instance, per source layer.
    matches : tuple of dict
        Per target linear layer, where the ticket carries its output (post-activation, before
        any pooling/flatten): ``source_layer`` (index of the source linear layer),
        ``univariate_layer`` (the univariate layer before it, or None), ``copies`` (int array
        (n_l, copies): source unit of each copy of each target unit), ``usable`` (bool, same
        shape: copies the next layer reads), ``constants`` and ``constant_values`` (constant
        units and their exact values), ``error`` (the construction's bound on
        |copy − target unit|).
    metadata : dict
        Construction facts (eps, delta, depth, rho, tolerances, predicted error, misses, the
        target's name and fingerprint, timings, ltbounds version).
    residual : tuple of dict
        Residual targets only (empty otherwise): one entry per target residual block, in the
        target's order. See "Residual tickets" below.

    Residual tickets
    ----------------
    The contract between a residual ticket and its target (L+1 construction, Burkholz ICML
    2022 blocks; :mod:`ltbounds.construct.builder`):

    * ``order`` holds ``("residual", r)`` where the target has its ``r``-th
      :class:`~ltbounds.nets.residual.ResidualBlock`; :meth:`network` puts a
      ``ResidualBlock`` there whose ``branch[j]`` is source layer ``residual[r]["branch"][j]``
      and whose ``skip`` is ``None`` (identity) or source layer ``residual[r]["skip"]``, with
      the target block's ``activation_out``. Everything else is as for plain tickets.
    * ``residual[r]`` holds ``target_layer`` (the block's index in ``target.layers``),
      ``branch`` (spec indices), ``skip`` (spec index of the source projection, or None),
      ``skip_kind`` (``"identity"`` or ``"projection"``), ``activation_out``, and the error
      pieces ``input_error``, ``skip_error``, ``branch_error`` (pre-activation bounds) and
      ``output_error = λ_out·(skip_error + branch_error)``.
    * Skip paths. ``"identity"``: the source block's skip is the identity, the paper's
      identity-carried skip: source unit ``c`` of the block input is added to source unit
      ``c`` of the sum, with weight exactly 1 (not a random weight, never pruned). Input and
      output are in the same copy layout (copy ``k`` of target unit ``j`` at ``j·ρ + k``,
      constants after), so copy ``k`` of unit ``j`` of the output receives copy ``k`` of
      ``x_j``: exact, zero error. ``"projection"``: every kept weight of source layer
      ``residual[r]["skip"]`` realises the skip; it reads the block input's copies (the match
      of the main-path layer before the block, through any pooling) and writes the same
      output units as the last branch layer; target weight ``P[j, i, r]`` is, for output copy
      ``k`` of ``j``, a subset sum over the usable input copies of ``i`` (as a copy layer).
      The projection's bias is realised together with the last branch layer's bias, through
      that layer's constant inputs (the sum's bias is counted once).
    * ``matches`` has one entry per *main-path* linear layer (``target.depth``: plain and
      branch layers, not projections), in order, each with ``residual_block`` (``r`` or
      None) and ``branch_position`` (``j`` or None). For a branch layer ``j`` before the last
      its copies carry φ(branch layer ``j``'s output), as for plain layers; for the **last**
      branch layer they carry the block's output ``φ_out(skip(x) + branch(x))`` (the source
      carries only the sum), with ``error`` its bound.
    """

    seed: int
    specs: tuple[SourceLayerSpec, ...]
    order: tuple[tuple[str, int], ...]
    structural: tuple[dict[str, Any], ...]
    input_shape: tuple[int, ...]
    input_domain: tuple[float, float]
    activation: str
    kept_weights: tuple[np.ndarray, ...]
    kept_biases: tuple[np.ndarray, ...]
    parameter_errors: tuple[np.ndarray, ...]
    matches: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    residual: tuple[dict[str, Any], ...] = ()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_build(
        cls,
        *,
        target: TargetNet,
        result: Any,
        source: SourceNet,
        eps: float,
        delta: float,
        seed: int,
        objective: str,
        rho_origin: str,
    ) -> Ticket:
        """Assemble a ticket from a construction result (see :mod:`ltbounds.construct`)."""
        plan = result.plan
        structural_layers = [target.layers[i] for kind, i in plan.order if kind == "structural"]
        order = []
        counter = 0
        for kind, index in plan.order:
            if kind == "structural":
                order.append(("structural", counter))
                counter += 1
            else:
                order.append((kind, index))
        outcomes = sorted(result.outcomes, key=lambda o: o.layer)
        metadata = {
            "target": target.name,
            "target_fingerprint": target_fingerprint(target),
            "target_params": target.num_params.nonzero,
            "depth": plan.depth,
            "eps": eps,
            "delta": delta,
            "rho": plan.rho,
            "rho_first": plan.rho_first,
            "rho_origin": rho_origin,
            "objective": objective,
            "candidate_window": plan.max_candidates,
            "refine_window": REFINE_WINDOW if REFINE_WINDOW > plan.max_candidates else None,
            "tolerances": list(plan.tolerances),
            "lambdas": [scale.lam for scale in plan.scales],
            "layer_errors": list(result.layer_errors),
            "predicted_error": result.predicted_error,
            "missed_subset_sums": result.missed,
            "worst_parameter_error": max(
                (float(np.max(o.parameter_errors)) for o in outcomes if o.parameter_errors.size),
                default=0.0,
            ),
            "ltbounds_version": __version__,
            **getattr(result, "extra", {}),
        }
        return cls(
            seed=seed,
            specs=plan.specs,
            order=tuple(order),
            structural=tuple(layer.to_config() for layer in structural_layers),
            input_shape=tuple(target.input_shape),
            input_domain=tuple(target.input_domain),  # type: ignore[arg-type]
            activation=target.activation,
            kept_weights=tuple(np.asarray(o.kept_weights, np.int64) for o in outcomes),
            kept_biases=tuple(np.asarray(o.kept_biases, np.int64) for o in outcomes),
            parameter_errors=tuple(np.asarray(o.parameter_errors, np.float64) for o in outcomes),
            matches=tuple(result.matches),
            metadata=metadata,
            residual=tuple(getattr(result, "residual", ())),
        )

    # -- the source and the pruned network -------------------------------------------------
    def source(self) -> SourceNet:
        """The implicit random source network this ticket prunes."""
        return SourceNet(
            self.seed,
            [spec.weight_shape for spec in self.specs],
            [spec.bias_shape for spec in self.specs],
            [spec.weight_range for spec in self.specs],
            [spec.bias_range for spec in self.specs],
        )

    @property
    def source_params(self) -> int:
        """Weights and biases of the whole source network."""
        return self.source().num_params

    @property
    def ticket_params(self) -> int:
        """Kept weights and biases."""
        return int(sum(k.size for k in self.kept_weights) + sum(k.size for k in self.kept_biases))

    @property
    def sparsity(self) -> float:
        """Fraction of source parameters kept."""
        return self.ticket_params / self.source_params

    def _linear_layer(self, source: SourceNet, index: int) -> Any:
        """Source linear layer ``index`` with only its kept weights and biases (others 0)."""
        spec = self.specs[index]
        weight = np.zeros(spec.weight_shape)
        kept = self.kept_weights[index]
        weight.reshape(-1)[kept] = source.weights(index, kept)
        bias = None
        if spec.bias_shape is not None:
            bias = np.zeros(spec.bias_shape)
            kept_b = self.kept_biases[index]
            bias.reshape(-1)[kept_b] = source.biases(index, kept_b)
        if spec.kind == "dense":
            return Dense(weight, bias)
        return _LINEAR[spec.kind](weight, bias, spec.stride, spec.padding)

    def network(self) -> TargetNet:
        """The pruned source as a network (pruned weights are exact zeros).

        Residual tickets give a network with a :class:`~ltbounds.nets.residual.ResidualBlock`
        at every ``("residual", r)`` entry of ``order``: the ``r``-th block of the network
        corresponds to the target's ``r``-th block (see "Residual tickets" above).
        """
        source = self.source()
        check_memory(
            f"the pruned network of this ticket (dense source weights {[s.weight_shape for s in self.specs]})",
            8 * sum(math.prod(spec.weight_shape) for spec in self.specs),  # an int: no overflow
            memory_budget(),
        )
        layers = []
        for kind, index in self.order:
            if kind == "structural":
                config = self.structural[index]
                if config["type"] == "flatten":
                    layers.append(Flatten())
                else:
                    layers.append(_STRUCTURAL[config["type"]](tuple(config["kernel"]), tuple(config["stride"])))
                continue
            if kind == "residual":
                block = self.residual[index]
                branch = tuple(self._linear_layer(source, int(i)) for i in block["branch"])
                skip = None if block["skip"] is None else self._linear_layer(source, int(block["skip"]))
                layers.append(ResidualBlock(branch, skip, bool(block["activation_out"])))
                continue
            layers.append(self._linear_layer(source, index))
        return TargetNet(
            layers, self.input_shape, self.activation, self.input_domain, name=f"ticket of {self.metadata.get('target', 'target')}"
        )

    def forward(self, x: Any) -> Any:
        """The ticket's output on a batch ``x``."""
        return self.network().forward(x)

    def check_target(self, target: TargetNet) -> None:
        """Refuse a target this ticket was not built for (fingerprint mismatch)."""
        expected = self.metadata.get("target_fingerprint")
        if expected != target_fingerprint(target):
            raise InvalidInput(
                f"ticket was built for target {self.metadata.get('target')!r} "
                f"(fingerprint {str(expected)[:12]}…), not for {target.name!r} "
                f"(fingerprint {target_fingerprint(target)[:12]}…)"
            )

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the ticket."""
        return {
            **self.metadata,
            "seed": self.seed,
            "activation": self.activation,
            "source_widths": [spec.weight_shape[0] for spec in self.specs],
            "source_params": self.source_params,
            "ticket_params": self.ticket_params,
            "sparsity": self.sparsity,
        }

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ticket atomically as ``.npz`` (no pickle)."""
        header = {
            "format": FORMAT,
            "version": VERSION if self.residual else 1,
            "seed": str(self.seed),
            "specs": [spec.to_config() for spec in self.specs],
            "order": [list(item) for item in self.order],
            "structural": list(self.structural),
            "input_shape": list(self.input_shape),
            "input_domain": list(self.input_domain),
            "activation": self.activation,
            "matches": [
                {
                    "source_layer": m["source_layer"], "univariate_layer": m["univariate_layer"], "error": m["error"],
                    **({key: m.get(key) for key in _RESIDUAL_MATCH_KEYS} if self.residual else {}),
                }
                for m in self.matches
            ],
            "metadata": self.metadata,
        }
        if self.residual:
            header["residual"] = [_jsonable(block) for block in self.residual]
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        }
        for index in range(len(self.specs)):
            arrays[f"kept_weights_{index}"] = self.kept_weights[index]
            arrays[f"kept_biases_{index}"] = self.kept_biases[index]
            arrays[f"parameter_errors_{index}"] = self.parameter_errors[index]
        for index, match in enumerate(self.matches):
            for key in _MATCH_ARRAYS:
                arrays[f"match_{key}_{index}"] = np.asarray(match[key])
        return write_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Ticket:
        """Read a ticket written by :meth:`save`; anything else is a ``ModelFormatError``."""
        where = Path(path)
        try:
            size = where.stat().st_size
        except OSError as exc:
            raise ModelFormatError(f"cannot read ticket {where}: {exc.strerror}") from None
        if size > MAX_TICKET_BYTES:
            raise ModelFormatError(f"ticket {where} is {size} bytes; expected at most {MAX_TICKET_BYTES}")
        if where.is_dir():
            raise ModelFormatError(f"cannot read ticket {where}: it is a directory")
        try:  # the bounded reader: header checks and size caps before any data is read
            arrays = read_npz_arrays(where, max_bytes=MAX_TICKET_BYTES)
        except ModelFormatError as exc:
            raise ModelFormatError(f"ticket {exc}") from None
        raw = arrays.get("header")
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
            raise ModelFormatError(f"ticket {where} has no 'header' (a 1-D uint8 array of UTF-8 JSON)")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ModelFormatError(f"ticket {where} has an unreadable header ({type(exc).__name__})") from None
        if not isinstance(header, dict):
            raise ModelFormatError(f"ticket {where} has a header that is not a JSON object")
        if header.get("format") != FORMAT:
            raise ModelFormatError(f"ticket {where} has format {header.get('format')!r}; expected {FORMAT!r}")
        if header.get("version") not in READABLE_VERSIONS:
            raise ModelFormatError(
                f"ticket {where} has version {header.get('version')!r}; this ltbounds reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        try:
            specs = tuple(SourceLayerSpec.from_config(c) for c in header["specs"])
            count = len(specs)
            ticket = cls(
                seed=int(header["seed"]),
                specs=specs,
                order=tuple((str(kind), int(i)) for kind, i in header["order"]),
                structural=tuple(header["structural"]),
                input_shape=tuple(int(s) for s in header["input_shape"]),
                input_domain=tuple(float(v) for v in header["input_domain"]),  # type: ignore[arg-type]
                activation=str(header["activation"]),
                kept_weights=tuple(_indices(arrays, f"kept_weights_{i}", specs[i].weight_shape) for i in range(count)),
                kept_biases=tuple(_indices(arrays, f"kept_biases_{i}", specs[i].bias_shape or (0,)) for i in range(count)),
                parameter_errors=tuple(_errors(arrays, f"parameter_errors_{i}") for i in range(count)),
                matches=tuple(
                    {
                        "source_layer": int(m["source_layer"]),
                        "univariate_layer": None if m["univariate_layer"] is None else int(m["univariate_layer"]),
                        "error": float(m["error"]),
                        **{key: _match_array(arrays, f"match_{key}_{i}") for key in _MATCH_ARRAYS},
                        **{key: _optional_int(m.get(key)) for key in _RESIDUAL_MATCH_KEYS if key in m},
                    }
                    for i, m in enumerate(header.get("matches", []))
                ),
                metadata=dict(header.get("metadata", {})),
                residual=tuple(_residual_entry(block, count) for block in header.get("residual", [])),
            )
            _check_order(ticket, count)
            _check_structure(ticket)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            raise ModelFormatError(f"ticket {where} is malformed ({type(exc).__name__}: {_short(exc)})") from None
        return ticket


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _jsonable(block: dict[str, Any]) -> dict[str, Any]:
    return {key: (list(value) if isinstance(value, tuple) else value) for key, value in block.items()}


def _residual_entry(block: dict[str, Any], count: int) -> dict[str, Any]:
    """A header ``residual`` entry, checked (spec indices in range, known skip kind)."""
    entry = dict(block)
    entry["branch"] = [int(i) for i in block["branch"]]
    entry["skip"] = _optional_int(block["skip"])
    entry["activation_out"] = bool(block["activation_out"])
    if not entry["branch"] or any(not 0 <= i < count for i in entry["branch"]):
        raise ValueError(f"residual branch {entry['branch']} names a source layer outside 0..{count - 1}")
    if entry["skip"] is not None and not 0 <= entry["skip"] < count:
        raise ValueError(f"residual skip {entry['skip']} names a source layer outside 0..{count - 1}")
    if entry.get("skip_kind", "identity" if entry["skip"] is None else "projection") != (
        "identity" if entry["skip"] is None else "projection"
    ):
        raise ValueError(f"residual skip_kind {entry.get('skip_kind')!r} contradicts skip={entry['skip']!r}")
    return entry


def _check_order(ticket: Ticket, count: int) -> None:
    """Every ``order`` entry names an existing spec, structural layer or residual block."""
    limits = {"linear": count, "structural": len(ticket.structural), "residual": len(ticket.residual)}
    for kind, index in ticket.order:
        if kind not in limits:
            raise ValueError(f"order entry kind {kind!r} is not one of {', '.join(limits)}")
        if not 0 <= index < limits[kind]:
            raise ValueError(f"order entry ({kind!r}, {index}) is out of range 0..{limits[kind] - 1}")


def _short(value: Any, width: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_structure(ticket: Ticket) -> None:
    """Refuse a ticket whose parts do not fit together (ValueError; see :meth:`Ticket.load`).

    Everything :meth:`Ticket.network` and certification index with is checked here, so a
    hostile file is refused on load rather than crashing later.
    """
    ticket.source()  # seed, shapes and weight laws, checked by SourceNet
    for spec in ticket.specs:
        if spec.kind not in _LINEAR:
            raise ValueError(f"source layer kind {spec.kind!r} is not one of {', '.join(_LINEAR)}")
        if len(spec.weight_shape) != {"dense": 2, "conv1d": 3, "conv2d": 4}[spec.kind]:
            raise ValueError(f"a {spec.kind} source layer has weight shape {spec.weight_shape}")
    for config in ticket.structural:
        if config.get("type") != "flatten" and config.get("type") not in _STRUCTURAL:
            raise ValueError(f"structural layer type {config.get('type')!r} is not flatten or a pooling layer")
        if config["type"] != "flatten":  # built as network() builds it: kernel and stride checked
            _STRUCTURAL[config["type"]](tuple(config["kernel"]), tuple(config["stride"]))
    if not ticket.input_shape or any(s < 1 for s in ticket.input_shape):
        raise ValueError(f"input_shape {ticket.input_shape} must be non-empty and positive")
    low, high = ticket.input_domain
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"input_domain {ticket.input_domain} must be finite with low < high")
    for match in ticket.matches:
        for key in ("source_layer", "univariate_layer"):
            if match[key] is not None and not 0 <= match[key] < len(ticket.specs):
                raise ValueError(f"match {key}={match[key]} is not a source layer")
        units = ticket.specs[match["source_layer"]].weight_shape[0]
        for key in ("copies", "constants"):
            values = match[key]
            if values.dtype.kind not in "iu":
                raise ValueError(f"match {key} has dtype {values.dtype}; expected integers")
            if values.size and (values.min() < 0 or values.max() >= units):
                raise ValueError(f"match {key} names units outside 0..{units - 1}")
        if match["usable"].shape != match["copies"].shape:
            raise ValueError("match usable must have the shape of copies")
        if match["constant_values"].shape != match["constants"].shape:
            raise ValueError("match constant_values must have the shape of constants")
        if not (np.all(np.isfinite(match["constant_values"])) and np.isfinite(match["error"])):
            raise ValueError("match values must be finite")


def _errors(arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    values = arrays[key]
    if values.dtype.kind != "f" or values.ndim != 1 or not np.all(np.isfinite(values)):
        raise ValueError(f"{key} must be a 1-D array of finite floats")
    return values.astype(np.float64)


def _match_array(arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    values = arrays[key]
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{key} has dtype {values.dtype}; expected a numeric array")
    return values


def _indices(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    values = arrays[key]
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise ValueError(f"{key} must be a 1-D integer array")
    size = int(np.prod(shape))
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{key} holds an index outside 0..{size - 1}")
    return values.astype(np.int64)


__all__ = ["FORMAT", "READABLE_VERSIONS", "VERSION", "Ticket", "target_fingerprint"]
