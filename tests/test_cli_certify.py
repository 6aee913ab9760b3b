"""``ltbounds certify`` as a user runs it: table, JSON, report file, exit codes."""

from __future__ import annotations

import json

import pytest
from _small_nets import small_conv

from ltbounds.certify import MethodBound, _core
from ltbounds.cli import main
from ltbounds.construct import construct
from ltbounds.nets.io import save_npz

PUBLIC_KEYS = {
    "target", "ticket", "eps", "sampled_error", "attacked_error", "certified_error", "certified_by",
    "margin", "verdict", "eps_status", "samples", "seconds", "methods",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certify")
    target = small_conv(seed=1, name="cli1")
    save_npz(target, folder / "target.npz")
    save_npz(small_conv(seed=2, name="cli2"), folder / "other.npz")
    construct(target, eps=0.5, rho=5, seed=3, param_eps=0.02).save(folder / "ticket.npz")
    return folder


def test_json_has_the_public_keys_and_the_sandwich_holds(files, capsys) -> None:
    code = main(["certify", str(files / "target.npz"), str(files / "ticket.npz"), "--samples", "500",
                 "--restarts", "2", "--steps", "5", "--budget", "2", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert PUBLIC_KEYS <= set(document)
    assert set(document["methods"]) == {"composition", "ibp", "separate"}
    assert document["sampled_error"] <= document["certified_error"]
    assert document["attacked_error"] <= document["certified_error"]
    assert document["verdict"] in {"CERTIFIED", "TESTED", "UNKNOWN"}
    assert document["margin"] == pytest.approx(document["eps"] - document["certified_error"])


def test_table_and_report_file(files, capsys) -> None:
    report = files / "out" / "report.json"
    code = main(["certify", str(files / "target.npz"), str(files / "ticket.npz"), "--samples", "200",
                 "--restarts", "1", "--steps", "2", "--budget", "1", "--method", "separate", "-o", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "sampled" in out and "certified: separate" in out and "eps" in out
    written = json.loads(report.read_text())
    assert len(written["witness_inputs"]["sampled_linf"]) == 1
    assert not list(report.parent.glob(".*.tmp"))


def test_a_ticket_for_another_target_exits_1_with_one_line(files, capsys) -> None:
    code = main(["certify", str(files / "other.npz"), str(files / "ticket.npz"), "--samples", "10"])
    err = capsys.readouterr().err
    assert code == 1
    assert "fingerprint" in err and len(err.strip().splitlines()) == 1


def test_unknown_method_exits_1(files, capsys) -> None:
    code = main(["certify", str(files / "target.npz"), str(files / "ticket.npz"), "--method", "magic"])
    assert code == 1 and "method='magic'" in capsys.readouterr().err


def test_a_wrong_bound_exits_3_with_falsified(files, capsys, monkeypatch) -> None:
    monkeypatch.setitem(_core._BUILTIN, "separate", lambda context: MethodBound("separate", 0.0, 0.0))
    code = main(["certify", str(files / "target.npz"), str(files / "ticket.npz"), "--samples", "100",
                 "--restarts", "1", "--steps", "1", "--method", "separate", "--json"])
    captured = capsys.readouterr()
    assert code == 3
    assert json.loads(captured.out)["verdict"] == "FALSIFIED"
    assert "FALSIFIED" in captured.err


def test_report_folder_has_markdown_json_and_the_growth_figure(files, capsys) -> None:
    folder = files / "report-folder"
    code = main(["certify", str(files / "target.npz"), str(files / "ticket.npz"), "--samples", "300",
                 "--restarts", "1", "--steps", "2", "--budget", "1", "--method", "separate",
                 "--report", str(folder), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    growth = document["layer_growth"]
    assert [row["step"] for row in growth] == [0, 1]
    assert set(growth[0]) == {"step", "layer", "what", "predicted", "measured"}
    assert growth[-1]["measured"] >= document["attacked_error"] * (1 - 1e-9)
    written = json.loads((folder / "certify.json").read_text())
    assert written["layer_growth"] == growth
    markdown = (folder / "certify.md").read_text()
    assert "## Per-layer error growth" in markdown and "error_growth.png" in markdown
    assert (folder / "error_growth.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(folder.glob(".*.tmp"))
