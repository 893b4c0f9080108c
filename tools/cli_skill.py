"""``prepbench skill ...``: check (and author) skill packages."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

skill_app = typer.Typer(help="Check and author skill packages.", no_args_is_help=True)
out = Console()


@skill_app.command("check")
def check_cmd(path: str = typer.Argument(..., help="Skill folder, or the name of a shipped skill.")) -> None:
    """Validate a skill: front matter, schemas, examples, prompts, filters, coverage."""
    from .skills import check_skill

    summary = check_skill(path)
    table = Table(title=f"skill {summary['name']} OK", show_header=False)
    for k in ("name", "domain", "version", "sample_types", "rules", "prompts", "examples", "content_hash", "path"):
        v = summary[k]
        table.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    out.print(table)
