"""``prepbench skill check``: validate every part of a skill before a run spends anything on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import jsonschema

from prepbench.tools.errors import SkillError

from .loader import load_skill
from .model import MODE_PROMPT_VARIABLES, PROMPT_VARIABLES, Skill
from .refs import unresolvable_ref
from .spec import BASE_FORMS, COMMON_SAMPLE_FIELDS, MODE_FORM, PREPBENCH_SKIP_REASONS
from .templates import PROMPT_ENV, RENDER_BLOCKS, RENDER_ENV, error_line, render_blocks, unknown_variables


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


def _check_schema(skill: Skill, t: str, schema: dict) -> None:
    f = skill.file(f"schemas/{t}.json")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(x) for x in e.absolute_path) or "(root)"
        raise SkillError(f"{f}: invalid JSON Schema at '{where}': {e.message}") from None
    if schema.get("type") != "object":
        raise SkillError(f"{f}: field 'type': a sample schema must have type 'object'")
    missing = [c for c in COMMON_SAMPLE_FIELDS if c not in set(schema.get("required", []))]
    if missing:
        raise SkillError(f"{f}: field 'required': must include {missing} (every sample carries them)")
    if t not in skill.sample_types:
        raise SkillError(f"{f}: sample type '{t}' is not listed in SKILL.md field 'metadata.sample_types'")
    const = schema.get("properties", {}).get("sample_type", {}).get("const")
    if const is not None and const != t:
        raise SkillError(f"{f}: field 'properties.sample_type.const': '{const}' differs from the file name '{t}'")
    form = schema.get("x-prepbench-form")
    forms = (*BASE_FORMS, MODE_FORM)
    if form is None and t not in forms:
        raise SkillError(f"{f}: field 'x-prepbench-form': required for a domain sample type (one of {', '.join(forms)})")
    if form is not None and form not in forms:
        raise SkillError(f"{f}: field 'x-prepbench-form': '{form}' is not one of {', '.join(forms)}")
    if "x-render" in schema:
        raise SkillError(f"{f}: field 'x-render': old skill layout; write the templates to render/{t}.md (see skills/README.md)")
    bad = unresolvable_ref(t, skill.schemas)
    if bad:
        raise SkillError(f"{f}: field '{bad[0]}': $ref '{bad[1]}' does not resolve")


def _check_coverage(skill: Skill) -> None:
    cov_file = skill.file("coverage.yaml")
    for t in skill.coverage.sample_types:
        if t not in skill.sample_types:
            raise SkillError(f"{cov_file}: field 'sample_types.{t}': unknown sample type (not in SKILL.md)")
    total_share = sum(tt.min_share for tt in skill.coverage.sample_types.values())
    if total_share > 1.0 + 1e-9:
        raise SkillError(f"{cov_file}: field 'sample_types': min_share values sum to {total_share:.2f} > 1")
    if not skill.coverage.skip_reasons:
        raise SkillError(f"{cov_file}: field 'skip_reasons': at least one skip reason is needed")
    for r in skill.coverage.skip_reasons:
        if r in PREPBENCH_SKIP_REASONS:
            raise SkillError(
                f"{cov_file}: field 'skip_reasons.{r}': '{r}' is prepbench's own skip reason "
                "(recorded for every skill); remove it from the skill's vocabulary"
            )
    for t, target in skill.coverage.sample_types.items():
        if target.per_chunk == 0 and target.min_share > 0:
            raise SkillError(f"{cov_file}: field 'sample_types.{t}': per_chunk 0 with min_share > 0")
    offline = skill.coverage.completion.offline
    for t in (offline.sample_types or []) if offline else ():
        if t not in skill.coverage.sample_types:
            raise SkillError(f"{cov_file}: field 'completion.offline.sample_types': '{t}' is not a sample type of 'sample_types'")
    for t, share in offline.min_shares.items() if offline and offline.sample_types is not None else ():
        if share > 0 and t not in offline.sample_types:
            raise SkillError(f"{cov_file}: field 'completion.offline.min_shares.{t}': the offline generator does not offer '{t}'")
    for t in offline.min_shares if offline else ():
        if t not in skill.coverage.sample_types:
            raise SkillError(f"{cov_file}: field 'completion.offline.min_shares.{t}': not a sample type of 'sample_types'")


def _template_error(file: Path, e: Exception) -> SkillError:
    line = error_line(e)
    return SkillError(f"{file}:{f' line {line}' if line else ''}: {getattr(e, 'message', None) or e}")


def _check_prompts(skill: Skill) -> None:
    for name in ["triage"] + [f"generate_{t}" for t in skill.chunk_types]:
        if name not in skill.prompts:
            raise SkillError(f"{skill.path / 'prompts' / (name + '.md')}: required prompt template is missing")
    chunk = sample_context_chunk()
    for name, source in skill.prompts.items():
        file = skill.file(f"prompts/{name}.md")
        if name in MODE_PROMPT_VARIABLES:
            _check_mode_prompt(skill, name, file, source)
            continue
        t = name[len("generate_") :] if name.startswith("generate_") else skill.chunk_types[0]
        if name.startswith("generate_") and t not in skill.chunk_types:
            raise SkillError(f"{file}: sample type '{t}' is not a chunk sample type in SKILL.md 'metadata.sample_types'")
        _check_variables(file, source, PROMPT_ENV, PROMPT_VARIABLES, f"a prompt may use {', '.join(PROMPT_VARIABLES)}")
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
            sample_types=skill.chunk_types,
        )
    if skill.mode_types:
        for mode in MODE_PROMPT_VARIABLES:
            if mode not in skill.prompts:
                raise SkillError(
                    f"{skill.path / 'prompts' / (mode + '.md')}: required prompt template is missing "
                    f"(the skill has the generation-mode sample type '{skill.mode_types[0]}')"
                )


#: what :func:`_check_mode_prompt` renders a mode prompt with (each mode takes its own part)
_MODE_SAMPLE = {
    "demonstrations": [{"instruction": "What is 3 + 4?", "response": "3 + 4 = 7."}],
    "theme": "Arithmetic",
    "instruction": "What is 3 + 4?",
    "response": "3 + 4 = 7.",
    "schema_json": '{"type": "object"}',
    "feedback": "example feedback",
}


def _check_mode_prompt(skill: Skill, mode: str, file: Path, source: str) -> None:
    """A generation mode's prompt uses only the variables that mode is given, and renders with them."""
    if not skill.mode_types:
        raise SkillError(
            f"{file}: a generation-mode prompt, but no sample type of the skill has "
            f"x-prepbench-form '{MODE_FORM}' (the type its samples take)"
        )
    allowed = MODE_PROMPT_VARIABLES[mode]
    _check_variables(file, source, PROMPT_ENV, allowed, f"prompts/{mode}.md may use {', '.join(allowed)}")
    skill.render_prompt(mode, **{k: v for k, v in _MODE_SAMPLE.items() if k in allowed})


def _check_variables(file: Path, source: str, env, allowed, hint: str) -> None:
    """A template's syntax and variables: SkillError naming ``file`` and the line of the first
    variable outside ``allowed`` (``hint`` says what is allowed)."""
    try:
        unknown = unknown_variables(source, env, allowed)
    except jinja2.TemplateSyntaxError as e:
        raise _template_error(file, e) from None
    if unknown:
        var, line = unknown[0]
        raise SkillError(f"{file}: line {line}: unknown variable '{var}' ({hint})")


def _check_renders(skill: Skill) -> None:
    """Every sample type has ``render/<type>.md`` with both blocks, using only its schema's
    fields, and it renders each example of that type."""
    for t in skill.sample_types:
        file = skill.file(f"render/{t}.md")
        if t not in skill.renders:
            raise SkillError(f"{file}: required render template is missing (blocks {' and '.join(RENDER_BLOCKS)})")
        source = skill.renders[t]
        fields = set(skill.schemas[t].get("properties", {})) | set(COMMON_SAMPLE_FIELDS) | {"sample_id"}
        _check_variables(file, source, RENDER_ENV, fields, f"not a field of schemas/{t}.json")
        for ex, src in zip(skill.examples, skill.example_sources):
            if ex.get("sample_type") != t:
                continue
            try:
                render_blocks(source, ex)
            except jinja2.TemplateError as e:
                raise SkillError(f"{_template_error(file, e)} (rendering the example {src})") from None
    for t in skill.renders:
        if t not in skill.sample_types:
            raise SkillError(f"{skill.file(f'render/{t}.md')}: sample type '{t}' is not in SKILL.md 'metadata.sample_types'")


def check_examples(skill: Skill) -> None:
    """Every example of ``skill`` passes its gate (schema, filter rules, duplicates), and every
    sample type has one. The part of :func:`check_skill` that parses English (spaCy): with
    ``--executor ray`` a worker, whose parser is loaded, runs it.

    Raises:
        SkillError: the first failing example (file and line) or a sample type without one.
    """
    from prepbench.tools.validate import Gate

    gate = Gate(skill, dedup=False)
    for ex, src in zip(skill.examples, skill.example_sources):
        t = ex.get("sample_type")
        if t not in skill.schemas:
            raise SkillError(f"{src}: field 'sample_type': unknown sample type '{t}'")
        verdict = gate.check(ex, chunk_text=None)
        if not verdict.ok:
            raise SkillError(f"{src}: example fails {verdict.rule}: {verdict.detail}")
    for t in skill.sample_types:
        if not any(e.get("sample_type") == t for e in skill.examples):
            raise SkillError(f"{skill.path / 'examples'}: no example of sample type '{t}'")


def check_skill(name_or_path: str | Path, examples: bool = True) -> dict[str, Any]:
    """Fully validate a skill; return its summary dict when everything passes.

    Checks: front matter (Agent Skills fields, prepbench's keys under ``metadata``);
    ``extends`` resolves (no cycle) and the resolved skill is what is checked; every schema
    is a valid JSON Schema (Draft 2020-12) of an object that requires the common fields,
    whose ``$ref`` stay in the skill and resolve; every example names a known sample type,
    validates against its schema and passes the skill's filter rules; sample-type names
    agree across schema file names, ``sample_type`` consts, ``x-prepbench-form`` (one of
    :data:`BASE_FORMS`, required for a non-base type), prompts, render templates and
    coverage; every prompt uses only the variables prepbench passes and renders with a
    sample context; every render template uses only its schema's fields and renders each
    example; every filter rule compiles; the coverage config names only known sample
    types and its shares are consistent.

    Raises:
        SkillError: the first problem, one line naming file and field (or line).
    """
    skill = load_skill(name_or_path)
    for t, schema in skill.schemas.items():
        _check_schema(skill, t, schema)
    from prepbench.tools.validate import build_rules

    build_rules(skill)
    _check_coverage(skill)
    _check_prompts(skill)
    _check_renders(skill)
    if examples:
        check_examples(skill)
    return skill.summary()
