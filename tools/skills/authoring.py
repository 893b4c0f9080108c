"""Skill authoring: scaffold a new skill, list the installed and local ones, try one on a corpus.

The ``prepbench skill new/list/try`` commands (``tools/cli/skill.py``) are thin wrappers
over :func:`scaffold_skill`, :func:`list_skills` and :func:`try_skill`. The authoring guide
is ``skills/README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from prepbench.tools.errors import SkillError
from prepbench.tools.skills import NAME_RE, Skill, installed_skills_dir, load_skill

# ---------------------------------------------------------------------------------------
# skill new
# ---------------------------------------------------------------------------------------

_SKILL_MD = """---
# SKILL.md front matter in the Agent Skills format (https://agentskills.io/specification).
# The Markdown below the closing '---' is the agent's instruction.
# name: lowercase letters, digits, '-' or '_' (max 64); the folder name is usually the same.
name: {name}
# description: one sentence: which books this skill reads and which samples it writes.
description: {description}
license: Apache-2.0
# metadata: prepbench's own keys (Agent Skills metadata values are strings).
metadata:
  # domain: the field the books belong to (shown by `prepbench skill list`, used in the prompts).
  domain: {domain}
  # version: bump it when you change the skill; a run records it, and a changed skill is not resumed.
  version: "0.1.0"
{extends_line}  # sample_types: the sample types this skill adds, separated by spaces. Each needs
  # schemas/<type>.json, render/<type>.md, prompts/generate_<type>.md and an example in examples/*.jsonl.{inherit_note}
  sample_types: "{sample_types}"
---

{body}
"""

_FILTERS_CHILD = """# filters.yaml: rules every candidate sample must pass after its JSON Schema.
# This skill {inherits} A rule with the same `name` as an inherited
# rule replaces it; `enabled: false` removes it; new names are added.
#
# Rule kinds (each rule: name, kind, optional sample_types: [..] to restrict it):
#   length            fields, min_chars, max_chars, min_items, max_items
#   forbid_regex      fields, patterns (reject when any matches), ignore_case
#   require_regex     fields, pattern (reject when it does not match)
#   answer_repeats_question   question_field, answer_field, min_novelty
#   evidence_in_chunk field (evidence spans must be verbatim in the chunk)
#   formula_result    formula_field, inputs_field, result_field, answer_field (re-computes a formula)
#   boxed_answer      fields, also_in (exactly one \\boxed{{...}})
#   option_letter     options_field, answer_field, letters, min_options (multiple choice)
#   units_consistent  formula_field, given_field, answer_value_field, answer_unit_field (units, with pint)
#   quoted_in         field, within (a quote must be verbatim in the evidence)
#
# Example (uncomment and adapt):
# rules:
#   - name: question_mentions_dose_unit
#     kind: require_regex
#     fields: [question]
#     pattern: '\\b(mg|mcg|mL|units?)\\b'
#     sample_types: [concept_qa]
rules: []
"""

_COVERAGE_CHILD = """# coverage.yaml: when a run counts as complete. This skill {inherits}
# Keys given here replace the inherited values key by key.
#
# skip_reasons:          reason: description (a chunk that yields nothing ends skipped with one of them)
# min_chunk_chars: 200   shorter chunks are low_information
# completion:
#   require_all_resolved: true    every chunk ends kept or skipped
#   min_kept_share: 0.5           at least this share of chunks yields an accepted sample
#   per_document_min_kept: 1      every document keeps at least this many chunks
# sample_types:
#   concept_qa: {{per_chunk: 3, min_share: 0.3}}   aim per kept chunk; minimum share of accepted samples
"""

_KEEP = "Files here override the parent skill's files of the same name; leave the folder empty to inherit them all.\n"


def _default_body(name: str, domain: str) -> str:
    return f"""# {name.replace("-", " ").replace("_", " ").title()} data-construction skill

You turn chunks of a {domain} book into training samples that teach the book's knowledge
to a model that will never see the book. Work chunk by chunk.

## 1. Triage every chunk

Keep a chunk when it teaches {domain} knowledge worth learning: definitions, how something
is done, why something happens, worked examples. Skip it, with exactly one reason from
`coverage.yaml`, when it is navigation, credits, exercises without content, a heading
alone, too short, garbled, a repeat, or a reference list.

## 2. Generate the sample types

- `concept_qa`: one question about one knowledge point, answered in full sentences.
- `process_qa`: a question whose answer needs 2-6 reasoning steps, then the answer.
- `case_application`: a concrete scenario, a question about it, the analysis steps that
  apply the book's knowledge, and the answer.

## 3. Rules every sample follows

- **Self-contained**: never write "according to the text", "in this section", "Figure 4".
- **Faithful**: every answer is supported by the chunk; quote the supporting sentences in
  `evidence` verbatim.
- Every sample carries its `chunk_id` and `evidence`.
"""


#: The folders of a skill that hold one file per sample type or per prompt.
_PART_DIRS = ("schemas", "render", "prompts", "examples")


def _write_child(folder: Path, name: str, parent: Skill, extends: str, domain: str, description: str) -> None:
    """A skill that inherits everything from ``parent``: SKILL.md, commented filters/coverage, empty part folders."""
    body = parent.instructions.replace(
        f"# {parent.name.title()} data-construction skill", f"# {name.title()} data-construction skill", 1
    )
    extends_line = (
        f"  # extends: the skill this one builds on (a shipped skill name or a relative folder path).\n  extends: {extends}\n"
    )
    note = f"\n  # The types of '{parent.name}' ({', '.join(parent.sample_types)}) are inherited; list only new ones."
    (folder / "SKILL.md").write_text(
        _SKILL_MD.format(
            name=name,
            extends_line=extends_line,
            description=json.dumps(description, ensure_ascii=False),
            domain=domain,
            inherit_note=note,
            sample_types="",
            body=body,
        ),
        encoding="utf-8",
    )
    (folder / "filters.yaml").write_text(
        _FILTERS_CHILD.format(inherits=f"inherits the rules of '{parent.name}'."), encoding="utf-8"
    )
    (folder / "coverage.yaml").write_text(
        _COVERAGE_CHILD.format(inherits=f"inherits the coverage settings of '{parent.name}'."), encoding="utf-8"
    )
    for sub in _PART_DIRS:
        (folder / sub).mkdir()
        (folder / sub / ".keep").write_text(_KEEP, encoding="utf-8")


def _write_standalone(folder: Path, name: str, domain: str, description: str) -> None:
    """A skill that stands alone: the general skill's files copied in."""
    base = load_skill(installed_skills_dir() / "general")
    for sub in _PART_DIRS:
        shutil.copytree(base.path / sub, folder / sub)
    shutil.copy2(base.path / "filters.yaml", folder / "filters.yaml")
    shutil.copy2(base.path / "coverage.yaml", folder / "coverage.yaml")
    (folder / "SKILL.md").write_text(
        _SKILL_MD.format(
            name=name,
            extends_line="",
            description=json.dumps(description, ensure_ascii=False),
            domain=domain,
            inherit_note="",
            sample_types=" ".join(base.sample_types),
            body=_default_body(name, domain),
        ),
        encoding="utf-8",
    )


def scaffold_skill(
    name: str,
    dest: str | Path = "skills",
    extends: str | None = "general",
    domain: str | None = None,
    description: str | None = None,
) -> Path:
    """Create a new skill folder ``dest/name`` with commented templates that pass ``skill check``.

    With ``extends`` (default ``general``), the folder holds SKILL.md (``metadata.extends``
    set, the parent's instructions as a starting point), commented ``filters.yaml`` and
    ``coverage.yaml`` that add nothing yet, and empty ``schemas/``, ``render/``,
    ``prompts/`` and ``examples/`` folders: every sample type, template and example is
    inherited. Without it (``extends=None``), the general skill's files are copied in, so
    the new skill stands alone. A skill made in ``./skills`` (the default) is then found
    by its name (``--skill NAME``), as ``skill list`` shows it.

    Args:
        name: the skill name (lowercase letters, digits, ``-``, ``_``).
        dest: the folder to create the skill in (created if missing).
        extends: a shipped skill name or a skill folder path, or None for a standalone skill.
        domain: the domain (default: the parent skill's domain; for a standalone skill, the name).
        description: the one-sentence description (default: a sentence naming the domain).

    Returns:
        The new skill folder.

    Raises:
        SkillError: invalid name, the folder exists, or the parent skill cannot be loaded.
    """
    if not NAME_RE.match(name):
        raise SkillError(f"{name}: invalid skill name (lowercase letters, digits, '-' or '_', max 64, starting with a letter)")
    folder = Path(dest) / name
    if folder.exists():
        raise SkillError(f"{folder}: already exists (choose another name or --dir)")
    parent = None
    if extends:
        ext_path = Path(extends)
        if (ext_path / "SKILL.md").is_file():
            parent = load_skill(ext_path)
            # a folder is stored as a path relative to the new skill folder
            extends = os.path.relpath(ext_path.resolve(), folder.resolve())
        else:
            parent = load_skill(extends)
    domain = domain or (parent.domain if parent is not None else name)
    description = (
        description or f"Turn {domain} books into self-contained, faithful question-answer samples for supervised fine-tuning."
    )
    folder.mkdir(parents=True)
    try:
        if parent is not None:
            _write_child(folder, name, parent, str(extends), domain, description)
        else:
            _write_standalone(folder, name, domain, description)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


# ---------------------------------------------------------------------------------------
# skill list
# ---------------------------------------------------------------------------------------


def list_skills(local_dirs: list[str | Path] | None = None) -> list[dict[str, Any]]:
    """The shipped skills and the local ones (sub-folders with a SKILL.md of each folder given).

    Args:
        local_dirs: folders holding local skills (default: ``./skills`` when it exists).

    Returns:
        Rows ``{"name", "domain", "version", "sample_types", "extends", "where", "path", "error"}``
        sorted by where (installed first) then name; a skill that fails to load has its
        one-line error in ``error`` and the folder name as ``name``. A folder listed both as
        installed and local (an editable install run from the repository) appears once.
    """
    if local_dirs is None:
        local_dirs = [Path("skills")] if Path("skills").is_dir() else []
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for where, root in [("installed", installed_skills_dir())] + [("local", Path(d)) for d in local_dirs]:
        root = Path(root)
        if where == "local" and not root.is_dir():
            raise SkillError(f"{root}: no such folder")
        for sub in sorted(p for p in root.iterdir() if (p / "SKILL.md").is_file()):
            real = sub.resolve()
            if real in seen:
                continue
            seen.add(real)
            row: dict[str, Any] = {"where": where, "path": str(real), "error": None}
            try:
                sk = load_skill(sub)
                row.update(
                    name=sk.name,
                    domain=sk.domain,
                    version=sk.version,
                    sample_types=list(sk.sample_types),
                    extends=list(sk.extends),
                )
            except SkillError as e:
                row.update(name=sub.name, domain="", version="", sample_types=[], extends=[], error=str(e))
            rows.append(row)
    rows.sort(key=lambda r: (r["where"] != "installed", r["name"]))
    return rows


# ---------------------------------------------------------------------------------------
# sample headlines (skill try's table)
# ---------------------------------------------------------------------------------------


#: Fields shown as a sample's headline in ``skill try`` (first present wins).
HEADLINE_FIELDS = ("question", "problem", "issue", "claim", "case")


def headline(sample: dict, width: int = 160) -> str:
    """A one-line summary of a sample for tables: its question (or problem/issue/claim/case)."""
    for f in HEADLINE_FIELDS:
        v = sample.get(f)
        if isinstance(v, str) and v.strip():
            text = " ".join(v.split())
            return text if len(text) <= width else text[: width - 1] + "…"
    return json.dumps(sample, ensure_ascii=False)[:width]
