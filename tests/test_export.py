"""Ticket and target export: ticket → ONNX → onnxruntime, dense weight files, convert's checks."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ltbounds.construct import construct
from ltbounds.errors import BoundViolation, InvalidInput
from ltbounds.export import convert, export_ticket, is_ticket_file, save_target
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet, load_npz
from ltbounds.nets.onnx_io import cross_check, load_onnx
from ltbounds.nets.safetensors_io import load_safetensors
from ltbounds.ticket import Ticket


@cache
def small_targets() -> dict[str, TargetNet]:
    rng = np.random.default_rng(0)

    def u(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape)

    dense = TargetNet([Dense(u(6, 8), u(6)), Dense(u(3, 6), u(3))], (8,), "relu", (0.0, 1.0), name="dense")
    conv = TargetNet(
        [Conv2d(u(3, 1, 3, 3), u(3), padding=1), AvgPool2d(2), Flatten(), Dense(u(4, 48), u(4))],
        (1, 8, 8), "tanh", (0.0, 1.0), name="conv",
    )  # fmt: skip
    return {"dense": dense, "conv": conv}


@cache
def ticket_file(kind: str, directory: str) -> Path:
    ticket = construct(small_targets()[kind], eps=0.05, delta=0.1, seed=0)
    return ticket.save(Path(directory) / f"{kind}_ticket.npz")


@pytest.fixture(scope="module")
def tickets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = str(tmp_path_factory.mktemp("tickets"))
    return {kind: ticket_file(kind, directory) for kind in ("dense", "conv")}


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_ticket_onnx_onnxruntime_within_1e5(tickets: dict[str, Path], tmp_path: Path, kind: str) -> None:
    ticket = Ticket.load(tickets[kind])
    network = ticket.network()
    path = export_ticket(ticket, tmp_path / "ticket.onnx")
    check = cross_check(network, path, samples=1000, seed=0)
    assert check.samples == 1000 and check.max_abs_error < 1e-5, check
    # the ONNX file is also a target: read back, it computes the ticket within float32 rounding
    back = load_onnx(path)
    x = network.sample_inputs(1000, seed=1)
    assert np.max(np.abs(back.forward(x) - network.forward(x))) < 1e-5
    assert back.num_params.nonzero == ticket.ticket_params


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_ticket_dense_weight_files_are_exact(tickets: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    ticket = Ticket.load(tickets["conv"])
    path = export_ticket(ticket, tmp_path / f"ticket{suffix}")
    back = (load_npz if suffix == ".npz" else load_safetensors)(path)
    x = ticket.network().sample_inputs(100, seed=0)
    assert np.array_equal(back.forward(x), ticket.forward(x))
    assert back.num_params == ticket.network().num_params


def test_is_ticket_file(tickets: dict[str, Path], tmp_path: Path) -> None:
    assert is_ticket_file(tickets["dense"])
    target_file = save_target(small_targets()["dense"], tmp_path / "t.npz")
    assert not is_ticket_file(target_file)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert not is_ticket_file(tmp_path / "junk.npz")


def test_convert_ticket_and_targets(tickets: dict[str, Path], tmp_path: Path) -> None:
    result = convert(tickets["dense"], tmp_path / "t.onnx", samples=200)
    assert result.kind == "ticket" and result.import_check is None
    assert result.export_check is not None and result.export_check.passed
    document = result.to_dict()
    assert document["export_check"]["method"] == "onnxruntime"
    assert document["bytes"] == (tmp_path / "t.onnx").stat().st_size
    again = convert(tmp_path / "t.onnx", tmp_path / "t.safetensors", samples=200)
    assert again.kind == "target" and again.import_check is not None and again.import_check.passed
    assert again.export_check is not None and again.export_check.max_abs_error == 0.0


def test_failed_check_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BoundViolation, match="nothing written"):
        convert("digits_cnn_relu", tmp_path / "c.onnx", samples=50, tolerance=1e-30)
    assert list(tmp_path.iterdir()) == []


def test_convert_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="must end in .npz, .safetensors, .onnx"):
        convert("digits_cnn_relu", tmp_path / "c.pt")
    with pytest.raises(InvalidInput, match="float64 only"):
        convert("digits_cnn_relu", tmp_path / "c.npz", dtype="float32")
    with pytest.raises(InvalidInput, match="samples=0"):
        convert("digits_cnn_relu", tmp_path / "c.onnx", samples=0)
