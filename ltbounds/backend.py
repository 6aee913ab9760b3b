"""Array namespaces: numpy by default, CuPy when asked for and present.

Numeric code takes its namespace from its inputs (``xp = namespace(x)``) and then calls only
``xp.*``, after array-api-compat; no module imports CuPy at load time. :func:`to_numpy` is the
one place where data crosses back to the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace
from array_api_compat import to_device as _to_device  # noqa: F401  (re-exported helper)

from ltbounds.errors import InvalidInput

BACKENDS = ("numpy", "cupy", "array-api-strict")


def namespace(*arrays: Any) -> Any:
    """The array-API namespace shared by ``arrays`` (numpy's for plain numbers and lists)."""
    arrays = tuple(a for a in arrays if a is not None and not isinstance(a, (int, float, list)))
    if not arrays:
        return array_namespace(np.empty(0))
    return array_namespace(*arrays)


def get_backend(name: str) -> Any:
    """Return the array namespace called ``name``, or raise a clear error if it is unusable."""
    if name == "numpy":
        return array_namespace(np.empty(0))
    if name == "cupy":
        try:
            import cupy  # noqa: PLC0415  (imported lazily on purpose)

            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CuPy missing, or no CUDA device/driver
            raise InvalidInput(
                f"backend='cupy' is not usable here ({type(exc).__name__}: {exc}); "
                "install ltbounds[gpu] on a machine with a CUDA GPU, or use --backend numpy"
            ) from None
        return array_namespace(cupy.empty(0))
    if name == "array-api-strict":
        try:
            import array_api_strict  # noqa: PLC0415
        except ImportError:
            raise InvalidInput(
                "backend='array-api-strict' needs the array-api-strict package (pip install ltbounds[test])"
            ) from None
        return array_api_strict
    raise InvalidInput(f"backend={name!r} must be one of {', '.join(map(repr, BACKENDS))}")


def available_backends() -> tuple[str, ...]:
    """The names in :data:`BACKENDS` usable on this machine (numpy always; CuPy only with a
    CUDA device), in that order. Probing CuPy imports it, so only call this on purpose."""
    usable = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except InvalidInput:
            continue
        usable.append(name)
    return tuple(usable)


def to_numpy(array: Any) -> np.ndarray:
    """Copy ``array`` from any supported namespace into a numpy array on the host."""
    if isinstance(array, np.ndarray):
        return array
    module = type(array).__module__
    if module.startswith("cupy"):
        return array.get()
    if module.startswith("array_api_strict"):
        return np.asarray(array.__array__() if hasattr(array, "__array__") else array.tolist())
    return np.asarray(array)


def is_numpy(xp: Any) -> bool:
    """True when ``xp`` is numpy (or its array-api-compat wrapper)."""
    return is_numpy_namespace(xp)
