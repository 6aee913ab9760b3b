"""``ltbounds prove``: the shipped proofs run green and every verdict is re-derived."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _lemma_rederive import rederive

from ltbounds.cli import main
from ltbounds.lemmas.proofs import discover, load_proof

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "wrong_obligation.toml"


@pytest.fixture(scope="module")
def shipped() -> list[dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "ltbounds", "prove", str(ROOT / "proofs"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_shipped_proofs_pass(shipped) -> None:
    """Every shipped obligation holds (its speed is in benchmarks/bench_cli.py)."""
    documents = shipped
    assert documents
    for document in documents:
        assert {"proof", "obligation", "method", "verdict", "seconds"} <= set(document)
        assert document["verdict"] != "FALSIFIED"
    verdicts = {(d["proof"], d["obligation"]): d["verdict"] for d in documents}
    # The acceptance: these are PROVED, the Taylor remainders CERTIFIED.
    assert verdicts[("activation_facts", "relu-lipschitz")] == "PROVED"
    assert verdicts[("burkholz_l_plus_1", "relu-identity")] == "PROVED"
    assert verdicts[("composition", "unrolled-induction")] == "PROVED"
    assert verdicts[("composition", "layer-step")] == "PROVED"
    assert verdicts[("composition", "residual-rule")] == "PROVED"
    for name in ("tanh", "sigmoid", "gelu", "silu"):
        assert verdicts[("burkholz_l_plus_1", f"linear-regime-{name}")] == "CERTIFIED"
    unknown = [d for d in documents if d["verdict"] == "UNKNOWN"]
    assert all(d["method"] == "cited" for d in unknown)


def test_every_shipped_verdict_is_rederived_independently(shipped) -> None:
    documents = shipped
    by_key = {(d["proof"], d["obligation"]): d for d in documents}
    from ltbounds.verdict import Status, Verdict

    for path in discover(ROOT / "proofs"):
        proof = load_proof(path)
        for obligation in proof.obligations:
            document = by_key[(proof.name, obligation.id)]
            verdict = Verdict(
                Status(document["verdict"]),
                document["method"],
                document["detail"],
                counterexample=document["counterexample"],
                samples=document["samples"],
                extra={"requirement": document["requirement"]} if "requirement" in document else {},
            )
            rederive(obligation.lemma, verdict, samples=10)


def test_wrong_obligation_fixture_exits_3_with_counterexamples(capsys) -> None:
    code = main(["prove", str(FIXTURE), "--json"])
    assert code == 3
    documents = json.loads(capsys.readouterr().out)
    assert documents and all(d["verdict"] == "FALSIFIED" and d["counterexample"] for d in documents)


def test_table_output_and_counterexample_lines(capsys) -> None:
    code = main(["prove", str(FIXTURE)])
    out = capsys.readouterr().out
    assert code == 3
    assert "FALSIFIED" in out and "counterexample" in out


def test_missing_path_is_one_line_error(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ltbounds", "prove", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert "does not exist" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_malformed_file_is_one_line_error(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[proof]\ntitle = 1\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "ltbounds", "prove", str(path)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 1
    assert str(path) in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_default_path_is_proofs_of_the_current_directory(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["prove"]) == 1
    assert "proofs" in capsys.readouterr().err
