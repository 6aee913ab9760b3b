"""Sampled evaluation of tickets: batch sizes and the compacted network it runs."""

from __future__ import annotations

import numpy as np
import pytest

from ltbounds.construct import construct, evaluation
from ltbounds.construct.evaluation import batch_size, max_sampled_error
from ltbounds.nets import Conv2d, Dense, Flatten, TargetNet, load_embedded


def test_batch_size_shrinks_for_wide_networks(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    narrow = TargetNet([Dense(rng.uniform(-1, 1, (3, 4)))], (4,), "relu")
    wide = TargetNet(
        [Conv2d(rng.uniform(-1, 1, (64, 1, 3, 3)), padding=1), Flatten(), Dense(rng.uniform(-1, 1, (2, 64 * 256)))],
        (1, 16, 16),
        "relu",
    )
    per_input = 8 * (256 + 2 * 64 * 256 + 2)  # every layer's output is kept
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 100 * per_input + 7)
    assert batch_size(narrow) == evaluation.BATCH
    assert batch_size(wide) == 100
    assert batch_size(narrow, wide) == 100
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 1)
    assert batch_size(wide) == 1


def test_sampled_error_equals_that_of_the_full_ticket_network(monkeypatch) -> None:
    target = load_embedded("digits_cnn_relu")
    ticket = construct(target, eps=0.01, rho=8, seed=0)
    compact = max_sampled_error(target, ticket, 300, seed=5)
    monkeypatch.setattr(evaluation, "drop_dead_units", lambda network: network)
    full = max_sampled_error(target, ticket, 300, seed=5)
    assert abs(compact - full) <= 1e-12 * max(1.0, full)


def test_sampled_error_and_digits_scores_are_the_same_on_every_backend(xp) -> None:
    """The forward passes run on ``xp`` (issue 11) and measure what numpy measures."""
    from ltbounds.construct.evaluation import digits_scores

    target = load_embedded("digits_mlp_relu")
    ticket = construct(target, eps=0.1, rho=3, seed=2)
    on_numpy = max_sampled_error(target, ticket, 130, seed=4)
    on_xp = max_sampled_error(target, ticket, 130, seed=4, xp=xp)  # 130 < one batch: the last slice ends early
    assert on_xp == pytest.approx(on_numpy, rel=1e-12, abs=1e-15) and on_numpy > 0
    assert digits_scores(target, ticket, xp=xp) == digits_scores(target, ticket)
