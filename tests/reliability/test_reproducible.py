"""Same inputs, same bytes; reports that can be recomputed; hazards refused up front (issue 12)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pytest
from _small_nets import tiny_resnet

from ltbounds.certify._report import REPORT_FORMAT, REPORT_VERSION
from ltbounds.cli import main
from ltbounds.cli.certify import MISMATCH_EXIT_CODE
from ltbounds.provenance import NUMERIC_DEPENDENCIES


def run(argv: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


CONSTRUCT = ["construct", "digits_cnn_relu", "--rho", "2", "--samples", "0", "--json"]


@pytest.fixture(scope="module")
def ticket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ticket") / "ticket.npz"
    code, _, stderr = run([*CONSTRUCT, "-o", str(path), "--seed", "3"])
    assert code == 0, stderr
    return path


def test_the_same_seed_gives_byte_identical_tickets(
    ticket: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A day later on the wall clock: nothing time-dependent may reach the file.
    later = time.time() + 86_400 + 3.5
    monkeypatch.setattr(time, "time", lambda: later)
    again = tmp_path / "again.npz"
    code, _, stderr = run([*CONSTRUCT, "-o", str(again), "--seed", "3"])
    assert code == 0, stderr
    assert again.read_bytes() == ticket.read_bytes()
    other = tmp_path / "other.npz"
    assert run([*CONSTRUCT, "-o", str(other), "--seed", "4"])[0] == 0
    assert other.read_bytes() != ticket.read_bytes()  # the seed does reach the file


# -- the same ticket on every backend (issue 11, issue 12 (c)) ---------------------------------
BACKEND_CASES = {
    "digits_cnn_relu L+1": ("digits_cnn_relu", {"eps": 0.1, "rho": 2}),
    "digits_cnn_sigmoid 2L": ("digits_cnn_sigmoid", {"eps": 0.1, "rho": 2, "depth": "2L"}),
    "residual tanh L+1": (None, {"eps": 0.05, "rho": 3}),
}


@pytest.mark.parametrize("case", list(BACKEND_CASES))
def test_every_backend_constructs_byte_identical_tickets(case: str, tmp_path: Path) -> None:
    """Same seed, same eps: the saved ticket files are the same bytes on numpy,
    array-api-strict and (where a GPU is present) CuPy. Covers L+1, 2L with the offset
    cancellation of sigmoid, and a residual target with identity and projection skips."""
    from ltbounds.backend import available_backends, get_backend  # noqa: PLC0415
    from ltbounds.construct import construct  # noqa: PLC0415
    from ltbounds.nets import load_embedded  # noqa: PLC0415

    name, settings = BACKEND_CASES[case]
    target = tiny_resnet("tanh") if name is None else load_embedded(name)
    backends = available_backends()
    assert backends[0] == "numpy" and "array-api-strict" in backends
    files = {}
    for backend in backends:
        ticket = construct(target, seed=7, xp=get_backend(backend), **settings)
        files[backend] = ticket.save(tmp_path / f"{backend}.npz").read_bytes()
    numpy_bytes = files.pop("numpy")
    for backend, content in files.items():
        assert content == numpy_bytes, f"{case}: the {backend} ticket differs from numpy's"
    other = construct(target, seed=8, **settings).save(tmp_path / "seed8.npz").read_bytes()
    assert other != numpy_bytes  # the comparison sees the seed


def test_construct_backend_option_writes_the_numpy_ticket_and_records_the_backend(
    ticket: Path, tmp_path: Path
) -> None:
    path = tmp_path / "strict.npz"
    code, stdout, stderr = run([*CONSTRUCT, "-o", str(path), "--seed", "3", "--backend", "array-api-strict"])
    assert code == 0, stderr
    assert path.read_bytes() == ticket.read_bytes()  # the backend never reaches the ticket
    assert json.loads(stdout)["provenance"]["backend"] == "array-api-strict"


def test_construct_backend_cupy_without_a_gpu_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    from ltbounds.backend import available_backends  # noqa: PLC0415

    if "cupy" in available_backends():
        pytest.skip("CuPy and a CUDA GPU are usable here")
    path = tmp_path / "cupy.npz"
    code, stdout, stderr = run([*CONSTRUCT, "-o", str(path), "--backend", "cupy"])
    assert code == 1 and stdout == ""
    assert "backend='cupy' is not usable here" in stderr and len(stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_construct_json_records_provenance(tmp_path: Path) -> None:
    argv = [*CONSTRUCT, "-o", str(tmp_path / "t.npz"), "--seed", "5"]
    code, stdout, _ = run(argv)
    assert code == 0
    record = json.loads(stdout)["provenance"]
    assert record["seed"] == 5 and record["backend"] == "numpy"
    assert record["command"] == ["ltbounds", *argv]
    assert set(record["dependencies"]) == set(NUMERIC_DEPENDENCIES)
    assert record["dependencies"]["numpy"] and record["ltbounds"]


CERTIFY = ["--samples", "64", "--restarts", "2", "--steps", "2", "--budget", "2", "--seed", "1"]


@pytest.fixture(scope="module")
def report(ticket: Path) -> Path:
    folder = ticket.parent / "report"
    code, _, stderr = run(["certify", "digits_cnn_relu", str(ticket), *CERTIFY, "--report", str(folder)])
    assert code == 0, stderr
    return folder


def test_certify_report_is_versioned_and_records_what_produced_it(report: Path, ticket: Path) -> None:
    document = json.loads((report / "certify.json").read_text())
    assert document["format"] == REPORT_FORMAT and document["version"] == REPORT_VERSION
    record = document["provenance"]
    assert record["seed"] == 1 and record["backend"] == "numpy"
    assert record["command"][:3] == ["ltbounds", "certify", "digits_cnn_relu"]
    assert set(record["dependencies"]) == set(NUMERIC_DEPENDENCIES)
    assert document["inputs"]["ticket"] == str(ticket.resolve())
    assert (report / "certify.md").read_text().startswith("# certify: digits_cnn_relu")


def test_check_report_matches_its_own_recomputation(report: Path) -> None:
    code, stdout, stderr = run(["certify", "--check-report", str(report), "--json"])
    assert code == 0, stderr
    assert json.loads(stdout) == {"report": str(report), "match": True, "reason": None}


def _tampered(report: Path, tmp_path: Path, change: dict) -> Path:
    document = json.loads((report / "certify.json").read_text())
    for key, value in change.items():
        document[key] = value(document[key]) if callable(value) else value
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(document))
    return path


def test_check_report_finds_a_changed_number(report: Path, tmp_path: Path) -> None:
    path = _tampered(report, tmp_path, {"certified_error": lambda v: v * (1 + 1e-6)})
    code, _, stderr = run(["certify", "--check-report", str(path)])
    assert code == MISMATCH_EXIT_CODE
    assert "MISMATCH: certified_error" in stderr and len(stderr.strip().splitlines()) == 1


def test_check_report_finds_a_changed_ticket(report: Path, ticket: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ticket.npz"
    copy.write_bytes(ticket.read_bytes() + b"\0")
    document = json.loads((report / "certify.json").read_text())
    document["inputs"]["ticket"] = str(copy)
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(document))
    code, _, stderr = run(["certify", "--check-report", str(path)])
    assert code == MISMATCH_EXIT_CODE and "SHA-256" in stderr


def test_reports_of_unknown_versions_are_refused_by_name(report: Path, tmp_path: Path) -> None:
    path = _tampered(report, tmp_path, {"version": REPORT_VERSION + 1})
    code, _, stderr = run(["certify", "--check-report", str(path)])
    assert code == 1 and f"version {REPORT_VERSION + 1}" in stderr


def test_tickets_of_unknown_versions_are_refused_by_name(ticket: Path, tmp_path: Path) -> None:
    import numpy as np  # noqa: PLC0415

    from ltbounds.errors import ModelFormatError  # noqa: PLC0415
    from ltbounds.ticket import Ticket  # noqa: PLC0415

    with np.load(ticket) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    header["version"] = 99
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path = tmp_path / "v99.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelFormatError, match="version 99"):
        Ticket.load(path)


# -- numeric hazards, refused before work with the estimate in the message ---------------------
def test_memory_budget_refusals_state_the_estimate(
    ticket: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "t.npz"
    code, _, stderr = run(["construct", "digits_cnn_relu", "-o", str(output), "--rho", "100000"])
    assert code == 1 and "MiB" in stderr and "rho=100000" in stderr
    code, _, stderr = run(["certify", "digits_cnn_relu", str(ticket), "--budget", str(10**13)])
    assert code == 1 and "MiB" in stderr and "budget" in stderr
    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", "1M")
    code, _, stderr = run(["construct", "digits_cnn_relu", "-o", str(output), "--rho", "8", "--samples", "0"])
    assert code == 1 and "over the budget of 1.0 MiB" in stderr
    code, _, stderr = run(["construct", "digits_cnn_relu", "-o", str(output), "--rho", "2", "--samples", "100000"])
    assert code == 1 and "sampling samples=100,000" in stderr
    assert not output.exists()
    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", "lots")
    code, _, stderr = run(["construct", "digits_cnn_relu", "-o", str(output), "--rho", "2"])
    assert code == 1 and "LTBOUNDS_MEMORY_BUDGET='lots'" in stderr


def test_eps_at_the_edge_is_refused_not_divided_by(tmp_path: Path) -> None:
    code, _, stderr = run(["construct", "digits_cnn_relu", "-o", str(tmp_path / "t.npz"), "--eps", "5e-324"])
    assert code == 1 and "underflows" in stderr
