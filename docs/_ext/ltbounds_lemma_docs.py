"""Sphinx extension: write the lemma, theorem and proof pages from the objects themselves.

At ``config-inited`` this writes ``docs/_generated/*.md`` (ignored by git) from
``ltbounds.lemmas``: every registered lemma at its documentation examples, rendered with
``Lemma.latex()`` and its source; every width theorem with its formula, assumptions and an
example requirement; every proof file under ``proofs/`` with its obligations and the verdicts
of a run made during the build. Nothing is retyped, so the pages cannot drift from the code.
"""

from __future__ import annotations

import inspect
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
ROOT = DOCS.parent
OUT = DOCS / "_generated"

FAMILIES = {
    "subsetsum": "Subset-sum concentration",
    "activation": "Activation approximation",
    "composition": "Composition and error propagation",
    "widths": "Width requirement",
}


def _docstring(function) -> str:
    text = inspect.cleandoc(function.__doc__ or "")
    return text.split("\n\n")[0].replace("\n", " ")


def _lemma_block(lemma) -> list[str]:
    lines = [f"### {lemma.title}", "", f"`{lemma.name}`", "", "$$", lemma.latex(), "$$", ""]
    lines.append(f"*Source:* {lemma.source.citation()}")
    if lemma.source.note:
        lines.append(f"({lemma.source.note})")
    lines.append("")
    if lemma.parameters:
        domains = ", ".join(f"${parameter.domain_latex()}$" for parameter in lemma.parameters)
        lines += [f"*Parameters:* {domains}", ""]
    if lemma.box:
        box = " × ".join(f"{name} ∈ [{low:g}, {high:g}]" for name, low, high in lemma.box)
        lines += [f"*Stated box:* {box}", ""]
    if lemma.notes and not lemma.notes.startswith("$$"):
        lines += [f"*Notes:* {lemma.notes}", ""]
    return lines


def write_lemmas_page() -> str:
    from ltbounds.lemmas.registry import entries

    lines = [
        "# Lemma library",
        "",
        "Generated from `ltbounds.lemmas` at build time: each statement below is "
        "`Lemma.latex()` of the registered object, with the source recorded on it "
        "(VERBATIM, CODE, RECONSTRUCTED, DERIVED or STANDARD, as in LEMMAS.md). "
        "`ltbounds prove` checks them; see {doc}`proofs` for the verdicts.",
        "",
    ]
    for family, heading in FAMILIES.items():
        lines += [f"## {heading}", ""]
        for entry in entries(family):
            if entry.name == "widths.requirement":
                lines += ["See {doc}`theorems` for the width theorems and their requirements.", ""]
                continue
            lines += [f"*{_docstring(entry.build)}*", ""]
            for example in entry.examples:
                lines += _lemma_block(entry.build(**example))
    return "\n".join(lines) + "\n"


def write_theorems_page() -> str:
    from ltbounds.lemmas.widths import THEOREMS, TargetShape

    example = TargetShape(
        (1, 32, 32, 10),
        kernel_sizes=(9, 9, 784),
        activation="relu",
        input_bound=2.83,
        weight_norms=(4.9376, 16.3816, 542.29),
        bias_bound=0.627,
    )
    dense = TargetShape((784, 100, 10), has_bias=False)
    lines = [
        "# Width theorems",
        "",
        "Generated from `ltbounds.lemmas.widths.THEOREMS`. Every formula is LEMMAS.md sections 2 "
        "and 6 as written and is RECONSTRUCTED (the full texts of the 2022 Burkholz papers were not "
        "available). The constant C is a parameter with its provenance: below, the code-derived "
        "values of LEMMAS.md 1.3 (1 for the theorems whose O(.) constant is not given).",
        "",
    ]
    for theorem in THEOREMS.values():
        lines += [f"## {theorem.name}", "", f"*Source:* {theorem.citation}", "", "$$", theorem.formula, "$$", ""]
        lines += ["*Assumptions:* " + "; ".join(theorem.assumptions), ""]
    lines += [
        "## Example requirements (eps = delta = 0.01)",
        "",
        "| theorem | target | source depth | source widths | source params | factor | C (origin) |",
        "|---|---|---|---|---|---|---|",
    ]
    for theorem in THEOREMS.values():
        for label, shape in (("MNIST CNN 1-32-32-10", example), ("MLP 784-100-10, no bias", dense)):
            applicable, reason = theorem.applies(shape)
            if not applicable:
                lines.append(f"| {theorem.key} | {label} | — | not applicable: {reason} | | | |")
                continue
            requirement = theorem.requirement(shape, 0.01, 0.01)
            widths = ", ".join(str(w) for w in requirement.widths)
            constants = "; ".join(f"{value:.3g} ({origin})" for _, value, origin in requirement.constants)
            lines.append(
                f"| {theorem.key} | {label} | {requirement.source_depth} | {widths} | "
                f"{requirement.source_params:,} | {requirement.factor:.3g} | {constants} |"
            )
    return "\n".join(lines) + "\n"


def write_proofs_page() -> str:
    from ltbounds.lemmas.proofs import discover, load_proof, run_proof

    lines = [
        "# Proofs",
        "",
        "Generated from the files under `proofs/`, with the verdicts of `ltbounds prove` run "
        "during this build. PROVED: a sympy derivation or z3 reduced it to True; CERTIFIED: arb "
        "ball arithmetic (outward rounded) over the stated box; UNKNOWN with method `cited`: a "
        "premise taken from the literature.",
        "",
    ]
    for path in discover(ROOT / "proofs"):
        proof = load_proof(path)
        results = {result.obligation: result for result in run_proof(proof)}
        lines += [f"## {proof.title}", "", f"`proofs/{path.name}` — {proof.source}", "", proof.claim, ""]
        lines += ["| step | obligation | lemma | method | verdict |", "|---|---|---|---|---|"]
        for index, obligation in enumerate(proof.obligations, start=1):
            result = results[obligation.id]
            statement = " ".join(obligation.statement.split()).replace("|", "\\|")
            lines.append(
                f"| {index} | {statement} | `{obligation.lemma.name}` | {result.verdict.method} | "
                f"**{result.verdict.status.value}** |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def write_api_page() -> str:
    modules = [
        "ltbounds.lemmas.base",
        "ltbounds.lemmas.subsetsum",
        "ltbounds.lemmas.activation",
        "ltbounds.lemmas.composition",
        "ltbounds.lemmas.widths",
        "ltbounds.lemmas.proofs",
    ]
    lines = ["# Lemma library API", ""]
    for module in modules:
        lines += ["```{eval-rst}", f".. automodule:: {module}", "   :members:", "```", ""]
    return "\n".join(lines)


def generate(app=None, config=None) -> None:
    OUT.mkdir(exist_ok=True)
    pages = {
        "lemmas.md": write_lemmas_page,
        "theorems.md": write_theorems_page,
        "proofs.md": write_proofs_page,
        "lemmas_api.md": write_api_page,
    }
    for name, writer in pages.items():
        text = writer()
        target = OUT / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("config-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
