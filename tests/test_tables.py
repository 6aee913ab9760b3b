"""Bound tables: values recomputed from the published formulas, formats parsed back.

The widths of Pensia et al., Orseau et al., Malach et al. and da Cunha et al. are recomputed
here from LEMMAS.md section 6 (items 3-5) with mpmath at 50 digits, independently of
``ltbounds.lemmas.widths``; the two Burkholz rows are checked against formulas 6-7 given their
per-layer errors. The LaTeX output is parsed by a small tabular reader written here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from importlib import resources

import mpmath
import numpy as np
import pytest

from ltbounds.errors import InvalidInput, LtboundsError, ModelFormatError
from ltbounds.lemmas.widths import TargetShape
from ltbounds.nets import Dense, TargetNet
from ltbounds.presets import get_preset, shape_from_target
from ltbounds.tables import (
    CSV_COLUMNS,
    MEASURED,
    ROW_KEYS,
    TABLE_FORMAT_VERSION,
    build_table,
    compress_widths,
    csv_records,
    format_table,
    latex_escape,
    load_table,
    not_applicable_reasons,
    parse_constant,
    parse_sweep,
    sweep,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)

EPS, DELTA = 0.05, 0.02
DENSE = TargetShape((8, 6, 4), has_bias=False)  # ReLU, bias-free: every theorem applies
CONV = TargetShape((2, 4, 3), kernel_sizes=(9, 4), has_bias=False)
#: LEMMAS.md 1.3: the code-derived product constant 15 / log(1/min(0.01, 0.0355)).
C_PRODUCT = 15 / math.log(100)
C_UNIFORM = 15 / math.log(1 / 0.00404)


def ceil_c_log(C: float, numerator: float, denominator: float = 1.0) -> int:
    """ceil(C·log(numerator/denominator)) at 50 digits, refusing a near-tie."""
    with mpmath.workdps(50):
        value = mpmath.mpf(C) * mpmath.log(mpmath.mpf(numerator) / mpmath.mpf(denominator))
        assert abs(value - mpmath.nint(value)) > mpmath.mpf(10) ** -20
        return max(int(mpmath.ceil(value)), 1)


def params(input_width: int, widths, kernels, biased=None) -> int:
    total, previous = 0, input_width
    biased = biased or [False] * len(widths)
    for width, kernel, bias in zip(widths, kernels, biased, strict=True):
        total += width * previous * kernel + (width if bias else 0)
        previous = width
    return total


@pytest.fixture(scope="module")
def dense_table():
    return build_table(DENSE, EPS, DELTA, target_name="dense")


# -------------------------------------------------------------- independent recomputation


def test_pensia_widths_from_the_published_formula(dense_table) -> None:
    # LEMMAS.md 6.3: layer 2i-1 has C n_{i-1} log(n_{i-1} n_i l / min(eps, delta)) neurons.
    n, L, m = DENSE.widths, DENSE.depth, min(EPS, DELTA)
    expected = []
    for i in range(1, L + 1):
        expected += [ceil_c_log(C_PRODUCT * n[i - 1], n[i - 1] * n[i] * L, m), n[i]]
    row = dense_table.row("pensia")
    assert row.applies and list(row.widths) == expected and row.source_depth == 2 * L
    assert row.source_params == params(n[0], expected, [1] * len(expected))
    assert row.factor == pytest.approx(row.source_params / (8 * 6 + 6 * 4))
    assert row.constant.value == pytest.approx(C_PRODUCT, rel=1e-12)
    assert row.constant.origin == "code-derived" and row.ticket_params is None


def test_orseau_widths_from_the_published_formula(dense_table) -> None:
    # LEMMAS.md 2.3: O(log(size·L/min(eps, delta))) neurons per target weight; C = 1 (order only).
    n, L, m = DENSE.widths, DENSE.depth, min(EPS, DELTA)
    expected = []
    for i in range(1, L + 1):
        expected += [ceil_c_log(n[i - 1] * n[i], n[i - 1] * n[i] * L, m), n[i]]
    row = dense_table.row("orseau")
    assert list(row.widths) == expected
    assert row.source_params == params(n[0], expected, [1] * len(expected))
    assert row.constant.value == 1.0 and row.constant.origin == "order only"


def test_malach_widths_from_the_published_formula(dense_table) -> None:
    # LEMMAS.md 6.4: O(d^5 l^2 eps^-2 log(d l / delta)), d the largest width; C = 1.
    n, L = DENSE.widths, DENSE.depth
    d = max(n)
    with mpmath.workdps(50):
        block = int(mpmath.ceil(mpmath.mpf(d) ** 5 * L**2 / mpmath.mpf(EPS) ** 2 * mpmath.log(mpmath.mpf(d * L) / mpmath.mpf(DELTA))))
    row = dense_table.row("malach")
    assert list(row.widths) == [block, n[1], block, n[2]]
    assert row.source_params == params(n[0], row.widths, [1] * 4)


def test_da_cunha_channels_from_the_published_formula() -> None:
    # LEMMAS.md 6.5: n_i = C log(d_i^2 c_{i-1} c_i l / min(eps, delta)); channels 2 n_i c_{i-1}, then c_i.
    c, k, L, m = CONV.widths, CONV.kernel_sizes, CONV.depth, min(EPS, DELTA)
    widths, kernels = [], []
    for i in range(1, L + 1):
        per = ceil_c_log(C_PRODUCT, k[i - 1] * c[i - 1] * c[i] * L, m)
        widths += [2 * per * c[i - 1], c[i]]
        kernels += [k[i - 1], 1]
    row = build_table(CONV, EPS, DELTA, target_name="conv").row("da_cunha")
    assert list(row.widths) == widths and list(row.kernel_sizes) == kernels
    assert row.source_params == params(c[0], widths, kernels)
    assert row.target_params == 2 * 4 * 9 + 4 * 3 * 4


def test_burkholz_2l_widths_follow_formula_7() -> None:
    shape = TargetShape((8, 6, 4))  # with biases
    row = build_table(shape, EPS, DELTA, target_name="biased").row("burkholz_2l")
    n = shape.widths
    problems = 2 * sum(n[j] * (n[j - 1] + 1) for j in (1, 2))  # ReLU: ± halves, + bias
    assert row.extra["subset_sum_problems"] == problems
    widths = []
    for j, eps_layer in zip((1, 2), row.extra["per_layer_eps"], strict=True):
        rho = ceil_c_log(C_PRODUCT, 1.0, min(eps_layer, DELTA / problems))
        widths += [2 * rho * (n[j - 1] + 1), n[j]]
    assert list(row.widths) == widths
    assert row.source_params == params(n[0], widths, [1] * 4, [True, False, True, False])
    assert sum(row.extra["per_layer_eps"]) < EPS


def test_burkholz_l_plus_1_widths_follow_formula_6() -> None:
    shape = TargetShape((8, 6, 5, 4))
    row = build_table(shape, EPS, DELTA, target_name="biased").row("burkholz_l_plus_1")
    n, N = shape.widths, row.extra["subset_sum_problems"]
    rho = [
        ceil_c_log(C_PRODUCT if j == 0 else C_UNIFORM, 1.0, min(e, DELTA / N))
        for j, e in enumerate(row.extra["per_layer_eps"])
    ]
    assert row.extra["rho"] == rho
    assert list(row.widths) == [2 * rho[0] * (n[0] + 1), rho[1] * (n[1] + 1), rho[2] * (n[2] + 1), n[3]]
    assert [value for _, value in row.constant.per_law] == pytest.approx([C_PRODUCT, C_UNIFORM])


# ------------------------------------------------------------------------------ constants


def _fitted_file() -> dict:
    return json.loads(resources.files("ltbounds").joinpath("data", "fitted_constants.json").read_text())


def test_fitted_constant_comes_from_the_shipped_fit_with_its_interval() -> None:
    product = _fitted_file()["laws"]["product"]
    table = build_table(DENSE, EPS, DELTA, target_name="dense", constant="fitted")
    row = table.row("pensia")
    n, L, m = DENSE.widths, DENSE.depth, min(EPS, DELTA)
    assert row.widths[0] == ceil_c_log(product["C"] * n[0], n[0] * n[1] * L, m)
    assert (row.constant.value, row.constant.low, row.constant.high) == (product["C"], product["C_low"], product["C_high"])
    assert row.constant.origin == "fitted" and "[" in row.constant.label()
    assert f"{product['trials']:,} trials per n" in row.constant.note
    assert table.row("malach").constant.origin == "order only"
    assert "conservative" in table.row("burkholz_l_plus_1").constant.note
    # the uniform fit reproduces docs/subsetsum.md: C = 3.909 [3.868, 3.909]
    uniform = _fitted_file()["laws"]["uniform"]
    assert (round(uniform["C"], 3), round(uniform["C_low"], 3), round(uniform["C_high"], 3)) == (3.909, 3.868, 3.909)
    assert product["C_low"] <= product["C"] <= product["C_high"]
    # the grids docs/tables.md states
    assert (uniform["trials"], uniform["n_grid"][0], uniform["n_grid"][-1], uniform["seed"]) == (100_000, 8, 24, 0)
    assert (product["trials"], product["n_grid"][0], product["n_grid"][-1], product["seed"]) == (20_000, 14, 30, 0)
    assert uniform["eps"] == product["eps"] == 0.01


def test_paper_constant_is_labelled_honestly() -> None:
    row = build_table(DENSE, EPS, DELTA, target_name="dense", constant="paper").row("pensia")
    assert row.constant.value == pytest.approx(C_PRODUCT)
    assert row.constant.origin == "code-derived (no paper value)"
    assert "no paper states" in row.constant.note


def test_constant_parsing() -> None:
    assert parse_constant("fitted") == "fitted" and parse_constant("4.5") == 4.5
    for bad in ("lueker", "-1", "0", "nan", "inf"):
        with pytest.raises(InvalidInput, match="constant"):
            parse_constant(bad)
    row = build_table(DENSE, EPS, DELTA, target_name="dense", constant=4.5).row("pensia")
    assert row.constant.origin == "user" and row.constant.value == 4.5


# ---------------------------------------------------------------------- applicability


def test_not_applicable_rows_say_why_and_carry_no_numbers() -> None:
    preset = get_preset("resnet20")
    table = build_table(preset.shape, 0.01, 0.01, target_name="resnet20")
    assert [row.theorem for row in table.rows] == list(ROW_KEYS)
    malach = table.row("malach")
    assert not malach.applies and malach.widths is None and malach.factor is None and malach.constant is None
    assert not_applicable_reasons("malach", preset.shape) == [
        "stated for targets without biases",
        "stated for dense targets; kernel_sizes has entries > 1",
        "no residual blocks in the theorem",
    ]
    assert "feed-forward" in table.row("burkholz_l_plus_1").reason
    assert table.row("burkholz_2l").applies
    assert table.row(MEASURED).reason == "not measured (shape only)"
    tanh = TargetShape((8, 6, 4), activation="tanh", has_bias=False)
    assert "ReLU" in build_table(tanh, EPS, DELTA, target_name="t").row("pensia").reason
    assert build_table(tanh, EPS, DELTA, target_name="t").row("burkholz_2l").applies


# -------------------------------------------------------------------------- measured row


def tiny_target() -> TargetNet:
    rng = np.random.default_rng(0)
    layers = [
        Dense(rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, 3)),
        Dense(rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, 2)),
    ]
    return TargetNet(layers, (2,), "relu", (-1.0, 1.0), name="tiny")


def test_measured_row_reports_the_real_source_and_ticket() -> None:
    from ltbounds.construct import construct

    target = tiny_target()
    shape, _ = shape_from_target(target, measured_norms=True)
    table = build_table(shape, 0.1, 0.1, target_name="tiny", target=target, measure=True, seed=3)
    row = table.row(MEASURED)
    ticket = construct(target, eps=0.1, delta=0.1, seed=3)
    assert row.applies and row.ticket_params == ticket.ticket_params
    assert row.source_params == ticket.source_params and row.widths == tuple(s.weight_shape[0] for s in ticket.specs)
    assert row.factor == pytest.approx(ticket.source_params / 17)
    assert row.extra["rho"] == ticket.metadata["rho"] and row.constant.value == 3.26
    assert row.weight_law.startswith("iid U[")
    with pytest.raises(InvalidInput, match="needs a real target"):
        build_table(shape, 0.1, 0.1, target_name="tiny", measure=True)


def test_measured_row_with_a_given_constant_uses_rho_from_that_constant() -> None:
    """ρ = ceil(C·log(1/min(t_min, δ/N))) written out by hand, against the table's measured row."""
    from ltbounds.construct import allot_tolerances

    target = tiny_target()
    shape, _ = shape_from_target(target, measured_norms=True)
    table = build_table(shape, 0.1, 0.1, target_name="tiny", target=target, measure=True, seed=3, constant=2.0)
    smallest = min(min(allot_tolerances(target, 0.1)), 0.1 / target.num_params.nonzero)
    assert table.row(MEASURED).extra["rho"] == math.ceil(2.0 * math.log(1.0 / smallest))


# ---------------------------------------------------------------------------- formats


def test_compress_widths() -> None:
    assert compress_widths([5184, 16, 5184, 16, 64]) == "(5,184, 16)×2, 64"
    assert compress_widths([16] * 6 + [10]) == "16×6, 10"
    assert compress_widths([1, 2, 3]) == "1, 2, 3"


def test_markdown_and_csv(dense_table) -> None:
    text = to_markdown(dense_table)
    table_lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 1 + len(ROW_KEYS)
    assert all(line.count(" | ") - line.count("\\|") == 8 for line in table_lines)
    records = list(csv.DictReader(io.StringIO(to_csv(dense_table))))
    assert [r["theorem"] for r in records] == list(ROW_KEYS)
    pensia = records[1]
    assert [int(w) for w in pensia["widths"].split()] == list(dense_table.row("pensia").widths)
    assert int(pensia["source_params"]) == dense_table.row("pensia").source_params


def test_json_rows_have_the_public_keys(dense_table) -> None:
    rows = json.loads(format_table(dense_table, "json"))
    assert isinstance(rows, list) and len(rows) == len(ROW_KEYS)
    for row in rows:
        assert {"theorem", "source_depth", "widths", "source_params", "factor", "applies", "constant", "citation", "ticket_params"} <= set(row)
        assert row["eps"] == EPS and row["delta"] == DELTA
    assert rows[1]["constant"]["origin"] == "code-derived" and rows[1]["widths"] == list(dense_table.row("pensia").widths)
    with pytest.raises(InvalidInput, match="format"):
        format_table(dense_table, "html")


# LaTeX ---------------------------------------------------------------------------------

_ALLOWED = {
    "textbackslash", "textasciitilde", "textasciicircum", "textbar", "textless", "textgreater",
    "times", "varepsilon", "delta", "phi", "rho", "lambda", "Sigma", "le", "ge", "ne", "to",
    "infty", "cdot", "ldots", "H", "hline", "begin", "end", "\\", "&", "%", "$", "#", "_",
    "{", "}", "'", '"',
}


def split_cells(line: str) -> list[str]:
    """Split one tabular row at unescaped & outside braces and math."""
    cells, current, depth, math_mode, index = [], "", 0, False, 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            current += line[index : index + 2]
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            assert depth >= 0, line
        elif char == "$":
            math_mode = not math_mode
        elif char == "&" and depth == 0 and not math_mode:
            cells.append(current)
            current = ""
            index += 1
            continue
        current += char
        index += 1
    assert depth == 0 and not math_mode, line
    cells.append(current)
    return cells


def parse_tabular(text: str) -> tuple[str, list[list[str]]]:
    """(column spec, rows of cells); asserts the text is a well-formed tabular."""
    assert text.isascii()
    body = [line for line in text.splitlines() if line and not line.startswith("%")]
    begin = re.fullmatch(r"\\begin\{tabular\}\{((?:[lrc]|p\{[0-9.]+cm\})+)\}", body[0])
    assert begin, body[0]
    assert body[-1] == r"\end{tabular}"
    spec = begin.group(1)
    columns = len(re.findall(r"[lrc]|p\{[^}]*\}", spec))
    rows = []
    for line in body[1:-1]:
        if line == r"\hline":
            continue
        assert line.endswith(r" \\"), line
        content = line[: -len(r" \\")]
        assert not content.lstrip().startswith("["), line  # would be read as \\[...]
        for command in re.findall(r"\\([A-Za-z]+|.)", content):
            assert command in _ALLOWED, (command, line)
        # no raw special characters outside their escapes (& splits cells, $ opens math)
        stripped = re.sub(r"\\([A-Za-z]+|.)", "", content)
        assert not set(stripped) & set("%#_^~"), line
        cells = split_cells(content)
        assert len(cells) == columns, (len(cells), columns, line)
        rows.append(cells)
    return spec, rows


def test_latex_is_a_well_formed_tabular(dense_table) -> None:
    resnet = build_table(get_preset("resnet20").shape, 0.01, 0.01, target_name="resnet_20 & co")
    for table in (dense_table, resnet):
        spec, rows = parse_tabular(to_latex(table))
        assert len(rows) == 1 + len(ROW_KEYS)
        assert rows[0][0].strip() == "theorem"
    _, rows = parse_tabular(to_latex(dense_table))
    assert rows[2][3].strip() == f"{dense_table.row('pensia').source_params:,}"


def test_latex_escape_handles_every_special() -> None:
    nasty = r"a_b & c% $d$ #e {f} ~ ^ \ | <= >= != < > × ε é 漢"
    escaped = latex_escape(nasty)
    assert escaped.isascii()
    line = f"\\begin{{tabular}}{{l}}\n{escaped} \\\\\n\\end{{tabular}}\n"
    _, rows = parse_tabular(line)
    assert len(rows) == 1
    assert r"\_" in escaped and r"\&" in escaped and r"\%" in escaped and r"$\le$" in escaped


# ----------------------------------------------------------------------------- sweeps


def test_parse_sweep() -> None:
    key, values = parse_sweep("eps=1e-1:1e-4")
    assert key == "eps" and len(values) == 13 and values[0] == 0.1 and values[-1] == 1e-4
    ratios = [b / a for a, b in zip(values, values[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios))
    assert parse_sweep("delta=0.1:0.001:3")[1] == pytest.approx([0.1, 0.01, 0.001])
    for bad in ("eps", "eps=1:2:x", "rho=1:2", "eps=-1:0.1", "delta=0.5:2", "eps=0.1:0.1", "eps=0.1:0.01:1"):
        with pytest.raises(InvalidInput):
            parse_sweep(bad)


def test_sweep_widths_grow_as_eps_shrinks() -> None:
    tables = sweep(DENSE, "eps", [0.1, 0.01, 0.001], eps=0.01, delta=0.01, target_name="dense")
    widths = [max(t.row("pensia").widths) for t in tables]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert [t.eps for t in tables] == [0.1, 0.01, 0.001]
    assert all("sweeps build no tickets" in t.row(MEASURED).reason for t in tables)


# ------------------------------------------------------------------- versions, reading back


def test_every_output_names_its_format_and_version(dense_table) -> None:
    assert TABLE_FORMAT_VERSION == 1
    assert to_markdown(dense_table).splitlines()[0] == "<!-- ltbounds-table format 1 -->"
    assert to_latex(dense_table).splitlines()[0] == "% ltbounds-table format 1"
    for row in json.loads(to_json(dense_table)):
        assert (row["format"], row["format_version"]) == ("ltbounds-table", 1)
    records = list(csv.DictReader(io.StringIO(to_csv(dense_table))))
    assert CSV_COLUMNS[-2:] == ("format", "format_version")
    assert {(r["format"], r["format_version"]) for r in records} == {("ltbounds-table", "1")}


@pytest.fixture(scope="module")
def tables_to_read(dense_table):
    """A code-constant table, a fitted one (intervals), a numeric one, and a 3-point sweep."""
    fitted = build_table(CONV, EPS, DELTA, target_name="conv, fitted", constant="fitted")
    numeric = build_table(DENSE, EPS, DELTA, target_name='a "quoted", name\nwith a line break', constant=2.5)
    return [dense_table, fitted, numeric], sweep(DENSE, "eps", [0.1, 0.01, 0.001], eps=EPS, delta=DELTA, target_name="dense")


def test_load_table_round_trips_json_and_csv(tmp_path, tables_to_read) -> None:
    singles, swept = tables_to_read
    for index, table in enumerate(singles):
        (tmp_path / f"{index}.json").write_text(to_json(table))
        (tmp_path / f"{index}.csv").write_text(to_csv(table))
        assert load_table(tmp_path / f"{index}.json") == table.as_rows()
        assert load_table(tmp_path / f"{index}.csv") == csv_records(table)
    rows = load_table(tmp_path / "1.csv")
    fitted = [row for row in rows if row["constant_low"] is not None]
    assert fitted and all(row["constant_low"] <= row["constant"] <= row["constant_high"] for row in fitted)
    assert all(row["widths"] == list(singles[1].row(row["theorem"]).widths) for row in fitted)
    assert rows[0]["source_depth"] is None and rows[0]["applies"] is False
    assert load_table(tmp_path / "2.json")[0]["constant_mode"] == 2.5
    (tmp_path / "sweep.csv").write_text(to_csv(swept))
    rows = load_table(tmp_path / "sweep.csv")
    assert rows == csv_records(swept) and len(rows) == 3 * len(ROW_KEYS)
    assert [row["eps"] for row in rows[:: len(ROW_KEYS)]] == [0.1, 0.01, 0.001]
    # any other suffix: the form is read from the content
    (tmp_path / "table.txt").write_text(to_json(singles[0]))
    (tmp_path / "table.out").write_text(to_csv(singles[0]))
    assert load_table(tmp_path / "table.txt") == singles[0].as_rows()
    assert load_table(tmp_path / "table.out") == csv_records(singles[0])


def _rewrite_json(text: str, change) -> str:
    rows = json.loads(text)
    for row in rows:
        change(row)
    return json.dumps(rows)


def test_load_table_refuses_unknown_and_missing_versions(tmp_path, dense_table) -> None:
    text_json, text_csv = to_json(dense_table), to_csv(dense_table)
    header, *lines = text_csv.splitlines()
    cases = {
        "newer.json": (_rewrite_json(text_json, lambda r: r.update(format_version=2)),
                       r"row 1 has format_version=2; this ltbounds reads format_version 1 \(written by a newer"),
        "zero.json": (_rewrite_json(text_json, lambda r: r.update(format_version=0)), "format_version=0;"),
        "text-version.json": (_rewrite_json(text_json, lambda r: r.update(format_version="1")), "format_version='1';"),
        "unversioned.json": (_rewrite_json(text_json, lambda r: [r.pop("format"), r.pop("format_version")]),
                             r"row 1 has format=<missing>; expected 'ltbounds-table' \(written before"),
        "other.json": (_rewrite_json(text_json, lambda r: r.update(format="ltbounds-coverage")),
                       "format='ltbounds-coverage'; expected 'ltbounds-table'"),
        "object.json": ('{"format": "ltbounds-table", "format_version": 7}', "format_version=7;"),
        "newer.csv": ("\n".join([header, *(line[: -1] + "2" for line in lines)]) + "\n",
                      "row 1 has format_version=2; this ltbounds reads format_version 1"),
        "unversioned.csv": ("\n".join(line.rsplit(",", 2)[0] for line in text_csv.splitlines()) + "\n",
                            r"\(no format column\) has format=<missing>; expected 'ltbounds-table'"),
        "other.csv": (text_csv.replace(",ltbounds-table,", ",ltbounds-coverage,"), "format='ltbounds-coverage'"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ModelFormatError, match=message) as caught:
            load_table(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value) and "\n" not in str(caught.value), name


def test_load_table_refuses_damaged_files(tmp_path, dense_table) -> None:
    for form, text in (("json", to_json(dense_table)), ("csv", to_csv(dense_table))):
        data = text.encode()
        original = load_table(_write(tmp_path / f"whole.{form}", data))
        for cut in range(0, len(data) - 1, 97):
            path = _write(tmp_path / f"cut.{form}", data[:cut])
            try:
                rows = load_table(path)
            except ModelFormatError as error:
                assert "\n" not in str(error)
                continue
            # only a CSV cut exactly at a line end reads, as a prefix of the rows (no end marker)
            assert form == "csv" and data[:cut].endswith(b"\n") and rows == original[: len(rows)], cut
    damaged = {
        "empty.csv": b"", "empty.json": b"", "null.json": b"null", "list.json": b"[]",
        "rows.json": b"[1, 2]", "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "nan.json": to_json(dense_table).replace('"eps": 0.05', '"eps": NaN').encode(),
        "latin1.csv": "target\xe9".encode("latin-1"), "noise.csv": bytes(range(256)),
        "header.csv": to_csv(dense_table).splitlines()[0].encode() + b"\n",
        "cells.csv": _csv_with(to_csv(dense_table), 1, "applies", "maybe"),
        "widths.csv": _csv_with(to_csv(dense_table), 2, "widths", "221 x 153"),
        "depth.csv": _csv_with(to_csv(dense_table), 2, "source_depth", "1e3"),
        "inf.csv": _csv_with(to_csv(dense_table), 2, "factor", "inf"),
        "short.csv": to_csv(dense_table).replace(",ltbounds-table,1\n", ",ltbounds-table\n", 1).encode(),
        "columns.csv": to_csv(dense_table).replace("max_width", "widest", 1).encode(),
        "keys.json": _rewrite_json(to_json(dense_table), lambda r: r.pop("widths")).encode(),
        "types.json": _rewrite_json(to_json(dense_table), lambda r: r.update(widths=[1, "2"])).encode(),
        "constant.json": _rewrite_json(to_json(dense_table), lambda r: r.update(constant={"value": "x"})).encode(),
    }
    for name, data in damaged.items():
        with pytest.raises(ModelFormatError) as caught:
            load_table(_write(tmp_path / name, data))
        assert "\n" not in str(caught.value), name
    for form, text in (("md", to_markdown(dense_table)), ("tex", to_latex(dense_table))):
        with pytest.raises(ModelFormatError, match="is the Markdown or LaTeX form; load_table reads the JSON and CSV"):
            load_table(_write(tmp_path / f"table.{form}", text.encode()))
    for missing in (tmp_path / "nope.json", tmp_path):
        with pytest.raises(ModelFormatError, match="no such file"):
            load_table(missing)
    with pytest.raises(ModelFormatError, match="over the cap max_bytes=100"):
        load_table(tmp_path / "whole.json", max_bytes=100)
    assert issubclass(ModelFormatError, LtboundsError)


def _csv_with(text: str, row: int, column: str, value: str) -> bytes:
    """``text`` (CSV) with one cell replaced, and checked to differ."""
    records = list(csv.reader(io.StringIO(text)))
    records[row][records[0].index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    assert buffer.getvalue() != text
    return buffer.getvalue().encode()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
