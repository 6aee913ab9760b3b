"""``certify``: sampled <= certified <= eps for one ticket and its target."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds._defaults import (
    CERTIFY_BUDGET,
    CERTIFY_METHODS,
    CERTIFY_RESTARTS,
    CERTIFY_SAMPLES,
    CERTIFY_STEPS,
)
from ltbounds.certify._alignment import Alignment, align
from ltbounds.certify._autodiff import Tape
from ltbounds.certify._backsub import BackSubstitution
from ltbounds.certify._bounds import (
    Engine,
    branch_and_bound,
    lower_norms,
    norms_of,
    point_enclosure,
)
from ltbounds.certify._empirical import attack, sample_errors
from ltbounds.certify._growth import GROWTH_SAMPLES, layer_growth
from ltbounds.certify._report import CertificationReport, MethodBound, judge
from ltbounds.certify._rigorous import subtract, up
from ltbounds.errors import InvalidInput
from ltbounds.nets import TargetNet
from ltbounds.validation import (
    check_int,
    check_memory,
    check_positive,
    check_samples,
    memory_budget,
)

#: The built-in methods, in the order they run, and the defaults of :func:`certify`; defined in
#: :mod:`ltbounds._defaults`, which the CLI reads without importing this package.
METHODS = CERTIFY_METHODS
DEFAULT_SAMPLES = CERTIFY_SAMPLES
DEFAULT_RESTARTS = CERTIFY_RESTARTS
DEFAULT_STEPS = CERTIFY_STEPS
DEFAULT_BUDGET = CERTIFY_BUDGET
#: Most steps of one attack run (each is a forward and a backward pass of both networks).
MAX_STEPS = 100_000
#: Least memory per box of the branch and bound, per input entry: the box's two corners for
#: each network (the symbolic bounds take more; they are batched under their own budget).
BYTES_PER_BOX_ENTRY = 32

Progress = Callable[[str, int, int], None]


@dataclass
class CertifyContext:
    """What a certification method sees (built-in or a caller's callable).

    Attributes
    ----------
    target : TargetNet
    ticket : Ticket
    alignment : Alignment
        The checked pairing of ticket and target layers.
    engine : Engine
        Outward-rounded interval propagation of both networks and of their difference.
    budget : int
        Boxes the branch and bound may use.
    progress : callable or None
    """

    target: TargetNet
    ticket: Any
    alignment: Alignment
    engine: Engine
    budget: int
    progress: Progress | None = None
    _cache: dict[str, Any] | None = None

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if self._cache is None:
            self._cache = {}
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def _composition(context: CertifyContext) -> MethodBound:
    start = time.perf_counter()
    errors = context.engine.composition()
    linf = float(np.max(errors))
    l2 = float(up(np.sqrt(up(np.sum(up(errors * errors)) * (1 + 1e-12)))))
    return MethodBound(
        "composition",
        linf,
        l2,
        time.perf_counter() - start,
        {"what": "composition lemma per copy with realised weights (LEMMAS.md 4)"},
    )


def _influence(context: CertifyContext) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    target, ticket_net = context.target, context.alignment.ticket_net

    def influence(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        centre = (0.5 * lo + 0.5 * hi)[None]
        tape_hat, tape = Tape(ticket_net, centre), Tape(target, centre)
        diff = (tape_hat.output - tape.output).reshape(1, -1)
        cotangent = np.zeros_like(diff)
        k = int(np.argmax(np.abs(diff)))
        cotangent[0, k] = 1.0
        cotangent = cotangent.reshape(tape.output.shape)
        grad = np.abs(tape_hat.vjp(cotangent) - tape.vjp(cotangent))[0]
        return grad + 1e-3 * float(np.max(grad, initial=0.0)) + 1e-300

    return influence


#: Memory (bytes) the symbolic bounds of one batch of boxes may take.
SYMBOLIC_BUDGET_BYTES = 512 * 2**20


def _branch_and_bound(context: CertifyContext) -> Any:
    per_box = context.engine.symbolic_bytes()
    symbolic = per_box <= SYMBOLIC_BUDGET_BYTES and not context.alignment.residual
    batch = max(1, min(16, SYMBOLIC_BUDGET_BYTES // max(per_box, 1) // 2)) if symbolic else 16
    return context.cached(
        "bnb",
        lambda: branch_and_bound(
            context.engine,
            budget=context.budget,
            influence=_influence(context),
            progress=context.progress,
            symbolic=symbolic,
            batch=batch,
        ),
    )


def _ibp_what(alignment: Alignment, symbolic: bool) -> str:
    if alignment.residual and alignment.steps is None:
        return (
            "interval bound propagation of each network separately (the ticket records no copies "
            "of its residual blocks), with branch and bound"
        )
    if alignment.residual:
        return "differential interval bound propagation through residual blocks (interval bounds)"
    return "differential interval bound propagation" + (" with symbolic (affine) bounds" if symbolic else "")


def _back_substitution(context: CertifyContext) -> tuple[float, float, float] | None:
    """(∞-norm, 2-norm, seconds) of the back-substitution bound on the whole box, or None where
    it does not apply (residual targets, max pooling, matrices too large: see
    :meth:`BackSubstitution.build`)."""
    start = time.perf_counter()
    if context.progress is not None:
        context.progress("back-substitution", 0, 1)
    method = BackSubstitution.build(context.engine)
    if method is None:
        return None
    target = context.target
    low, high = target.input_domain
    box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
    lower, upper = method.bound(box)
    linf, l2 = norms_of((lower[None], upper[None]))
    if context.progress is not None:
        context.progress("back-substitution", 1, 1)
    return float(linf[0]), float(l2[0]), time.perf_counter() - start


def _ibp(context: CertifyContext) -> MethodBound:
    start = time.perf_counter()
    result = _branch_and_bound(context)
    linf, l2 = float(result.linf), float(result.l2)
    details: dict[str, Any] = {
        "boxes": result.boxes,
        "evaluated": result.evaluated,
        "symbolic": result.symbolic,
        "what": _ibp_what(context.alignment, result.symbolic),
    }
    backsub = _back_substitution(context)
    if backsub is not None:
        # Both bound the same supremum on the same box: the smaller is as rigorous.
        details.update(branch_and_bound_linf=linf, backsub_linf=backsub[0], backsub_seconds=backsub[2])
        details["what"] += "; back-substitution through the differential network (the smaller bound)"
        linf, l2 = min(linf, backsub[0]), min(l2, backsub[1])
    return MethodBound("ibp", linf, l2, time.perf_counter() - start, details)


def _separate(context: CertifyContext) -> MethodBound:
    start = time.perf_counter()
    target = context.target
    low, high = target.input_domain
    box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
    t_enc = context.engine.target.enclose(box)
    s_enc = context.engine.ticket.enclose(box)
    linf, l2 = norms_of(subtract(s_enc[-1][1], t_enc[-1][1]))
    return MethodBound(
        "separate",
        float(linf[0]),
        float(l2[0]),
        time.perf_counter() - start,
        {"what": "interval bound propagation of each network separately"},
    )


_BUILTIN: dict[str, Callable[[CertifyContext], MethodBound]] = {
    "composition": _composition,
    "ibp": _ibp,
    "separate": _separate,
}


def certify(
    target: TargetNet,
    ticket: Any,
    *,
    eps: float | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    restarts: int = DEFAULT_RESTARTS,
    steps: int = DEFAULT_STEPS,
    budget: int = DEFAULT_BUDGET,
    methods: Sequence[str | Callable[[CertifyContext], MethodBound]] = METHODS,
    progress: Progress | None = None,
    xp: Any | None = None,
) -> CertificationReport:
    """Sampled, attacked and certified error of ``ticket`` against ``target``; the sandwich.

    Parameters
    ----------
    target : TargetNet
        The network the ticket approximates. Every bound is stated for its input box
        ``[low, high]^input_shape`` (``target.input_domain``).
    ticket : Ticket
        A ticket built for ``target`` (:func:`ltbounds.construct.construct`).
    eps : float, optional
        The ∞-norm error to compare with (default: the ``eps`` the ticket was built for).
    samples : int
        Uniform inputs drawn from the box (statistical: a lower bound of the supremum).
    seed : int
        Seed of the sampled inputs.
    restarts, steps : int
        Gradient attack: runs per norm (started from the best sampled inputs) and steps each.
    budget : int
        Boxes the branch and bound of the ``"ibp"`` method may split the input box into.
    methods : sequence of str or callable
        Certified bounds to compute: ``"composition"`` (LEMMAS.md 4 evaluated per copy on the
        realised weights, fast and coarse), ``"ibp"`` (differential interval bound
        propagation with branch and bound, and back-substitution where it applies: the
        smaller), ``"separate"`` (plain IBP of both networks), or a callable ``context -> MethodBound`` (every bound is checked against the witnesses).
    progress : callable, optional
        ``progress(message, done, total)``.
    xp : array namespace, optional
        Where sampling and the attack run (numpy by default; CuPy or array-api-strict, see
        :func:`ltbounds.backend.get_backend`). The inputs are the same on every namespace
        (counter-based draws); the certified methods always run on the host in numpy,
        since their outward rounding steps float64 results with ``nextafter``.

    Returns
    -------
    CertificationReport
        With verdict CERTIFIED (rigorous: outward-rounded arithmetic on the stated box),
        TESTED or UNKNOWN (statistical facts about eps), or FALSIFIED (a witness whose
        rigorously enclosed error exceeds a certified bound; see
        :meth:`CertificationReport.raise_if_falsified`).

    Raises
    ------
    InvalidInput
        When the ticket does not belong to the target (shapes, activation, layer order,
        kernels, fingerprint) or an argument is out of range.
    """
    start = time.perf_counter()
    if not isinstance(target, TargetNet):
        raise InvalidInput(f"target is a {type(target).__name__}; expected a TargetNet")
    for needed in ("matches", "network", "check_target"):
        if not hasattr(ticket, needed):
            raise InvalidInput(f"ticket is a {type(ticket).__name__}; expected a Ticket")
    eps = check_positive("eps", ticket.metadata.get("eps") if eps is None else eps)
    samples = check_samples("samples", samples, target.input_shape)
    seed = check_int("seed", seed, minimum=0, maximum=2**64 - 1)
    restarts = check_int("restarts", restarts, minimum=1, maximum=samples)  # starts from sampled inputs
    steps = check_int("steps", steps, minimum=0, maximum=MAX_STEPS)
    budget = check_int("budget", budget, minimum=1)
    entries = math.prod(target.input_shape)
    check_memory(
        f"branch and bound over budget={budget:,} boxes of shape {tuple(target.input_shape)}",
        float(budget) * BYTES_PER_BOX_ENTRY * entries,
        memory_budget(),
    )
    chosen: list[Callable[[CertifyContext], MethodBound]] = []
    if not methods:
        raise InvalidInput("methods=() must name at least one certification method")
    for method in methods:
        if callable(method):
            chosen.append(method)
        elif method in _BUILTIN:
            chosen.append(_BUILTIN[method])
        else:
            raise InvalidInput(f"method={method!r} must be one of {', '.join(map(repr, METHODS))} or a callable")

    alignment = align(target, ticket)
    ticket_net = alignment.ticket_net
    engine = Engine.build(alignment)
    context = CertifyContext(target, ticket, alignment, engine, budget, progress)

    sampled, starts_inf, starts_two = sample_errors(
        target, ticket_net, samples, seed, keep=restarts, progress=progress, xp=xp
    )
    attacked = attack(target, ticket_net, starts_inf, starts_two, steps=steps, progress=progress)
    if progress is not None:
        progress("per-layer errors", 0, 1)
    growth_inputs = np.concatenate([
        np.asarray(target.sample_inputs(min(samples, GROWTH_SAMPLES), seed), dtype=np.float64),
        np.stack([sampled.input_linf, attacked.input_linf]),
    ])
    growth = layer_growth(alignment, ticket, growth_inputs)

    bounds: dict[str, MethodBound] = {}
    if alignment.residual and alignment.steps is None:  # no copies recorded: no per-copy composition
        chosen = [method for method in chosen if method is not _composition] or [_separate]
    for method in chosen:
        bound = method(context)
        if not isinstance(bound, MethodBound):
            raise InvalidInput(f"method {method!r} returned {type(bound).__name__}; expected a MethodBound")
        bounds[bound.name] = bound

    points = np.stack([sampled.input_linf, sampled.input_l2, attacked.input_linf, attacked.input_l2])
    low_inf, low_two = lower_norms(point_enclosure(engine, points))
    inf = float("inf")
    witnesses = {
        "sampled ∞-norm": (sampled.input_linf, sampled.linf, float(low_inf[0]), inf),
        "sampled 2-norm": (sampled.input_l2, sampled.l2, float(low_two[1]), 2.0),
        "attacked ∞-norm": (attacked.input_linf, attacked.linf, float(low_inf[2]), inf),
        "attacked 2-norm": (attacked.input_l2, attacked.l2, float(low_two[3]), 2.0),
    }
    low, high = target.input_domain
    box_text = f"the box [{low:g}, {high:g}]^{tuple(target.input_shape)}"
    verdict = judge(eps=eps, methods=bounds, witnesses=witnesses, box_text=box_text, samples=samples)
    return CertificationReport(
        target=target.name,
        eps=eps,
        box=(float(low), float(high), tuple(target.input_shape)),
        sampled=sampled,
        attacked=attacked,
        methods=bounds,
        verdict=verdict,
        samples=samples,
        restarts=restarts,
        steps=steps,
        budget=budget,
        seed=seed,
        seconds=time.perf_counter() - start,
        witness_bounds={label: values[2] for label, values in witnesses.items()},
        growth=growth,
    )


__all__ = ["METHODS", "CertifyContext", "certify"]
