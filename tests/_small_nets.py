"""Small targets shared by several test modules (imported by name, like ``_lemma_rederive``)."""

from __future__ import annotations

import numpy as np

from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, ResidualBlock, TargetNet


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


def tiny_resnet(activation: str = "relu", seed: int = 0) -> TargetNet:
    """Stem, an identity block, a stride-2 projection block with biases on both paths, head."""
    rng = np.random.default_rng(seed)

    def conv(cout: int, cin: int, k: int, stride: int = 1) -> Conv2d:
        return Conv2d(rng.uniform(-0.5, 0.5, (cout, cin, k, k)), rng.uniform(-0.2, 0.2, cout),
                      stride=stride, padding=k // 2)  # fmt: skip

    layers = [
        conv(2, 1, 3),
        ResidualBlock((conv(2, 2, 3), conv(2, 2, 3)), None, True),
        ResidualBlock((conv(3, 2, 3, stride=2), conv(3, 3, 3)), conv(3, 2, 1, stride=2), True),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (2, 3)), rng.uniform(-0.2, 0.2, 2)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, (0.0, 1.0), name="tiny_resnet")
