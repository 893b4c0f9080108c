"""``prepbench skill ...``: check, scaffold, list and try skill packages."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prepbench.tools.cli import options as o

skill_app = typer.Typer(help="Check and author skill packages.", no_args_is_help=True)
out = Console()


@skill_app.command("check")
def check_cmd(path: str = typer.Argument(..., help="Skill folder, or the name of a shipped skill.")) -> None:
    """Validate a skill (resolving `extends`): front matter, schemas, examples, prompts, filters, coverage."""
    from prepbench.tools.skills import check_skill

    summary = check_skill(path)
    table = Table(title=f"skill {summary['name']} OK", show_header=False)
    for k in (
        "name",
        "domain",
        "version",
        "extends",
        "sample_types",
        "rules",
        "prompts",
        "examples",
        "inherited",
        "content_hash",
        "path",
    ):
        v = summary.get(k)
        if k in ("extends", "inherited") and not v:
            continue
        if k == "extends":
            v = " -> ".join(v)
        table.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    out.print(table)


@skill_app.command("new")
def new_cmd(
    name: str = typer.Argument(..., help="Name of the new skill (lowercase letters, digits, '-', '_')."),
    extends: str = typer.Option(
        "general", "--extends", help="Parent skill (shipped name or folder); 'none' for a standalone copy of general."
    ),
    directory: str = typer.Option("skills", "--dir", help="Folder to create the skill in."),
    domain: Optional[str] = typer.Option(None, "--domain", help="Domain (default: the name)."),
    description: Optional[str] = typer.Option(None, "--description", help="One-sentence description."),
) -> None:
    """Scaffold a skill folder with commented templates (it passes `skill check` as created)."""
    from prepbench.tools.skills import check_skill
    from prepbench.tools.skills.authoring import scaffold_skill

    parent = None if extends.strip().lower() in ("", "none") else extends
    folder = scaffold_skill(name, directory, extends=parent, domain=domain, description=description)
    summary = check_skill(folder)
    out.print(
        f"created [bold]{folder}[/] ({'extends ' + ' -> '.join(summary['extends']) if summary['extends'] else 'standalone'}; "
        f"sample types: {', '.join(summary['sample_types'])})"
    )
    out.print("next: edit SKILL.md, add schemas/prompts/examples for new sample types (see skills/README.md), then")
    out.print(f"  prepbench skill check {folder}\n  prepbench skill try {folder} --corpus <book folder> --limit 5")


@skill_app.command("list")
def list_cmd(
    directory: list[str] = typer.Option([], "--dir", help="Folder of local skills (repeatable; default ./skills)."),
) -> None:
    """List the installed (shipped) and local skills: name, domain, version, sample types."""
    from prepbench.tools.skills.authoring import list_skills

    rows = list_skills(directory or None)
    table = Table(title="skills")
    for col in ("name", "where", "domain", "version", "extends", "sample types"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if r["error"]:
            table.add_row(r["name"], r["where"], "", "", "", f"[red]broken: {escape(str(r['error']))}[/]")
        else:
            table.add_row(
                r["name"], r["where"], r["domain"], r["version"], " -> ".join(r["extends"]), ", ".join(r["sample_types"])
            )
    out.print(table)


@skill_app.command("try")
@o.with_options(o.server_options)
def try_cmd(
    path: str = typer.Argument(..., help="Skill folder, or the name of a shipped skill."),
    corpus: list[str] = typer.Option(..., "--corpus", "-c", help="Corpus folder or files (repeatable)."),
    limit: int = typer.Option(5, "--limit", help="Number of chunks from the start of the corpus."),
    follow_symlinks: o.FollowSymlinks = False,
    model: str = typer.Option(
        "extractive", "--model", "-m", help="Model spec: extractive (offline), openai:<m>, anthropic:<m>, ..."
    ),
    concurrency: o.Concurrency = o.CONCURRENCY,
    judge: o.GroundedJudge = False,
    keep: Optional[str] = typer.Option(
        None, "--keep", help="Keep the run in this (new or empty) folder instead of a throwaway one."
    ),
    **flags: Any,
) -> None:
    """Run a skill on the first N chunks into a throwaway run; show accepted vs rejected samples and coverage."""
    from prepbench.agents.runner import try_skill
    from prepbench.tools.cli.progress import progress_factory
    from prepbench.tools.coverage import render_coverage
    from prepbench.tools.skills.authoring import headline

    options = o.model_options({**flags, "concurrency": concurrency, "judge": judge}, chat=model != "extractive")
    res = try_skill(
        path,
        corpus,
        limit=limit,
        model=model,
        model_options=options,
        keep_dir=keep,
        progress=progress_factory(False),
        follow_symlinks=follow_symlinks,
    )
    table = Table(title=f"skill {res.skill} on {len(res.chunks)} chunk(s) ({res.seconds:.1f}s)", show_lines=True)
    table.add_column("chunk", overflow="fold", max_width=34)
    table.add_column("accepted", overflow="fold", style="green")
    table.add_column("rejected (rule: reason)", overflow="fold", style="red")
    for c in res.chunks:
        where = escape(f"#{c['idx']} {c['doc_path']}\n{c['heading']}\nchunk_id {c['chunk_id']}")
        if c["status"] == "skipped":
            where += f"\n[yellow]skipped: {escape(str(c['skip_reason']))}[/]"
        elif c["status"] == "failed":
            where += f"\n[red]failed: {escape(str(c['error']))}[/]"
        acc = "\n".join(f"[bold]{escape(s['sample_type'])}[/]: {escape(headline(s))}" for s in c["accepted"]) or "-"
        rej = (
            "\n".join(
                f"[bold]{escape(s['sample_type'])}[/]: {escape(headline(s))}\n  -> {escape(str(s['rule']) + ': ' + str(s['detail']))}"
                for s in c["rejected"]
            )
            or "-"
        )
        table.add_row(where, acc, rej)
    out.print(table)
    render_coverage(res.coverage, out)
    out.print(
        f"{len(res.accepted)} accepted, {len(res.rejected)} rejected; {res.exported} exported in the throwaway run"
        + (f" (kept in {keep})" if keep else "")
    )
