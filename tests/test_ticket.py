"""Tickets: the pruned network they describe, their files and the checks on reading them."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from ltbounds.construct import construct
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets import Conv2d, Dense, Flatten, TargetNet
from ltbounds.ticket import FORMAT, READABLE_VERSIONS, Ticket


def small_conv_target(seed: int = 0) -> TargetNet:
    rng = np.random.default_rng(seed)
    layers = [
        Conv2d(rng.uniform(-1, 1, (2, 1, 3, 3)), rng.uniform(-0.3, 0.3, 2), padding=1),
        Flatten(),
        Dense(rng.uniform(-1, 1, (2, 2 * 4 * 4)), rng.uniform(-0.3, 0.3, 2)),
    ]
    return TargetNet(layers, (1, 4, 4), "relu", (0.0, 1.0), name="small-conv")


@pytest.fixture(scope="module")
def ticket() -> Ticket:
    return construct(small_conv_target(), eps=0.05, rho=5, seed=7)


def test_network_is_the_pruned_source(ticket: Ticket) -> None:
    """``network()`` keeps exactly the recorded weights: the nonzeros of each layer sit at the
    kept flat indices and equal the seed's source weights there (regenerated independently
    through ``SourceNet.weights``); the forward pass is the network's."""
    network = ticket.network()
    source = ticket.source()
    for index, (_, layer) in enumerate(network.linear_layers):
        kept = np.asarray(ticket.kept_weights[index], dtype=np.int64)
        flat = np.ravel(layer.weight)
        np.testing.assert_array_equal(flat[kept], np.asarray(source.weights(index, kept)))
        outside = np.ones(flat.size, dtype=bool)
        outside[kept] = False
        assert np.count_nonzero(flat[outside]) == 0
    x = small_conv_target().sample_inputs(50, seed=1)
    np.testing.assert_array_equal(ticket.forward(x), network.forward(x))


def test_summary_counts_agree(ticket: Ticket) -> None:
    summary = ticket.summary()
    assert summary["source_params"] == ticket.source_params > summary["ticket_params"] == ticket.ticket_params > 0
    assert summary["sparsity"] == ticket.ticket_params / ticket.source_params  # the fraction kept
    assert summary["source_widths"] == [spec.weight_shape[0] for spec in ticket.specs]
    json.dumps(summary)  # JSON-ready


def _rewrite_header(path, change) -> None:
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as handle:
                arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
    header = json.loads(arrays["header.npy"].tobytes().decode("utf-8"))
    change(header)
    arrays["header.npy"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            with archive.open(name, "w") as handle:
                np.lib.format.write_array(handle, value, allow_pickle=False)


def test_plain_ticket_round_trips_as_version_1(ticket: Ticket, tmp_path) -> None:
    path = ticket.save(tmp_path / "t.npz")
    with zipfile.ZipFile(path) as archive, archive.open("header.npy") as handle:
        header = json.loads(np.lib.format.read_array(handle).tobytes().decode("utf-8"))
    assert header["format"] == FORMAT and header["version"] == 1 in READABLE_VERSIONS
    loaded = Ticket.load(path)
    for mine, theirs in zip(loaded.kept_weights, ticket.kept_weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert loaded.seed == ticket.seed and loaded.metadata == json.loads(json.dumps(ticket.metadata))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.update(version=99), r"version 99; this ltbounds reads versions 1, 2"),
        (lambda h: h.update(format="something-else"), r"format 'something-else'; expected 'ltbounds-ticket'"),
        (lambda h: h.pop("specs"), r"malformed \(KeyError"),
    ],
)
def test_unknown_versions_and_malformed_headers_are_refused(ticket, tmp_path, change, message) -> None:
    path = ticket.save(tmp_path / "t.npz")
    _rewrite_header(path, change)
    with pytest.raises(ModelFormatError, match=message):
        Ticket.load(path)


def test_a_ticket_refuses_a_target_it_was_not_built_for(ticket: Ticket) -> None:
    with pytest.raises(InvalidInput):
        ticket.check_target(small_conv_target(seed=1))
    ticket.check_target(small_conv_target())  # its own target passes
