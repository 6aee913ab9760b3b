"""The command line as a user meets it: help, version, usage errors, one-line refusals."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import typer

from ltbounds import InvalidInput, __version__
from ltbounds.cli import app, main
from ltbounds.cli.verbs import MODULES


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltbounds", *args], capture_output=True, text=True, timeout=120
    )


def test_version_via_python_m() -> None:
    completed = run_cli("--version")
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"ltbounds {__version__}"


def test_help_lists_only_registered_verbs_with_a_purpose() -> None:
    completed = run_cli("--help")
    assert completed.returncode == 0
    registered = {command.name for command in app.registered_commands}
    assert len(registered) >= len(MODULES)
    for name in registered:
        assert name in completed.stdout
    for placeholder in ("demo", "table", "prove", "construct", "certify", "coverage", "bench", "convert"):
        if placeholder not in registered:
            assert f" {placeholder} " not in completed.stdout
    for command in app.registered_commands:
        doc = (command.help or command.callback.__doc__ or "").strip()
        assert doc, f"verb {command.name} has no one-line purpose"


def test_unknown_option_is_a_one_line_usage_error() -> None:
    completed = run_cli("--no-such-option")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "--no-such-option" in completed.stderr


def test_ltbounds_error_becomes_one_line_and_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    probe = typer.Typer()
    probe.callback()(lambda: None)

    @probe.command()
    def fail() -> None:
        raise InvalidInput("eps=-0.1 must be > 0")

    import ltbounds.cli as cli_module

    original = cli_module.app
    cli_module.app = probe
    try:
        code = main(["fail"])
    finally:
        cli_module.app = original
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.strip() == "error: eps=-0.1 must be > 0"


def test_unexpected_exception_keeps_its_traceback() -> None:
    probe = typer.Typer()
    probe.callback()(lambda: None)

    @probe.command()
    def crash() -> None:
        raise RuntimeError("a bug")

    import ltbounds.cli as cli_module

    original = cli_module.app
    cli_module.app = probe
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            main(["crash"])
    finally:
        cli_module.app = original


def test_import_loads_neither_cupy_nor_hypothesis() -> None:
    code = "import sys, ltbounds, ltbounds.cli; print('cupy' in sys.modules, 'hypothesis' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.stdout.split() == ["False", "False"]


#: Modules that cost from a tenth of a second to seconds to import; none is needed to parse a
#: command line or print help, so the CLI loads each only inside the command that uses it.
HEAVY_MODULES = ("sympy", "numba", "scipy", "onnx", "onnxruntime", "matplotlib", "dask", "distributed", "flint")


def _loaded_heavy(code: str) -> list[str]:
    """The :data:`HEAVY_MODULES` in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert _loaded_heavy("import ltbounds, ltbounds.cli") == []


def test_help_of_every_verb_loads_no_heavy_module() -> None:
    verbs = [command.name for command in app.registered_commands]
    assert verbs
    code = (
        "from ltbounds.cli import main\n"
        "assert main(['--version']) == 0 and main(['--help']) == 0\n"
        f"for verb in {verbs!r}:\n"
        "    assert main([verb, '--help']) == 0, verb\n"
    )
    assert _loaded_heavy(code) == []


def test_networks_load_without_sympy_until_an_expression_is_asked_for() -> None:
    # The sympy expressions of the activations are built on first use: loading a target must
    # not cost sympy's import, and asking for an expression must still give sympy's objects.
    code = (
        "from ltbounds.nets import load_embedded\n"
        "load_embedded('digits_cnn_relu')\n"
        "import sys\n"
        "assert 'sympy' not in sys.modules\n"
        "from ltbounds.activations import ACTIVATIONS\n"
        "import sympy\n"
        "x = sympy.Symbol('x', real=True)\n"
        "assert ACTIVATIONS['tanh'].expression == sympy.tanh(x)\n"
        "assert ACTIVATIONS['relu'].expression == sympy.Max(x, 0)\n"
    )
    assert "sympy" in _loaded_heavy(code)


def test_command_defaults_are_the_library_defaults() -> None:
    """The options are declared from ltbounds._defaults without importing the library; what
    they declare must be what the library does by default."""
    from ltbounds.certify import _core as certify_core
    from ltbounds.cli import certify as certify_cli
    from ltbounds.cli import convert as convert_cli
    from ltbounds.nets import onnx_io

    library = inspect.signature(certify_core.certify).parameters
    command = inspect.signature(certify_cli.certify_command).parameters
    for name in ("samples", "restarts", "steps", "budget"):
        assert command[name].default == library[name].default, name
    assert inspect.signature(convert_cli.convert_command).parameters["tolerance"].default == (
        inspect.signature(onnx_io.cross_check).parameters["tolerance"].default
    )
