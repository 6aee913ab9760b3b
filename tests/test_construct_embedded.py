"""Issue-level acceptance on the embedded digits CNNs (L+1, theorem's ρ, ε = 0.01).

For ReLU, tanh, sigmoid and GELU the ticket's max output error over 10,000 domain inputs must
be at most ε, and its accuracy on the held-out digits split must equal the target's within
0.5 points. These are sampled (statistical) checks of the construction, not certificates.
"""

from __future__ import annotations

import pytest

from ltbounds.construct import construct
from ltbounds.construct.evaluation import digits_scores, max_sampled_error
from ltbounds.nets import load_embedded

EPS = 0.01


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_l_plus_1_ticket_of_embedded_cnn(activation: str) -> None:
    target = load_embedded(f"digits_cnn_{activation}")
    ticket = construct(target, eps=EPS, delta=0.05, seed=0)
    sampled = max_sampled_error(target, ticket, 10_000, seed=123)
    assert sampled <= EPS
    scores = digits_scores(target, ticket)
    assert abs(scores["ticket_accuracy"] - scores["target_accuracy"]) <= 0.005
    assert ticket.metadata["rho_origin"] == "subset-sum lemma"
