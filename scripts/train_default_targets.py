"""Train the embedded default targets shipped in ``ltbounds/data`` (developer tool).

Run from the repository root::

    pip install torch==2.13.0 scikit-learn
    python scripts/train_default_targets.py

Data: scikit-learn's 8×8 digits, inputs ``pixel / 16`` in ``[0, 1]`` (float64), a stratified
75/25 train/test split with ``random_state=0``; the test split is written to
``ltbounds/data/digits_test.npz`` so that nothing at run time needs scikit-learn.

Targets (float64 training, Adam with learning rate 0.03 and cosine decay, batch 32, 100
epochs, cross-entropy of temperature-scaled logits, fixed seeds, deterministic algorithms,
one thread): after every
optimiser step every weight and bias is clipped to ``[-1, 1]``, the range the subset-sum
lemmas approximate (Burkholz, ICML 2022 and NeurIPS 2022; LEMMAS.md section 1).

* ``digits_cnn_<act>`` for relu, tanh, sigmoid, gelu: Conv2d(1→4, 3×3, pad 1) φ AvgPool2d(2)
  → Conv2d(4→8, 3×3, pad 1) φ AvgPool2d(2) → Flatten (32) → Dense(32→10);
* ``digits_mlp_<act>`` for relu, tanh: Dense(64→32) φ Dense(32→16) φ Dense(16→10).

Every file is written with :func:`ltbounds.nets.io.save_npz` (weights + architecture +
metadata). The script then reloads it, checks that ltbounds' forward pass agrees with
PyTorch's to 1e-10 and that ltbounds' test accuracy equals the recorded one, and prints a
Markdown table for ``ltbounds/data/README.md``. PyTorch is never needed at run time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ltbounds._io_util import atomic_path  # noqa: E402
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet  # noqa: E402
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


def build_model(kind: str, activation: str):
    import torch.nn as nn

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


def to_target(model, kind: str, activation: str, name: str, metadata: dict) -> TargetNet:
    import torch.nn as nn

    layers = []
    for module in model:
        if isinstance(module, nn.Conv2d):
            layers.append(
                Conv2d(
                    module.weight.detach().numpy(),
                    module.bias.detach().numpy(),
                    stride=module.stride,
                    padding=module.padding,
                )
            )
        elif isinstance(module, nn.Linear):
            layers.append(Dense(module.weight.detach().numpy(), module.bias.detach().numpy()))
        elif isinstance(module, nn.AvgPool2d):
            layers.append(AvgPool2d(module.kernel_size, module.stride))
        elif isinstance(module, nn.Flatten):
            layers.append(Flatten())
    input_shape = (1, 8, 8) if kind == "cnn" else (64,)
    return TargetNet(layers, input_shape, activation, (0.0, 1.0), name=name, metadata=metadata)


def train_one(kind: str, activation: str, epochs: int, seed: int, split) -> dict:
    import torch

    x_train, x_test, y_train, y_test = split
    shape = (-1, 1, 8, 8) if kind == "cnn" else (-1, 64)
    xtr = torch.tensor(x_train).reshape(shape)
    ytr = torch.tensor(y_train)
    xte = torch.tensor(x_test).reshape(shape)
    torch.manual_seed(seed)
    model = build_model(kind, activation)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.clamp_(-1.0, 1.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
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
        "learning_rate": LEARNING_RATE,
        "loss_temperature": TEMPERATURE[activation],
        "seed": seed,
        "weight_range": [-1.0, 1.0],
        "trained_by": "scripts/train_default_targets.py",
        "torch_version": torch.__version__,
    }
    target = to_target(model, kind, activation, name, metadata)
    path = save_npz(target, DATA / f"{name}.npz")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)

    split = load_digits_split()
    x_train, x_test, y_train, y_test = split
    with atomic_path(DATA / "digits_test.npz") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, inputs=x_test, labels=y_test)

    rows = []
    for kind, activation in [
        ("cnn", "relu"),
        ("cnn", "tanh"),
        ("cnn", "sigmoid"),
        ("cnn", "gelu"),
        ("mlp", "relu"),
        ("mlp", "tanh"),
    ]:
        row = train_one(kind, activation, args.epochs, args.seed, split)
        rows.append(row)
        print(
            f"{row['name']}: test {row['test_accuracy']:.4f}, train {row['train_accuracy']:.4f}, "
            f"max|w| {row['max_abs_weight']:.3f}, |ltbounds - torch| {row['difference']:.1e}",
            file=sys.stderr,
        )
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
