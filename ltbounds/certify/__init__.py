"""Certified error bounds of tickets: sampled <= certified <= eps (issue 8).

:func:`certify` measures how far a ticket is from its target on the target's input box
``[low, high]^input_shape``: the largest error at sampled inputs and at inputs found by a
gradient attack (statistical lower bounds of the supremum), and certified upper bounds from
outward-rounded arithmetic (composition lemma on the realised weights; differential interval
bound propagation with branch and bound; plain interval propagation). See ``docs/certify.md``.
"""

from __future__ import annotations

from ltbounds.certify._core import METHODS, CertifyContext, certify
from ltbounds.certify._empirical import Witness
from ltbounds.certify._report import CertificationReport, MethodBound

__all__ = ["METHODS", "CertificationReport", "CertifyContext", "MethodBound", "Witness", "certify"]
