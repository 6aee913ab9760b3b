"""Per-layer error growth (``ltbounds.certify._growth``): predicted against measured copy errors."""

from __future__ import annotations

import numpy as np
import pytest
from _small_nets import small_conv, tiny_resnet

from ltbounds.certify._alignment import align
from ltbounds.certify._growth import layer_growth, measure_growth, plot_growth
from ltbounds.construct import construct


@pytest.fixture(scope="module", params=["conv-relu", "conv-tanh", "resnet-relu"])
def built(request):
    if request.param == "conv-relu":
        target = small_conv("relu")
    elif request.param == "conv-tanh":
        target = small_conv("tanh", domain=(-1.0, 1.0))
    else:
        target = tiny_resnet("relu")
    ticket = construct(target, eps=0.05, seed=0)
    return target, ticket, align(target, ticket)


def _slow_measure(alignment, inputs):
    """One input at a time, every carried copy compared with its unit by explicit indices."""
    steps = alignment.steps if alignment.residual else alignment.transitions
    worst = [0.0] * len(steps)
    for x in inputs:
        mine = alignment.target.forward_all(x[None])
        theirs = alignment.ticket_net.forward_all(x[None])
        for k, step in enumerate(steps):
            h = mine[max((step.target_layer, *step.after))][0]
            h_hat = theirs[max((step.source_layer, *step.source_after))][0]
            flat_h, flat_hat = h.reshape(-1), h_hat.reshape(-1)
            positions = int(np.prod(step.outgoing.spatial)) if step.outgoing.spatial else 1
            for channel, unit in zip(step.outgoing.channels, step.outgoing.units, strict=True):
                for p in range(positions):
                    gap = abs(flat_hat[channel * positions + p] - flat_h[unit * positions + p])
                    worst[k] = max(worst[k], float(gap))
    return worst


def test_one_row_per_step_and_the_last_is_the_output_error(built) -> None:
    target, ticket, alignment = built
    inputs = target.sample_inputs(200, 1)
    rows = layer_growth(alignment, ticket, inputs)
    steps = alignment.steps if alignment.residual else alignment.transitions
    assert [row["step"] for row in rows] == list(range(len(steps)))
    assert all(row["measured"] >= 0 and np.isfinite(row["measured"]) for row in rows)
    output_error = float(np.max(np.abs(alignment.ticket_net.forward(inputs) - target.forward(inputs))))
    assert rows[-1]["measured"] == pytest.approx(output_error, rel=1e-9, abs=1e-15)
    assert rows[-1]["predicted"] == pytest.approx(ticket.matches[-1]["error"])


def test_batched_measure_matches_a_point_by_point_reference(built) -> None:
    target, _, alignment = built
    inputs = target.sample_inputs(12, 2)
    fast = measure_growth(alignment, inputs)
    slow = _slow_measure(alignment, inputs)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-15)


def test_the_construction_prediction_bounds_what_is_measured(built) -> None:
    """The per-layer prediction is the composition lemma's bound: no sampled copy exceeds it."""
    target, ticket, alignment = built
    assert ticket.metadata["missed_subset_sums"] == 0
    rows = layer_growth(alignment, ticket, target.sample_inputs(300, 3))
    for row in rows:
        assert row["measured"] <= row["predicted"]


def test_plot_writes_a_png(built, tmp_path) -> None:
    target, ticket, alignment = built
    rows = layer_growth(alignment, ticket, target.sample_inputs(20, 4))
    path = tmp_path / "growth.png"
    plot_growth(rows, path, eps=0.05, certified=0.01, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
