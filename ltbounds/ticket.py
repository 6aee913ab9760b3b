"""Tickets: a pruned random source network, stored as its seed and the kept indices.

A :class:`Ticket` holds the source architecture and its weight laws, the seed, and per source
linear layer the flat indices of the kept weights and biases (plus the realised error of
every subset-sum instance). Weight *values* are never stored: they are regenerated from the
counter-based RNG (:mod:`ltbounds.rng`), so a ticket of a million-parameter source is
kilobytes and the forward pass recomputed from the file is bit-identical to the in-memory one.

File format (``.npz``, read with ``allow_pickle=False``): a UTF-8 JSON header under
``header`` (``format = "ltbounds-ticket"``, ``version``) and integer/float arrays
``kept_weights_<l>``, ``kept_biases_<l>``, ``parameter_errors_<l>``. Readers refuse unknown
formats and versions.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._io_util import atomic_path
from ltbounds._version import __version__
from ltbounds.construct.blocks import SourceLayerSpec
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
    SourceNet,
    TargetNet,
)

FORMAT = "ltbounds-ticket"
VERSION = 1
_STRUCTURAL = {
    "avgpool1d": AvgPool1d,
    "avgpool2d": AvgPool2d,
    "maxpool1d": MaxPool1d,
    "maxpool2d": MaxPool2d,
}
_LINEAR = {"dense": Dense, "conv1d": Conv1d, "conv2d": Conv2d}
_MATCH_ARRAYS = ("copies", "usable", "constants", "constant_values")
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
                order.append(("linear", index))
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
            "tolerances": list(plan.tolerances),
            "lambdas": [scale.lam for scale in plan.scales],
            "layer_errors": list(result.layer_errors),
            "predicted_error": result.predicted_error,
            "missed_subset_sums": result.missed,
            "worst_parameter_error": max(
                (float(np.max(o.parameter_errors)) for o in outcomes if o.parameter_errors.size),
                default=0.0,
            ),
            "construction_seconds": result.seconds,
            "ltbounds_version": __version__,
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

    def network(self) -> TargetNet:
        """The pruned source as a network (pruned weights are exact zeros)."""
        source = self.source()
        layers = []
        for kind, index in self.order:
            if kind == "structural":
                config = self.structural[index]
                if config["type"] == "flatten":
                    layers.append(Flatten())
                else:
                    layers.append(_STRUCTURAL[config["type"]](tuple(config["kernel"]), tuple(config["stride"])))
                continue
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
                layers.append(Dense(weight, bias))
            else:
                layers.append(_LINEAR[spec.kind](weight, bias, spec.stride, spec.padding))
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
            "version": VERSION,
            "seed": str(self.seed),
            "specs": [spec.to_config() for spec in self.specs],
            "order": [list(item) for item in self.order],
            "structural": list(self.structural),
            "input_shape": list(self.input_shape),
            "input_domain": list(self.input_domain),
            "activation": self.activation,
            "matches": [
                {"source_layer": m["source_layer"], "univariate_layer": m["univariate_layer"], "error": m["error"]}
                for m in self.matches
            ],
            "metadata": self.metadata,
        }
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
        target = Path(path)
        with atomic_path(target) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return target

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
        try:
            with np.load(where, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            header = json.loads(bytes(arrays["header"].astype(np.uint8)).decode("utf-8"))
        except Exception as exc:  # zip, npy and JSON errors all mean a malformed file
            raise ModelFormatError(f"ticket {where} is not a readable ltbounds ticket ({type(exc).__name__}: {exc})") from None
        if header.get("format") != FORMAT:
            raise ModelFormatError(f"ticket {where} has format {header.get('format')!r}; expected {FORMAT!r}")
        if header.get("version") != VERSION:
            raise ModelFormatError(f"ticket {where} has version {header.get('version')!r}; this ltbounds reads version {VERSION}")
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
                parameter_errors=tuple(np.asarray(arrays[f"parameter_errors_{i}"], np.float64) for i in range(count)),
                matches=tuple(
                    {
                        "source_layer": int(m["source_layer"]),
                        "univariate_layer": None if m["univariate_layer"] is None else int(m["univariate_layer"]),
                        "error": float(m["error"]),
                        **{key: arrays[f"match_{key}_{i}"] for key in _MATCH_ARRAYS},
                    }
                    for i, m in enumerate(header.get("matches", []))
                ),
                metadata=dict(header.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"ticket {where} is malformed ({type(exc).__name__}: {exc})") from None
        return ticket


def _indices(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    values = arrays[key]
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise ValueError(f"{key} must be a 1-D integer array")
    size = int(np.prod(shape))
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{key} holds an index outside 0..{size - 1}")
    return values.astype(np.int64)


__all__ = ["FORMAT", "VERSION", "Ticket", "target_fingerprint"]
