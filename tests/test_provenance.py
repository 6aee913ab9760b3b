"""``ltbounds.provenance``: what produced a result."""

from __future__ import annotations

from importlib import metadata

from ltbounds import __version__
from ltbounds.provenance import NUMERIC_DEPENDENCIES, dependency_versions, provenance, set_command


def test_versions_come_from_the_installed_distributions() -> None:
    versions = dependency_versions()
    assert set(versions) == set(NUMERIC_DEPENDENCIES)
    assert versions["numpy"] == metadata.version("numpy")


def test_provenance_records_seed_backend_and_command() -> None:
    record = provenance(seed=7, argv=["ltbounds", "certify", "x"])
    assert record["seed"] == 7 and record["backend"] == "numpy" and record["ltbounds"] == __version__
    assert record["command"] == ["ltbounds", "certify", "x"]
    set_command(["ltbounds", "demo"])
    assert provenance(seed=None)["command"] == ["ltbounds", "demo"]
