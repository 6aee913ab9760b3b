"""Proof files: safe loading, one-line refusals naming the file, running in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.lemmas.proofs import MAX_PROOF_BYTES, any_falsified, discover, load_proof, run_proof
from ltbounds.verdict import Status

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "wrong_obligation.toml"

GOOD = """
[proof]
title = "t"
source = "s"
claim = "c"

[[obligation]]
id = "relu"
statement = "x = relu(x) - relu(-x)"
lemma = "activation.relu_identity"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proof.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_and_runs(tmp_path) -> None:
    proof = load_proof(_write(tmp_path, GOOD))
    assert proof.name == "proof" and len(proof.obligations) == 1
    (result,) = run_proof(proof)
    assert result.verdict.status is Status.PROVED
    document = result.to_dict()
    assert {"proof", "obligation", "method", "verdict", "seconds"} <= set(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        ("extra = 1\n" + GOOD, "unknown top-level key 'extra'"),
        (GOOD.replace('claim = "c"', 'claim = "c"\nauthor = "x"'), "[proof] has unknown key 'author'"),
        (GOOD.replace('id = "relu"', 'id = "relu"\nrun = "os.system"'), "unknown key 'run'"),
        (GOOD.replace("activation.relu_identity", "no.such"), "lemma 'no.such' is not known"),
        (GOOD + GOOD[GOOD.index("[[obligation]]"):], "duplicate id"),
        (GOOD.replace('statement = "x = relu(x) - relu(-x)"\n', ""), "statement must be a non-empty string"),
        (GOOD + 'method = "oracle"\n', "method='oracle'"),
        (GOOD + 'parameters = { activation = "relu" }\n', "takes no parameter 'activation'"),
        (GOOD + "box = { y = [1, 0] }\n", "must be [low, high]"),
        (GOOD + "box = { y = [0, 1] }\n", "has no parameter 'y'"),
        (GOOD + "samples = -3\n", "samples=-3"),
        (GOOD.replace('title = "t"', 'title = "t"\ntheorem = "nobody2020"'), "theorem='nobody2020'"),
        ("[proof]\ntitle='t'\nsource='s'\nclaim='c'\n", "no [[obligation]] entries"),
    ],
)
def test_malformed_files_are_refused_in_one_line(tmp_path, text, message) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ModelFormatError) as caught:
        load_proof(path)
    text = str(caught.value)
    assert str(path) in text and message in text
    assert "\n" not in text


def test_instance_parameter_errors_name_the_obligation(tmp_path) -> None:
    text = GOOD.replace("activation.relu_identity", "activation.linear_regime") + 'parameters = { activation = "relu" }\n'
    with pytest.raises(ModelFormatError, match=r"obligation 1 \('relu'\).*second_derivative_bound"):
        load_proof(_write(tmp_path, text))


def test_oversized_and_binary_files(tmp_path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_PROOF_BYTES + 1))
    with pytest.raises(ModelFormatError, match="byte limit"):
        load_proof(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ModelFormatError, match="not UTF-8"):
        load_proof(binary)


def test_discover(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        discover(tmp_path / "missing")
    with pytest.raises(InvalidInput, match="no \\*.toml"):
        discover(tmp_path)
    files = discover(ROOT / "proofs")
    assert {f.stem for f in files} >= {"burkholz_l_plus_1", "burkholz_2l", "pensia", "da_cunha"}


def test_fixture_is_falsified_with_counterexamples() -> None:
    results = run_proof(load_proof(FIXTURE))
    assert any_falsified(results)
    assert all(r.verdict.status is Status.FALSIFIED and r.verdict.counterexample for r in results)


def test_every_shipped_proof_file_loads() -> None:
    for path in discover(ROOT / "proofs"):
        proof = load_proof(path)
        assert proof.obligations and proof.claim
