"""Load a skill folder, resolved over the skills it extends.

Loading never executes code from the folder, never reads outside it (see
:mod:`~prepbench.tools.skills.files`) and never reaches the network (see
:mod:`~prepbench.tools.skills.refs`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prepbench.tools.errors import PrepbenchError, SkillError
from prepbench.tools.hashing import sha256_text

from .files import list_files, parse_front_matter, read_text, read_yaml, skill_content_hash
from .model import Skill
from .refs import check_refs
from .spec import AGENT_SKILLS_FIELDS, PREPBENCH_KEYS, CoverageSpec, FiltersSpec, FrontMatter

#: Where ``--skill NAME`` looks after the shipped skills: the folder ``skill new`` writes to.
LOCAL_SKILLS_DIR = Path("skills")


def installed_skills_dir() -> Path:
    """Folder of the skills shipped with prepbench (``prepbench.skills`` package data)."""
    return Path(str(resources.files("prepbench.skills")))


def resolve_skill_path(name_or_path: str | Path) -> Path:
    """A skill folder from a path, or from a skill name: a shipped skill, else ``./skills/NAME``
    (where ``prepbench skill new`` writes, and which ``skill list`` shows as local).

    Raises:
        SkillError: neither a folder with SKILL.md nor a known skill name.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "SKILL.md").is_file():
            raise SkillError(f"{p}: not a skill folder (no SKILL.md)")
        return p.resolve()
    if p.suffix == "" and "/" not in str(name_or_path):
        for root in (installed_skills_dir(), LOCAL_SKILLS_DIR):
            cand = root / str(name_or_path)
            if (cand / "SKILL.md").is_file():
                return cand.resolve()
    raise SkillError(f"{name_or_path}: no such skill folder, shipped skill or local skill (./skills/{name_or_path})")


def _pydantic_error(file: Path, e: ValidationError) -> SkillError:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    return SkillError(f"{file}: field '{loc}': {err['msg']}")


def _resolve_parent(value: str, child: Path, skill_md: Path) -> Path:
    """The folder named by ``extends``: a shipped skill name, else a path relative to the child."""
    if "/" not in value and not value.startswith("."):
        cand = installed_skills_dir() / value
        if (cand / "SKILL.md").is_file():
            return cand.resolve()
    cand = (child / value).expanduser()
    if (cand / "SKILL.md").is_file():
        return cand.resolve()
    raise SkillError(f"{skill_md}: field 'metadata.extends': no shipped skill or skill folder '{value}'")


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


def _front_matter(meta: dict, skill_md: Path) -> FrontMatter:
    """Validate the front matter; a skill in the old layout (prepbench keys at the top
    level) gets a one-line pointer to the Agent Skills layout."""
    for key in meta:
        if key in PREPBENCH_KEYS:
            raise SkillError(
                f"{skill_md}: field '{key}': old skill layout; move it under 'metadata:' "
                "(Agent Skills format, see prepbench's skills/README.md)"
            )
        if key not in AGENT_SKILLS_FIELDS:
            raise SkillError(f"{skill_md}: field '{key}': not an Agent Skills field ({', '.join(AGENT_SKILLS_FIELDS)})")
    if not isinstance(meta.get("metadata"), dict):
        raise SkillError(f"{skill_md}: field 'metadata': required mapping with prepbench's keys (domain, version, sample_types)")
    try:
        return FrontMatter.model_validate(meta)
    except ValidationError as e:
        raise _pydantic_error(skill_md, e) from None


def _load_parent(fm: FrontMatter, path: Path, skill_md: Path, chain: tuple[Path, ...]) -> Skill | None:
    ext = fm.metadata.extends
    if ext is None:
        return None
    if not ext.strip():
        raise SkillError(f"{skill_md}: field 'metadata.extends': must be a skill name or a folder path")
    parent_path = _resolve_parent(ext.strip(), path, skill_md)
    chain = chain + (path,)
    if parent_path in chain:
        names = [p.name for p in chain[chain.index(parent_path) :]] + [parent_path.name]
        raise SkillError(f"{skill_md}: field 'metadata.extends': circular inheritance {' -> '.join(names)}")
    return load_skill(parent_path, chain)


def _load_schemas(path: Path, parent: Skill | None, files: dict[str, Path]) -> dict[str, dict]:
    schemas: dict[str, dict] = dict(parent.schemas) if parent else {}
    own = list_files(path / "schemas", path, ".json")
    for f in own:
        try:
            schemas[f.stem] = json.loads(read_text(f, path))
        except json.JSONDecodeError as e:
            raise SkillError(f"{f}: line {e.lineno}: invalid JSON: {e.msg}") from None
        files[f"schemas/{f.name}"] = f
    for f in own:
        if isinstance(schemas[f.stem], dict):
            check_refs(schemas[f.stem], f)
    return schemas


def _load_filters(path: Path, parent: Skill | None, files: dict[str, Path]) -> tuple[FiltersSpec, dict]:
    filters_file = path / "filters.yaml"
    raw = _mapping(filters_file, read_yaml(filters_file, path)) if filters_file.is_file() else {}
    if filters_file.is_file():
        files["filters.yaml"] = filters_file
    if parent is not None:
        child_rules = raw.get("rules") or []
        if not isinstance(child_rules, list):
            raise SkillError(f"{filters_file}: field 'rules': must be a list of rules")
        merged = _merge_dicts(parent.raw_filters, {k: v for k, v in raw.items() if k != "rules"})
        merged["rules"] = _merge_rules(parent.raw_filters.get("rules") or [], child_rules)
        raw = merged
    elif isinstance(raw.get("rules"), list):
        raw = dict(raw, rules=_merge_rules([], raw["rules"]))
    try:
        return FiltersSpec.model_validate(raw or {}), raw
    except ValidationError as e:
        raise _pydantic_error(files.get("filters.yaml", filters_file), e) from None


def _load_coverage(path: Path, parent: Skill | None, files: dict[str, Path]) -> tuple[CoverageSpec, dict]:
    coverage_file = path / "coverage.yaml"
    raw = _mapping(coverage_file, read_yaml(coverage_file, path)) if coverage_file.is_file() else {}
    if coverage_file.is_file():
        files["coverage.yaml"] = coverage_file
    if isinstance(raw.get("skip_reasons"), list):
        raw = dict(raw, skip_reasons={str(r): "" for r in raw["skip_reasons"]})
    if parent is not None:
        raw = _merge_dicts(parent.raw_coverage, raw)
    try:
        return CoverageSpec.model_validate(raw or {}), raw
    except ValidationError as e:
        raise _pydantic_error(files.get("coverage.yaml", coverage_file), e) from None


def _load_templates(path: Path, sub: str, inherited: dict[str, str], files: dict[str, Path]) -> dict[str, str]:
    """``<sub>/*.md`` (prompts or render templates) by file stem over the parent's."""
    out = dict(inherited)
    for f in list_files(path / sub, path, ".md"):
        out[f.stem] = read_text(f, path)
        files[f"{sub}/{f.name}"] = f
    return out


def _load_examples(path: Path, parent: Skill | None) -> tuple[list[dict], list[str]]:
    examples: list[dict] = []
    sources: list[str] = []
    for f in list_files(path / "examples", path, ".jsonl"):
        for i, line in enumerate(read_text(f, path).splitlines(), start=1):
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
    return examples, sources


def load_skill(name_or_path: str | Path, _chain: tuple[Path, ...] = ()) -> Skill:
    """Load a skill folder (or a skill by name, see :func:`resolve_skill_path`) and parse every part.

    A skill whose front matter has ``metadata.extends: PARENT`` (a shipped skill name, or a
    folder path relative to the skill) is resolved on top of its parent, loaded first:
    schemas, prompts, render templates and examples are inherited and the child's files of
    the same name (for examples: the same sample type) override them; ``filters.yaml``
    rules merge by ``name`` (a child rule of the same name replaces the parent's,
    ``enabled: false`` removes it) and the other ``filters.yaml``/``coverage.yaml`` keys
    merge as mappings, the child's values winning; ``sample_types`` is the parent's list
    plus the child's new types; ``license`` defaults to the parent's (``name``,
    ``description``, ``domain`` and ``version`` are the child's own and required).

    Structural problems raise at once; deeper checks (examples against schemas, templates
    render, ``$ref`` resolve) are in :func:`~prepbench.tools.skills.check.check_skill`.

    Raises:
        SkillError: one line naming the file and field or line (also for a circular
            ``extends``, an old-layout front matter, a ``$ref`` or a symlink that leaves the skill).
    """
    path = resolve_skill_path(name_or_path)
    skill_md = path / "SKILL.md"
    meta, body = parse_front_matter(skill_md, path)
    fm = _front_matter(meta, skill_md)
    parent = _load_parent(fm, path, skill_md, _chain)
    if parent is not None:
        own = fm.metadata.sample_types
        fm.metadata.sample_types = list(parent.sample_types) + [t for t in own if t not in parent.sample_types]
        fm.license = fm.license or parent.front_matter.get("license")
    if not fm.metadata.sample_types:
        raise SkillError(f"{skill_md}: field 'metadata.sample_types': at least one sample type is needed")

    files: dict[str, Path] = dict(parent.files) if parent else {}
    schemas = _load_schemas(path, parent, files)
    for t in fm.metadata.sample_types:
        if t not in schemas:
            raise SkillError(f"{skill_md}: field 'metadata.sample_types': '{t}' has no schema (expected schemas/{t}.json)")
    filters, raw_filters = _load_filters(path, parent, files)
    coverage, raw_cov = _load_coverage(path, parent, files)
    examples, sources = _load_examples(path, parent)
    content_hash = skill_content_hash(path)
    if parent is not None:
        content_hash = sha256_text(content_hash + "\x00" + parent.content_hash)
    return Skill(
        name=fm.name,
        description=fm.description,
        domain=fm.metadata.domain,
        version=fm.metadata.version,
        sample_types=list(fm.metadata.sample_types),
        instructions=body.strip() or (parent.instructions if parent else ""),
        path=path,
        schemas=schemas,
        filters=filters,
        coverage=coverage,
        prompts=_load_templates(path, "prompts", parent.prompts if parent else {}, files),
        renders=_load_templates(path, "render", parent.renders if parent else {}, files),
        examples=examples,
        example_sources=sources,
        content_hash=content_hash,
        front_matter=fm.model_dump(by_alias=True),
        extends=([parent.name] + parent.extends) if parent else [],
        files=files,
        raw_filters=raw_filters,
        raw_coverage=raw_cov,
    )


def load_run_skill(config: dict[str, Any]) -> Skill | None:
    """The skill a run was made with (its config's ``skill_path``, else ``skill_name``), or None
    when it cannot be loaded (moved, changed into a broken skill): readers and the export then
    fall back to the default rendering."""
    ref = config.get("skill_path") or config.get("skill_name")
    if not ref:
        return None
    try:
        return load_skill(ref)
    except PrepbenchError:
        return None
