"""Default settings that option declarations need before any heavy module is loaded.

``ltbounds --help`` and ``ltbounds VERB --help`` build every verb's options, and an option's
default must exist when its command is declared. Importing the modules that use these numbers
(:mod:`ltbounds.certify` loads scipy, sympy and python-flint; :mod:`ltbounds.nets.onnx_io`
the network layers) would cost seconds at every start, so the numbers live here, in a module
that imports nothing.

:mod:`ltbounds.nets.io` takes its file limits from here, :mod:`ltbounds.certify._core` its
methods and defaults and :mod:`ltbounds.nets.onnx_io` its cross-check tolerance: each number
is defined once, here.
"""

from __future__ import annotations

#: Largest ``.npz`` file, and largest total of its uncompressed members, read by default.
DEFAULT_MAX_BYTES = 512 * 2**20
#: Largest number of entries of one tensor read by default.
DEFAULT_MAX_ELEMENTS = 2**26

#: Default tolerance of :func:`ltbounds.nets.onnx_io.cross_check`.
DEFAULT_CROSS_CHECK_TOL = 1e-5

#: ``certify``'s built-in methods, in the order they run (:data:`ltbounds.certify.METHODS`).
CERTIFY_METHODS = ("composition", "ibp", "separate")
#: ``certify``'s default number of uniform domain inputs.
CERTIFY_SAMPLES = 10_000
#: ``certify``'s default number of gradient-attack runs per norm.
CERTIFY_RESTARTS = 8
#: ``certify``'s default steps of every attack run.
CERTIFY_STEPS = 40
#: ``certify``'s default budget of input boxes for the branch and bound.
CERTIFY_BUDGET = 16

__all__ = [
    "CERTIFY_BUDGET",
    "CERTIFY_METHODS",
    "CERTIFY_RESTARTS",
    "CERTIFY_SAMPLES",
    "CERTIFY_STEPS",
    "DEFAULT_CROSS_CHECK_TOL",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
]
