"""The versioned files of ``ltbounds coverage``: written, read back, and refused when damaged."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ltbounds.errors import ModelFormatError
from ltbounds.subsetsum import concentration_grid, fit_constant
from ltbounds.subsetsum.coverage_io import (
    COVERAGE_FORMAT_VERSION,
    CSV_COLUMNS,
    coverage_csv,
    coverage_document,
    coverage_rows,
    csv_records,
    load_coverage,
)


@pytest.fixture(scope="module")
def sweep() -> tuple[list[dict], dict]:
    """A real 3 × 2 grid (200 trials per cell) and its document."""
    results = concentration_grid([8, 9, 10], [0.05, 0.02], 200, seed=1, workers=1)
    rows = coverage_rows(results)
    return rows, json.loads(json.dumps(coverage_document(rows, fit_constant(results))))


def test_the_document_and_the_csv_name_their_format(sweep) -> None:
    rows, document = sweep
    assert (document["format"], document["format_version"]) == ("ltbounds-coverage", 1) == (
        "ltbounds-coverage", COVERAGE_FORMAT_VERSION)
    assert {"rows", "C", "C_low", "C_high", "C_confidence", "C_cell", "C_definition"} <= set(document)
    records = list(csv.DictReader(io.StringIO(coverage_csv(rows), newline="")))
    assert CSV_COLUMNS[-2:] == ("format", "format_version") and list(records[0]) == list(CSV_COLUMNS)
    assert [(r["n"], r["eps"]) for r in records] == [(str(r["n"]), str(r["eps"])) for r in rows]
    assert {(r["format"], r["format_version"]) for r in records} == {("ltbounds-coverage", "1")}


def test_load_coverage_round_trips_json_and_csv(tmp_path, sweep) -> None:
    rows, document = sweep
    (tmp_path / "delta.json").write_text(json.dumps(document, indent=2))
    (tmp_path / "delta.csv").write_text(coverage_csv(rows), newline="")
    assert load_coverage(tmp_path / "delta.json") == rows
    loaded = load_coverage(tmp_path / "delta.csv")
    assert loaded == csv_records(rows)
    assert [row["failures"] for row in loaded] == [row["failures"] for row in rows]
    assert len({row["failures"] for row in loaded}) > 1 and all(row["C"] > 0 for row in loaded)
    (tmp_path / "stdout.txt").write_text(json.dumps(document))  # `--json > stdout.txt`: read by content
    assert load_coverage(tmp_path / "stdout.txt") == rows


def test_load_coverage_refuses_unknown_and_missing_versions(tmp_path, sweep) -> None:
    rows, document = sweep
    text = coverage_csv(rows)
    cases = {
        "newer.json": ({**document, "format_version": 2},
                       r"format_version=2; this ltbounds reads format_version 1 \(written by a newer"),
        "float.json": ({**document, "format_version": 1.0}, "format_version=1.0;"),
        "unversioned.json": ({k: v for k, v in document.items() if not k.startswith("format")},
                             r"format=<missing>; expected 'ltbounds-coverage' \(written before"),
        "table.json": ([{"format": "ltbounds-table", "format_version": 1}], "expected a JSON object"),
        "other.json": ({**document, "format": "ltbounds-table"}, "format='ltbounds-table'; expected 'ltbounds-coverage'"),
        "newer.csv": (text.replace(",ltbounds-coverage,1\r\n", ",ltbounds-coverage,9\r\n"), "row 1 has format_version=9;"),
        "unversioned.csv": ("".join(line.rsplit(",", 2)[0] + "\r\n" for line in text.splitlines()),
                            r"\(no format column\) has format=<missing>"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content), newline="")
        with pytest.raises(ModelFormatError, match=message) as caught:
            load_coverage(tmp_path / name)
        assert name in str(caught.value) and "\n" not in str(caught.value)


def test_load_coverage_refuses_damaged_files(tmp_path, sweep) -> None:
    rows, document = sweep
    whole = {"json": json.dumps(document).encode(), "csv": coverage_csv(rows).encode()}
    for form, data in whole.items():
        for cut in range(0, len(data) - 1, 53):
            path = tmp_path / f"cut.{form}"
            path.write_bytes(data[:cut])
            try:
                loaded = load_coverage(path)
            except ModelFormatError as error:
                assert "\n" not in str(error)
                continue
            # only a CSV cut exactly at a line end reads, as a prefix (CSV has no end marker)
            assert form == "csv" and data[:cut].endswith(b"\r\n") and loaded == csv_records(rows)[: len(loaded)]
    damaged = {
        "empty.json": b"", "list.json": b"[]", "deep.json": b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000,
        "norows.json": json.dumps({**document, "rows": []}).encode(),
        "nofit.json": json.dumps({k: v for k, v in document.items() if k != "C_low"}).encode(),
        "row.json": json.dumps({**document, "rows": [{**rows[0], "trials": "200"}]}).encode(),
        "domain.json": json.dumps({**document, "rows": [{**rows[0], "domain": [-1, None]}]}).encode(),
        "nan.json": json.dumps({**document, "rows": [{**rows[0], "delta": float("nan")}]}).encode(),
        "header.csv": whole["csv"].split(b"\r\n")[0] + b"\r\n",
        "cell.csv": whole["csv"].replace(b"uniform", b"uniform,x", 1),
        "seed.csv": whole["csv"].replace(b",uniform,1,", b",uniform,one,", 1),
        "binary.csv": bytes(range(255, -1, -1)),
    }
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFormatError) as caught:
            load_coverage(tmp_path / name)
        assert "\n" not in str(caught.value), name
    with pytest.raises(ModelFormatError, match="no such file"):
        load_coverage(tmp_path / "missing.csv")
    with pytest.raises(ModelFormatError, match="max_bytes=10"):
        load_coverage(tmp_path / "header.csv", max_bytes=10)
