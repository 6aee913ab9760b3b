"""The small trained targets shipped in ``ltbounds/data``, and the digits test split.

The targets were trained on scikit-learn's 8×8 digits (inputs ``pixel / 16`` in ``[0, 1]``)
by ``scripts/train_default_targets.py`` with every weight and bias clipped to ``[-1, 1]``
after each step, the range the subset-sum lemmas approximate (LEMMAS.md section 1). Each
file holds its architecture and its held-out accuracy (``metadata["test_accuracy"]``), so
nothing at run time needs scikit-learn or PyTorch. ``ltbounds/data/README.md`` lists them
with the command that made them.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds.backend import to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.nets.io import load_npz, read_npz_arrays
from ltbounds.nets.target import TargetNet

_TEST_SPLIT = "digits_test"
_PACKAGE = "ltbounds"


def _data_dir() -> Any:
    return resources.files(_PACKAGE).joinpath("data")


def list_embedded() -> list[str]:
    """Names of the shipped targets, e.g. ``["digits_cnn_gelu", ..., "digits_resnet_tanh"]``.

    Plain CNNs (``digits_cnn_*``), MLPs (``digits_mlp_*``) and residual CNNs
    (``digits_resnet_*``, with an identity and a stride-2 projection block).
    """
    names = [
        entry.name[: -len(".npz")]
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".npz") and entry.name != f"{_TEST_SPLIT}.npz"
    ]
    return sorted(names)


def _resource(filename: str) -> Path:
    resource = _data_dir().joinpath(filename)
    if not resource.is_file():
        raise FileNotFoundError(filename)
    # Installed packages (wheels, editable installs) keep data as real files.
    return Path(str(resource))


def load_embedded(name: str) -> TargetNet:
    """Load the shipped target ``name`` (see :func:`list_embedded`)."""
    available = list_embedded()
    if name not in available:
        raise InvalidInput(
            f"name={name!r} is not an embedded target; expected one of {', '.join(available)}"
        )
    return load_npz(_resource(f"{name}.npz"))


def embedded_sidecar(name: str) -> Path:
    """Path of a shipped sidecar JSON, e.g. ``embedded_sidecar("lt_existence_mnist_cnn")``.

    Use it as ``load_npz(file, sidecar=embedded_sidecar("lt_existence_mnist_cnn"))`` for the
    MNIST CNN of the LT-existence experiments (the weights themselves are not shipped).
    """
    try:
        return _resource(f"{name}.json")
    except FileNotFoundError:
        known = sorted(e.name[:-5] for e in _data_dir().iterdir() if e.name.endswith(".json"))
        raise InvalidInput(
            f"name={name!r} has no shipped sidecar; expected one of {', '.join(known)}"
        ) from None


def digits_test_split(input_shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out digits test split: ``(inputs, labels)``.

    ``inputs`` are float64 in ``[0, 1]`` of shape ``(n, 64)``, or ``(n, *input_shape)`` when
    given (``(1, 8, 8)`` for the CNN and residual targets); ``labels`` are int64 in ``0..9``.
    """
    arrays = read_npz_arrays(_resource(f"{_TEST_SPLIT}.npz"))
    inputs = np.asarray(arrays["inputs"], dtype=np.float64)
    labels = np.asarray(arrays["labels"], dtype=np.int64)
    if input_shape is not None:
        inputs = inputs.reshape((inputs.shape[0], *tuple(input_shape)))
    return inputs, labels


def digits_accuracy(target: TargetNet) -> float:
    """Fraction of the digits test split that ``target`` classifies correctly (argmax)."""
    inputs, labels = digits_test_split(target.input_shape)
    predictions = np.argmax(to_numpy(target.forward(inputs)), axis=1)
    return float(np.mean(predictions == labels))


__all__ = [
    "digits_test_split",
    "embedded_sidecar",
    "list_embedded",
    "load_embedded",
    "digits_accuracy",
]
