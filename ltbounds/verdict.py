"""Verdicts: how strongly a claim has been established.

The five levels are ordered by rigour and are never mixed up (DESIGN.md):

* ``PROVED``: a symbolic derivation (sympy, or an SMT solver that says which) reduced the
  obligation to True.
* ``CERTIFIED``: outward-rounded interval or ball arithmetic established it on a stated box.
* ``TESTED``: ``samples`` random instances were checked and none failed (statistical only).
* ``FALSIFIED``: a counterexample was found; it is attached.
* ``UNKNOWN``: nothing above applied.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Rigour of a verdict, from strongest to weakest."""

    PROVED = "PROVED"
    CERTIFIED = "CERTIFIED"
    TESTED = "TESTED"
    FALSIFIED = "FALSIFIED"
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one obligation.

    Parameters
    ----------
    status : Status
        How the claim stands.
    method : str
        What established it, e.g. ``"sympy.simplify"``, ``"arb branch-and-bound"``,
        ``"monte-carlo"``.
    detail : str
        One human sentence (the box, the margin, the number of samples ...).
    counterexample : dict, optional
        Values of the symbols where a FALSIFIED claim fails.
    samples : int, optional
        Number of random checks behind a TESTED verdict.
    """

    status: Status
    method: str
    detail: str = ""
    counterexample: dict[str, Any] | None = None
    samples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless the claim was falsified."""
        return self.status is not Status.FALSIFIED

    @property
    def rigorous(self) -> bool:
        """True only for PROVED and CERTIFIED."""
        return self.status in (Status.PROVED, Status.CERTIFIED)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "verdict": self.status.value,
            "method": self.method,
            "detail": self.detail,
            "counterexample": self.counterexample,
            "samples": self.samples,
            **self.extra,
        }
