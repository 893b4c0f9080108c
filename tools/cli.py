"""The ``prepbench`` command line (Typer + rich).

Commands are grouped in modules; each registers itself below. User mistakes raise
:class:`~prepbench.tools.errors.PrepbenchError`, printed by :func:`main` as one line
``error: ...`` with exit code 2 (no traceback).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from .errors import PrepbenchError

app = typer.Typer(
    name="prepbench",
    help="Turn a book corpus into validated QA SFT data, and score whether it is any good.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# ---- sub-command groups (each module defines its commands; one line per module) ----
from . import cli_run  # noqa: E402,F401  run, status, export (register on app)
from . import cli_skill  # noqa: E402,F401  skill check/new/try/list

app.add_typer(cli_skill.skill_app, name="skill")
from prepbench.evaluation import cli_score  # noqa: E402  score das/metrics/verify, correlate

app.add_typer(cli_score.score_app, name="score")
app.command("correlate")(cli_score.correlate_cmd)
from prepbench.evaluation import cli_train  # noqa: E402  train config/run, evaluate, pgr

app.add_typer(cli_train.train_app, name="train")
app.command("evaluate")(cli_train.evaluate_cmd)
app.command("pgr")(cli_train.pgr_cmd)
from prepbench.evaluation import compare as _compare  # noqa: E402  compare (agent families)

app.command("compare")(_compare.compare_cmd)
# (modules of the scoring, training and comparison backends register here)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the Typer app, turning PrepbenchError into ``error: ...`` + exit 2."""
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:  # typer.Exit(code) comes back as a return value here
            sys.exit(rc)
    except PrepbenchError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        console.print("interrupted: the ledger keeps everything committed; run the same command again to resume")
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


if __name__ == "__main__":
    # `python -m prepbench.tools.cli`: use the package module so that command modules
    # registering on `prepbench.tools.cli.app` register on the app that runs.
    from prepbench.tools.cli import main as _main

    _main()
