"""A run folder's accepted samples for scoring and training, read through
:class:`~prepbench.tools.ledger.RunFolder` (never the ledger's tables directly): the samples its
export holds, so a sample that decontamination excluded is neither scored nor trained on.

:func:`rendered_samples` renders each accepted sample to its (instruction, output) pair with
the run's skill (its ``render/<type>.md`` templates), exactly as the exporter writes
``export/sharegpt.jsonl``; :func:`sharegpt_rows` gives those rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prepbench.tools.ledger import LEDGER_FILE, RunFolder
from prepbench.tools.skills import load_run_skill


def has_ledger(run_dir: str | Path) -> bool:
    """The folder holds a prepbench ledger (``ledger.sqlite``)."""
    return (Path(run_dir) / LEDGER_FILE).is_file()


def accepted_samples(run_dir: str | Path) -> tuple[dict[str, Any], list[dict]]:
    """``(run config, accepted samples in canonical order)`` of a run folder, less those a
    decontamination flag excludes (the export's samples).

    Raises:
        LedgerError: the folder holds no ledger.
    """
    led = RunFolder.open(run_dir, readonly=True)
    try:
        return led.get_config(), list(led.accepted_samples(exported=True))
    finally:
        led.close()


def rendered_samples(run_dir: str | Path) -> list[tuple[dict, str, str]]:
    """``(sample, instruction, output)`` for each accepted sample, rendered as the export renders it
    (the run skill's schemas; the default rendering when the skill cannot be loaded).

    Raises:
        LedgerError: no ledger; PrepbenchError: a render template error.
    """
    from prepbench.tools.export_rows import render_pair

    config, samples = accepted_samples(run_dir)
    skill = load_run_skill(config)
    renders = skill.renders if skill is not None else {}
    return [(s, *render_pair(s, renders.get(s.get("sample_type")))) for s in samples]


def sharegpt_rows(run_dir: str | Path) -> list[dict]:
    """The run's accepted samples as the exporter's ShareGPT rows (``export/sharegpt.jsonl``)."""
    return [
        {"conversations": [{"from": "human", "value": i}, {"from": "gpt", "value": r}]} for _, i, r in rendered_samples(run_dir)
    ]
