"""Sphinx extension: the bound tables of ``docs/tables.md``, computed during the build.

At ``config-inited`` this writes fragments ``docs/_generated/table_*.inc`` (ignored by git;
the ``.inc`` suffix keeps them from becoming pages of their own) with
:func:`ltbounds.tables.build_table` and :func:`ltbounds.tables.to_markdown`, and, when
matplotlib is importable, a sweep plot. ``docs/tables.md`` pulls them in with MyST's
``{include}``. Nothing is retyped: every number on that page comes from the code of this
build.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
OUT = DOCS / "_generated"

EPS = 0.01
DELTA = 0.01


def _write(name: str, text: str) -> None:
    target = OUT / name
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def _preset_table(name: str, constant: str) -> str:
    from ltbounds.presets import get_preset
    from ltbounds.tables import build_table, to_markdown

    preset = get_preset(name)
    table = build_table(preset.shape, EPS, DELTA, target_name=name, constant=constant, caveats=preset.caveats)
    return to_markdown(table)


def _target_table(name: str) -> str:
    from ltbounds.nets.resolve import resolve_target
    from ltbounds.presets import shape_from_target
    from ltbounds.tables import build_table, to_markdown

    target = resolve_target(name)
    shape, caveats = shape_from_target(target, measured_norms=True)
    table = build_table(
        shape, EPS, DELTA, target_name=name, constant="code", caveats=caveats,
        target=target, measure=True, seed=0,
    )
    return to_markdown(table)


def _presets_list() -> str:
    from ltbounds.presets import get_preset, list_presets

    lines = ["| preset | what | widths n_0..n_L | kernel entries k_l | target params | source |", "|---|---|---|---|---:|---|"]
    details = []
    for name in list_presets():
        preset = get_preset(name)
        shape = preset.shape
        source = preset.source.replace("|", "\\|")
        lines.append(
            f"| `{name}` | {preset.title} | {', '.join(map(str, shape.widths))} | "
            f"{', '.join(map(str, shape.kernel_sizes))} | {shape.target_params:,} | {source} |"
        )
        if name.startswith("digits_"):
            continue
        details += [f"**`{name}`** — {preset.title}:", ""]
        details += [f"{index}. {layer}" for index, layer in enumerate(preset.layers, 1)]
        details.append("")
        if shape.residual_blocks:
            spans = ", ".join(f"{first}-{last}" for first, last in shape.residual_blocks)
            details += [f"Identity-skip residual spans (layers): {spans}.", ""]
        details += [f"*Caveat:* {caveat}." for caveat in preset.caveats]
        details.append("")
    return "\n".join(lines) + "\n\n" + "\n".join(details) + "\n"


def _sweep_fragment() -> str:
    from ltbounds._io_util import atomic_path
    from ltbounds.presets import get_preset
    from ltbounds.tables import parse_sweep, plot_sweep, sweep

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "*(The sweep plot is drawn when matplotlib is installed; it was not for this build.)*\n"
    key, values = parse_sweep("eps=1e-1:1e-4")
    preset = get_preset("digits_mlp_relu")
    shape = type(preset.shape).from_dict({**preset.shape.as_dict(), "has_bias": False})
    tables = sweep(shape, key, values, eps=EPS, delta=DELTA, target_name="digits_mlp_relu without biases")
    with atomic_path(OUT / "table_sweep.png") as temporary:
        plot_sweep(tables, key, temporary)
    return "```{image} /_generated/table_sweep.png\n:alt: Largest source width against 1/ε, one line per theorem\n```\n"


def generate(app=None, config=None) -> None:
    OUT.mkdir(exist_ok=True)
    _write("table_presets.inc", _presets_list())
    _write("table_resnet20.inc", _preset_table("resnet20", "code"))
    _write("table_resnet20_fitted.inc", _preset_table("resnet20", "fitted"))
    _write("table_mlp_paper.inc", _mlp_table())
    _write("table_digits_cnn_relu.inc", _target_table("digits_cnn_relu"))
    _write("table_sweep.inc", _sweep_fragment())


def _mlp_table() -> str:
    from ltbounds.presets import get_preset
    from ltbounds.tables import build_table, to_markdown

    preset = get_preset("digits_mlp_relu")
    shape = type(preset.shape).from_dict({**preset.shape.as_dict(), "has_bias": False})
    table = build_table(
        shape, EPS, DELTA, target_name="digits_mlp_relu without biases (--no-bias)", constant="paper",
        caveats=("preset changed: has_bias=False, so that the classical dense theorems apply",),
    )
    return to_markdown(table)


def setup(app):
    app.connect("config-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
