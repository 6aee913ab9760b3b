"""Small targets shared by the certify tests (imported by name, like ``_lemma_rederive``)."""

from __future__ import annotations

import numpy as np

from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet


def small_conv(
    activation: str = "relu", domain: tuple[float, float] = (0.0, 1.0), seed: int = 1, name: str = "smallconv"
) -> TargetNet:
    """A 1×4×4-input CNN: 3×3 conv to 2 channels, 2×2 average pooling, dense 8 → 3."""
    rng = np.random.default_rng(seed)
    layers = [
        Conv2d(rng.uniform(-1, 1, (2, 1, 3, 3)), rng.uniform(-0.3, 0.3, 2), padding=1),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (3, 8)), rng.uniform(-0.3, 0.3, 3)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, domain, name=name)
