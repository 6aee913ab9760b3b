"""Versioned text outputs (bound tables, coverage sweeps): the bounded read and the version gate.

Every machine-readable output names its format and version (issue 12): a JSON document with
the keys ``format`` and ``format_version``, a CSV file with two last columns of those names
(every row carries them, so any CSV reader reads the file unchanged; see
``docs/reliability.md``). The readers (:func:`ltbounds.tables.load_table`,
:func:`ltbounds.subsetsum.concentration.load_coverage`) share what is here:

* :func:`read_text`: the file size-capped (the loaders' :func:`~ltbounds.nets.io.check_file_size`
  gate, then at most ``max_bytes`` read) and decoded as UTF-8;
* :func:`check_format`: the format name must be the expected one and the version one this
  ltbounds reads (1 .. the current version); anything else, including no format at all (a file
  written before outputs were versioned), is a one-line :class:`~ltbounds.errors.ModelFormatError`
  naming the value found and the value expected;
* :func:`parse_json` and :func:`read_csv_rows`: parsing with every failure (deep nesting,
  malformed text, a field of the wrong type, a NaN) refused the same way;
* :data:`FIELDS`: the field types, each a (check, description) pair.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ltbounds.errors import ModelFormatError

#: Largest table or coverage file read (a 200-point sweep of a table is about 1 MB).
MAX_TEXT_BYTES = 64 * 2**20
FORMAT_KEY = "format"
VERSION_KEY = "format_version"
_MISSING = object()


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: one line, however hostile the value."""
    text = "<missing>" if value is _MISSING else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, refused (``ModelFormatError``) when it is missing, not a
    regular file, larger than ``max_bytes`` or not UTF-8. ``what`` names the file kind in
    messages (``"table"``)."""
    from ltbounds.nets.io import check_file_size  # noqa: PLC0415  (the loaders' shared gate)

    where = Path(path)
    try:
        check_file_size(where, max_bytes)
        with where.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since its size was read
    except ModelFormatError as exc:
        raise ModelFormatError(f"{what} {exc}") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {what} {where}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise ModelFormatError(f"{what} {where} is larger than max_bytes={max_bytes:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{what} {where} is not UTF-8 text (byte {exc.start})") from None


def check_format(found: Any, version: Any, *, expected: str, current: int, where: str) -> int:
    """The version, once ``found`` is ``expected`` and ``version`` an integer in 1..``current``.

    ``where`` starts the message (``"table out.json"``); a missing key is passed as the
    sentinel of :func:`field` and shown as ``<missing>``.
    """
    if found != expected:
        hint = " (written before ltbounds versioned its outputs?)" if found is _MISSING else ""
        raise ModelFormatError(f"{where} has format={shown(found)}; expected {expected!r}{hint}")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > current
        hint = " (written by a newer ltbounds?)" if newer else ""
        readable = "1" if current == 1 else f"1..{current}"
        raise ModelFormatError(
            f"{where} has format_version={shown(version)}; this ltbounds reads format_version {readable}{hint}"
        )
    return version


def field(record: Mapping[str, Any], key: str) -> Any:
    """``record[key]``, or a sentinel that :func:`check_format` and :func:`shown` name ``<missing>``."""
    return record.get(key, _MISSING)


def parse_json(text: str, *, where: str) -> Any:
    """``json.loads(text)``; malformed or too deeply nested text is a ``ModelFormatError``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{where} is not JSON ({type(exc).__name__})") from None


# ------------------------------------------------------------------------------- field types


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:  # an integer beyond the float range (JSON allows 10**400) is no number we wrote
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is_ints(value: Any) -> bool:
    return isinstance(value, list) and all(_is_int(item) for item in value)


def _is_floats(value: Any) -> bool:
    return isinstance(value, list) and all(_is_float(item) for item in value)


#: Field types of the JSON forms: name -> (check, what it expects).
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda value: isinstance(value, str), "a string"),
    "int": (_is_int, "an integer"),
    "float": (_is_float, "a finite number"),
    "bool": (lambda value: isinstance(value, bool), "true or false"),
    "int?": (_optional(_is_int), "an integer or null"),
    "float?": (_optional(_is_float), "a finite number or null"),
    "ints?": (_optional(_is_ints), "a list of integers or null"),
    "floats": (_is_floats, "a list of finite numbers"),
    "object?": (lambda value: value is None or isinstance(value, dict), "an object or null"),
    "object": (lambda value: isinstance(value, dict), "an object"),
    "list": (lambda value: isinstance(value, list), "a list"),
    "str|float": (lambda value: isinstance(value, str) or _is_float(value), "a string or a finite number"),
}


def check_fields(record: Mapping[str, Any], schema: Mapping[str, str], *, where: str) -> None:
    """Every key of ``schema`` present in ``record`` with a value of its :data:`FIELDS` type
    (other keys are allowed: JSON outputs only ever gain keys)."""
    for key, kind in schema.items():
        value = field(record, key)
        check, expected = FIELDS[kind]
        if value is _MISSING:
            raise ModelFormatError(f"{where} has no {key!r}; expected {expected}")
        if not check(value):
            raise ModelFormatError(f"{where} has {key}={shown(value)}; expected {expected}")


# ------------------------------------------------------------------------------------- CSV

_INT = re.compile(r"-?[0-9]{1,30}")


def _int_cell(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError("an integer")
    return int(text)


def _float_cell(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def _bool_cell(text: str) -> bool:
    if text not in ("True", "False"):
        raise ValueError("True or False")
    return text == "True"


def _ints_cell(text: str) -> list[int]:
    pieces = text.split(" ")
    if not all(_INT.fullmatch(piece) for piece in pieces):
        raise ValueError("integers separated by single spaces")
    return [int(piece) for piece in pieces]


#: Cell types of the CSV forms: name -> (parse text, or raise ValueError naming what it expects).
#: A ``?`` type reads an empty cell as None.
CELLS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": _int_cell,
    "float": _float_cell,
    "bool": _bool_cell,
    "ints": _ints_cell,
}


def format_cell(value: Any) -> Any:
    """How the CSV writers store a value: None as an empty cell, a list space-separated."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return value


def read_csv_rows(
    text: str, columns: Mapping[str, str], *, expected: str, current: int, where: str
) -> list[dict[str, Any]]:
    """The rows of a versioned CSV ``text``, each cell parsed to the type ``columns`` gives it.

    The format and version are checked first (so a file of another format or a newer version is
    refused as such, before its columns are compared), then the header must be ``columns``
    exactly, every row as long as the header and every cell of its type.
    """
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ModelFormatError(f"{where} is not CSV ({shown(str(exc))})") from None
    if not records:
        raise ModelFormatError(f"{where} is empty; expected a CSV header")
    header, body = records[0], records[1:]
    if FORMAT_KEY not in header or VERSION_KEY not in header:
        check_format(_MISSING, None, expected=expected, current=current, where=f"{where} (no format column)")
    if not body:
        raise ModelFormatError(f"{where} has a header but no rows")
    at_format, at_version = header.index(FORMAT_KEY), header.index(VERSION_KEY)
    for number, record in enumerate(body, 1):
        found = record[at_format] if at_format < len(record) else _MISSING
        version_text = record[at_version] if at_version < len(record) else _MISSING
        try:
            version: Any = _int_cell(version_text) if isinstance(version_text, str) else version_text
        except ValueError:
            version = version_text
        check_format(found, version, expected=expected, current=current, where=f"{where} row {number}")
    if tuple(header) != tuple(columns):
        expected_columns = tuple(columns)
        index = next(
            (i for i, (a, b) in enumerate(zip(header, expected_columns, strict=False)) if a != b),
            min(len(header), len(expected_columns)),
        )
        found_name = shown(header[index], 40) if index < len(header) else "no column"
        wanted = repr(expected_columns[index]) if index < len(expected_columns) else "no more columns"
        raise ModelFormatError(
            f"{where} has {len(header)} columns, column {index + 1} {found_name}; expected {wanted} "
            f"({len(expected_columns)} columns: {', '.join(expected_columns)})"
        )
    rows = []
    for number, record in enumerate(body, 1):
        if len(record) != len(header):
            raise ModelFormatError(f"{where} row {number} has {len(record)} cells; expected {len(header)}")
        row = {}
        for name, kind, cell in zip(header, columns.values(), record, strict=True):
            optional = kind.endswith("?")
            if optional and cell == "":
                row[name] = None
                continue
            try:
                row[name] = CELLS[kind.rstrip("?")](cell)
            except ValueError as exc:
                raise ModelFormatError(f"{where} row {number} has {name}={shown(cell)}; expected {exc}") from None
        rows.append(row)
    return rows


def load_rows(
    path: str | os.PathLike[str],
    *,
    what: str,
    json_rows: Callable[[str, str], list[dict[str, Any]]],
    csv_columns: Mapping[str, str],
    expected: str,
    current: int,
    max_bytes: int = MAX_TEXT_BYTES,
    refuse: Callable[[str, str], None] | None = None,
) -> list[dict[str, Any]]:
    """The rows of a versioned output file in its JSON or CSV form: the readers' shared door.

    The text is read size-capped (:func:`read_text`); ``refuse(text, label)`` may reject it
    first (a form the reader does not read). A ``.json`` suffix, or no ``.csv`` suffix and a
    text opening with ``{`` or ``[``, goes to ``json_rows(text, label)``; anything else is read
    as CSV with ``csv_columns`` (:func:`read_csv_rows`). ``label`` is ``"{what} {path}"``.
    """
    where = Path(path)
    text = read_text(where, what=what, max_bytes=max_bytes)
    label = f"{what} {where}"
    if refuse is not None:
        refuse(text, label)
    suffix = where.suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "[")):
        return json_rows(text, label)
    return read_csv_rows(text, csv_columns, expected=expected, current=current, where=label)


def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, lineterminator: str = "\n") -> str:
    """``rows`` as CSV text with header ``columns`` (cells through :func:`format_cell`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row[name]) for name in columns])
    return buffer.getvalue()


__all__ = [
    "CELLS",
    "FIELDS",
    "FORMAT_KEY",
    "MAX_TEXT_BYTES",
    "VERSION_KEY",
    "check_fields",
    "check_format",
    "field",
    "format_cell",
    "parse_json",
    "read_csv_rows",
    "read_text",
    "shown",
    "write_csv",
]
