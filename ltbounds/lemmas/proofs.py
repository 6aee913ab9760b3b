"""Proof files: one TOML file per theorem, read top to bottom as its proof.

A proof file is data only (TOML, parsed with ``tomllib``; nothing in it is executed). It has
one ``[proof]`` table and an ordered array of ``[[obligation]]`` tables::

    [proof]
    version = 1                            # optional: the proof-file format version (1)
    title = "Depth L+1 suffices (Burkholz, NeurIPS 2022)"
    theorem = "burkholz_l_plus_1"          # optional: a key of ltbounds.lemmas.widths.THEOREMS
    source = "arXiv 2205.02321, Theorems 2.5/2.6 [RECONSTRUCTED]"
    claim = "prose: what the chain establishes"

    [[obligation]]
    id = "relu-identity"                   # unique within the file
    statement = "prose: the step in the argument"
    lemma = "activation.relu_identity"     # a registered lemma (ltbounds.lemmas.registry)
    parameters = { }                       # optional: the lemma family's instance parameters
    method = "auto"                        # optional: auto | sympy | z3 | interval | sample | cited
    box = { lam = [0.0, 1.0] }             # optional: the stated box for interval checks
    samples = 2000                         # optional: samples for the sampling fallback
    seed = 0                               # optional

Anything else is refused: a malformed file raises :class:`~ltbounds.errors.ModelFormatError`
naming the file and the problem in one line. :func:`run_proof` checks the obligations in
order and returns one :class:`ObligationResult` each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.lemmas.base import METHODS, Lemma
from ltbounds.lemmas.registry import get_lemma
from ltbounds.verdict import Status, Verdict

if sys.version_info >= (3, 11):  # pragma: no cover - version dependent
    import tomllib
else:  # pragma: no cover - version dependent
    import tomli as tomllib

MAX_PROOF_BYTES = 1 << 20
_PROOF_KEYS = {"title", "theorem", "source", "claim", "version"}
#: Proof-file format versions this ltbounds reads (``[proof].version``, 1 when absent).
PROOF_FORMAT_VERSIONS = (1,)
_OBLIGATION_KEYS = {"id", "statement", "lemma", "parameters", "method", "box", "samples", "seed"}


@dataclass(frozen=True)
class Obligation:
    """One step of a proof: a lemma instance and how to check it."""

    id: str
    statement: str
    lemma_name: str
    parameters: dict[str, Any]
    lemma: Lemma
    method: str = "auto"
    box: dict[str, tuple[float, float]] | None = None
    samples: int = 2000
    seed: int = 0

    def check(self) -> Verdict:
        """Run the lemma's check with this obligation's method, box and samples."""
        return self.lemma.check(method=self.method, box=self.box, samples=self.samples, seed=self.seed)


@dataclass(frozen=True)
class Proof:
    """A loaded proof file."""

    path: Path
    title: str
    theorem: str | None
    source: str
    claim: str
    obligations: tuple[Obligation, ...]

    @property
    def name(self) -> str:
        """The file's stem, e.g. ``burkholz_l_plus_1``."""
        return self.path.stem


@dataclass(frozen=True)
class ObligationResult:
    """The verdict on one obligation, with timing."""

    proof: str
    obligation: str
    lemma: str
    statement: str
    verdict: Verdict
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: at least ``proof``, ``obligation``, ``method``, ``verdict``, ``seconds``."""
        document = {
            "proof": self.proof,
            "obligation": self.obligation,
            "lemma": self.lemma,
            "statement": self.statement,
            "method": self.verdict.method,
            "verdict": self.verdict.status.value,
            "seconds": round(self.seconds, 4),
            "detail": self.verdict.detail,
            "counterexample": self.verdict.counterexample,
            "samples": self.verdict.samples,
        }
        document.update(self.verdict.extra)
        return document


def _fail(path: Path, message: str) -> ModelFormatError:
    return ModelFormatError(f"{path}: {message}")


def _as_text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{where} must be a non-empty string, got {value!r}")
    return value.strip()


def _box(path: Path, where: str, value: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(value, dict):
        raise _fail(path, f"{where}.box must be a table of name = [low, high]")
    box = {}
    for name, interval in value.items():
        if (
            not isinstance(interval, list)
            or len(interval) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in interval)
            or not interval[0] <= interval[1]
        ):
            raise _fail(path, f"{where}.box.{name}={interval!r} must be [low, high] with low <= high")
        box[name] = (float(interval[0]), float(interval[1]))
    return box


def load_proof(path: str | Path) -> Proof:
    """Parse and validate one proof file, instantiating every lemma it names.

    Raises
    ------
    ModelFormatError
        Not readable, too large, not TOML, unknown keys, missing fields, an unknown lemma,
        or parameters the lemma refuses; the message names the file and the obligation.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise _fail(path, f"cannot read: {error.strerror}") from None
    if size > MAX_PROOF_BYTES:
        raise _fail(path, f"{size} bytes is over the {MAX_PROOF_BYTES}-byte limit for a proof file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except OSError as error:
        raise _fail(path, f"cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise _fail(path, f"not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"proof", "obligation"})
    if unknown:
        raise _fail(path, f"unknown top-level key {unknown[0]!r}; expected [proof] and [[obligation]]")
    header = data.get("proof")
    if not isinstance(header, dict):
        raise _fail(path, "missing the [proof] table")
    unknown = sorted(set(header) - _PROOF_KEYS)
    if unknown:
        raise _fail(path, f"[proof] has unknown key {unknown[0]!r}; expected {', '.join(sorted(_PROOF_KEYS))}")
    version = header.get("version", 1)
    if isinstance(version, bool) or version not in PROOF_FORMAT_VERSIONS:
        raise _fail(
            path,
            f"[proof].version={version!r} is not a proof-file version this ltbounds reads "
            f"({', '.join(map(str, PROOF_FORMAT_VERSIONS))})",
        )
    title = _as_text(path, "[proof].title", header.get("title"))
    claim = _as_text(path, "[proof].claim", header.get("claim"))
    source = _as_text(path, "[proof].source", header.get("source"))
    theorem = header.get("theorem")
    if theorem is not None:
        from ltbounds.lemmas.widths import THEOREMS  # noqa: PLC0415

        if not isinstance(theorem, str) or theorem not in THEOREMS:
            raise _fail(path, f"[proof].theorem={theorem!r} is not one of {', '.join(THEOREMS)}")
    entries = data.get("obligation")
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "no [[obligation]] entries")
    obligations: list[Obligation] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"obligation {index}"
        if not isinstance(entry, dict):
            raise _fail(path, f"{where} must be a table")
        identifier = _as_text(path, f"{where}.id", entry.get("id"))
        where = f"obligation {index} ({identifier!r})"
        if identifier in seen:
            raise _fail(path, f"{where}: duplicate id")
        seen.add(identifier)
        unknown = sorted(set(entry) - _OBLIGATION_KEYS)
        if unknown:
            raise _fail(path, f"{where}: unknown key {unknown[0]!r}; expected {', '.join(sorted(_OBLIGATION_KEYS))}")
        statement = _as_text(path, f"{where}.statement", entry.get("statement"))
        lemma_name = _as_text(path, f"{where}.lemma", entry.get("lemma"))
        parameters = entry.get("parameters", {})
        if not isinstance(parameters, dict):
            raise _fail(path, f"{where}.parameters must be a table")
        method = entry.get("method", "auto")
        if method not in METHODS:
            raise _fail(path, f"{where}.method={method!r} must be one of {', '.join(METHODS)}")
        box = _box(path, where, entry["box"]) if "box" in entry else None
        samples = entry.get("samples", 2000)
        seed = entry.get("seed", 0)
        for name, value in (("samples", samples), ("seed", seed)):
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "samples" else 0):
                raise _fail(path, f"{where}.{name}={value!r} must be a {'positive' if name == 'samples' else 'non-negative'} integer")
        try:
            lemma = get_lemma(lemma_name, **parameters)
            if box is not None:
                for name in box:
                    lemma.parameter(name)
        except InvalidInput as error:
            raise _fail(path, f"{where}: {error}") from None
        except (TypeError, ValueError, KeyError, ArithmeticError) as error:  # parameters the family does not take
            raise _fail(path, f"{where}: parameters {parameters!r} do not fit lemma {lemma_name!r} ({type(error).__name__}: {error})") from None
        obligations.append(
            Obligation(identifier, statement, lemma_name, dict(parameters), lemma, method, box, samples, seed)
        )
    return Proof(path, title, theorem, source, claim, tuple(obligations))


def discover(path: str | Path) -> list[Path]:
    """The proof files at ``path``: the file itself, or every ``*.toml`` in the folder (sorted).

    Raises
    ------
    InvalidInput
        The path does not exist, or a folder holds no ``*.toml`` file.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"path={str(path)!r} does not exist; expected a proof file or a folder of them")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*.toml") if p.is_file())
    if not files:
        raise InvalidInput(f"path={str(path)!r} holds no *.toml proof files")
    return files


def run_proof(proof: Proof, on_result: Callable[[ObligationResult], None] | None = None) -> list[ObligationResult]:
    """Check every obligation of ``proof`` in order; ``on_result`` is called after each."""
    results = []
    for obligation in proof.obligations:
        started = time.perf_counter()
        verdict = obligation.check()
        seconds = time.perf_counter() - started
        result = ObligationResult(proof.name, obligation.id, obligation.lemma.name, obligation.statement, verdict, seconds)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def run_paths(paths: list[Path]) -> Iterator[tuple[Proof, list[ObligationResult]]]:
    """Load every file first (so a malformed one fails before any work), then run each."""
    proofs = [load_proof(path) for path in paths]
    for proof in proofs:
        yield proof, run_proof(proof)


def any_falsified(results: list[ObligationResult]) -> bool:
    """True when some obligation was FALSIFIED."""
    return any(result.verdict.status is Status.FALSIFIED for result in results)


__all__ = [
    "MAX_PROOF_BYTES",
    "PROOF_FORMAT_VERSIONS",
    "Obligation",
    "ObligationResult",
    "Proof",
    "any_falsified",
    "discover",
    "load_proof",
    "run_paths",
    "run_proof",
]
