"""Skill packages: load and check a declarative skill folder.

A skill is an Agent Skills folder extended with declarative parts (see ``skills/README.md``
and the project's DESIGN)::

    SKILL.md          YAML front matter (name, description, domain, version, sample_types)
                      followed by the agent's instructions in Markdown
    schemas/*.json    one JSON Schema per sample type (file stem = sample type name)
    filters.yaml      filter rules and dedup settings (see prepbench.tools.validate)
    coverage.yaml     skip reasons, completion rule, per-sample-type targets
    prompts/*.md      Jinja templates: triage.md, generate_<type>.md, optional judge.md, repair.md
    examples/*.jsonl  worked samples (each line has ``sample_type``), validated by check

Loading never executes code from the folder.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prepbench.tools.errors import SkillError
from prepbench.tools.hashing import sha256_bytes, sha256_text

FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.S)
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

#: Fields every sample carries besides its type's own fields.
COMMON_SAMPLE_FIELDS = ("sample_type", "chunk_id", "evidence")

#: The three base forms of Data-Construction-Skill; every sample type maps onto one
#: (``x-prepbench-form`` in its schema), which the offline generator dispatches on.
BASE_FORMS = ("concept_qa", "process_qa", "case_application")


class FrontMatter(BaseModel):
    """SKILL.md front matter (Agent Skills ``name``/``description`` plus prepbench fields)."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: str = Field(min_length=1)
    domain: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sample_types: list[str] = Field(min_length=1)
    extends: str | None = None
    license: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (max 64)")
        return v

    @field_validator("sample_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for t in v:
            if not TYPE_RE.match(t):
                raise ValueError(f"sample type '{t}' must be lowercase letters, digits or '_'")
        if len(set(v)) != len(v):
            raise ValueError("sample types repeat")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v


class RuleSpec(BaseModel):
    """One filter rule of ``filters.yaml``; ``kind`` selects the check (see validate.RULE_KINDS)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    sample_types: list[str] | None = None
    description: str | None = None


class DedupSpec(BaseModel):
    """Duplicate removal within a run: exact (normalised text) and near (MinHash LSH)."""

    model_config = ConfigDict(extra="forbid")

    exact: bool = True
    near_threshold: float = Field(0.8, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_words: int = Field(3, ge=1, le=10)
    fields: list[str] = Field(default_factory=lambda: ["question"])


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
    """Per-sample-type coverage target."""

    model_config = ConfigDict(extra="forbid")

    per_chunk: int = Field(1, ge=0, le=50)
    min_share: float = Field(0.0, ge=0.0, le=1.0)


class CompletionSpec(BaseModel):
    """When a run counts as complete."""

    model_config = ConfigDict(extra="forbid")

    require_all_resolved: bool = True
    min_kept_share: float = Field(0.0, ge=0.0, le=1.0)
    per_document_min_kept: int = Field(0, ge=0)


class CoverageSpec(BaseModel):
    """``coverage.yaml``: allowed skip reasons, completion rule and sample-type targets."""

    model_config = ConfigDict(extra="forbid")

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


def _prompt_env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent)
    return env


_PROMPT_ENV = _prompt_env()


@functools.lru_cache(maxsize=256)
def _compile_prompt(source: str) -> jinja2.Template:
    """The compiled template of a prompt's Jinja source (compiled once per source text:
    compiling costs far more than rendering, and every model request renders one)."""
    return _PROMPT_ENV.from_string(source)


@dataclass
class Skill:
    """A loaded skill.

    Attributes:
        name, description, domain, version, sample_types: from the front matter.
        instructions: the Markdown body of SKILL.md (the agent's instruction).
        path: the skill folder.
        schemas: sample type -> JSON Schema (dict).
        filters: parsed ``filters.yaml``.
        coverage: parsed ``coverage.yaml``.
        prompts: template name (file stem) -> Jinja source.
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

    def render_prompt(self, name: str, **context: Any) -> str:
        """Render ``prompts/<name>.md`` with Jinja (StrictUndefined).

        Raises:
            SkillError: unknown template, or a variable the template uses is missing.
        """
        if name not in self.prompts:
            raise SkillError(f"{self.path / 'prompts' / (name + '.md')}: prompt template not found")
        try:
            return _compile_prompt(self.prompts[name]).render(skill=self, **context)
        except jinja2.TemplateError as e:
            raise SkillError(f"{self.file('prompts/' + name + '.md')}: {e}") from None

    def target(self, sample_type: str) -> TypeTarget:
        """Coverage target of a sample type (default: one per chunk)."""
        return self.coverage.sample_types.get(sample_type, TypeTarget())

    def form(self, sample_type: str) -> str:
        """The base form of a sample type (``x-prepbench-form`` in its schema, else its name)."""
        return str(self.schemas.get(sample_type, {}).get("x-prepbench-form", sample_type))

    def summary(self) -> dict[str, Any]:
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


def installed_skills_dir() -> Path:
    """Folder of the skills shipped with prepbench (``prepbench.skills`` package data)."""
    return Path(str(resources.files("prepbench.skills")))


def resolve_skill_path(name_or_path: str | Path) -> Path:
    """A skill folder from a path, or from the name of a shipped skill.

    Raises:
        SkillError: neither a folder with SKILL.md nor a shipped skill name.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "SKILL.md").is_file():
            raise SkillError(f"{p}: not a skill folder (no SKILL.md)")
        return p.resolve()
    if p.suffix == "" and "/" not in str(name_or_path):
        cand = installed_skills_dir() / str(name_or_path)
        if (cand / "SKILL.md").is_file():
            return cand.resolve()
    raise SkillError(f"{name_or_path}: no such skill folder or shipped skill")


def skill_content_hash(path: Path) -> str:
    """SHA-256 over the sorted relative paths and bytes of every file in the skill folder."""
    parts = []
    for f in sorted(path.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and not f.name.startswith("."):
            parts.append(f.relative_to(path).as_posix() + "\x00" + sha256_bytes(f.read_bytes()))
    return sha256_text("\n".join(parts))


def _pydantic_error(file: Path, e: ValidationError) -> SkillError:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    return SkillError(f"{file}: field '{loc}': {err['msg']}")


def _read_yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SkillError(f"{file}:{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise SkillError(f"{file}: not UTF-8 text") from None


def parse_front_matter(file: Path) -> tuple[dict, str]:
    """Split SKILL.md into ``(front matter dict, body)``.

    Raises:
        SkillError: no front matter, invalid YAML (with line), or not a mapping.
    """
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SkillError(f"{file}: not UTF-8 text") from None
    m = FRONT_MATTER_RE.match(text)
    if not m:
        raise SkillError(f"{file}: missing YAML front matter (the file must start with '---')")
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 2}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SkillError(f"{file}:{where}: invalid YAML front matter: {problem}") from None
    if not isinstance(meta, dict):
        raise SkillError(f"{file}: front matter must be a YAML mapping")
    return meta, m.group(2)


def _resolve_parent(value: str, child: Path, skill_md: Path) -> Path:
    """The folder named by ``extends:``: a shipped skill name, else a path relative to the child."""
    if "/" not in value and not value.startswith("."):
        cand = installed_skills_dir() / value
        if (cand / "SKILL.md").is_file():
            return cand.resolve()
    cand = (child / value).expanduser()
    if (cand / "SKILL.md").is_file():
        return cand.resolve()
    raise SkillError(f"{skill_md}: field 'extends': no shipped skill or skill folder '{value}'")


def _merge_dicts(parent: dict, child: dict) -> dict:
    """Recursive merge of two YAML mappings: the child's keys win, nested mappings merge."""
    out = dict(parent)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_dicts(out[k], v)
        else:
            out[k] = v
    return out


def _merge_rules(parent: list, child: list) -> list:
    """Filter rules merged by ``name``: a child rule replaces the parent's rule of that name
    in place, new rules are appended, and a rule with ``enabled: false`` is removed."""
    out = [dict(r) for r in parent if isinstance(r, dict)]
    index = {r.get("name"): i for i, r in enumerate(out)}
    for r in child:
        if isinstance(r, dict) and r.get("name") in index:
            out[index[r["name"]]] = r
        else:
            out.append(r)
    return [r for r in out if not (isinstance(r, dict) and r.get("enabled") is False)]


def _mapping(file: Path, raw: Any) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SkillError(f"{file}: field '(top level)': must be a YAML mapping")
    return raw


def load_skill(name_or_path: str | Path, _chain: tuple[Path, ...] = ()) -> Skill:
    """Load a skill folder (or a shipped skill by name) and parse every part.

    A skill whose front matter has ``extends: PARENT`` (a shipped skill name, or a folder
    path relative to the skill) is resolved on top of its parent, loaded first: schemas,
    prompts and examples are inherited and the child's files of the same name (for
    examples: the same sample type) override them; ``filters.yaml`` rules merge by
    ``name`` (a child rule of the same name replaces the parent's, ``enabled: false``
    removes it) and the other ``filters.yaml``/``coverage.yaml`` keys merge as mappings,
    the child's values winning; ``sample_types`` is the parent's list plus the child's new
    types; ``license`` defaults to the parent's (``name``, ``description``, ``domain`` and
    ``version`` are the child's own and required).

    Structural problems raise at once; deeper checks (examples against schemas, prompts
    render) are in :func:`check_skill`.

    Raises:
        SkillError: one line naming the file and field or line (also for a circular ``extends``).
    """
    path = resolve_skill_path(name_or_path)
    skill_md = path / "SKILL.md"
    meta, body = parse_front_matter(skill_md)

    parent: Skill | None = None
    ext = meta.get("extends")
    if ext is not None:
        if not isinstance(ext, str) or not ext.strip():
            raise SkillError(f"{skill_md}: field 'extends': must be a skill name or a folder path")
        parent_path = _resolve_parent(ext.strip(), path, skill_md)
        chain = _chain + (path,)
        if parent_path in chain:
            names = [p.name for p in chain[chain.index(parent_path) :]] + [parent_path.name]
            raise SkillError(f"{skill_md}: field 'extends': circular inheritance {' -> '.join(names)}")
        parent = load_skill(parent_path, chain)
        meta = dict(meta)
        for key in ("license",):
            if meta.get(key) is None and parent.front_matter.get(key) is not None:
                meta[key] = parent.front_matter[key]
        own = meta.get("sample_types") or []
        if isinstance(own, list):
            meta["sample_types"] = list(parent.sample_types) + [t for t in own if t not in parent.sample_types]
    try:
        fm = FrontMatter.model_validate(meta)
    except ValidationError as e:
        raise _pydantic_error(skill_md, e) from None

    files: dict[str, Path] = dict(parent.files) if parent else {}
    schemas: dict[str, dict] = dict(parent.schemas) if parent else {}
    schema_dir = path / "schemas"
    for f in sorted(schema_dir.glob("*.json")) if schema_dir.is_dir() else []:
        try:
            schemas[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SkillError(f"{f}: line {e.lineno}: invalid JSON: {e.msg}") from None
        files[f"schemas/{f.name}"] = f
    for t in fm.sample_types:
        if t not in schemas:
            raise SkillError(f"{skill_md}: field 'sample_types': '{t}' has no schema (expected schemas/{t}.json)")

    filters_file = path / "filters.yaml"
    raw_filters = _mapping(filters_file, _read_yaml(filters_file)) if filters_file.is_file() else {}
    if filters_file.is_file():
        files["filters.yaml"] = filters_file
    if parent is not None:
        child_rules = raw_filters.get("rules") or []
        if not isinstance(child_rules, list):
            raise SkillError(f"{filters_file}: field 'rules': must be a list of rules")
        merged = _merge_dicts(parent.raw_filters, {k: v for k, v in raw_filters.items() if k != "rules"})
        merged["rules"] = _merge_rules(parent.raw_filters.get("rules") or [], child_rules)
        raw_filters = merged
    elif isinstance(raw_filters.get("rules"), list):
        raw_filters = dict(raw_filters, rules=_merge_rules([], raw_filters["rules"]))
    try:
        filters = FiltersSpec.model_validate(raw_filters or {})
    except ValidationError as e:
        raise _pydantic_error(files.get("filters.yaml", filters_file), e) from None

    coverage_file = path / "coverage.yaml"
    raw_cov = _mapping(coverage_file, _read_yaml(coverage_file)) if coverage_file.is_file() else {}
    if coverage_file.is_file():
        files["coverage.yaml"] = coverage_file
    if isinstance(raw_cov.get("skip_reasons"), list):
        raw_cov = dict(raw_cov, skip_reasons={str(r): "" for r in raw_cov["skip_reasons"]})
    if parent is not None:
        raw_cov = _merge_dicts(parent.raw_coverage, raw_cov)
    try:
        coverage = CoverageSpec.model_validate(raw_cov or {})
    except ValidationError as e:
        raise _pydantic_error(files.get("coverage.yaml", coverage_file), e) from None

    prompts: dict[str, str] = dict(parent.prompts) if parent else {}
    pdir = path / "prompts"
    for f in sorted(pdir.glob("*.md")) if pdir.is_dir() else []:
        prompts[f.stem] = f.read_text(encoding="utf-8")
        files[f"prompts/{f.name}"] = f

    examples: list[dict] = []
    sources: list[str] = []
    edir = path / "examples"
    for f in sorted(edir.glob("*.jsonl")) if edir.is_dir() else []:
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
            except json.JSONDecodeError as e:
                raise SkillError(f"{f}: line {i}: invalid JSON: {e.msg}") from None
            if not isinstance(ex, dict):
                raise SkillError(f"{f}: line {i}: an example must be a JSON object")
            examples.append(ex)
            sources.append(f"{f}:{i}")
    if parent is not None:  # the child's examples of a sample type replace the parent's
        own_types = {e.get("sample_type") for e in examples}
        for ex, src in zip(parent.examples, parent.example_sources):
            if ex.get("sample_type") not in own_types:
                examples.append(ex)
                sources.append(src)

    content_hash = skill_content_hash(path)
    if parent is not None:
        content_hash = sha256_text(content_hash + "\x00" + parent.content_hash)

    return Skill(
        name=fm.name,
        description=fm.description,
        domain=fm.domain,
        version=fm.version,
        sample_types=list(fm.sample_types),
        instructions=body.strip() or (parent.instructions if parent else ""),
        path=path,
        schemas=schemas,
        filters=filters,
        coverage=coverage,
        prompts=prompts,
        examples=examples,
        example_sources=sources,
        content_hash=content_hash,
        front_matter=fm.model_dump(),
        extends=([parent.name] + parent.extends) if parent else [],
        files=files,
        raw_filters=raw_filters,
        raw_coverage=raw_cov,
    )


def sample_context_chunk() -> Any:
    """A small chunk used to render prompt templates in :func:`check_skill`."""
    from prepbench.tools.chunking import Chunk

    text = "## Bonds\n\nA bond is a debt security that pays periodic interest and returns its face value at maturity."
    return Chunk(
        chunk_id="0000000000000000",
        doc_id="0000000000000000",
        doc_path="example.md",
        index=0,
        heading_path=["Bonds"],
        start_line=1,
        end_line=3,
        text=text,
        headings=["Bonds"],
    )


def check_skill(name_or_path: str | Path) -> dict[str, Any]:
    """Fully validate a skill; return its summary dict when everything passes.

    Checks: front matter fields; ``extends`` resolves (no cycle) and the resolved skill is
    what is checked; every schema is a valid JSON Schema (Draft 2020-12) of
    an object that requires the common fields; every example names a known sample type,
    validates against its schema and passes the skill's filter rules; sample-type names
    agree across schema file names, ``sample_type`` consts, ``x-prepbench-form`` (one of
    :data:`BASE_FORMS`, required for a non-base type), prompts and coverage; every prompt
    renders with a sample context; every filter rule compiles; the coverage config names
    only known sample types and its shares are consistent.

    Raises:
        SkillError: the first problem, one line naming file and field.
    """
    skill = load_skill(name_or_path)
    path = skill.path
    validator_cls = jsonschema.Draft202012Validator
    for t, schema in skill.schemas.items():
        f = skill.file(f"schemas/{t}.json")
        try:
            validator_cls.check_schema(schema)
        except jsonschema.SchemaError as e:
            where = "/".join(str(x) for x in e.absolute_path) or "(root)"
            raise SkillError(f"{f}: invalid JSON Schema at '{where}': {e.message}") from None
        if schema.get("type") != "object":
            raise SkillError(f"{f}: field 'type': a sample schema must have type 'object'")
        required = set(schema.get("required", []))
        missing = [c for c in COMMON_SAMPLE_FIELDS if c not in required]
        if missing:
            raise SkillError(f"{f}: field 'required': must include {missing} (every sample carries them)")
        if t not in skill.sample_types:
            raise SkillError(f"{f}: sample type '{t}' is not listed in SKILL.md field 'sample_types'")
        const = schema.get("properties", {}).get("sample_type", {}).get("const")
        if const is not None and const != t:
            raise SkillError(f"{f}: field 'properties.sample_type.const': '{const}' differs from the file name '{t}'")
        form = schema.get("x-prepbench-form")
        if form is None and t not in BASE_FORMS:
            raise SkillError(f"{f}: field 'x-prepbench-form': required for a domain sample type (one of {', '.join(BASE_FORMS)})")
        if form is not None and form not in BASE_FORMS:
            raise SkillError(f"{f}: field 'x-prepbench-form': '{form}' is not one of {', '.join(BASE_FORMS)}")

    # filters compile
    from prepbench.tools.validate import build_rules

    build_rules(skill)

    # coverage consistent
    cov_file = skill.file("coverage.yaml")
    for t in skill.coverage.sample_types:
        if t not in skill.sample_types:
            raise SkillError(f"{cov_file}: field 'sample_types.{t}': unknown sample type (not in SKILL.md)")
    total_share = sum(tt.min_share for tt in skill.coverage.sample_types.values())
    if total_share > 1.0 + 1e-9:
        raise SkillError(f"{cov_file}: field 'sample_types': min_share values sum to {total_share:.2f} > 1")
    if not skill.coverage.skip_reasons:
        raise SkillError(f"{cov_file}: field 'skip_reasons': at least one skip reason is needed")
    for t in skill.sample_types:
        if (
            t in skill.coverage.sample_types
            and skill.coverage.sample_types[t].per_chunk == 0
            and skill.coverage.sample_types[t].min_share > 0
        ):
            raise SkillError(f"{cov_file}: field 'sample_types.{t}': per_chunk 0 with min_share > 0")

    # prompts render
    required_prompts = ["triage"] + [f"generate_{t}" for t in skill.sample_types]
    for name in required_prompts:
        if name not in skill.prompts:
            raise SkillError(f"{path / 'prompts' / (name + '.md')}: required prompt template is missing")
    chunk = sample_context_chunk()
    for name in skill.prompts:
        t = name[len("generate_") :] if name.startswith("generate_") else skill.sample_types[0]
        if name.startswith("generate_") and t not in skill.sample_types:
            raise SkillError(f"{skill.file('prompts/' + name + '.md')}: sample type '{t}' is not in SKILL.md 'sample_types'")
        skill.render_prompt(
            name,
            chunk=chunk,
            sample_type=t,
            schema=skill.schemas[t],
            schema_json=json.dumps(skill.schemas[t], indent=2),
            examples=[e for e in skill.examples if e.get("sample_type") == t][:2],
            count=skill.target(t).per_chunk or 1,
            skip_reasons=list(skill.coverage.skip_reasons),
            candidate={"sample_type": t},
            feedback="example feedback",
            sample_types=skill.sample_types,
        )

    # examples validate against schema and pass filters
    from prepbench.tools.validate import Gate

    validator = Gate(skill, dedup=False)
    for ex, src in zip(skill.examples, skill.example_sources):
        t = ex.get("sample_type")
        if t not in skill.schemas:
            raise SkillError(f"{src}: field 'sample_type': unknown sample type '{t}'")
        verdict = validator.check(ex, chunk_text=None)
        if not verdict.ok:
            raise SkillError(f"{src}: example fails {verdict.rule}: {verdict.detail}")
    for t in skill.sample_types:
        if not any(e.get("sample_type") == t for e in skill.examples):
            raise SkillError(f"{path / 'examples'}: no example of sample type '{t}'")
    return skill.summary()
