"""Ticket constructions: prune a random source network into a ticket for a target.

See :func:`construct` (L+1: Burkholz, NeurIPS 2022; 2L: Burkholz, ICML 2022) and the
building blocks in :mod:`ltbounds.construct.blocks`.
"""

from __future__ import annotations

from ltbounds.construct.builder import DEPTHS, allot_tolerances, construct, plan_source

__all__ = ["DEPTHS", "allot_tolerances", "construct", "plan_source"]
