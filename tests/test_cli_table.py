"""``ltbounds table`` as a user meets it: formats, files, sweeps, one-line refusals, docs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ltbounds.cli import main
from ltbounds.presets import get_preset
from ltbounds.tables import ROW_KEYS, build_table, csv_records, load_table

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["table", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_resnet20_prints_all_rows() -> None:
    """The whole ResNet-20 table as a user runs it (its speed is in benchmarks/bench_cli.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "ltbounds", "table", "--preset", "resnet20", "--eps", "0.01", "--delta", "0.01"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(ROW_KEYS)
    expected = build_table(get_preset("resnet20").shape, 0.01, 0.01, target_name="resnet20").row("burkholz_2l")
    assert f"{expected.source_params:,}" in result.stdout
    assert "not applicable" in result.stdout and "not measured (shape only)" in result.stdout


def test_json_csv_and_latex_files(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "--preset", "lenet5", "--json", "--constant", "fitted")
    assert code == 0
    rows = json.loads(out)
    assert [row["theorem"] for row in rows] == list(ROW_KEYS)
    for row in rows:
        assert {"theorem", "source_depth", "widths", "source_params", "factor", "applies", "constant", "citation"} <= set(row)
    applicable = [row for row in rows if row["applies"]]
    assert applicable and all(row["constant"]["origin"] == "fitted" for row in applicable)
    assert all(row["constant"]["low"] <= row["constant"]["value"] <= row["constant"]["high"] for row in applicable)

    for fmt in ("csv", "latex", "md"):
        path = tmp_path / "out" / f"t.{fmt}"
        code, out, err = run(capsys, "--preset", "lenet5", "--format", fmt, "-o", str(path))
        assert code == 0 and out == "" and "wrote" in err
        text = path.read_text()
        if fmt == "csv":
            assert [r["theorem"] for r in csv.DictReader(text.splitlines())] == list(ROW_KEYS)
            assert load_table(path) == csv_records(build_table(
                get_preset("lenet5").shape, 0.01, 0.01, target_name="lenet5", caveats=get_preset("lenet5").caveats))
        else:
            comment = {"md": "<!-- ltbounds-table format 1 -->", "latex": "% ltbounds-table format 1"}[fmt]
            assert text.splitlines()[0] == comment
        if fmt == "latex":
            assert "\\begin{tabular}" in text and text.rstrip().splitlines()[-1].startswith("%")
    path = tmp_path / "out" / "t.json"
    code, out, _ = run(capsys, "--preset", "lenet5", "--json", "-o", str(path))
    assert code == 0 and out == ""
    rows = load_table(path)
    assert [row["theorem"] for row in rows] == list(ROW_KEYS)
    assert {(row["format"], row["format_version"]) for row in rows} == {("ltbounds-table", 1)}
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


def test_preset_overrides_and_paper_constant(capsys) -> None:
    code, out, _ = run(capsys, "--preset", "digits_mlp_relu", "--no-bias", "--constant", "paper", "--json")
    assert code == 0
    rows = {row["theorem"]: row for row in json.loads(out)}
    assert all(rows[key]["applies"] for key in ROW_KEYS[:-1])  # every theorem covers it
    assert rows["pensia"]["constant"]["origin"] == "code-derived (no paper value)"
    code, out, _ = run(capsys, "--preset", "lenet5", "--activation", "tanh", "--json")
    rows = {row["theorem"]: row for row in json.loads(out)}
    assert "ReLU" in rows["da_cunha"]["reason"] and rows["burkholz_l_plus_1"]["applies"]


def test_real_target_without_measurement_uses_its_own_bounds(capsys) -> None:
    code, out, _ = run(capsys, "digits_cnn_relu", "--no-measure", "--json")
    assert code == 0
    rows = {row["theorem"]: row for row in json.loads(out)}
    assert rows["measured"]["reason"] == "not measured (--no-measure)"
    assert rows["measured"]["target"] == "digits_cnn_relu"
    _, preset_out, _ = run(capsys, "--preset", "digits_cnn_relu", "--json")
    preset_rows = {row["theorem"]: row for row in json.loads(preset_out)}
    # the real weight norms exceed the papers' normalisation: smaller eps'_l, wider blocks
    assert rows["burkholz_2l"]["source_params"] > preset_rows["burkholz_2l"]["source_params"]


def test_sweep_writes_csv_and_plot(capsys, tmp_path) -> None:
    path = tmp_path / "sweep.csv"
    code, _, err = run(capsys, "--preset", "digits_mlp_relu", "--no-bias", "--sweep", "eps=1e-1:1e-3:3", "-o", str(path))
    assert code == 0, err
    records = list(csv.DictReader(path.open()))
    assert len(records) == 3 * len(ROW_KEYS)
    assert sorted({float(r["eps"]) for r in records}) == pytest.approx([1e-3, 1e-2, 1e-1])
    rows = load_table(path)
    assert [row["theorem"] for row in rows] == [r["theorem"] for r in records]
    assert [row["max_width"] for row in rows] == [int(r["max_width"]) if r["max_width"] else None for r in records]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no plot" in " ".join(err.split())
    else:
        png = path.with_suffix(".png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Keywords\x00ltbounds-table format 1" in png
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "resnet20", "--eps", "0"], "--eps=0.0 must be > 0"),
        (["--preset", "resnet20", "--eps", "-0.1"], "--eps=-0.1 must be > 0"),
        (["--preset", "resnet20", "--delta", "1.5"], "--delta"),
        (["--preset", "vgg99"], "preset='vgg99' is not known"),
        (["--preset", "resnet20", "--format", "xml"], "--format 'xml' must be one of md, csv, latex, json"),
        (["--preset", "resnet20", "--constant", "lueker"], "constant='lueker'"),
        (["digits_cnn_relu", "--preset", "resnet20"], "exactly one of TARGET"),
        (["--preset", "resnet20", "--measure"], "--measure needs a real TARGET"),
        (["--preset", "resnet20", "--sweep", "eps=1:0.1:x"], "sweep="),
        (["nonexistent.npz"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_file(capsys, tmp_path, args, message) -> None:
    path = tmp_path / "table.md"
    code, out, err = run(capsys, *args, "-o", str(path))
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_sweep_needs_a_csv_path(capsys) -> None:
    code, _, err = run(capsys, "--preset", "lenet5", "--sweep", "eps=1e-1:1e-2")
    assert code == 1 and "-o FILE.csv" in err


@pytest.mark.slow
def test_docs_build_contains_the_generated_tables(tmp_path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "tables.html").read_text(encoding="utf-8")
    expected = build_table(get_preset("resnet20").shape, 0.01, 0.01, target_name="resnet20").row("burkholz_2l")
    assert page.count("<table") >= 5
    assert f"{expected.source_params:,}" in page and "Burkholz 2022, ICML" in page
    assert "this construction, measured" in page and "not applicable" in page
