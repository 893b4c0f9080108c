"""Skill packages: load and check a declarative skill folder.

A skill is an Agent Skills folder (https://agentskills.io/specification) extended with
declarative parts (see ``skills/README.md`` and the project's DESIGN)::

    SKILL.md          YAML front matter (Agent Skills: name, description, license; prepbench's
                      domain, version, sample_types, extends under ``metadata:``)
                      followed by the agent's instructions in Markdown
    schemas/*.json    one JSON Schema per sample type (file stem = sample type name)
    render/*.md       one export template per sample type (Jinja blocks ``instruction``, ``output``)
    filters.yaml      filter rules and dedup settings (see prepbench.tools.validate)
    coverage.yaml     skip reasons (with their descriptions), completion rule, per-sample-type targets
    prompts/*.md      Jinja templates: triage.md, generate_<type>.md, optional judge.md, repair.md
    examples/*.jsonl  worked samples (each line has ``sample_type``), validated by check

Loading never executes code from the folder, never reads outside it and never reaches the
network; templates run in Jinja's sandbox on plain data.

Modules: :mod:`.spec` (the pydantic models), :mod:`.files` (bounded, contained reading),
:mod:`.templates` (the sandbox), :mod:`.refs` (``$ref`` policy), :mod:`.model` (:class:`Skill`),
:mod:`.loader` (:func:`load_skill`), :mod:`.check` (:func:`check_skill`), :mod:`.authoring`
(``skill new/list``).
"""

from __future__ import annotations

from .check import check_skill, sample_context_chunk
from .files import parse_front_matter, skill_content_hash
from .loader import LOCAL_SKILLS_DIR, installed_skills_dir, load_run_skill, load_skill, resolve_skill_path
from .model import MODE_PROMPT_VARIABLES, PROMPT_VARIABLES, Skill
from .spec import (
    BASE_FORMS,
    COMMON_SAMPLE_FIELDS,
    DEFAULT_SKIP_REASONS,
    MODE_FORM,
    NAME_RE,
    TYPE_RE,
    CompletionSpec,
    CoverageSpec,
    DedupSpec,
    FiltersSpec,
    FrontMatter,
    ModesSpec,
    RuleSpec,
    SkillMetadata,
    TypeTarget,
)

__all__ = [
    "BASE_FORMS",
    "MODE_FORM",
    "MODE_PROMPT_VARIABLES",
    "COMMON_SAMPLE_FIELDS",
    "DEFAULT_SKIP_REASONS",
    "LOCAL_SKILLS_DIR",
    "NAME_RE",
    "PROMPT_VARIABLES",
    "TYPE_RE",
    "CompletionSpec",
    "CoverageSpec",
    "DedupSpec",
    "FiltersSpec",
    "FrontMatter",
    "ModesSpec",
    "RuleSpec",
    "Skill",
    "SkillMetadata",
    "TypeTarget",
    "check_skill",
    "installed_skills_dir",
    "load_run_skill",
    "load_skill",
    "parse_front_matter",
    "resolve_skill_path",
    "sample_context_chunk",
    "skill_content_hash",
]
