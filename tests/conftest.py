"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# "ci" (the default) is derandomized: the README's test command draws the same examples on
# every run, so a landing never hinges on luck. "fuzz" draws fresh ones, many more, to hunt
# for new failures (HYPOTHESIS_PROFILE=fuzz python -m pytest tests/reliability).
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "fuzz", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- array namespaces ----------------------------------------------------------------------


def _namespace_or_skip(name: str):
    """The namespace called ``name``; skips the test where it is not usable here."""
    from ltbounds.backend import get_backend
    from ltbounds.errors import InvalidInput

    try:
        return get_backend(name)
    except InvalidInput as reason:
        pytest.skip(str(reason).split(';')[0])


XP_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("array-api-strict", id="array-api-strict"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
]


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped otherwise)")


@pytest.fixture(params=XP_PARAMS)
def xp(request):
    """Every array namespace usable here: numpy always, array-api-strict (catches calls that
    are not portable), CuPy when it imports and a CUDA device exists (skipped otherwise).

    Numeric tests that take ``xp`` build their inputs with ``xp.asarray`` and compare on the
    host with :func:`ltbounds.backend.to_numpy`.
    """
    return _namespace_or_skip(request.param)
