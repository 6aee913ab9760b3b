"""The files of ``ltbounds coverage``: its JSON document and CSV, versioned, and their reader.

Both forms name their format, ``ltbounds-coverage``, and version, :data:`COVERAGE_FORMAT_VERSION`
(issue 12): the JSON document has the top-level keys ``format`` and ``format_version``; the CSV
ends in two columns of those names, filled on every row (a column, not a comment line, so that
every CSV reader reads the file unchanged). :func:`load_coverage` reads either back and refuses
another format or a newer version with a one-line :class:`~ltbounds.errors.ModelFormatError`.

The rows are :class:`~ltbounds.subsetsum.concentration.ConcentrationResult` s as dictionaries
plus each cell's constant ``C`` (:func:`~ltbounds.subsetsum.concentration.cell_constant`);
the fit is :func:`~ltbounds.subsetsum.concentration.fit_constant`'s (statistical: Monte Carlo
estimates with exact Clopper-Pearson intervals).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ltbounds import _formats
from ltbounds.errors import ModelFormatError
from ltbounds.subsetsum.concentration import ConcentrationResult, ConstantFit, cell_constant

COVERAGE_FORMAT = "ltbounds-coverage"
COVERAGE_FORMAT_VERSION = 1
CONSTANT_DEFINITION = "max over cells of n / log(1 / min(eps, delta_hat))"
"""How the fitted ``C`` is defined (the document's ``C_definition``)."""

#: The type of every CSV column (:data:`ltbounds._formats.CELLS`).
_CSV_TYPES = {
    "n": "int", "eps": "float", "trials": "int", "failures": "int", "delta": "float",
    "ci_low": "float", "ci_high": "float", "confidence": "float", "distribution": "str",
    "seed": "int", "C": "float", "format": "str", "format_version": "int",
}
#: The CSV header: ``format`` and ``format_version`` last.
CSV_COLUMNS = tuple(_CSV_TYPES)
#: The keys every JSON row must have, with their types (:data:`ltbounds._formats.FIELDS`).
_JSON_ROW = {
    "n": "int", "eps": "float", "trials": "int", "failures": "int", "delta": "float",
    "ci_low": "float", "ci_high": "float", "confidence": "float", "distribution": "str",
    "seed": "int", "domain": "floats", "C": "float",
}
_JSON_DOCUMENT = {
    "rows": "list", "C": "float", "C_low": "float", "C_high": "float", "C_confidence": "float",
    "C_cell": "object", "C_definition": "str",
}


def coverage_rows(results: Sequence[ConcentrationResult]) -> list[dict[str, Any]]:
    """One row per grid cell: the result's fields (``domain`` a list) and the cell's ``C``."""
    rows = []
    for result in results:
        row = result.to_dict()
        row["C"] = cell_constant(result.n, result.eps, result.delta)
        rows.append(row)
    return rows


def coverage_document(rows: Sequence[dict[str, Any]], fit: ConstantFit) -> dict[str, Any]:
    """The ``--json`` document: ``format``, ``format_version``, ``rows`` and the fit (``C``,
    ``C_low``, ``C_high``, ``C_confidence``, ``C_cell``, ``C_definition``)."""
    return {
        "format": COVERAGE_FORMAT,
        "format_version": COVERAGE_FORMAT_VERSION,
        "rows": list(rows),
        "C": fit.C,
        "C_low": fit.C_low,
        "C_high": fit.C_high,
        "C_confidence": fit.confidence,
        "C_cell": {"n": fit.n, "eps": fit.eps},
        "C_definition": CONSTANT_DEFINITION,
    }


def csv_records(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the CSV holds (:data:`CSV_COLUMNS`; no ``domain``): what :func:`load_coverage`
    gives back for it."""
    tag = {"format": COVERAGE_FORMAT, "format_version": COVERAGE_FORMAT_VERSION}
    return [{key: {**row, **tag}[key] for key in CSV_COLUMNS} for row in rows]


def coverage_csv(rows: Sequence[dict[str, Any]]) -> str:
    """``--csv``: one line per row, :data:`CSV_COLUMNS`, ``\\r\\n`` line ends (the csv
    module's default, as since the first version of the verb)."""
    return _formats.write_csv(csv_records(rows), CSV_COLUMNS, lineterminator="\r\n")


def plot_metadata() -> dict[str, str]:
    """The metadata of ``--plot``: ``Keywords`` (a key PNG, PDF and SVG all take) names the
    format and version, for provenance only (nothing reads plots back)."""
    return {"Keywords": f"{COVERAGE_FORMAT} format {COVERAGE_FORMAT_VERSION}"}


def load_coverage(
    path: str | os.PathLike[str], *, max_bytes: int = _formats.MAX_TEXT_BYTES
) -> list[dict[str, Any]]:
    """The rows of a file written by ``ltbounds coverage --json`` (stdout saved to a file) or
    ``--csv``, checked to be a format and version this ltbounds reads.

    The form is chosen by suffix (``.json``, ``.csv``); any other suffix by content (a file
    starting with ``{`` is JSON). JSON gives the document's ``rows`` as written (the fit is
    checked, not returned: :func:`~ltbounds.subsetsum.concentration.fit_constant` recomputes it
    from the rows); CSV gives :func:`csv_records`' typed rows.

    Raises
    ------
    ModelFormatError
        The file is missing, larger than ``max_bytes``, not UTF-8, not JSON/CSV, holds no rows;
        its ``format`` is not ``ltbounds-coverage`` (or absent: a file written before coverage
        outputs were versioned), its ``format_version`` not 1..:data:`COVERAGE_FORMAT_VERSION`;
        a key, column or cell is missing or of the wrong type.
    """
    return _formats.load_rows(
        path, what="coverage file", json_rows=_json_rows, csv_columns=_CSV_TYPES,
        expected=COVERAGE_FORMAT, current=COVERAGE_FORMAT_VERSION, max_bytes=max_bytes,
    )


def _json_rows(text: str, label: str) -> list[dict[str, Any]]:
    document = _formats.parse_json(text, where=label)
    if not isinstance(document, dict):
        raise ModelFormatError(f"{label} holds {_formats.shown(document, 40)}; expected a JSON object")
    _formats.check_format(
        _formats.field(document, "format"), _formats.field(document, "format_version"),
        expected=COVERAGE_FORMAT, current=COVERAGE_FORMAT_VERSION, where=label,
    )
    _formats.check_fields(document, _JSON_DOCUMENT, where=label)
    rows = document["rows"]
    if not rows:
        raise ModelFormatError(f"{label} has no rows")
    for number, row in enumerate(rows, 1):
        where = f"{label} row {number}"
        if not isinstance(row, dict):
            raise ModelFormatError(f"{where} is {_formats.shown(row, 40)}; expected an object")
        _formats.check_fields(row, _JSON_ROW, where=where)
    return rows


__all__ = [
    "COVERAGE_FORMAT",
    "COVERAGE_FORMAT_VERSION",
    "CONSTANT_DEFINITION",
    "CSV_COLUMNS",
    "coverage_csv",
    "coverage_document",
    "coverage_rows",
    "csv_records",
    "load_coverage",
    "plot_metadata",
]
