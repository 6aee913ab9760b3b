"""Bound tables across papers: how wide must the random source be, theorem by theorem?

One row per width theorem of the lemma library (:data:`ltbounds.lemmas.widths.THEOREMS`:
Malach et al. 2020, Pensia et al. 2020, Orseau et al. 2020, da Cunha et al. 2022, Burkholz
2022 depth 2L and depth L+1), plus the empirical row "this construction, measured": the
source network :func:`ltbounds.construct.construct` really builds for a real target, with its
real ticket. Each row gives the source depth, the width of every source layer, the source
parameters, the factor over the target's parameters, the ticket parameters (where known),
the theorem's assumptions (activation, weight law), its citation, and the constant C it used
with that constant's origin. A theorem that does not cover the target gets its reason in the
cells instead of a number.

The width formulas are LEMMAS.md section 2/6 as the lemma library encodes them; all are
RECONSTRUCTED (the full texts of the 2022 Burkholz papers were not available), and every row
says so in ``status``.

The constant C (``constant=``):

``"code"``
    The code-derived values of LEMMAS.md 1.3 (2.72 for plain uniforms, 3.26 for products),
    computed from the stored trials of the authors' public code.
``"paper"``
    No paper states Lueker's C (Lueker 1998 and Pensia et al. 2020 prove that a universal
    constant exists). The rows then use the code-derived values, the constant the authors'
    experiments imply, and label them ``code-derived (no paper value)``; they never print a
    number as "the paper's".
``"fitted"``
    Our own fit (:func:`ltbounds.subsetsum.concentration.fit_constant`) on the grids of
    ``scripts/fit_table_constants.py``, read from ``ltbounds/data/fitted_constants.json``,
    with its 95 % joint interval. The lemma library takes one C per requirement, so the depth
    L+1 row uses the product fit for all its layers (the larger one: conservative; LEMMAS.md
    2.6 uses plain uniforms in layers >= 2). Its ``note`` says so.
a number
    Used for every subset-sum theorem, origin ``user``.

Malach et al. (random sampling, polynomial width) and Orseau et al. (hyperbolic weights) use
no subset-sum constant; their rows state the order-of-magnitude constant 1 of the library.

Ticket parameters: no width theorem bounds the number of kept weights, so the theory rows
report none (``ticket_params`` is ``None``, the cell says so); only the measured row has one.

Every output names its format, ``ltbounds-table``, and version, :data:`TABLE_FORMAT_VERSION`
(issue 12): JSON rows carry the keys ``format`` and ``format_version``, CSV files the columns of
those names (the last two), Markdown starts with ``<!-- ltbounds-table format 1 -->`` and LaTeX
with ``% ltbounds-table format 1``. :func:`load_table` reads the JSON and CSV forms back and
refuses any other format or a newer version.
"""

from __future__ import annotations

import functools
import json
import math
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ltbounds import _formats
from ltbounds.errors import InvalidInput, ModelFormatError, ResourceLimitError
from ltbounds.lemmas.subsetsum import SubsetSumConstant
from ltbounds.lemmas.widths import THEOREMS, TargetShape, WidthRequirement
from ltbounds.validation import check_int, check_open_unit, check_positive

#: Row keys in table order: the six theorems, then the measured construction.
MEASURED = "measured"
ROW_KEYS = (*THEOREMS, MEASURED)
CONSTANT_MODES = ("code", "paper", "fitted")
FORMATS = ("md", "csv", "latex", "json")
FITTED_FILE = "fitted_constants.json"
MEASURED_NAME = "this construction, measured"
#: Theorems whose constant is not a subset-sum constant (the library's order-only 1.0).
_ORDER_ONLY = ("malach", "orseau")
#: The format name and version every table output carries (see :func:`load_table`).
TABLE_FORMAT = "ltbounds-table"
TABLE_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------ constants


@dataclass(frozen=True)
class FittedConstant:
    """One fitted constant of ``ltbounds/data/fitted_constants.json``.

    Attributes
    ----------
    law : str
        ``"uniform"`` or ``"product"``.
    value, low, high : float
        The fit and its joint interval at level ``confidence``.
    confidence : float
        Joint (Bonferroni) level of the interval.
    n, eps : int, float
        The grid cell attaining the fit.
    trials, seed : int
        Monte Carlo trials per grid size and their seed.
    n_grid : tuple of int
        The sizes of the grid.
    """

    law: str
    value: float
    low: float
    high: float
    confidence: float
    n: int
    eps: float
    trials: int
    seed: int
    n_grid: tuple[int, ...]

    def describe(self) -> str:
        """How the value was obtained, in one line."""
        return (
            f"fit_constant over n = {self.n_grid[0]}..{self.n_grid[-1]} at eps = {self.eps:g}, "
            f"{self.trials:,} trials per n, seed {self.seed}; attained at n = {self.n}; "
            f"{self.confidence:.0%} joint interval [{self.low:.3f}, {self.high:.3f}]"
        )

    def subset_sum_constant(self) -> SubsetSumConstant:
        """As the lemma library's :class:`~ltbounds.lemmas.subsetsum.SubsetSumConstant`."""
        return SubsetSumConstant(self.value, "fitted", self.law, self.describe())


@functools.lru_cache(maxsize=1)
def fitted_constants() -> dict[str, FittedConstant]:
    """The fitted constants shipped in ``ltbounds/data/fitted_constants.json``, by law.

    Produced by ``scripts/fit_table_constants.py`` (statistical: Monte Carlo estimates of the
    uniform coverage failure with exact Clopper-Pearson intervals; see that script).
    """
    try:
        text = resources.files("ltbounds").joinpath("data", FITTED_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"ltbounds/data/{FITTED_FILE} is missing; run 'python scripts/fit_table_constants.py'"
        ) from None
    try:
        document = json.loads(text)
        if document.get("format") != "ltbounds-fitted-constants":
            raise ValueError("wrong format tag")
        result = {}
        for law in ("uniform", "product"):
            entry = document["laws"][law]
            result[law] = FittedConstant(
                law=law,
                value=float(entry["C"]),
                low=float(entry["C_low"]),
                high=float(entry["C_high"]),
                confidence=float(entry["confidence"]),
                n=int(entry["attained_at"]["n"]),
                eps=float(entry["attained_at"]["eps"]),
                trials=int(entry["trials"]),
                seed=int(entry["seed"]),
                n_grid=tuple(int(n) for n in entry["n_grid"]),
            )
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFormatError(f"ltbounds/data/{FITTED_FILE} is not a fitted-constants file: {error}") from None
    return result


@dataclass(frozen=True)
class ConstantInfo:
    """The constant C one row used, with its origin (and interval, when fitted).

    Attributes
    ----------
    value : float
        C (the largest one, when a row uses several laws).
    origin : str
        ``code-derived``, ``code-derived (no paper value)``, ``fitted``, ``user``,
        ``order only`` or ``construction default``.
    law : str
        ``uniform``, ``product``, ``product+uniform`` or ``none``.
    low, high, confidence : float or None
        Joint interval of a fitted constant.
    note : str
        Where the value comes from.
    per_law : tuple of (str, float)
        Every (law, value) the row used.
    """

    value: float
    origin: str
    law: str
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    note: str = ""
    per_law: tuple[tuple[str, float], ...] = ()

    def label(self) -> str:
        """Short cell text, e.g. ``3.26 (code-derived)`` or ``5.6 [5.5, 5.7] (fitted, 95%)``."""
        if len(self.per_law) > 1 and len({value for _, value in self.per_law}) > 1:
            values = "/".join(f"{value:.3g}" for _, value in self.per_law)
        else:
            values = f"{self.value:.3g}"
        if self.low is not None and self.high is not None:
            return f"{values} [{self.low:.3g}, {self.high:.3g}] ({self.origin}, {self.confidence:.0%})"
        return f"{values} ({self.origin})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "value": self.value,
            "origin": self.origin,
            "law": self.law,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "note": self.note,
            "per_law": [{"law": law, "value": value} for law, value in self.per_law],
        }


def parse_constant(text: str | float) -> str | float:
    """``code``, ``paper``, ``fitted`` or a positive number (InvalidInput otherwise)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return check_positive("constant", float(text))
    if text in CONSTANT_MODES:
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"constant={text!r} must be one of {', '.join(CONSTANT_MODES)} or a positive number"
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"constant={text!r} must be finite")
    return check_positive("constant", value)


_PAPER_NOTE = (
    "requested 'paper': no paper states Lueker's C (Lueker 1998; Pensia et al. 2020 prove only "
    "that a universal constant exists), so the code-derived value of LEMMAS.md 1.3 is used"
)
_CODE_NOTE = "computed from the stored trials of the authors' code (LEMMAS.md 1.3)"


def _library_constant(mode: str | float, key: str) -> float | SubsetSumConstant | None:
    """What to pass as ``C`` to :meth:`WidthTheorem.requirement`."""
    if key in _ORDER_ONLY or mode in ("code", "paper"):
        return None
    if mode == "fitted":
        return fitted_constants()["product"].subset_sum_constant()
    return float(mode)


def _constant_info(mode: str | float, key: str, requirement: WidthRequirement) -> ConstantInfo:
    per_law = tuple((law, value) for law, value, _ in requirement.constants)
    laws = "+".join(law for law, _ in per_law)
    value = requirement.constant
    if key in _ORDER_ONLY:
        return ConstantInfo(value, "order only", "none", note=requirement.constants[0][2], per_law=per_law)
    if mode in ("code", "paper"):
        origin = "code-derived" if mode == "code" else "code-derived (no paper value)"
        note = _CODE_NOTE if mode == "code" else _PAPER_NOTE
        return ConstantInfo(value, origin, laws, note=note, per_law=per_law)
    if mode == "fitted":
        fit = fitted_constants()["product"]
        note = f"product law: {fit.describe()}"
        if key == "burkholz_l_plus_1":
            uniform = fitted_constants()["uniform"]
            note += (
                f"; used for every layer (one C per requirement in the lemma library), although "
                f"layers >= 2 sum plain uniforms, whose fit is {uniform.value:.3f} "
                f"[{uniform.low:.3f}, {uniform.high:.3f}]: conservative"
            )
        return ConstantInfo(value, "fitted", laws, fit.low, fit.high, fit.confidence, note, per_law)
    return ConstantInfo(value, "user", laws, note="given on the command line", per_law=per_law)


# ----------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class TableRow:
    """One row of a bound table (a theorem, or the measured construction).

    Attributes
    ----------
    theorem : str
        Key: a :data:`~ltbounds.lemmas.widths.THEOREMS` key or ``"measured"``.
    name, citation, status : str
        Human name, one-line citation, source status (``RECONSTRUCTED``, or ``MEASURED``).
    applies : bool
        Whether the theorem covers the target (for the measured row: whether it was measured).
    reason : str
        Why not, when ``applies`` is False.
    source_depth : int or None
        Source layers.
    widths, kernel_sizes : tuple of int, or None
        Width and kernel entries of every source layer.
    source_params, target_params : int or None, int
        Parameters of the source and of the target.
    factor : float or None
        ``source_params / target_params``.
    ticket_params : int or None
        Kept parameters: measured only (no theorem bounds them).
    constant : ConstantInfo or None
        The constant C the row used.
    assumptions : tuple of str
        The theorem's assumptions.
    activation_assumption, weight_law : str
        The activation and source weight law it assumes.
    notes : tuple of str
        Reconstruction notes, adaptations, measurement facts.
    extra : dict
        Further facts (the measured row: ``rho``, ``seed``, ``missed_subset_sums``, ...).
    """

    theorem: str
    name: str
    citation: str
    status: str
    applies: bool
    reason: str
    source_depth: int | None
    widths: tuple[int, ...] | None
    kernel_sizes: tuple[int, ...] | None
    source_params: int | None
    target_params: int
    factor: float | None
    ticket_params: int | None
    constant: ConstantInfo | None
    assumptions: tuple[str, ...]
    activation_assumption: str
    weight_law: str
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (keys are a public interface of ``ltbounds table --format json``)."""
        return {
            "theorem": self.theorem,
            "name": self.name,
            "citation": self.citation,
            "status": self.status,
            "applies": self.applies,
            "reason": self.reason,
            "source_depth": self.source_depth,
            "widths": None if self.widths is None else list(self.widths),
            "kernel_sizes": None if self.kernel_sizes is None else list(self.kernel_sizes),
            "source_params": self.source_params,
            "target_params": self.target_params,
            "factor": self.factor,
            "ticket_params": self.ticket_params,
            "constant": None if self.constant is None else self.constant.as_dict(),
            "assumptions": list(self.assumptions),
            "activation_assumption": self.activation_assumption,
            "weight_law": self.weight_law,
            "notes": list(self.notes),
            **self.extra,
        }


def _assumption_pair(assumptions: Sequence[str]) -> tuple[str, str]:
    activation = assumptions[0] if assumptions else "–"
    law = next((a.removeprefix("source weights ") for a in assumptions if a.startswith("source weights")), "–")
    return activation, law


def _relaxations(shape: TargetShape) -> list[TargetShape]:
    """``shape``, then copies with one more attribute relaxed each: no biases, dense, no
    residual blocks, ReLU (the attributes the theorems' applicability depends on)."""
    steps = [shape]
    options = shape.as_dict()
    for change in ({"has_bias": False}, {"kernel_sizes": None}, {"residual_blocks": ()}, {"activation": "relu"}):
        options = {**options, **change}
        steps.append(TargetShape.from_dict(options))
    return steps


def not_applicable_reasons(key: str, shape: TargetShape) -> list[str]:
    """Every reason theorem ``key`` gives against ``shape`` (empty when it applies).

    The library's :meth:`~ltbounds.lemmas.widths.WidthTheorem.applies` names the first failed
    assumption; asking again with that kind of attribute relaxed, one kind at a time, names
    the others. Each reason found concerns an attribute the relaxed shapes share with
    ``shape``, so each holds for ``shape`` itself.
    """
    theorem = THEOREMS[key]
    applicable, reason = theorem.applies(shape)
    if applicable:
        return []
    reasons = [reason]
    for relaxed in _relaxations(shape)[1:]:
        applicable, reason = theorem.applies(relaxed)
        if applicable:
            break
        if reason not in reasons:
            reasons.append(reason)
    return reasons


def theorem_row(key: str, shape: TargetShape, eps: float, delta: float, constant: str | float = "code") -> TableRow:
    """The row of theorem ``key`` for ``shape`` (a not-applicable row when it does not cover it)."""
    theorem = THEOREMS[key]
    activation, law = _assumption_pair(theorem.assumptions)
    reasons = not_applicable_reasons(key, shape)
    applicable = not reasons
    reason = reasons[0] if len(reasons) == 1 else " ".join(f"({i}) {r}" for i, r in enumerate(reasons, 1))
    common = {
        "theorem": key,
        "name": theorem.name,
        "citation": theorem.citation,
        "status": theorem.source.status.value,
        "target_params": shape.target_params,
        "assumptions": theorem.assumptions,
        "activation_assumption": activation,
        "weight_law": law,
        "ticket_params": None,
    }
    if not applicable:
        return TableRow(
            applies=False, reason=reason, source_depth=None, widths=None, kernel_sizes=None,
            source_params=None, factor=None, constant=None, **common,
        )
    requirement = theorem.requirement(shape, eps, delta, _library_constant(constant, key))
    notes = (*requirement.notes, "ticket parameters: not bounded by the theorem")
    extra: dict[str, Any] = {"rho": list(requirement.rho), "per_layer_eps": list(requirement.per_layer_eps)}
    if requirement.subset_sum_problems is not None:
        extra["subset_sum_problems"] = requirement.subset_sum_problems
    return TableRow(
        applies=True,
        reason="",
        source_depth=requirement.source_depth,
        widths=requirement.widths,
        kernel_sizes=requirement.kernel_sizes,
        source_params=requirement.source_params,
        factor=requirement.factor,
        constant=_constant_info(constant, key, requirement),
        notes=notes,
        extra=extra,
        **common,
    )


_MEASURED_CITATION = "ltbounds.construct (L+1 construction of Burkholz, NeurIPS 2022, arXiv 2205.02321)"
_MEASURED_ASSUMPTIONS = (
    "the target's own activation (ReLU-like, or smooth with phi'(0) != 0)",
    "dense or convolutional layers, no residual blocks (construct refuses them)",
    "source weights iid uniform, one range per layer (set by construct: scaled for smooth phi)",
)
_MEASURED_LAW = "iid uniform, per-layer ranges set by construct"


def _weight_laws(ticket: Any) -> str:
    """The source's weight laws, e.g. ``U[-2, 2] (layer 1); U[-1, 1] (layers 2-3)``."""
    groups: dict[tuple[float, float], list[int]] = {}
    for index, spec in enumerate(ticket.specs, 1):
        groups.setdefault(tuple(float(v) for v in spec.weight_range), []).append(index)
    parts = []
    for (low, high), layers in groups.items():
        where = f"layer {layers[0]}" if len(layers) == 1 else f"layers {', '.join(map(str, layers))}"
        parts.append(f"U[{low:g}, {high:g}] ({where})")
    return "iid " + "; ".join(parts)


def unmeasured_row(shape: TargetShape, reason: str) -> TableRow:
    """The measured row when nothing was built (a preset, ``measure=False``, or a refusal)."""
    return TableRow(
        theorem=MEASURED, name=MEASURED_NAME, citation=_MEASURED_CITATION, status="MEASURED",
        applies=False, reason=reason, source_depth=None, widths=None, kernel_sizes=None,
        source_params=None, target_params=shape.target_params, factor=None, ticket_params=None,
        constant=None, assumptions=_MEASURED_ASSUMPTIONS, activation_assumption=_MEASURED_ASSUMPTIONS[0],
        weight_law=_MEASURED_LAW,
    )


def measured_row(
    target: Any,
    shape: TargetShape,
    eps: float,
    delta: float,
    *,
    constant: str | float = "code",
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> TableRow:
    """Build a ticket for ``target`` with :func:`ltbounds.construct.construct` (depth L+1) and
    report the source it really drew and the ticket it really kept.

    ρ is construct's default (the code-derived product constant 3.26) for ``code``/``paper``;
    for ``fitted`` or a number it is the same formula with that constant,
    ``ρ = ceil(C·log(1/min(t_min, δ/N)))`` with ``t_min`` the smallest per-layer tolerance of
    construct's allotment and ``N`` the nonzero target parameters. A target construct refuses
    (e.g. residual blocks) gives a not-measured row with the refusal as its reason.
    """
    from ltbounds.construct import allot_tolerances, construct  # noqa: PLC0415
    from ltbounds.construct.width import EMPIRICAL_PRODUCT_CONSTANT, default_rho  # noqa: PLC0415

    if mode_is_default := constant in ("code", "paper"):
        value, low, high, confidence = EMPIRICAL_PRODUCT_CONSTANT, None, None, None
        origin = "code-derived" if constant == "code" else "code-derived (no paper value)"
        note = f"construct's default rho (product constant, {_CODE_NOTE})"
        if constant == "paper":
            note += "; " + _PAPER_NOTE
    elif constant == "fitted":
        fit = fitted_constants()["product"]
        value, low, high, confidence = fit.value, fit.low, fit.high, fit.confidence
        origin, note = "fitted", f"rho from the product fit: {fit.describe()}"
    else:
        value, low, high, confidence = float(constant), None, None, None
        origin, note = "user", "rho from the constant given on the command line"
    start = time.perf_counter()
    try:
        rho = None
        if not mode_is_default:
            tolerance = min(allot_tolerances(target, eps))
            rho = default_rho(target, tolerance, delta, depth="L+1", constant=value)
        ticket = construct(target, eps=eps, delta=delta, depth="L+1", rho=rho, seed=seed, progress=progress)
    except (InvalidInput, ResourceLimitError) as refusal:  # too small an eps: rho over the cap or memory
        return unmeasured_row(shape, f"not measured: {refusal}")
    seconds = time.perf_counter() - start
    summary = ticket.summary()
    widths = tuple(int(w) for w in summary["source_widths"])
    kernels = tuple(int(math.prod(spec.weight_shape[2:])) for spec in ticket.specs)
    source_params = int(summary["source_params"])
    notes = (
        f"seed {seed}, rho = {summary['rho']} (first layer {summary['rho_first']}), "
        f"{summary['missed_subset_sums']} missed subset sums",
        f"construction's predicted output error {summary['predicted_error']:.3g} (requested eps {eps:g})",
        f"built in {seconds:.1f} s",
    )
    return TableRow(
        theorem=MEASURED, name=MEASURED_NAME, citation=_MEASURED_CITATION, status="MEASURED",
        applies=True, reason="", source_depth=len(widths), widths=widths, kernel_sizes=kernels,
        source_params=source_params, target_params=shape.target_params,
        factor=source_params / shape.target_params, ticket_params=int(summary["ticket_params"]),
        constant=ConstantInfo(value, origin, "product", low, high, confidence, note, (("product", value),)),
        assumptions=_MEASURED_ASSUMPTIONS, activation_assumption=f"{target.activation} (the target's own)",
        weight_law=_weight_laws(ticket), notes=notes,
        extra={
            "rho": int(summary["rho"]), "rho_first": int(summary["rho_first"]), "seed": seed,
            "missed_subset_sums": int(summary["missed_subset_sums"]),
            "predicted_error": float(summary["predicted_error"]), "sparsity": float(summary["sparsity"]),
            "seconds": seconds,
        },
    )


# --------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class BoundTable:
    """All rows for one target, ``eps`` and ``delta``.

    Attributes
    ----------
    target : str
        What the table is about (preset or target name).
    shape : TargetShape
        The shape the theorems read.
    eps, delta : float
        Requested sup-norm error and failure probability.
    constant : str or float
        The constant mode (``code``, ``paper``, ``fitted`` or a number).
    rows : tuple of TableRow
        In :data:`ROW_KEYS` order.
    caveats : tuple of str
        What the shape does not capture (from the preset or the conversion).
    """

    target: str
    shape: TargetShape
    eps: float
    delta: float
    constant: str | float
    rows: tuple[TableRow, ...]
    caveats: tuple[str, ...] = ()

    def row(self, key: str) -> TableRow:
        """The row of theorem ``key``."""
        for row in self.rows:
            if row.theorem == key:
                return row
        raise InvalidInput(f"theorem={key!r} is not a row; expected one of {', '.join(r.theorem for r in self.rows)}")

    def as_rows(self) -> list[dict[str, Any]]:
        """The JSON document of ``--format json``: a list of rows, each with its context and
        the format tag (``format``, ``format_version``; the document is a list, so every row
        carries them)."""
        tag = {"format": TABLE_FORMAT, "format_version": TABLE_FORMAT_VERSION}
        context = {"target": self.target, "eps": self.eps, "delta": self.delta, "constant_mode": self.constant}
        return [{**tag, **row.as_dict(), **context} for row in self.rows]


def build_table(
    shape: TargetShape,
    eps: float,
    delta: float,
    *,
    target_name: str,
    constant: str | float = "code",
    caveats: Sequence[str] = (),
    target: Any = None,
    measure: bool = False,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> BoundTable:
    """The bound table of ``shape`` at ``eps`` and ``delta``.

    Parameters
    ----------
    shape : TargetShape
        What the theorems read (a preset's, or :func:`ltbounds.presets.shape_from_target`'s).
    eps : float
        Sup-norm output error, ``> 0``.
    delta : float
        Failure probability in (0, 1).
    target_name : str
        Label of the table.
    constant : {"code", "paper", "fitted"} or float
        Which C (see the module notes).
    caveats : sequence of str
        Printed under the table.
    target : TargetNet, optional
        The real network; required for ``measure``.
    measure : bool
        Build a ticket for ``target`` (the measured row); otherwise that row says why not.
    seed : int
        Seed of the measured construction.
    progress : callable, optional
        Passed to :func:`ltbounds.construct.construct`.
    """
    eps = check_positive("eps", eps)
    delta = check_open_unit("delta", delta)
    constant = parse_constant(constant)
    seed = check_int("seed", seed, minimum=0)
    rows = [theorem_row(key, shape, eps, delta, constant) for key in THEOREMS]
    if measure:
        if target is None:
            raise InvalidInput("measure=True needs a real target (an embedded name or an .npz file), not a preset")
        rows.append(measured_row(target, shape, eps, delta, constant=constant, seed=seed, progress=progress))
    elif target is None:
        rows.append(unmeasured_row(shape, "not measured (shape only)"))
    else:
        rows.append(unmeasured_row(shape, "not measured (--no-measure)"))
    return BoundTable(target_name, shape, eps, delta, constant, tuple(rows), tuple(caveats))


# ----------------------------------------------------------------------------- formatting


def _number(value: int | None) -> str:
    if value is None:
        return "–"
    if value >= 10**9:
        return f"{value:.3g}"
    return f"{value:,}"


def _factor(value: float | None) -> str:
    if value is None:
        return "–"
    if 100 <= value < 10**9:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def compress_widths(widths: Sequence[int]) -> str:
    """Widths with repeats folded: ``[5184, 16, 5184, 16, 64]`` → ``(5184, 16)×2, 64``.

    Runs of one value (``16×6``) and of one pair are folded, whichever covers more.
    """
    parts: list[str] = []
    index = 0
    values = list(widths)
    while index < len(values):
        best = (1, 1)  # (period, repeats)
        for period in (1, 2):
            unit = values[index : index + period]
            if len(unit) < period:
                continue
            repeats = 1
            while values[index + repeats * period : index + (repeats + 1) * period] == unit:
                repeats += 1
            if repeats >= 2 and repeats * period > best[0] * best[1]:
                best = (period, repeats)
        period, repeats = best
        unit = values[index : index + period]
        text = ", ".join(_number(v) for v in unit)
        if repeats > 1:
            parts.append(f"{text}×{repeats}" if period == 1 else f"({text})×{repeats}")
        else:
            parts.append(text)
        index += period * repeats
    return ", ".join(parts)


#: (header, cell function) of the human formats (md and latex).
def _cells(row: TableRow) -> list[str]:
    assumptions = f"φ: {row.activation_assumption}; weights: {row.weight_law}"
    if not row.applies:
        reason = row.reason if row.theorem == MEASURED else f"not applicable: {row.reason}"
        return [row.name, "–", reason, "–", "–", "–", "–", assumptions, row.citation]
    ticket = _number(row.ticket_params) if row.ticket_params is not None else "– (not a theorem output)"
    return [
        row.name,
        str(row.source_depth),
        compress_widths(row.widths or ()),
        _number(row.source_params),
        _factor(row.factor),
        ticket,
        row.constant.label() if row.constant else "–",
        assumptions,
        row.citation,
    ]


HEADERS = (
    "theorem", "source depth", "width per layer", "source params", "factor",
    "ticket params", "C", "assumptions", "citation",
)


def _caption(table: BoundTable) -> str:
    return (
        f"{table.target}: target depth L = {table.shape.depth}, {table.shape.target_params:,} target "
        f"parameters, activation {table.shape.activation}; eps = {table.eps:g}, delta = {table.delta:g}, "
        f"constant = {table.constant}"
    )


def _footnotes(table: BoundTable) -> list[str]:
    notes = [
        "factor = source params / target params. Theory rows: LEMMAS.md sections 2 and 6, all "
        "RECONSTRUCTED; widths count neurons or channels.",
    ]
    by_note: dict[str, list[str]] = {}
    for row in table.rows:
        if row.constant is not None and row.constant.note:
            by_note.setdefault(row.constant.note, []).append(row.name)
    for note, names in by_note.items():
        notes.append(f"C of {'; '.join(names)}: {note}.")
    for row in table.rows:
        if row.theorem == MEASURED and row.applies:
            facts = "; ".join(note for note in row.notes if not note.startswith("built in"))
            notes.append(f"{row.name}: {facts}.")
    for caveat in table.caveats:
        notes.append(f"Caveat: {caveat}.")
    return notes


def format_line() -> str:
    """``ltbounds-table format 1``: the text of the first (comment) line of Markdown and LaTeX."""
    return f"{TABLE_FORMAT} format {TABLE_FORMAT_VERSION}"


def to_markdown(table: BoundTable) -> str:
    """A GitHub/MyST Markdown table with its caption and footnotes, after an HTML comment
    naming the format (invisible when rendered)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"<!-- {format_line()} -->", "", f"**{cell(_caption(table))}**", ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join(("---", "---:", "---", "---:", "---:", "---:", "---", "---", "---")) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(cell(c) for c in _cells(row)) + " |")
    lines.append("")
    lines += [f"- {cell(note)}" for note in dict.fromkeys(_footnotes(table))]
    return "\n".join(lines) + "\n"


#: The type of every CSV column (:data:`ltbounds._formats.CELLS`; ``?``: an empty cell is None).
_CSV_TYPES = {
    "target": "str", "eps": "float", "delta": "float", "theorem": "str", "name": "str",
    "applies": "bool", "reason": "str", "source_depth": "int?", "widths": "ints?",
    "max_width": "int?", "source_params": "int?", "target_params": "int", "factor": "float?",
    "ticket_params": "int?", "constant": "float?", "constant_origin": "str?",
    "constant_low": "float?", "constant_high": "float?", "activation_assumption": "str",
    "weight_law": "str", "citation": "str", "status": "str", "format": "str", "format_version": "int",
}
#: The CSV header: ``format`` and ``format_version`` last.
CSV_COLUMNS = tuple(_CSV_TYPES)


def _csv_record(table: BoundTable, row: TableRow) -> dict[str, Any]:
    constant = row.constant
    return {
        "target": table.target,
        "eps": table.eps,
        "delta": table.delta,
        "theorem": row.theorem,
        "name": row.name,
        "applies": row.applies,
        "reason": row.reason,
        "source_depth": row.source_depth,
        "widths": None if row.widths is None else list(row.widths),
        "max_width": max(row.widths) if row.widths else None,
        "source_params": row.source_params,
        "target_params": row.target_params,
        "factor": row.factor,
        "ticket_params": row.ticket_params,
        "constant": None if constant is None else constant.value,
        "constant_origin": None if constant is None else constant.origin,
        "constant_low": None if constant is None else constant.low,
        "constant_high": None if constant is None else constant.high,
        "activation_assumption": row.activation_assumption,
        "weight_law": row.weight_law,
        "citation": row.citation,
        "status": row.status,
        "format": TABLE_FORMAT,
        "format_version": TABLE_FORMAT_VERSION,
    }


def csv_records(tables: BoundTable | Sequence[BoundTable]) -> list[dict[str, Any]]:
    """The rows :func:`to_csv` writes, typed (None for an empty cell, ``widths`` a list):
    what :func:`load_table` gives back for the CSV file."""
    tables = [tables] if isinstance(tables, BoundTable) else list(tables)
    return [_csv_record(table, row) for table in tables for row in table.rows]


def to_csv(tables: BoundTable | Sequence[BoundTable]) -> str:
    """CSV, one line per row (of every table given: a sweep is several tables); widths
    space-separated, an absent value an empty cell, the last two columns ``format`` and
    ``format_version``."""
    return _formats.write_csv(csv_records(tables), CSV_COLUMNS)


# LaTeX: text-mode escapes for the ten specials, the few comparison operators our cells carry,
# and the non-ASCII characters the tables produce; anything else non-ASCII is transliterated.
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}",
}
_LATEX_UNICODE = {
    "×": r"$\times$", "ε": r"$\varepsilon$", "δ": r"$\delta$", "φ": r"$\phi$", "ρ": r"$\rho$",
    "λ": r"$\lambda$", "Σ": r"$\Sigma$", "≤": r"$\le$", "≥": r"$\ge$", "→": r"$\to$",
    "∞": r"$\infty$", "·": r"$\cdot$", "–": "--", "—": "---", "’": "'", "‘": "`", "é": r"\'e",
    "ö": r"\"o", "ő": r"\H{o}", "ü": r"\"u", "…": r"\ldots{}", "\u00a0": " ",
}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX text-mode source: ASCII only, every special character escaped."""
    text = text.replace("<=", "\0le").replace(">=", "\0ge").replace("!=", "\0ne")
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\0":
            out.append({"le": r"$\le$", "ge": r"$\ge$", "ne": r"$\ne$"}[text[index + 1 : index + 3]])
            index += 3
            continue
        if char in _LATEX_SPECIALS:
            out.append(_LATEX_SPECIALS[char])
        elif char in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[char])
        elif ord(char) < 128:
            out.append(char)
        else:
            ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append("".join(_LATEX_SPECIALS.get(c, c) for c in ascii_form) or "?")
        index += 1
    return "".join(out)


LATEX_COLUMNS = "lrlrrrlp{4cm}p{4cm}"


def to_latex(table: BoundTable) -> str:
    """A standalone ``tabular`` (ASCII, escaped; needs no package), after a comment naming the
    format; the caption and notes are comments too."""
    lines = [
        f"% {format_line()}",
        f"% {latex_escape(_caption(table))}",
        f"\\begin{{tabular}}{{{LATEX_COLUMNS}}}",
        "\\hline",
        " & ".join(latex_escape(h) for h in HEADERS) + r" \\",
        "\\hline",
    ]
    for row in table.rows:
        lines.append(" & ".join(latex_escape(c) for c in _cells(row)) + r" \\")
    lines += ["\\hline", "\\end{tabular}"]
    lines += [f"% {latex_escape(note)}" for note in dict.fromkeys(_footnotes(table))]
    return "\n".join(lines) + "\n"


def to_json(table: BoundTable) -> str:
    """``--format json``: a list of rows (see :meth:`TableRow.as_dict` and :meth:`BoundTable.as_rows`)."""
    return json.dumps(table.as_rows(), indent=2, allow_nan=False) + "\n"


def format_table(table: BoundTable, fmt: str) -> str:
    """``table`` as ``md``, ``csv``, ``latex`` or ``json``."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format={fmt!r} must be one of {', '.join(FORMATS)}")
    return {"md": to_markdown, "csv": to_csv, "latex": to_latex, "json": to_json}[fmt](table)


# -------------------------------------------------------------------------------- reading

#: The keys every JSON row must have, with their types (:data:`ltbounds._formats.FIELDS`);
#: the documented keys of ``--format json``. Rows may carry more (``rho``, ``seed``, ...).
_JSON_ROW = {
    "theorem": "str", "name": "str", "citation": "str", "status": "str", "applies": "bool",
    "reason": "str", "source_depth": "int?", "widths": "ints?", "kernel_sizes": "ints?",
    "source_params": "int?", "target_params": "int", "factor": "float?", "ticket_params": "int?",
    "constant": "object?", "assumptions": "list", "target": "str", "eps": "float",
    "delta": "float", "constant_mode": "str|float",
}
_JSON_CONSTANT = {"value": "float", "origin": "str", "law": "str", "low": "float?", "high": "float?"}


def load_table(path: Any, *, max_bytes: int = _formats.MAX_TEXT_BYTES) -> list[dict[str, Any]]:
    """The rows of a table file written by ``ltbounds table --format json|csv`` (or a sweep's
    CSV), checked to be a format and version this ltbounds reads.

    The form is chosen by suffix (``.json``, ``.csv``); any other suffix by content (a file
    starting with ``[`` is JSON). JSON gives the rows exactly as written
    (:meth:`BoundTable.as_rows`); CSV gives :func:`csv_records`' typed rows (numbers parsed, an
    empty cell None, ``widths`` a list).

    Raises
    ------
    ModelFormatError
        The file is missing, larger than ``max_bytes``, not UTF-8, not JSON/CSV, holds no rows;
        a row's ``format`` is not ``ltbounds-table`` (or absent: a file written before tables
        were versioned), its ``format_version`` not 1..:data:`TABLE_FORMAT_VERSION`; a key,
        column or cell is missing or of the wrong type.
    """
    return _formats.load_rows(
        path, what="table", json_rows=_table_json_rows, csv_columns=_CSV_TYPES,
        expected=TABLE_FORMAT, current=TABLE_FORMAT_VERSION, max_bytes=max_bytes, refuse=_refuse_text_forms,
    )


def _refuse_text_forms(text: str, label: str) -> None:
    if text.startswith((f"<!-- {TABLE_FORMAT} ", f"% {TABLE_FORMAT} ")):
        raise ModelFormatError(f"{label} is the Markdown or LaTeX form; load_table reads the JSON and CSV forms")


def _table_json_rows(text: str, label: str) -> list[dict[str, Any]]:
    document = _formats.parse_json(text, where=label)
    if isinstance(document, dict):  # one object where the rows should be: say what it is
        _formats.check_format(
            _formats.field(document, "format"), _formats.field(document, "format_version"),
            expected=TABLE_FORMAT, current=TABLE_FORMAT_VERSION, where=label,
        )
    if not isinstance(document, list) or not document:
        raise ModelFormatError(
            f"{label} holds {_formats.shown(document, 40)}; expected a non-empty JSON list of rows"
        )
    for number, row in enumerate(document, 1):
        where = f"{label} row {number}"
        if not isinstance(row, dict):
            raise ModelFormatError(f"{where} is {_formats.shown(row, 40)}; expected an object")
        _formats.check_format(
            _formats.field(row, "format"), _formats.field(row, "format_version"),
            expected=TABLE_FORMAT, current=TABLE_FORMAT_VERSION, where=where,
        )
        _formats.check_fields(row, _JSON_ROW, where=where)
        if row["constant"] is not None:
            _formats.check_fields(row["constant"], _JSON_CONSTANT, where=f"{where} constant")
    return document


# --------------------------------------------------------------------------------- sweeps

SWEEP_KEYS = ("eps", "delta")
DEFAULT_SWEEP_POINTS = 13


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``eps=1e-1:1e-4`` (13 log-spaced points) or ``eps=1e-1:1e-4:7`` → ``("eps", values)``.

    Values run from the first bound to the second, log-spaced, both included; ``delta`` sweeps
    need both bounds in (0, 1).
    """
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or key not in SWEEP_KEYS:
        raise InvalidInput(f"sweep={text!r} must look like eps=1e-1:1e-4 or delta=1e-1:1e-4[:N]")
    pieces = spec.split(":")
    if len(pieces) not in (2, 3):
        raise InvalidInput(f"sweep={text!r} must give FIRST:LAST or FIRST:LAST:N")
    try:
        first, last = float(pieces[0]), float(pieces[1])
        points = int(pieces[2]) if len(pieces) == 3 else DEFAULT_SWEEP_POINTS
    except ValueError:
        raise InvalidInput(f"sweep={text!r}: bounds must be numbers and N an integer") from None
    for name, value in (("first", first), ("last", last)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"sweep {key} {name}={value!r} must be > 0")
        if key == "delta" and not value < 1:
            raise InvalidInput(f"sweep delta {name}={value!r} must be < 1")
    points = check_int("sweep points", points, minimum=2, maximum=200)
    if first == last:
        raise InvalidInput(f"sweep={text!r} needs two different bounds")
    ratio = math.log(last / first) / (points - 1)
    values = [first * math.exp(ratio * i) for i in range(points)]
    values[-1] = last
    return key, values


def sweep(
    shape: TargetShape,
    key: str,
    values: Sequence[float],
    *,
    eps: float,
    delta: float,
    target_name: str,
    constant: str | float = "code",
    caveats: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> list[BoundTable]:
    """One theory table per value of ``key`` (``eps`` or ``delta``); the other stays fixed.

    Sweeps never build tickets (the measured row says so).
    """
    if key not in SWEEP_KEYS:
        raise InvalidInput(f"sweep key={key!r} must be one of {', '.join(SWEEP_KEYS)}")
    tables = []
    for value in values:
        point = {"eps": eps, "delta": delta, key: value}
        table = build_table(shape, point["eps"], point["delta"], target_name=target_name, constant=constant, caveats=caveats)
        rows = tuple(
            unmeasured_row(shape, "not measured (sweeps build no tickets)") if row.theorem == MEASURED else row
            for row in table.rows
        )
        tables.append(BoundTable(table.target, shape, table.eps, table.delta, table.constant, rows, table.caveats))
        if progress is not None:
            progress(1)
    return tables


def plot_sweep(tables: Sequence[BoundTable], key: str, path: Any) -> None:
    """Largest source layer width against ``1/key`` on log-log axes, one line per theorem.

    Writes a PNG to ``path`` (the caller makes the write atomic). Needs matplotlib.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(6.8, 4.4), layout="constrained")
    axes = figure.subplots()
    drawn = 0
    markers = "osD^vP"
    for row_key in THEOREMS:
        points = [
            (1.0 / getattr(table, key), max(table.row(row_key).widths or (0,)))
            for table in tables
            if table.row(row_key).applies
        ]
        if not points:
            continue
        xs, ys = zip(*sorted(points), strict=True)
        axes.plot(xs, ys, marker=markers[drawn % len(markers)], markersize=4, label=THEOREMS[row_key].name)
        drawn += 1
    axes.set_xscale("log")
    axes.set_yscale("log")
    symbol = "ε" if key == "eps" else "δ"
    axes.set_xlabel(f"1/{symbol}")
    axes.set_ylabel("largest source layer width")
    first = tables[0]
    fixed = f"δ = {first.delta:g}" if key == "eps" else f"ε = {first.eps:g}"
    axes.set_title(f"{first.target}, {fixed}, constant = {first.constant}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    if drawn:
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, "no theorem applies to this target", transform=axes.transAxes, ha="center")
    figure.savefig(path, format="png", dpi=120, metadata=plot_metadata())


def plot_metadata() -> dict[str, str]:
    """The metadata of the sweep plot: its ``Keywords`` names the format and version (for
    provenance only; nothing reads plots back)."""
    return {"Keywords": format_line()}


__all__ = [
    "CONSTANT_MODES",
    "CSV_COLUMNS",
    "FORMATS",
    "MEASURED",
    "ROW_KEYS",
    "TABLE_FORMAT",
    "TABLE_FORMAT_VERSION",
    "BoundTable",
    "ConstantInfo",
    "FittedConstant",
    "TableRow",
    "build_table",
    "compress_widths",
    "csv_records",
    "fitted_constants",
    "format_line",
    "format_table",
    "latex_escape",
    "load_table",
    "measured_row",
    "not_applicable_reasons",
    "parse_constant",
    "parse_sweep",
    "plot_metadata",
    "plot_sweep",
    "sweep",
    "theorem_row",
    "to_csv",
    "to_json",
    "to_latex",
    "to_markdown",
    "unmeasured_row",
]
