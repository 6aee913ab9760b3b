"""The certification report: three numbers that must nest, and what they establish.

``sampled <= attacked-or-not <= certified`` must always hold (the first two are errors seen at
actual inputs, the last an upper bound of the supremum); ``certified <= eps`` is the theorem's
claim for this ticket. :func:`judge` turns the numbers into a :class:`~ltbounds.verdict.Verdict`:

* ``FALSIFIED`` when an input's error, *itself enclosed in outward-rounded arithmetic*, is
  certainly above a method's certified bound: a bug or a false lemma (the input is attached;
  the CLI exits with code 3, as for :class:`~ltbounds.errors.BoundViolation`);
* ``CERTIFIED`` when the best certified bound is at most ``eps`` (rigorous, on the stated box);
* ``TESTED`` when it is not, but no sampled or attacked input exceeds ``eps`` (statistical only:
  the claim is not established for this ticket);
* ``UNKNOWN`` when some input exceeds ``eps``: the ticket does not meet ``eps`` (the theorem's
  claim fails for this ticket; the sandwich itself holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltbounds.certify._empirical import Witness
from ltbounds.errors import BoundViolation
from ltbounds.verdict import Status, Verdict


@dataclass(frozen=True)
class MethodBound:
    """A certified upper bound of ``sup_{x ∈ box} ‖f̂(x) − f(x)‖`` by one method.

    Attributes
    ----------
    name : str
        ``"composition"``, ``"ibp"``, ``"separate"`` or a caller's name.
    linf, l2 : float
        Upper bounds for the ∞-norm and the 2-norm of the output difference.
    seconds : float
        Time taken.
    detail : dict
        Method facts (boxes of the branch and bound, ...).
    """

    name: str
    linf: float
    l2: float
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"linf": self.linf, "l2": self.l2, "seconds": self.seconds, **self.detail}


@dataclass(frozen=True)
class CertificationReport:
    """What :func:`~ltbounds.certify.certify` established for one (target, ticket) pair.

    Attributes
    ----------
    target : str
        The target's name.
    eps : float
        The ∞-norm error the ticket was built for.
    box : (float, float, tuple)
        ``(low, high, input_shape)``: the input box ``[low, high]^shape`` every bound is for.
    sampled, attacked : Witness
        Largest errors seen at ``samples`` uniform inputs and by the gradient attack.
    methods : dict of str to MethodBound
        Every certified bound computed.
    verdict : Verdict
        See the module docstring.
    samples, restarts, steps, budget, seed : int
        The settings used.
    seconds : float
        Wall time.
    witness_bounds : dict
        Rigorous lower bounds of the error at the witness inputs (outward-rounded evaluation).
    """

    target: str
    eps: float
    box: tuple[float, float, tuple[int, ...]]
    sampled: Witness
    attacked: Witness
    methods: dict[str, MethodBound]
    verdict: Verdict
    samples: int
    restarts: int
    steps: int
    budget: int
    seed: int
    seconds: float
    witness_bounds: dict[str, float] = field(default_factory=dict)

    @property
    def certified(self) -> float:
        """The best (smallest) certified ∞-norm bound."""
        return min(m.linf for m in self.methods.values()) if self.methods else float("inf")

    @property
    def certified_l2(self) -> float:
        """The best certified 2-norm bound."""
        return min(m.l2 for m in self.methods.values()) if self.methods else float("inf")

    @property
    def certified_by(self) -> str | None:
        """The method giving :attr:`certified`."""
        if not self.methods:
            return None
        return min(self.methods.values(), key=lambda m: m.linf).name

    @property
    def empirical(self) -> float:
        """The largest ∞-norm error seen (sampled or attacked)."""
        return max(self.sampled.linf, self.attacked.linf)

    @property
    def margin(self) -> float:
        """``eps − certified`` (positive: the claim is certified with room to spare)."""
        return self.eps - self.certified

    @property
    def ratio(self) -> float:
        """``certified / empirical``: how far the certificate is from the attack (>= 1)."""
        return self.certified / self.empirical if self.empirical > 0 else float("inf")

    @property
    def falsified(self) -> bool:
        """True when the sandwich ``empirical <= certified`` failed."""
        return self.verdict.status is Status.FALSIFIED

    def raise_if_falsified(self) -> None:
        """Raise :class:`~ltbounds.errors.BoundViolation` when the sandwich failed."""
        if self.falsified:
            raise BoundViolation(f"FALSIFIED: {self.verdict.detail}")

    def to_dict(self, *, inputs: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``inputs`` adds the witness inputs (lists of floats)."""
        low, high, shape = self.box
        document: dict[str, Any] = {
            "target": self.target,
            "eps": self.eps,
            "norm": "inf",
            "input_box": {"low": low, "high": high, "shape": list(shape)},
            "sampled_error": self.sampled.linf,
            "attacked_error": self.attacked.linf,
            "certified_error": self.certified,
            "certified_by": self.certified_by,
            "margin": self.margin,
            "ratio": self.ratio,
            "sampled_error_l2": self.sampled.l2,
            "attacked_error_l2": self.attacked.l2,
            "certified_error_l2": self.certified_l2,
            "verdict": self.verdict.status.value,
            "verdict_detail": self.verdict.detail,
            "eps_status": self.verdict.extra.get("eps_status"),
            "methods": {name: bound.to_dict() for name, bound in self.methods.items()},
            "witness_lower_bounds": dict(self.witness_bounds),
            "samples": self.samples,
            "restarts": self.restarts,
            "steps": self.steps,
            "budget": self.budget,
            "seed": self.seed,
            "seconds": self.seconds,
        }
        if self.verdict.counterexample is not None:
            document["counterexample"] = self.verdict.counterexample
        if inputs:
            document["witness_inputs"] = {
                "sampled_linf": self.sampled.input_linf.tolist(),
                "attacked_linf": self.attacked.input_linf.tolist(),
                "sampled_l2": self.sampled.input_l2.tolist(),
                "attacked_l2": self.attacked.input_l2.tolist(),
            }
        return document


def judge(
    *,
    eps: float,
    methods: dict[str, MethodBound],
    witnesses: dict[str, tuple[np.ndarray, float, float, float]],
    box_text: str,
    samples: int,
) -> Verdict:
    """The verdict for the numbers (see the module docstring).

    ``witnesses`` maps a label (``"sampled ∞-norm"`` ...) to ``(input, float error, rigorous
    lower bound of the error, norm)`` where norm is ``inf`` or ``2.0``.
    """
    violations = []
    for label, (x, seen, lower, norm) in witnesses.items():
        for bound in methods.values():
            certified = bound.linf if norm == float("inf") else bound.l2
            if lower > certified:
                violations.append((lower - certified, label, x, seen, lower, bound.name, certified, norm))
    if violations:
        _, label, x, seen, lower, name, certified, norm = max(violations, key=lambda v: v[0])
        norm_text = "∞" if norm == float("inf") else "2"
        return Verdict(
            Status.FALSIFIED,
            f"sandwich check against {name!r}",
            f"the {label} input has ‖f̂ − f‖_{norm_text} >= {lower:.6g} (outward rounded; float "
            f"{seen:.6g}) > certified {certified:.6g} by {name!r} on {box_text}: a bug or a false lemma",
            counterexample={
                "input": np.asarray(x).tolist(),
                "norm": norm_text,
                "error_lower_bound": lower,
                "error_float": seen,
                "method": name,
                "certified": certified,
                "witness": label,
            },
            samples=samples,
            extra={"eps_status": None},
        )
    best = min(methods.values(), key=lambda m: m.linf)
    empirical = max((seen for (_, seen, _, norm) in witnesses.values() if norm == float("inf")), default=0.0)
    if best.linf <= eps:
        return Verdict(
            Status.CERTIFIED,
            f"{best.name} (outward-rounded)",
            f"sup over {box_text} of ‖f̂ − f‖_∞ <= {best.linf:.6g} <= eps = {eps:g} "
            f"(margin {eps - best.linf:.3g}); largest error seen {empirical:.6g}",
            samples=samples,
            extra={"eps_status": "certified"},
        )
    if empirical <= eps:
        return Verdict(
            Status.TESTED,
            "sampling + gradient attack",
            f"not certified: the best bound {best.linf:.6g} ({best.name}) exceeds eps = {eps:g}; "
            f"no sampled or attacked input exceeds eps (largest error {empirical:.6g}); "
            "statistical only",
            samples=samples,
            extra={"eps_status": "tested"},
        )
    return Verdict(
        Status.UNKNOWN,
        "sampling + gradient attack",
        f"the ticket does not meet eps = {eps:g}: an input has error {empirical:.6g} "
        f"(certified bound {best.linf:.6g}, {best.name}); the theorem's claim fails for this ticket, "
        "the sandwich holds",
        samples=samples,
        extra={"eps_status": "exceeded"},
    )


__all__ = ["CertificationReport", "MethodBound", "judge"]
