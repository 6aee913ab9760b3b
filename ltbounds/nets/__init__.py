"""Networks: layer specs, target networks, implicit source networks, file formats.

One module per layer kind (:mod:`~ltbounds.nets.dense`, :mod:`~ltbounds.nets.conv`,
:mod:`~ltbounds.nets.pooling`, :mod:`~ltbounds.nets.flatten`), each with the same hooks
(``output_shape``, ``forward``, ``interval``, ``lipschitz_inf``);
:mod:`~ltbounds.nets.residual` holds residual blocks (branch + identity or projection skip);
:class:`~ltbounds.nets.target.TargetNet` chains them under one activation rule;
:class:`~ltbounds.nets.source.SourceNet` regenerates random weights on demand;
:mod:`~ltbounds.nets.io` reads and writes ``.npz`` targets; :mod:`~ltbounds.nets.embedded`
serves the small trained targets shipped in ``ltbounds/data``.
"""

from __future__ import annotations

from ltbounds.nets._base import Layer, LinearLayer
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.embedded import digits_test_split, list_embedded, load_embedded
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.io import fold_batchnorm, load_npz, save_npz
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.residual import ResidualBlock
from ltbounds.nets.source import SourceNet
from ltbounds.nets.target import (
    LinearSite,
    ParamCount,
    ResidualSummary,
    TargetNet,
    TargetSummary,
)

__all__ = [
    "AvgPool1d",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "Dense",
    "Flatten",
    "Layer",
    "LinearLayer",
    "LinearSite",
    "MaxPool1d",
    "MaxPool2d",
    "ParamCount",
    "ResidualBlock",
    "ResidualSummary",
    "SourceNet",
    "TargetNet",
    "TargetSummary",
    "digits_test_split",
    "fold_batchnorm",
    "list_embedded",
    "load_embedded",
    "load_npz",
    "save_npz",
]
