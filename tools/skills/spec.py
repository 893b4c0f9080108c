"""The declarative parts of a skill as pydantic models: SKILL.md's front matter,
``filters.yaml`` and ``coverage.yaml``, with the vocabularies they draw on.

Validation errors name the field (``metadata.sample_types``, ``rules.2.kind``); the loader
turns them into one-line :class:`~prepbench.tools.errors.SkillError` messages with the file.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: The nine skip reasons of the Data-Construction-Skill triage vocabulary.
DEFAULT_SKIP_REASONS = (
    "navigation",
    "non_knowledge",
    "pedagogy",
    "heading_only",
    "low_information",
    "noisy",
    "broken_ocr",
    "duplicate_scope",
    "index_like",
)

#: Skip reasons prepbench itself records, for every skill: they say what happened to a chunk in
#: prepbench's pipeline, not what the chunk is (the skill's ``coverage.yaml`` vocabulary is the
#: content judgement). A skill does not list them, and may not redefine them.
PREPBENCH_SKIP_REASONS: dict[str, str] = {
    "all_rejected": "the generator wrote candidates but the gate rejected every one "
    "(the chunk's detail counts the rules, e.g. 'all 3 candidates rejected: schema x2, grounded_judge x1')",
    "no_candidates": "triage kept the chunk but no candidate sample came: the offline generator found nothing "
    "it can state precisely, or the chat model's replies held none (the raw replies are kept in the ledger); "
    "not a judgement of the chunk",
}
ALL_REJECTED = "all_rejected"
NO_CANDIDATES = "no_candidates"

#: Fields every sample carries besides its type's own fields.
COMMON_SAMPLE_FIELDS = ("sample_type", "chunk_id", "evidence")

#: The three base forms of Data-Construction-Skill; every sample type maps onto one
#: (``x-prepbench-form`` in its schema), which the offline generator dispatches on.
BASE_FORMS = ("concept_qa", "process_qa", "case_application")

#: The form of the generation modes' sample type (``prepbench generate``): an instruction and its
#: response made from seed data, never from a chunk (chunk runs leave such types out).
MODE_FORM = "instruction_response"


#: The fields the Agent Skills format allows at the top of SKILL.md's front matter.
AGENT_SKILLS_FIELDS = ("name", "description", "license", "compatibility", "allowed-tools", "metadata")
#: prepbench's own keys, under ``metadata:`` (they sat at the top level before the Agent Skills layout).
PREPBENCH_KEYS = ("domain", "version", "sample_types", "extends")


class SkillMetadata(BaseModel):
    """prepbench's keys under ``metadata:`` in SKILL.md (Agent Skills metadata values are strings).

    ``sample_types`` is one string of sample-type names separated by spaces (as Agent
    Skills' ``allowed-tools``); a child skill lists only the types it adds. Other keys
    (``author``, ...) are kept for other clients and ignored here.
    """

    model_config = ConfigDict(extra="allow")

    domain: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sample_types: list[str] = Field(default_factory=list)
    extends: str | None = None

    @field_validator("sample_types", mode="before")
    @classmethod
    def _types(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError("must be one string of sample type names separated by spaces (metadata values are strings)")
        types = v.replace(",", " ").split()
        for t in types:
            if not TYPE_RE.match(t):
                raise ValueError(f"sample type '{t}' must be lowercase letters, digits or '_'")
        if len(set(types)) != len(types):
            raise ValueError("sample types repeat")
        return types

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v


class FrontMatter(BaseModel):
    """SKILL.md front matter in the Agent Skills format (https://agentskills.io/specification):
    ``name``, ``description``, optional ``license``, ``compatibility``, ``allowed-tools``, and
    prepbench's keys under ``metadata`` (:class:`SkillMetadata`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    description: str = Field(min_length=1, max_length=1024)
    license: str | None = None
    compatibility: str | None = Field(None, max_length=500)
    allowed_tools: str | None = Field(None, alias="allowed-tools")
    metadata: SkillMetadata

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (max 64)")
        return v


class RuleSpec(BaseModel):
    """One filter rule of ``filters.yaml``; ``kind`` selects the check (see validate.RULE_KINDS)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    sample_types: list[str] | None = None
    description: str | None = None


class DedupSpec(BaseModel):
    """Duplicate removal within a run: exact (normalised text), near (MinHash LSH) and, when
    ``semantic_threshold`` is set, semantic (all-MiniLM-L6-v2 cosine at or above it; off by default)."""

    model_config = ConfigDict(extra="forbid")

    exact: bool = True
    near_threshold: float = Field(0.8, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_words: int = Field(3, ge=1, le=10)
    fields: list[str] = Field(default_factory=lambda: ["question"])
    semantic_threshold: float | None = Field(None, gt=0.0, le=1.0)


class FiltersSpec(BaseModel):
    """``filters.yaml``: the rules and the dedup settings."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleSpec] = Field(default_factory=list)
    dedup: DedupSpec = Field(default_factory=DedupSpec)

    @model_validator(mode="after")
    def _unique_names(self) -> "FiltersSpec":
        names = [r.name for r in self.rules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"rule names repeat: {sorted(dup)}")
        return self


class TypeTarget(BaseModel):
    """Per-sample-type coverage target: ``per_chunk`` samples asked of each kept chunk; at least
    ``min_share`` of the accepted samples; ``max_per_chunk`` (unset: ``per_chunk``) the most one chunk
    may give when triage finds it holds more whole items of the type (each entry of a glossary is
    one term's definition, so a glossary of 30 terms supports 30 samples, not ``per_chunk``)."""

    model_config = ConfigDict(extra="forbid")

    per_chunk: int = Field(1, ge=0, le=50)
    min_share: float = Field(0.0, ge=0.0, le=1.0)
    max_per_chunk: int | None = Field(None, ge=1, le=500)

    @model_validator(mode="after")
    def _max_at_least_per_chunk(self) -> "TypeTarget":
        if self.max_per_chunk is not None and self.max_per_chunk < self.per_chunk:
            raise ValueError(f"max_per_chunk {self.max_per_chunk} is below per_chunk {self.per_chunk}")
        return self


class OfflineCompletionSpec(BaseModel):
    """``completion.offline``: the completion rule of a run by the offline ``extractive`` generator,
    which states only what it can state precisely from the book's own sentences (no sample rather
    than a defective one), so a book may not support the rule an LLM run is held to. ``why`` says
    what in the skill's books the offline generator cannot turn into samples; the report prints it.
    Unset fields keep the skill's rule; ``min_shares`` overrides sample types' ``min_share``;
    ``sample_types`` (unset: all) are the only types the offline generator offers for the skill,
    where its samples of the others were read and found defective."""

    model_config = ConfigDict(extra="forbid")

    why: str = Field(min_length=1)
    sample_types: list[str] | None = None
    min_kept_share: float | None = Field(None, ge=0.0, le=1.0)
    per_document_min_kept: int | None = Field(None, ge=0)
    min_shares: dict[str, float] = Field(default_factory=dict)

    @field_validator("min_shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not 0.0 <= x <= 1.0}
        if bad:
            raise ValueError(f"shares must lie in [0, 1]: {bad}")
        return v


class CompletionSpec(BaseModel):
    """When a run counts as complete; ``offline`` (optional) is the rule for the offline generator."""

    model_config = ConfigDict(extra="forbid")

    require_all_resolved: bool = True
    min_kept_share: float = Field(0.0, ge=0.0, le=1.0)
    per_document_min_kept: int = Field(0, ge=0)
    offline: OfflineCompletionSpec | None = None


class ModesSpec(BaseModel):
    """``coverage.yaml`` ``modes:``: what the generation modes cover (``prepbench generate``).

    ``demonstrations``: seed instances shown per instance-generation slot; ``themes``: the topics
    slots are spread over, one drawn per slot (AgoraBench, Kim et al. 2025, §3: a theme per call
    for diversity). An empty list means no theme is asked for.
    """

    model_config = ConfigDict(extra="forbid")

    demonstrations: int = Field(3, ge=1, le=8)
    themes: list[str] = Field(default_factory=list)

    @field_validator("themes")
    @classmethod
    def _themes(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("themes must be non-empty strings")
        if len(set(v)) != len(v):
            raise ValueError("themes repeat")
        return v


class CoverageSpec(BaseModel):
    """``coverage.yaml``: allowed skip reasons, completion rule, sample-type targets and the
    generation modes' demonstrations and themes."""

    model_config = ConfigDict(extra="forbid")

    modes: ModesSpec = Field(default_factory=ModesSpec)
    skip_reasons: dict[str, str] = Field(default_factory=lambda: {r: "" for r in DEFAULT_SKIP_REASONS})
    completion: CompletionSpec = Field(default_factory=CompletionSpec)
    sample_types: dict[str, TypeTarget] = Field(default_factory=dict)
    min_chunk_chars: int = Field(200, ge=0)

    @field_validator("skip_reasons", mode="before")
    @classmethod
    def _reasons(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {str(r): "" for r in v}
        return v
