"""The command line as a user meets it: help, version, usage errors, one-line refusals."""

from __future__ import annotations

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
