"""Helpers for tests that run the real `prepbench` command in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "corpora" / "finance-openstax"
SHARED = REPO.parent / "shared"
FINANCE_BOOK = SHARED / "corpora" / "finance" / "openstax-principles-of-finance"


def book_chapter(dest: Path, chapter: str, book: Path = FINANCE_BOOK) -> Path:
    """Copy one chapter of a shared book, with the book's SOURCE.md, into ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(book / chapter, dest)
    shutil.copy(book / "SOURCE.md", dest)
    return dest


def prepbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "prepbench.tools.cli", *args]


def run_cli(
    *args: str, timeout: int = 300, cwd: str | Path | None = None, env_extra: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``prepbench ARGS`` in a subprocess (wide terminal; ``env_extra`` added to the environment)."""
    env = {**os.environ, "COLUMNS": "200", **(env_extra or {})}
    return subprocess.run(prepbench_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]


def chat_run_args(corpus: str | Path, out: str | Path, server, agent: str = "skill") -> list[str]:
    """The first arguments of ``prepbench run`` for ``agent`` on the finance skill against the test ``server``."""
    return ["run", "--corpus", str(corpus), "--skill", "finance", "--out", str(out), "--agent", agent] + [
        "--model",
        "openai:test-model",
        "--base-url",
        server.url + "/v1",
    ]


def chat_run_options(corpus: Path, out: Path, server, agent: str, key: str, model_options: dict | None = None, **fields):
    """:class:`RunOptions` of a chat-model run of ``agent`` on the finance skill against the test ``server``."""
    from prepbench.tools.run import RunOptions

    return RunOptions(
        corpus=[str(corpus)],
        skill="finance",
        out=str(out),
        agent=agent,
        model="openai:test-model",
        model_options={"base_url": server.url + "/v1", "api_key": key, **(model_options or {})},
        **fields,
    )


def skill_held_to_the_full_mix(dest: Path, name: str) -> Path:
    """A copy of shipped skill ``name`` in ``dest/name`` whose offline completion rule asks for the
    full rule's process and case shares (5 % each), so an offline run's coverage loop runs."""
    import yaml

    folder = dest / name
    shutil.copytree(Path(__file__).resolve().parents[1] / "skills" / name, folder)
    cov = folder / "coverage.yaml"
    data = yaml.safe_load(cov.read_text(encoding="utf-8"))
    offline = data.setdefault("completion", {}).setdefault("offline", {"why": "the tests' full mix"})
    offline["min_shares"] = {"process_qa": 0.05, "case_application": 0.05}
    cov.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder
