"""``ltbounds convert`` as a user runs it, and the foreign MNIST target through the CLI's loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltbounds.cli import main
from ltbounds.cli.construct import load_target_for
from ltbounds.nets.onnx_io import load_onnx

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_CNN = SHARED / "lt_existence_mnist_cnn.npz"
CHECK_KEYS = {"samples", "max_abs_error", "scale", "tolerance", "passed"}
PUBLIC_KEYS = {
    "input", "kind", "output", "format", "dtype", "name", "activation", "input_shape",
    "input_domain", "layers", "params", "notes", "import_check", "export_check", "bytes",
}  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltbounds", "convert", *args], capture_output=True, text=True, timeout=300
    )


def test_embedded_to_onnx_and_back_to_safetensors(tmp_path: Path) -> None:
    done = run_cli("digits_resnet_relu", str(tmp_path / "r.onnx"), "--samples", "200", "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert set(first) == PUBLIC_KEYS
    assert first["import_check"] is None
    assert set(first["export_check"]) == CHECK_KEYS | {"method"} and first["export_check"]["passed"]
    done = run_cli(str(tmp_path / "r.onnx"), str(tmp_path / "r.safetensors"), "--samples", "200", "--json")
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)
    assert set(second["import_check"]) == CHECK_KEYS and second["import_check"]["passed"]
    assert second["export_check"]["method"] == "reload" and second["layers"] == first["layers"]


def test_human_output_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "digits_cnn_relu", str(tmp_path / "c.onnx"), "--samples", "50"]) == 0
    out = capsys.readouterr().out
    assert "export check" in out and "agree (onnxruntime)" in out
    assert main(["convert", "digits_cnn_relu", str(tmp_path / "c.pt")]) == 1
    err = capsys.readouterr().err
    assert "must end in .npz, .safetensors, .onnx" in err and len(err.strip().splitlines()) == 1
    code = main(["convert", "digits_cnn_relu", str(tmp_path / "f.onnx"), "--samples", "20", "--tolerance", "1e-30"])
    assert code == 3 and "nothing written" in capsys.readouterr().err
    assert not (tmp_path / "f.onnx").exists()
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    assert main(["convert", str(tmp_path / "broken.onnx"), str(tmp_path / "b.npz")]) == 1
    assert "broken.onnx" in capsys.readouterr().err


@pytest.mark.skipif(not MNIST_CNN.is_file(), reason="shared/data/lt_existence_mnist_cnn.npz not present")
def test_mnist_cnn_as_a_user_types_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # what `ltbounds construct .../lt_existence_mnist_cnn.npz -o t.npz` resolves: no flags needed
    target = load_target_for(str(MNIST_CNN), None, None)
    assert target.activation == "relu" and target.input_shape == (1, 28, 28) and target.notes == ()
    assert main(["convert", str(MNIST_CNN), str(tmp_path / "m.onnx"), "--samples", "100", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["export_check"]["passed"]
    back = load_onnx(tmp_path / "m.onnx")
    x = target.sample_inputs(20, seed=0)
    scale = max(1.0, float(np.max(np.abs(target.forward(x)))))
    assert np.max(np.abs(back.forward(x) - target.forward(x))) <= 1e-5 * scale
