"""``ltbounds coverage`` as a user meets it: table, JSON, files, one-line refusals."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import subprocess
import sys

import pytest

from ltbounds.cli import app, main
from ltbounds.cli import coverage as coverage_cli
from ltbounds.errors import InvalidInput


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["coverage", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_has_rows_and_a_fitted_constant(capsys) -> None:
    code, out, _ = run(capsys, "--n", "8:10", "--eps", "0.05,0.02", "--trials", "400", "--json")
    assert code == 0
    document = json.loads(out)
    rows = document["rows"]
    assert [(row["n"], row["eps"]) for row in rows] == [
        (n, eps) for n in (8, 9, 10) for eps in (0.05, 0.02)
    ]
    for row in rows:
        assert {"n", "eps", "trials", "failures", "delta", "ci_low", "ci_high"} <= set(row)
        assert row["trials"] == 400 and row["delta"] == row["failures"] / 400
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
    assert document["C_low"] <= document["C"] <= document["C_high"]
    assert document["C_cell"]["n"] in (8, 9, 10) and document["C_confidence"] == 0.95
    assert "log(1 / min(eps, delta_hat))" in document["C_definition"]
    # the same seed reproduces the run
    assert run(capsys, "--n", "8:10", "--eps", "0.05,0.02", "--trials", "400", "--json")[1] == out


def test_table_csv_and_plot(capsys, tmp_path) -> None:
    csv_path, plot_path = tmp_path / "out" / "delta.csv", tmp_path / "delta.png"
    arguments = ["--n", "9,11", "--eps", "0.05", "--trials", "300", "--seed", "4", "--csv", str(csv_path)]
    has_matplotlib = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        has_matplotlib = False
    if has_matplotlib:
        arguments += ["--plot", str(plot_path)]
    code, out, _ = run(capsys, *arguments)
    assert code == 0
    assert "fitted C" in out and "failures" in out
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["n"] for row in rows] == ["9", "11"] and rows[0]["seed"] == "4"
    if has_matplotlib:
        assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


def test_outputs_name_their_format_and_read_back(capsys, tmp_path) -> None:
    """``--json`` (saved), ``--csv`` and ``--plot`` carry format and version; the JSON and CSV
    load back through ``load_coverage`` to the rows the run printed."""
    from ltbounds.subsetsum.coverage_io import csv_records, load_coverage  # noqa: PLC0415

    csv_path, plot_path = tmp_path / "delta.csv", tmp_path / "delta.svg"
    arguments = ["--n", "8,9", "--eps", "0.05,0.02", "--trials", "120", "--csv", str(csv_path), "--json"]
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if has_matplotlib:
        arguments += ["--plot", str(plot_path)]
    code, out, _ = run(capsys, *arguments)
    assert code == 0
    document = json.loads(out)
    assert (document["format"], document["format_version"]) == ("ltbounds-coverage", 1)
    (tmp_path / "delta.json").write_text(out)
    assert load_coverage(tmp_path / "delta.json") == document["rows"]
    assert load_coverage(csv_path) == csv_records(document["rows"])
    assert csv_path.read_text().splitlines()[0].endswith(",C,format,format_version")
    if has_matplotlib:
        assert "ltbounds-coverage format 1" in plot_path.read_text()


def test_a_failed_run_leaves_no_partial_file(capsys, tmp_path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")

    def broken_plot(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(coverage_cli, "write_plot", broken_plot)
    csv_path, plot_path = tmp_path / "delta.csv", tmp_path / "delta.png"
    with pytest.raises(RuntimeError, match="plotting failed"):
        main(["coverage", "--n", "8", "--trials", "50", "--csv", str(csv_path), "--plot", str(plot_path)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n", "8:x"], "--n '8:x' is not a size list"),
        (["--n", "12:8"], "--n '12:8' is not a size list"),
        (["--n", "0:3"], "--n=0 must be >= 1"),
        (["--n", "41"], "--n=41 must be <= 40"),
        (["--eps", "0.01,abc"], "--eps '0.01,abc': 'abc' is not a number"),
        (["--eps", "-0.1"], "--eps=-0.1 must be > 0"),
        (["--eps", "2"], "--eps=2.0 must be < 1"),
        (["--trials", "0"], "--trials=0 must be >= 1"),
        (["--distribution", "normal"], "--distribution='normal' must be one of"),
        (["--plot", "delta.jpg"], "--plot 'delta.jpg' must end in one of .png, .pdf, .svg"),
        # refused from the bounds, before the range (10^11 sizes) is built
        (["--n", "8:99999999999"], "--n=99999999999 must be <= 40"),
        (["--trials", "99999999999999999999999"], "--trials=99999999999999999999999 must be <= 1,000,000,000"),
        (["--trials", "1000000001"], "--trials=1000000001 must be <= 1,000,000,000"),
        (["--workers", "100000"], "--workers=100000 must be <= "),
    ],
)
def test_bad_values_are_one_line_errors(capsys, arguments, message) -> None:
    code, out, err = run(capsys, *arguments)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--csv", "--plot", "--checkpoint"])
def test_output_paths_are_checked_before_any_trial(capsys, tmp_path, monkeypatch, option) -> None:
    """A path below a file is refused up front: the sweep never starts, nothing is written."""
    concentration = importlib.import_module("ltbounds.subsetsum.concentration")

    def no_work(*args, **kwargs):
        raise AssertionError("the sweep started before its output paths were checked")

    monkeypatch.setattr(concentration, "concentration_grid", no_work)
    (tmp_path / "a-file").write_text("x")
    before = sorted(tmp_path.iterdir())
    code, out, err = run(capsys, "--n", "8", "--trials", "10", option, str(tmp_path / "a-file" / "x.png"))
    assert code == 1 and out == ""
    assert f"error: {option}=" in err and "is a file, not a folder" in err
    assert sorted(tmp_path.iterdir()) == before


def test_two_outputs_naming_one_file_are_refused(capsys, tmp_path) -> None:
    same = str(tmp_path / "out.png")
    code, _, err = run(capsys, "--n", "8", "--trials", "10", "--plot", same, "--checkpoint", same)
    assert code == 1 and "--checkpoint=" in err and "is also --plot" in err
    assert list(tmp_path.iterdir()) == []


def test_a_grid_whose_work_list_exceeds_the_memory_budget_is_refused(capsys, monkeypatch) -> None:
    """40 sizes x 10^9 trials are 39 million work items (~38 GiB): refused, with the estimate."""
    monkeypatch.setenv("LTBOUNDS_MEMORY_BUDGET", "8G")
    code, _, err = run(capsys, "--n", "1:40", "--trials", "1000000000")
    assert code == 1
    assert "the work list of 40 sizes x 1,000,000,000 trials (39,062,520 blocks of 1024)" in err
    assert "MiB, over the budget of 8,192.0 MiB" in err


def test_parsers() -> None:
    assert coverage_cli.parse_sizes("8:10,15, 9") == [8, 9, 10, 15]
    assert coverage_cli.parse_tolerances("0.01, 0.001,0.01") == [0.01, 0.001]
    assert coverage_cli.parse_sizes("40:40, 1:3") == [1, 2, 3, 40]
    with pytest.raises(InvalidInput, match="--n=99999999999 must be <= 40"):
        coverage_cli.parse_sizes("8:99999999999")  # refused without expanding the range
    with pytest.raises(InvalidInput):
        coverage_cli.parse_sizes("")


def test_registered_with_a_purpose() -> None:
    assert "coverage" in {command.name for command in app.registered_commands}
    completed = subprocess.run(
        [sys.executable, "-m", "ltbounds", "coverage", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert "--trials" in completed.stdout and "--json" in completed.stdout
