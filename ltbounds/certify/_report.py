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
from ltbounds.errors import BoundViolation, ModelFormatError
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
    growth : list of dict
        Per-layer error growth (:func:`ltbounds.certify._growth.layer_growth`): per step the
        construction's predicted copy error and the largest one measured at sampled inputs.
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
    growth: list[dict[str, Any]] = field(default_factory=list)

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
            "layer_growth": [dict(row) for row in self.growth],
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


# -- report files ------------------------------------------------------------------------------
#: ``format`` of a certification report file (``certify -o`` / ``--report DIR``).
REPORT_FORMAT = "ltbounds-certify-report"
#: The report-file version written; readers refuse any other.
REPORT_VERSION = 1
#: Largest report file read.
MAX_REPORT_BYTES = 64 * 2**20
#: Numbers of a recomputed report must agree with the recorded ones to this relative tolerance
#: (the same code on the same libraries gives identical bits; the slack only absorbs a BLAS
#: build summing in another order). Verdicts must agree exactly.
RECOMPUTE_RTOL = 1e-9
#: Keys compared by :func:`compare_reports`, in the order a mismatch is reported.
_COMPARED = (
    "target", "eps", "input_box", "verdict", "eps_status", "certified_by", "samples", "restarts",
    "steps", "budget", "seed", "sampled_error", "attacked_error", "certified_error",
    "sampled_error_l2", "attacked_error_l2", "certified_error_l2", "methods",
    "witness_lower_bounds",
)  # fmt: skip
_IGNORED_METHOD_KEYS = {"seconds"}


def _is_timing(key: str) -> bool:
    """Wall-clock fields (``seconds``, ``*_seconds``) never recompute to the same value."""
    return key in _IGNORED_METHOD_KEYS or key.endswith("_seconds")


def read_report(path: Any) -> dict[str, Any]:
    """A certification report file, checked to be one this ltbounds reads.

    ``path`` is the JSON file or a ``--report`` folder (then its ``certify.json``).

    Raises
    ------
    ModelFormatError
        Missing, too large or not JSON; another ``format``; an unknown ``version``; no
        ``inputs`` (the recorded target, ticket and settings).
    """
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    where = Path(path)
    if where.is_dir():
        where = where / "certify.json"
    if not where.is_file():
        raise ModelFormatError(f"report {where}: no such file")
    if where.stat().st_size > MAX_REPORT_BYTES:
        raise ModelFormatError(f"report {where} is larger than {MAX_REPORT_BYTES:,} bytes")
    try:
        document = json.loads(where.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFormatError(f"report {where} is not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != REPORT_FORMAT:
        shown = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ModelFormatError(f"report {where} has format {shown!r}; expected {REPORT_FORMAT!r}")
    if document.get("version") != REPORT_VERSION:
        raise ModelFormatError(
            f"report {where} has version {document.get('version')!r}; this ltbounds reads version "
            f"{REPORT_VERSION}"
        )
    inputs = document.get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("target"), str) or not isinstance(
        inputs.get("ticket"), str
    ):
        raise ModelFormatError(f"report {where} records no 'inputs' (target, ticket, settings)")
    return document


def compare_reports(recorded: dict[str, Any], recomputed: dict[str, Any]) -> str | None:
    """None when ``recomputed`` matches ``recorded``; else a one-line reason (the first difference).

    Verdicts, names and counts must be equal; numbers agree to :data:`RECOMPUTE_RTOL`
    relative; timings are ignored.
    """
    for key in _COMPARED:
        reason = _differ(key, recorded.get(key), recomputed.get(key))
        if reason is not None:
            return reason
    return None


def _differ(where: str, old: Any, new: Any) -> str | None:
    import math  # noqa: PLC0415

    if isinstance(old, dict) and isinstance(new, dict):
        if {k for k in old if not _is_timing(k)} != {k for k in new if not _is_timing(k)}:
            return f"{where}: recorded keys {sorted(old)} but recomputed {sorted(new)}"
        for key in old:
            if _is_timing(key):
                continue
            reason = _differ(f"{where}.{key}", old[key], new[key])
            if reason is not None:
                return reason
        return None
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return f"{where}: recorded {len(old)} entries, recomputed {len(new)}"
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            reason = _differ(f"{where}[{index}]", a, b)
            if reason is not None:
                return reason
        return None
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool) and not isinstance(new, bool):
        if old == new or math.isclose(old, new, rel_tol=RECOMPUTE_RTOL, abs_tol=0.0):
            return None
        return f"{where}: recorded {old!r}, recomputed {new!r}"
    if old != new:
        return f"{where}: recorded {old!r}, recomputed {new!r}"
    return None


__all__ = [
    "MAX_REPORT_BYTES",
    "RECOMPUTE_RTOL",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "CertificationReport",
    "MethodBound",
    "compare_reports",
    "judge",
    "read_report",
]
