"""Per-layer error growth of a ticket: the construction's prediction against what is measured.

The composition lemma (LEMMAS.md 4) predicts, layer by layer, how far each carried copy of a
target unit may drift from that unit: the construction records that prediction per match
(``Ticket.matches[k]["error"]``: the layer's largest pre-activation error bound times φ's
Lipschitz constant). Here the same quantity is *measured*: at sampled domain inputs (and the
certify witnesses), the largest ``|ĥ_c(x) − h_u(x)|`` over the copies ``c`` the ticket carries
for target unit ``u`` after each step's φ and pooling. The last step carries the outputs one to
one, so its measured value is the output error at those inputs. Statistical only: these are
errors seen at inputs, not bounds.

One row per step of the alignment: a plain transition (a target linear layer) or, for
residual targets whose tickets record their copies, a whole residual block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ltbounds.certify._alignment import Alignment, BlockTransition

#: Domain inputs at which the per-layer errors are measured (besides the witnesses).
GROWTH_SAMPLES = 256
#: Bytes the layer outputs of one batch may take (both networks, every layer).
GROWTH_BATCH_BYTES = 256 * 2**20


def _steps(alignment: Alignment) -> list[Any]:
    if alignment.residual:
        return list(alignment.steps or [])
    return list(alignment.transitions)


def _predicted(alignment: Alignment, ticket: Any) -> list[float | None]:
    """The construction's per-step prediction: the error recorded with the step's last match."""
    matches = list(getattr(ticket, "matches", None) or [])
    predicted: list[float | None] = []
    position = 0
    for step in _steps(alignment):
        position += len(step.branch) if isinstance(step, BlockTransition) else 1
        index = position - 1
        value = matches[index].get("error") if 0 <= index < len(matches) else None
        predicted.append(None if value is None else float(value))
    return predicted


def _output_index(layer: int, after: tuple[int, ...]) -> int:
    return max((layer, *after))


def _batch_size(alignment: Alignment) -> int:
    per_sample = 8 * sum(math.prod(shape) for net in (alignment.target, alignment.ticket_net) for shape in net.shapes)
    return int(max(1, min(512, GROWTH_BATCH_BYTES // max(per_sample, 1))))


def measure_growth(alignment: Alignment, inputs: np.ndarray) -> list[float]:
    """Per step, the largest ``|ĥ_c − h_u|`` over the carried copies and the given inputs."""
    steps = _steps(alignment)
    target, ticket_net = alignment.target, alignment.ticket_net
    worst = np.zeros(len(steps))
    size = _batch_size(alignment)
    for start in range(0, len(inputs), size):
        x = np.asarray(inputs[start:start + size], dtype=np.float64)
        mine = target.forward_all(x)
        theirs = ticket_net.forward_all(x)
        for k, step in enumerate(steps):
            h = mine[_output_index(step.target_layer, step.after)].reshape(len(x), -1)
            h_hat = theirs[_output_index(step.source_layer, step.source_after)]
            carried = step.outgoing
            positions = max(1, math.prod(carried.spatial))
            if carried.spatial:
                h_hat = h_hat[:, carried.channels].reshape(len(x), -1)
                h = h.reshape(len(x), -1, positions)[:, carried.units].reshape(len(x), -1)
            else:
                h_hat = h_hat.reshape(len(x), -1)[:, carried.channels]
                h = h[:, carried.units]
            worst[k] = max(worst[k], float(np.max(np.abs(h_hat - h), initial=0.0)))
    return [float(value) for value in worst]


def layer_growth(alignment: Alignment, ticket: Any, inputs: np.ndarray) -> list[dict[str, Any]]:
    """Rows ``{"step", "layer", "what", "predicted", "measured"}``, one per step (see module).

    Empty for residual tickets that record no copies (nothing is carried per copy).
    """
    steps = _steps(alignment)
    if not steps:
        return []
    measured = measure_growth(alignment, inputs)
    predicted = _predicted(alignment, ticket)
    rows = []
    for k, step in enumerate(steps):
        layer = alignment.target.layers[step.target_layer]
        rows.append({
            "step": k,
            "layer": int(step.target_layer),
            "what": layer.describe(),
            "predicted": predicted[k],
            "measured": measured[k],
        })
    return rows


def plot_growth(rows: list[dict[str, Any]], path: Any, *, eps: float, certified: float, title: str) -> None:
    """Predicted and measured per-layer errors on a log scale, with ε and the certified bound.

    Writes a PNG to ``path`` (the caller makes the write atomic). Needs matplotlib.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    from ltbounds.tables import plot_metadata  # noqa: PLC0415

    figure = Figure(figsize=(max(5.5, 1.1 * len(rows) + 2.5), 4.2), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(rows))
    labels = [f"{row['step']}: layer {row['layer']}\n{row['what'].split(',')[0]}" for row in rows]
    predicted = [np.nan if row["predicted"] is None else max(row["predicted"], 1e-300) for row in rows]
    measured = [max(row["measured"], 1e-300) for row in rows]
    axes.plot(positions, predicted, marker="o", label="predicted (construction, composition lemma)")
    axes.plot(positions, measured, marker="s", label="measured (largest copy error at sampled inputs)")
    if rows and math.isfinite(certified):
        axes.plot([positions[-1]], [certified], marker="*", markersize=12, linestyle="none", label="certified output bound")
    axes.axhline(eps, color="black", linestyle="--", linewidth=1, label=f"ε = {eps:g}")
    axes.set_yscale("log")
    axes.set_xticks(positions, labels, fontsize=7)
    axes.set_ylabel("error per carried copy (∞-norm)")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.savefig(path, format="png", dpi=120, metadata=plot_metadata())


__all__ = ["GROWTH_SAMPLES", "layer_growth", "measure_growth", "plot_growth"]
