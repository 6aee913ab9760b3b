"""The ``ltbounds`` command line (typer).

Verbs live one per module in this package and are registered below only once they do real
work. :func:`main` is the console entry point: an :class:`~ltbounds.errors.LtboundsError`
becomes one line on stderr and its exit code (1 for bad input), a usage error exits 2, and any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from ltbounds._version import __version__
from ltbounds.cli._common import stderr_console
from ltbounds.errors import LtboundsError

app = typer.Typer(
    name="ltbounds",
    help=(
        "Check that random convolutional and residual networks contain strong lottery "
        "tickets: bound tables, real constructions with certified errors, and machine-checked "
        "lemma chains (Burkholz, ICML 2022 and NeurIPS 2022)."
    ),
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ltbounds {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Strong lottery tickets in convolutional and residual networks, checked."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def _register_verbs() -> None:
    """Attach every real verb. Each module exposes ``register(app)``."""
    from ltbounds.cli import verbs  # noqa: PLC0415

    for module in verbs.MODULES:
        module.register(app)


_register_verbs()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    A usage error (unknown option, bad value for an option) prints one line and returns 2;
    an ``LtboundsError`` prints one line and returns its ``exit_code`` (1 for bad input);
    anything else is a bug and propagates with its traceback.
    """
    from ltbounds.provenance import set_command  # noqa: PLC0415

    set_command(["ltbounds", *(sys.argv[1:] if argv is None else argv)])
    try:
        result = app(args=argv, prog_name="ltbounds", standalone_mode=False)
    except LtboundsError as error:
        _one_line_error(str(error))
        return error.exit_code
    except typer.Exit as stop:
        return stop.exit_code
    except typer.Abort:
        _one_line_error("interrupted")
        return 130
    except typer.exceptions.TyperException as usage:  # typer's click usage errors
        message = usage.format_message() if hasattr(usage, "format_message") else str(usage)
        context = getattr(usage, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        _one_line_error(message.replace("\n", " ") + hint)
        return getattr(usage, "exit_code", 2)
    return result if isinstance(result, int) else 0


def _one_line_error(message: str) -> None:
    stderr_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


__all__ = ["app", "main", "run"]
