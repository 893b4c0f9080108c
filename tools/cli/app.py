"""The Typer app and the entry point that turns user mistakes into one-line errors.

Command modules register on :data:`app`; :mod:`prepbench.tools.cli` imports them all. User mistakes raise
:class:`~prepbench.tools.errors.PrepbenchError`, printed by :func:`main` as one line
``error: ...`` with exit code 2 (no traceback).
"""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape

from prepbench.tools.errors import PrepbenchError

app = typer.Typer(
    name="prepbench",
    help="Turn a book corpus into validated QA SFT data, and score whether it is any good.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _print_error(message: str) -> None:
    """Print ``error: <message>`` on one line; the message is escaped (rich would eat ``[pdf]``)."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _hear_ctrl_c() -> None:
    """Make Ctrl-C reach prepbench even when the parent process ignored or blocked SIGINT, which a
    child inherits (a test runner's worker did: an interrupted run then went on for minutes). An
    interrupted run keeps everything it committed, so being interruptible is always safe."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the Typer app, turning PrepbenchError into ``error: ...`` + exit 2."""
    _hear_ctrl_c()
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:  # typer.Exit(code) comes back as a return value here
            sys.exit(rc)
    except PrepbenchError as e:
        _print_error(str(e))
        sys.exit(e.exit_code)
    except OSError as e:  # an environment fault no layer turned into a PrepbenchError: still one line
        where = f"{e.filename}: " if e.filename else ""
        _print_error(f"{where}{e.strerror or e} (free space or fix the path's permissions, then run again)")
        sys.exit(3)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt as e:  # a run says how many chunks it recorded (agents.runner.RunInterrupted)
        console.print(
            str(e) if str(e) else "interrupted: the ledger keeps everything committed; run the same command again to resume"
        )
        sys.exit(130)
    except Exception as e:  # usage errors (typer's vendored click, or click itself): one message, exit 2
        usage = isinstance(e, getattr(typer, "TyperException", ())) and hasattr(e, "show")
        if not usage:
            try:
                import click

                usage = isinstance(e, click.exceptions.ClickException)
            except ImportError:
                pass
        if usage:
            e.show()
            sys.exit(getattr(e, "exit_code", 2))
        raise
