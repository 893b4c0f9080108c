"""The loaded skill: every part of a skill folder, resolved over its parents."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from prepbench.tools.errors import SkillError

from .spec import MODE_FORM, CoverageSpec, FiltersSpec, TypeTarget
from .templates import compile_prompt, error_line

#: The variables a chunk prompt template may use (``skill check`` refuses any other).
PROMPT_VARIABLES = (
    "skill",
    "chunk",
    "sample_type",
    "sample_types",
    "schema",
    "schema_json",
    "examples",
    "count",
    "skip_reasons",
    "candidate",
    "feedback",
)

#: The generation modes' prompts (``prompts/<mode>.md``) and the variables each is given:
#: ``demonstrations`` (seed instances ``{instruction, response}``), ``theme`` (a topic, or ""),
#: ``instruction``/``response`` (the seed to answer or to improve), ``schema_json`` (the JSON
#: object the reply must be) and ``feedback`` (why the previous reply of the slot was rejected, or "").
MODE_PROMPT_VARIABLES: dict[str, tuple[str, ...]] = {
    "instance": ("skill", "demonstrations", "theme", "schema_json", "feedback"),
    "response": ("skill", "instruction", "schema_json", "feedback"),
    "enhance": ("skill", "instruction", "response", "schema_json", "feedback"),
}


def plain(value: Any, known: frozenset[int] = frozenset()) -> Any:
    """``value`` as plain data (dicts, lists, strings, numbers): what a sandboxed template may see.
    A value whose ``id`` is in ``known`` is plain data already (a skill's JSON, read from its
    files) and is given as it is, not copied."""
    if id(value) in known:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), known) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, known) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass
class Skill:
    """A loaded skill.

    Attributes:
        name, description, domain, version, sample_types: from the front matter
            (``domain``, ``version`` and ``sample_types`` under its ``metadata:``).
        instructions: the Markdown body of SKILL.md (the agent's instruction).
        path: the skill folder.
        schemas: sample type -> JSON Schema (dict).
        filters: parsed ``filters.yaml``.
        coverage: parsed ``coverage.yaml``.
        prompts: template name (file stem) -> Jinja source.
        renders: sample type -> source of ``render/<type>.md`` (export rendering).
        examples: list of example samples (dicts with ``sample_type``), with their file:line.
        content_hash: SHA-256 over every file's relative path and bytes (resume guard).
    """

    name: str
    description: str
    domain: str
    version: str
    sample_types: list[str]
    instructions: str
    path: Path
    schemas: dict[str, dict]
    filters: FiltersSpec
    coverage: CoverageSpec
    prompts: dict[str, str]
    examples: list[dict]
    example_sources: list[str]
    content_hash: str
    renders: dict[str, str] = field(default_factory=dict)
    front_matter: dict = field(default_factory=dict)
    #: names of the skills this one extends, nearest parent first (empty when standalone)
    extends: list[str] = field(default_factory=list)
    #: relative part ("schemas/x.json", "prompts/y.md", "filters.yaml", ...) -> the file it came from
    files: dict[str, Path] = field(default_factory=dict)
    #: the merged filters.yaml / coverage.yaml mappings before validation (for children to merge into)
    raw_filters: dict = field(default_factory=dict)
    raw_coverage: dict = field(default_factory=dict)

    def file(self, rel: str) -> Path:
        """The file a part of the resolved skill came from (its own folder or a parent's)."""
        return self.files.get(rel, self.path / rel)

    def template_view(self) -> dict[str, Any]:
        """The skill as templates see it: plain data, never this object (whose paths and
        methods a template could otherwise reach)."""
        return {
            "name": self.name,
            "description": self.description,
            "domain": self.domain,
            "version": self.version,
            "sample_types": list(self.sample_types),
            "instructions": self.instructions,
            "skip_reasons": dict(self.coverage.skip_reasons),
        }

    def _plain_json(self) -> frozenset[int]:
        """The ids of the skill's schemas and examples: JSON read from its files, so plain data
        already (:func:`plain` gives them as they are; every model request's prompt holds one). The
        skill keeps them alive, so an id is not reused while this set is in use."""
        # the process id too: a skill unpickled in another process (a Ray worker, the screening
        # child) has new ids, whatever its copied cache says
        key = (os.getpid(), id(self.schemas), len(self.schemas), id(self.examples), len(self.examples))
        cached = self.__dict__.get("_plain_ids")
        if cached is None or cached[0] != key:
            ids = frozenset(id(v) for v in (*self.schemas.values(), *self.examples))
            cached = self.__dict__["_plain_ids"] = (key, ids)
        return cached[1]

    def render_prompt(self, name: str, **context: Any) -> str:
        """Render ``prompts/<name>.md`` in the sandbox (StrictUndefined), with ``context``
        turned into plain data and ``skill`` set to :meth:`template_view`.

        Raises:
            SkillError: unknown template, a variable the template uses is missing, or a
                sandbox violation (naming the file and line).
        """
        if name not in self.prompts:
            raise SkillError(f"{self.path / 'prompts' / (name + '.md')}: prompt template not found")
        known = self._plain_json()
        variables = {k: plain(v, known) for k, v in context.items()}
        try:
            return compile_prompt(self.prompts[name]).render(skill=self.template_view(), **variables)
        except jinja2.TemplateError as e:
            line = error_line(e)
            where = f" line {line}" if line else ""
            raise SkillError(f"{self.file('prompts/' + name + '.md')}:{where}: {e}") from None

    @property
    def chunk_types(self) -> list[str]:
        """The sample types made from chunks (``run``, ``compare``): every type but the generation modes'."""
        return [t for t in self.sample_types if self.form(t) != MODE_FORM]

    @property
    def mode_types(self) -> list[str]:
        """The sample types of the generation modes (``x-prepbench-form: instruction_response``), made from seeds."""
        return [t for t in self.sample_types if self.form(t) == MODE_FORM]

    def target(self, sample_type: str) -> TypeTarget:
        """Coverage target of a sample type (default: one per chunk)."""
        return self.coverage.sample_types.get(sample_type, TypeTarget())

    def form(self, sample_type: str) -> str:
        """The base form of a sample type (``x-prepbench-form`` in its schema, else its name)."""
        return str(self.schemas.get(sample_type, {}).get("x-prepbench-form", sample_type))

    def summary(self) -> dict[str, Any]:
        """The skill in one dict: what ``skill check`` and ``skill list`` print."""
        return {
            "name": self.name,
            "domain": self.domain,
            "version": self.version,
            "sample_types": self.sample_types,
            "rules": [r.name for r in self.filters.rules],
            "prompts": sorted(self.prompts),
            "examples": len(self.examples),
            "content_hash": self.content_hash[:16],
            "path": str(self.path),
            "extends": list(self.extends),
            "inherited": sorted(k for k, f in self.files.items() if not _is_within(f, self.path)),
        }


def _is_within(f: Path, root: Path) -> bool:
    try:
        f.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
