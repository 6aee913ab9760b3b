"""The lemma registry: every family module registers its lemmas here by name.

A registered entry is a *factory*: some lemmas are single statements (the ReLU identity),
others are families instantiated per activation, box or target shape (the Taylor remainder
of ``tanh`` on ``|t| <= 1``). Proof files and the documentation both go through
:func:`get_lemma`; the documentation renders each entry's ``examples``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ltbounds.errors import InvalidInput
from ltbounds.lemmas.base import Lemma


@dataclass(frozen=True)
class LemmaEntry:
    """One registered lemma or family of lemmas.

    Attributes
    ----------
    name : str
        Registry name, ``family.short_name``.
    family : str
        Module family: ``subsetsum``, ``activation``, ``composition``, ``widths``.
    build : callable
        ``build(**parameters) -> Lemma``.
    parameters : tuple of str
        Keyword arguments ``build`` accepts (instance parameters, not the lemma's symbols).
    examples : tuple of dict
        Instance parameters rendered in the documentation.
    """

    name: str
    family: str
    build: Callable[..., Lemma]
    parameters: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = ({},)


_REGISTRY: dict[str, LemmaEntry] = {}


def register(
    name: str,
    family: str,
    *,
    parameters: tuple[str, ...] = (),
    examples: tuple[dict[str, Any], ...] = ({},),
) -> Callable[[Callable[..., Lemma]], Callable[..., Lemma]]:
    """Decorator: register a lemma factory under ``name``."""

    def decorate(build: Callable[..., Lemma]) -> Callable[..., Lemma]:
        if name in _REGISTRY:
            raise RuntimeError(f"lemma {name!r} registered twice")
        _REGISTRY[name] = LemmaEntry(name, family, build, parameters, examples)
        return build

    return decorate


def get_lemma(name: str, **parameters: Any) -> Lemma:
    """Instantiate the registered lemma ``name`` with its instance parameters.

    Raises
    ------
    InvalidInput
        Unknown name (the message lists the known ones) or an unknown instance parameter.
    """
    _load_families()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InvalidInput(f"lemma {name!r} is not known; known lemmas: {', '.join(sorted(_REGISTRY))}")
    unknown = sorted(set(parameters) - set(entry.parameters))
    if unknown:
        accepted = ", ".join(entry.parameters) or "none"
        raise InvalidInput(f"lemma {name!r} takes no parameter {unknown[0]!r}; it accepts: {accepted}")
    return entry.build(**parameters)


def entries(family: str | None = None) -> list[LemmaEntry]:
    """Registered entries, in registration order (optionally one family)."""
    _load_families()
    return [entry for entry in _REGISTRY.values() if family is None or entry.family == family]


def lemma_names(family: str | None = None) -> list[str]:
    """Registered names, in registration order."""
    return [entry.name for entry in entries(family)]


def documented_lemmas() -> Iterator[tuple[LemmaEntry, Lemma]]:
    """Every registered entry instantiated at each of its documentation examples."""
    for entry in entries():
        for example in entry.examples:
            yield entry, entry.build(**example)


def _load_families() -> None:
    # Importing the family modules registers their lemmas (once).
    from ltbounds.lemmas import activation, composition, subsetsum, widths  # noqa: F401, PLC0415


__all__ = ["LemmaEntry", "documented_lemmas", "entries", "get_lemma", "lemma_names", "register"]
