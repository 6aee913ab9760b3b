"""Array namespaces: choosing one, refusing an unusable one, crossing to the host, no CuPy import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ltbounds.activations import ACTIVATIONS
from ltbounds.backend import BACKENDS, available_backends, get_backend, namespace, to_numpy
from ltbounds.errors import InvalidInput


def _cupy_usable() -> bool:
    try:
        get_backend("cupy")
    except InvalidInput:
        return False
    return True


def test_numpy_and_array_api_strict_are_always_available() -> None:
    usable = available_backends()
    assert usable[:2] == ("numpy", "array-api-strict")
    assert set(usable) <= set(BACKENDS)
    assert ("cupy" in usable) == _cupy_usable()


def test_unknown_and_unusable_backends_are_refused_in_one_line() -> None:
    with pytest.raises(InvalidInput, match="backend='jax' must be one of 'numpy', 'cupy'"):
        get_backend("jax")
    if _cupy_usable():
        pytest.skip("CuPy and a GPU are present here")
    with pytest.raises(InvalidInput, match="backend='cupy' is not usable here") as refusal:
        get_backend("cupy")
    assert "\n" not in str(refusal.value) and "--backend numpy" in str(refusal.value)


def test_the_fixture_namespace_round_trips_through_the_host(xp) -> None:
    values = np.linspace(-2.0, 3.0, 12).reshape(3, 4)
    on_backend = xp.asarray(values)
    assert namespace(on_backend) is xp
    assert namespace(on_backend, None, 2.0) is xp  # numbers and None do not vote
    back = to_numpy(on_backend)
    assert isinstance(back, np.ndarray) and np.array_equal(back, values)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_give_the_numpy_values_on_every_backend(name, xp) -> None:
    activation = ACTIVATIONS[name]
    x = np.linspace(-6.0, 6.0, 101)
    on_backend = activation(xp.asarray(x))
    assert namespace(on_backend) is xp
    np.testing.assert_allclose(to_numpy(on_backend), activation(x), rtol=1e-15, atol=1e-15)


def test_no_module_imports_cupy_or_dask_at_load_time() -> None:
    modules = [
        "ltbounds", "ltbounds.cli", "ltbounds.backend", "ltbounds.parallel", "ltbounds.rng",
        "ltbounds.subsetsum", "ltbounds.subsetsum.concentration", "ltbounds.nets",
        "ltbounds.construct", "ltbounds.certify", "ltbounds.cli.bench", "ltbounds.cli.coverage",
    ]
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        "print(sorted(m for m in ('cupy', 'dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
