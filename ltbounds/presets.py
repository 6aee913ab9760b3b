"""Target shapes of common networks, for bound tables without weights.

A preset is a :class:`~ltbounds.lemmas.widths.TargetShape` (widths ``n_0..n_L``, kernel entries
``k_l``, activation, biases, identity-skip residual spans) plus the layer list it was read
from and the caveats of that reading. The width theorems need nothing else; a preset never
loads weights, so its weight norms are the papers' normalisation (every ``||W_l||_inf->inf
<= 1``, stated as an assumption in each requirement) and its input bound is 1.

Conventions (LEMMAS.md section 5):

* widths count channels; a convolution's ``k_l`` is its number of kernel entries (9 for 3×3);
* a dense layer after a flatten reads ``n_{l-1}`` channels of a spatial map of ``s`` entries:
  it is entered as ``k_l = s`` (a convolution whose kernel covers the map), so that
  ``n_{l-1}·k_l`` is its true fan-in and the parameter count is exact;
* pooling layers have no parameters and are not layers of the shape;
* batch normalisation is folded into the convolution before it, which then has a bias;
* only identity skips between equal widths are residual spans of a ``TargetShape``; a block
  with a projection skip enters as plain layers, and the preset says so in ``caveats``.

The embedded targets (:func:`ltbounds.nets.embedded.list_embedded`) are presets too, read
from :meth:`ltbounds.nets.TargetNet.shape_summary` by :func:`shape_from_target`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltbounds.errors import InvalidInput
from ltbounds.lemmas.widths import TargetShape


@dataclass(frozen=True)
class Preset:
    """A named target shape with its provenance.

    Attributes
    ----------
    name : str
        Key for ``ltbounds table --preset NAME``.
    title : str
        One-line description.
    shape : TargetShape
        What the width theorems read.
    layers : tuple of str
        The architecture, one linear layer (or block) per entry, as documented.
    source : str
        Where the architecture comes from.
    caveats : tuple of str
        What the shape does not capture.
    """

    name: str
    title: str
    shape: TargetShape
    layers: tuple[str, ...]
    source: str
    caveats: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "name": self.name,
            "title": self.title,
            "shape": self.shape.as_dict(),
            "layers": list(self.layers),
            "source": self.source,
            "caveats": list(self.caveats),
            "target_params": self.shape.target_params,
        }


def _lenet5() -> Preset:
    return Preset(
        "lenet5",
        "LeNet-5 (ReLU, max-pooling variant), 1×32×32 input",
        TargetShape((1, 6, 16, 120, 84, 10), kernel_sizes=(25, 25, 25, 1, 1), activation="relu"),
        (
            "conv 5×5, 1→6, bias; 2×2 pool",
            "conv 5×5, 6→16 (full connectivity), bias; 2×2 pool → 16×5×5",
            "dense 400→120 (entered as n=16, k=25), bias",
            "dense 120→84, bias",
            "dense 84→10, bias",
        ),
        "LeCun, Bottou, Bengio, Haffner (1998), Proc. IEEE 86(11), Fig. 2",
        (
            "modern variant: ReLU instead of the scaled tanh, full C3 connectivity instead of the "
            "sparse table, a dense output layer instead of the RBF units (61,706 parameters)",
        ),
    )


def _conv6() -> Preset:
    return Preset(
        "conv6",
        "VGG-like Conv-6 (ReLU, no biases), 3×32×32 input",
        TargetShape(
            (3, 64, 64, 128, 128, 256, 256, 256, 256, 10),
            kernel_sizes=(9, 9, 9, 9, 9, 9, 16, 1, 1),
            activation="relu",
            has_bias=False,
        ),
        (
            "conv 3×3, 3→64", "conv 3×3, 64→64; 2×2 max-pool",
            "conv 3×3, 64→128", "conv 3×3, 128→128; 2×2 max-pool",
            "conv 3×3, 128→256", "conv 3×3, 256→256; 2×2 max-pool → 256×4×4",
            "dense 4096→256 (entered as n=256, k=16)", "dense 256→256", "dense 256→10",
        ),
        "Frankle and Carbin (2019), ICLR, Fig. 2 (Conv-6, a VGG-style network)",
        (
            "without biases, a choice made here: the classical theorems (Malach, Pensia, Orseau, "
            "da Cunha) are stated for bias-free targets; --bias adds them",
        ),
    )


_RESNET20_LAYERS = (
    "conv 3×3, 3→16, folded BN bias",
    *(f"stage 1 block {b}: conv 3×3 16→16, conv 3×3 16→16, identity skip" for b in (1, 2, 3)),
    "stage 2 block 1: conv 3×3 16→32 stride 2, conv 3×3 32→32, 1×1 projection skip 16→32 stride 2",
    *(f"stage 2 block {b}: conv 3×3 32→32, conv 3×3 32→32, identity skip" for b in (2, 3)),
    "stage 3 block 1: conv 3×3 32→64 stride 2, conv 3×3 64→64, 1×1 projection skip 32→64 stride 2",
    *(f"stage 3 block {b}: conv 3×3 64→64, conv 3×3 64→64, identity skip" for b in (2, 3)),
    "global average pool; dense 64→10, bias",
)


def _resnet20() -> Preset:
    widths = (3, 16, *([16] * 6), *([32] * 6), *([64] * 6), 10)
    # Block b (0..8) is layers 2+2b and 3+2b; blocks 3 and 6 downsample with a projection.
    spans = tuple((2 + 2 * b, 3 + 2 * b) for b in range(9) if b not in (3, 6))
    return Preset(
        "resnet20",
        "ResNet-20 for CIFAR-10 (ReLU, BN folded into biases), 3×32×32 input",
        TargetShape(widths, kernel_sizes=(9,) * 19 + (1,), activation="relu", residual_blocks=spans),
        _RESNET20_LAYERS,
        "He, Zhang, Ren, Sun (2016), CVPR, Section 4.2 (n = 3); projection shortcuts as in "
        "open_lth's cifar_resnet_20, the source of the LT-existence ResNet targets",
        (
            "the two downsampling blocks (layers 8-9 and 14-15) have 1×1 projection skips, which a "
            "TargetShape cannot express: their branches enter as plain layers, and the projections' "
            "2,656 parameters (weights + folded BN biases) and their error paths are not counted",
            "He et al. used parameter-free zero-padding shortcuts (option A) there instead",
        ),
    )


def _lt_existence_mnist_cnn() -> Preset:
    return Preset(
        "lt_existence_mnist_cnn",
        "MNIST CNN of the LT-existence experiments (ReLU), 1×28×28 input",
        TargetShape((1, 32, 32, 10), kernel_sizes=(9, 9, 784), activation="relu"),
        (
            "conv 3×3, 1→32, padding 1, bias",
            "conv 3×3, 32→32, padding 1, bias → 32×28×28",
            "dense 25088→10 (entered as n=32, k=784), bias",
        ),
        "RelationalML/LT-existence Targets/model.pt (Burkholz 2022), shared/data/README.md",
        (
            "the shipped target is SynFlow-pruned; the shape counts every entry, masked or not",
            "its input domain is [-0.424, 2.821] (normalised pixels); the preset assumes the "
            "papers' ||x||_inf <= 1 — give the .npz as TARGET for its real bounds",
        ),
    )


_BUILDERS = {
    "lenet5": _lenet5,
    "conv6": _conv6,
    "resnet20": _resnet20,
    "lt_existence_mnist_cnn": _lt_existence_mnist_cnn,
}


def shape_from_target(target, *, measured_norms: bool = False) -> tuple[TargetShape, tuple[str, ...]]:
    """The :class:`TargetShape` of a :class:`~ltbounds.nets.TargetNet`, and its caveats.

    Reads :meth:`~ltbounds.nets.TargetNet.shape_summary`. A dense layer after a flatten with
    ``f`` input features and ``n_{l-1}`` channels before it gets ``k_l = f / n_{l-1}``
    (LEMMAS.md section 5), so that the parameter count is exact. Identity-skip blocks become
    residual spans; a projection-skip block enters as plain layers (stated in the caveats).

    Parameters
    ----------
    target : TargetNet
        The network.
    measured_norms : bool
        False (presets): the papers' normalisation, ``||W_l||_inf->inf <= 1`` and
        ``||x||_inf <= 1``. True (real targets): the target's own ``||W_l||_inf->inf`` (main
        path), ``max |x|`` over its input domain and ``max |b|``, so that the error allotment
        is the one this target needs.
    """
    summary = target.shape_summary()
    sites = [site for site in target.linear_sites if site.role != "skip"]
    widths = list(summary.widths)
    kernels = list(summary.kernel_sizes)
    caveats: list[str] = []
    for index, site in enumerate(sites):
        layer = site.layer
        if layer.kind == "dense" and index > 0 and layer.in_channels != widths[index]:
            previous = widths[index]
            if layer.in_channels % previous:
                raise InvalidInput(
                    f"{site.label()} reads {layer.in_channels} features after {previous} channels; "
                    "expected a multiple (a flatten of a channel map)"
                )
            kernels[index] = layer.in_channels // previous
    spans = []
    skipped_params = 0
    for block in summary.residual_blocks:
        if block.skip == "identity":
            spans.append((block.first_layer, block.last_layer))
        else:
            caveats.append(
                f"block of layers {block.first_layer}-{block.last_layer} has a {block.skip} "
                "projection skip, which a TargetShape cannot express: its branch enters as plain "
                "layers, and the projection's parameters and error path are not counted"
            )
    for site in target.linear_sites:
        if site.role == "skip":
            skipped_params += sum(int(v.size) for v in site.layer.parameters().values())
    if skipped_params:
        caveats.append(f"{skipped_params:,} projection-skip parameters are not in the target count")
    biases = set(summary.has_bias)
    if len(biases) > 1:
        caveats.append("some layers have biases and some not; entered as a target with biases")
    options: dict = {}
    if measured_norms:
        norms = [layer.lipschitz_inf() for layer in (site.layer for site in sites)]
        bias_values = [float(np.max(np.abs(site.layer.bias))) for site in sites if site.layer.bias is not None]
        options = {
            "input_bound": max(abs(summary.input_domain[0]), abs(summary.input_domain[1])),
            "weight_norms": tuple(norms),
            "bias_bound": max(bias_values, default=0.0),
        }
    shape = TargetShape(
        tuple(widths),
        kernel_sizes=tuple(kernels),
        activation=summary.activation,
        has_bias=any(summary.has_bias),
        residual_blocks=tuple(spans),
        **options,
    )
    return shape, tuple(caveats)


def _embedded_preset(name: str) -> Preset:
    from ltbounds.nets.embedded import load_embedded  # noqa: PLC0415

    target = load_embedded(name)
    shape, caveats = shape_from_target(target)
    layers = tuple(line.split(": ", 1)[-1] for line in target.describe().splitlines())
    return Preset(
        name,
        f"embedded target {name} (shape only)",
        shape,
        layers,
        "ltbounds/data (scripts/train_default_targets.py; ltbounds/data/README.md)",
        caveats,
    )


def list_presets() -> list[str]:
    """Every preset name: the named architectures, then the embedded targets."""
    from ltbounds.nets.embedded import list_embedded  # noqa: PLC0415

    return [*_BUILDERS, *list_embedded()]


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (InvalidInput listing the known names otherwise)."""
    if name in _BUILDERS:
        return _BUILDERS[name]()
    from ltbounds.nets.embedded import list_embedded  # noqa: PLC0415

    if name in list_embedded():
        return _embedded_preset(name)
    raise InvalidInput(f"preset={name!r} is not known; expected one of {', '.join(list_presets())}")


__all__ = ["Preset", "get_preset", "list_presets", "shape_from_target"]
