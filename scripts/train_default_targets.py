"""Train the embedded default targets shipped in ``ltbounds/data`` (developer tool).

Run from the repository root::

    pip install torch==2.13.0 scikit-learn
    python scripts/train_default_targets.py

Data: scikit-learn's 8×8 digits, inputs ``pixel / 16`` in ``[0, 1]`` (float64), a stratified
75/25 train/test split with ``random_state=0``; the test split is written to
``ltbounds/data/digits_test.npz`` so that nothing at run time needs scikit-learn.

Targets (float64 training, Adam with learning rate 0.03 (0.01 for the residual CNNs) and
cosine decay, batch 32, 100 epochs, cross-entropy of temperature-scaled logits, fixed seeds, deterministic algorithms,
one thread): after every
optimiser step every weight and bias is clipped to ``[-1, 1]``, the range the subset-sum
lemmas approximate (Burkholz, ICML 2022 and NeurIPS 2022; LEMMAS.md section 1).

* ``digits_cnn_<act>`` for relu, tanh, sigmoid, gelu: Conv2d(1→4, 3×3, pad 1) φ AvgPool2d(2)
  → Conv2d(4→8, 3×3, pad 1) φ AvgPool2d(2) → Flatten (32) → Dense(32→10);
* ``digits_mlp_<act>`` for relu, tanh: Dense(64→32) φ Dense(32→16) φ Dense(16→10);
* ``digits_resnet_<act>`` for relu, tanh (Burkholz, ICML 2022: residual targets):
  Conv2d(1→8, 3×3, pad 1) φ → ResidualBlock(Conv2d(8→8, 3×3, pad 1) φ Conv2d(8→8, 3×3, pad 1);
  identity skip) φ → ResidualBlock(Conv2d(8→16, 3×3, stride 2, pad 1) φ Conv2d(16→16, 3×3,
  pad 1); skip Conv2d(8→16, 1×1, stride 2)) φ → AvgPool2d(4) → Flatten (16) → Dense(16→10).
  Trained *without* batch normalisation, clipped like the others: folded batch-norm weights
  (γ/√var can be large) would not lie in [-1, 1] without a second, lossy clipping step.

Every file is written with :func:`ltbounds.nets.io.save_npz` (weights + architecture +
metadata). The script then reloads it, checks that ltbounds' forward pass agrees with
PyTorch's to 1e-10 and that ltbounds' test accuracy equals the recorded one, and prints a
Markdown table for ``ltbounds/data/README.md``. PyTorch is never needed at run time.

It also writes ``tests/data/resnet_bn_fixture.{npz,json}`` and
``tests/data/resnet_bn_fixture_outputs.npz``: a small residual CNN *with* batch
normalisation (conv-BN stem, one stride-2 block with BN after both branch convolutions and a
1×1 conv + BN projection), trained for two epochs so that its running statistics and affine
parameters are real, saved as PyTorch's own state-dict keys with a sidecar, and its eval-mode
PyTorch outputs on 16 test images. ``tests/test_nets_residual.py`` checks that ltbounds
(folding the batch norms at load time) reproduces them.

``--only NAME ...`` trains only the named files (e.g. ``digits_resnet_relu
resnet_bn_fixture``); every target has its own seed, so this does not change the others.
``--out DIR`` / ``--fixtures DIR`` write elsewhere (e.g. to check that a rerun reproduces the
shipped weights bit for bit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ltbounds._io_util import atomic_path  # noqa: E402
from ltbounds.nets import (  # noqa: E402
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    ResidualBlock,
    TargetNet,
)
from ltbounds.nets.embedded import digits_accuracy  # noqa: E402
from ltbounds.nets.io import load_npz, save_npz  # noqa: E402

DATA = REPO / "ltbounds" / "data"
SPLIT_SEED = 0
TEST_SIZE = 0.25
LEARNING_RATE = 0.03
BATCH_SIZE = 32
# The training loss is cross-entropy of ``temperature · logits``: with weights clipped to
# [-1, 1] the logits cannot grow large, and plain cross-entropy then drives every weight to
# the clip boundary (measured: 86 % of the sigmoid CNN's first-layer weights at ±1, 84 % test
# accuracy). The temperature lives in the loss only; argmax, and so accuracy, ignore it, and
# the shipped network has none. Sigmoid (slope 1/4 at 0) gets a larger one.
TEMPERATURE = {"relu": 4.0, "tanh": 4.0, "gelu": 4.0, "sigmoid": 10.0}
# The residual CNN diverges at 0.03 (measured with ReLU: every unit dead, 10 % accuracy);
# 0.01 trains it (0.003 also works, with lower test accuracy).
LEARNING_RATES = {"resnet": 0.01}
FIXTURES = REPO / "tests" / "data"
TARGETS = [
    ("cnn", "relu"),
    ("cnn", "tanh"),
    ("cnn", "sigmoid"),
    ("cnn", "gelu"),
    ("mlp", "relu"),
    ("mlp", "tanh"),
    ("resnet", "relu"),
    ("resnet", "tanh"),
]
BN_FIXTURE = "resnet_bn_fixture"


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    inputs = digits.data.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    return tuple(  # type: ignore[return-value]
        train_test_split(
            inputs, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
        )
    )


def torch_activation(name: str):
    import torch.nn as nn

    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[name]()


def residual_block_class():
    """A post-activation residual block, ``φ(skip(x) + conv2(φ(conv1(x))))`` (optionally BN)."""
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, activation: str, batchnorm: bool):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batchnorm)
            self.bn1 = nn.BatchNorm2d(cout) if batchnorm else nn.Identity()
            self.act = torch_activation(activation)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=not batchnorm)
            self.bn2 = nn.BatchNorm2d(cout) if batchnorm else nn.Identity()
            self.shortcut = None
            if stride != 1 or cin != cout:
                layers = [nn.Conv2d(cin, cout, 1, stride=stride, bias=not batchnorm)]
                if batchnorm:
                    layers.append(nn.BatchNorm2d(cout))
                self.shortcut = nn.Sequential(*layers)

        def forward(self, x):
            h = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
            return self.act((x if self.shortcut is None else self.shortcut(x)) + h)

    return Block


def build_model(kind: str, activation: str):
    import torch.nn as nn

    if kind == "resnet":
        block = residual_block_class()
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            torch_activation(activation),
            block(8, 8, 1, activation, batchnorm=False),
            block(8, 16, 2, activation, batchnorm=False),
            nn.AvgPool2d(4),
            nn.Flatten(),
            nn.Linear(16, 10),
        )
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            torch_activation(activation),
            nn.AvgPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1),
            torch_activation(activation),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(32, 10),
        )
    return nn.Sequential(
        nn.Linear(64, 32),
        torch_activation(activation),
        nn.Linear(32, 16),
        torch_activation(activation),
        nn.Linear(16, 10),
    )


def to_conv(module) -> Conv2d:
    return Conv2d(
        module.weight.detach().numpy(),
        module.bias.detach().numpy(),
        stride=module.stride,
        padding=module.padding,
    )


def to_target(model, kind: str, activation: str, name: str, metadata: dict) -> TargetNet:
    import torch.nn as nn

    block = residual_block_class()
    layers = []
    for module in model:
        if isinstance(module, nn.Conv2d):
            layers.append(to_conv(module))
        elif type(module).__name__ == block.__name__:
            skip = None if module.shortcut is None else to_conv(module.shortcut[0])
            layers.append(ResidualBlock((to_conv(module.conv1), to_conv(module.conv2)), skip))
        elif isinstance(module, nn.Linear):
            layers.append(Dense(module.weight.detach().numpy(), module.bias.detach().numpy()))
        elif isinstance(module, nn.AvgPool2d):
            layers.append(AvgPool2d(module.kernel_size, module.stride))
        elif isinstance(module, nn.Flatten):
            layers.append(Flatten())
    input_shape = (64,) if kind == "mlp" else (1, 8, 8)
    return TargetNet(layers, input_shape, activation, (0.0, 1.0), name=name, metadata=metadata)


def train_one(kind: str, activation: str, epochs: int, seed: int, split, out: Path) -> dict:
    import torch

    x_train, x_test, y_train, y_test = split
    shape = (-1, 64) if kind == "mlp" else (-1, 1, 8, 8)
    xtr = torch.tensor(x_train).reshape(shape)
    ytr = torch.tensor(y_train)
    xte = torch.tensor(x_test).reshape(shape)
    torch.manual_seed(seed)
    model = build_model(kind, activation)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.clamp_(-1.0, 1.0)
    learning_rate = LEARNING_RATES.get(kind, LEARNING_RATE)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(xtr.shape[0], generator=generator)
        for start in range(0, xtr.shape[0], BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimiser.zero_grad()
            loss = loss_fn(TEMPERATURE[activation] * model(xtr[batch]), ytr[batch])
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.clamp_(-1.0, 1.0)
        schedule.step()
    model.eval()
    with torch.no_grad():
        logits_test = model(xte).numpy()
        train_accuracy = float((model(xtr).argmax(1) == ytr).double().mean())
    test_accuracy = float(np.mean(logits_test.argmax(1) == y_test))
    name = f"digits_{kind}_{activation}"
    metadata = {
        "dataset": "scikit-learn digits, pixel/16, stratified 75/25 split, random_state=0",
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "test_samples": int(len(y_test)),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "loss_temperature": TEMPERATURE[activation],
        "seed": seed,
        "weight_range": [-1.0, 1.0],
        "trained_by": "scripts/train_default_targets.py",
        "torch_version": torch.__version__,
    }
    target = to_target(model, kind, activation, name, metadata)
    path = save_npz(target, out / f"{name}.npz")
    reloaded = load_npz(path)
    difference = float(np.max(np.abs(reloaded.forward(x_test.reshape(shape)) - logits_test)))
    if difference > 1e-10:
        raise SystemExit(f"{name}: ltbounds and PyTorch outputs differ by {difference:.3g}")
    ours = digits_accuracy(reloaded)
    if ours != test_accuracy:
        raise SystemExit(f"{name}: accuracy {ours} (ltbounds) != {test_accuracy} (PyTorch)")
    largest = max(
        float(np.max(np.abs(p))) for p in (q.detach().numpy() for q in model.parameters())
    )
    return {
        "name": name,
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "params": reloaded.num_params.total,
        "max_abs_weight": largest,
        "difference": difference,
    }


def bn_fixture(seed: int, split, out: Path) -> None:
    """A residual CNN with batch normalisation, as PyTorch saves it (see the module docstring)."""
    import json

    import torch
    import torch.nn as nn

    x_train, x_test, y_train, _ = split
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.layer1 = residual_block_class()(4, 8, 2, "relu", batchnorm=True)
            self.pool = nn.AvgPool2d(4)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            h = self.layer1(torch.relu(self.bn1(self.conv1(x))))
            return self.fc(torch.flatten(self.pool(h), 1))

    model = Net()
    xtr = torch.tensor(x_train).reshape(-1, 1, 8, 8)
    ytr = torch.tensor(y_train)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(2):
        order = torch.randperm(xtr.shape[0], generator=generator)
        for start in range(0, xtr.shape[0], BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(xtr[batch]), ytr[batch]).backward()
            optimiser.step()
    model.eval()
    inputs = x_test[:16].reshape(-1, 1, 8, 8)
    with torch.no_grad():
        logits = model(torch.tensor(inputs)).numpy()
    state = {key: value.detach().numpy() for key, value in model.state_dict().items()}
    conv = lambda key, **kw: {"type": "conv2d", "key": key, **kw}  # noqa: E731
    bn = lambda key: {"type": "batchnorm2d", "key": key, "eps": 1e-5}  # noqa: E731
    sidecar = {
        "format": "ltbounds-architecture",
        "version": 1,
        "name": BN_FIXTURE,
        "input_shape": [1, 8, 8],
        "input_domain": [0.0, 1.0],
        "activation": "relu",
        "layers": [
            conv("conv1", padding=1, bias=False),
            bn("bn1"),
            {
                "type": "residual",
                "branch": [
                    conv("layer1.conv1", stride=2, padding=1, bias=False),
                    bn("layer1.bn1"),
                    conv("layer1.conv2", padding=1, bias=False),
                    bn("layer1.bn2"),
                ],
                "skip": [conv("layer1.shortcut.0", stride=2, bias=False), bn("layer1.shortcut.1")],
                "activation_out": True,
            },
            {"type": "avgpool2d", "kernel": 4},
            {"type": "flatten"},
            {"type": "dense", "key": "fc"},
        ],
        "metadata": {"made_by": "scripts/train_default_targets.py", "torch_version": torch.__version__},
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{BN_FIXTURE}.npz") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **state)
    with atomic_path(out / f"{BN_FIXTURE}_outputs.npz") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, inputs=inputs, logits=logits)
    (out / f"{BN_FIXTURE}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    reloaded = load_npz(out / f"{BN_FIXTURE}.npz", sidecar=out / f"{BN_FIXTURE}.json")
    difference = float(np.max(np.abs(reloaded.forward(inputs) - logits)))
    if difference > 1e-10:
        raise SystemExit(f"{BN_FIXTURE}: folded ltbounds and PyTorch outputs differ by {difference:.3g}")
    print(f"{BN_FIXTURE}: |folded ltbounds - torch| {difference:.1e}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="train only these files")
    parser.add_argument("--out", type=Path, default=DATA, help="where targets go")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="where the BN fixture goes")
    args = parser.parse_args()
    known = [f"digits_{kind}_{activation}" for kind, activation in TARGETS] + [BN_FIXTURE]
    wanted = set(known if args.only is None else args.only)
    if wanted - set(known):
        parser.error(f"unknown --only names {sorted(wanted - set(known))}; known: {known}")

    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)

    split = load_digits_split()
    x_train, x_test, y_train, y_test = split
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only is None or args.out != DATA:
        with atomic_path(args.out / "digits_test.npz") as temporary, open(temporary, "wb") as handle:
            np.savez_compressed(handle, inputs=x_test, labels=y_test)

    rows = []
    for kind, activation in TARGETS:
        if f"digits_{kind}_{activation}" not in wanted:
            continue
        row = train_one(kind, activation, args.epochs, args.seed, split, args.out)
        rows.append(row)
        print(
            f"{row['name']}: test {row['test_accuracy']:.4f}, train {row['train_accuracy']:.4f}, "
            f"max|w| {row['max_abs_weight']:.3f}, |ltbounds - torch| {row['difference']:.1e}",
            file=sys.stderr,
        )
    if BN_FIXTURE in wanted:
        bn_fixture(args.seed, split, args.fixtures)
    print(f"\ntrain {len(y_train)}, test {len(y_test)}\n")
    print("| file | parameters | test accuracy | train accuracy | max abs weight |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| `{row['name']}.npz` | {row['params']} | {row['test_accuracy']:.4f} | "
            f"{row['train_accuracy']:.4f} | {row['max_abs_weight']:.3f} |"
        )


if __name__ == "__main__":
    main()
