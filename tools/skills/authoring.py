"""Skill authoring: scaffold a new skill, list the installed and local ones, try one on a corpus.

The ``prepbench skill new/list/try`` commands (``tools/cli_skill.py``) are thin wrappers
over :func:`scaffold_skill`, :func:`list_skills` and :func:`try_skill`. The authoring guide
is ``skills/README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prepbench.tools.errors import SkillError
from prepbench.tools.skills import NAME_RE, installed_skills_dir, load_skill

# ---------------------------------------------------------------------------------------
# skill new
# ---------------------------------------------------------------------------------------

_SKILL_MD = """---
# SKILL.md front matter (YAML). The Markdown below the closing '---' is the agent's instruction.
# name: lowercase letters, digits, '-' or '_'; the folder name is usually the same.
name: {name}
{extends_line}# description: one sentence: which books this skill reads and which samples it writes.
description: {description}
# domain: the field the books belong to (shown by `prepbench skill list`, used in the triage prompt).
domain: {domain}
# version: bump it when you change the skill; a run records it, and a changed skill is not resumed.
version: 0.1.0
# sample_types: the sample types this skill adds. Each needs schemas/<type>.json,
# prompts/generate_<type>.md and at least one example in examples/*.jsonl.{inherit_note}
sample_types: [{sample_types}]
license: Apache-2.0
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
    return f"""# {name.replace('-', ' ').replace('_', ' ').title()} data-construction skill

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


def scaffold_skill(
    name: str,
    dest: str | Path = "skills",
    extends: str | None = "general",
    domain: str | None = None,
    description: str | None = None,
) -> Path:
    """Create a new skill folder ``dest/name`` with commented templates that pass ``skill check``.

    With ``extends`` (default ``general``), the folder holds SKILL.md (``extends:`` set,
    the parent's instructions as a starting point), commented ``filters.yaml`` and
    ``coverage.yaml`` that add nothing yet, and empty ``schemas/``, ``prompts/`` and
    ``examples/`` folders: every sample type, prompt and example is inherited. Without it
    (``extends=None``), the general skill's files are copied in, so the new skill stands alone.

    Args:
        name: the skill name (lowercase letters, digits, ``-``, ``_``).
        dest: the folder to create the skill in (created if missing).
        extends: a shipped skill name or a skill folder path, or None for a standalone skill.
        domain: the domain (default: the name).
        description: the one-sentence description (default: a sentence naming the domain).

    Returns:
        The new skill folder.

    Raises:
        SkillError: invalid name, the folder exists, or the parent skill cannot be loaded.
    """
    if not NAME_RE.match(name):
        raise SkillError(f"{name}: invalid skill name (lowercase letters, digits, '-' or '_', max 64, starting with a letter)")
    dest = Path(dest)
    folder = dest / name
    if folder.exists():
        raise SkillError(f"{folder}: already exists (choose another name or --dir)")
    domain = domain or name
    description = description or f"Turn {domain} books into self-contained, faithful question-answer samples for supervised fine-tuning."
    parent = None
    if extends:
        ext_path = Path(extends)
        if (ext_path / "SKILL.md").is_file():
            parent = load_skill(ext_path)
            # a folder is stored as a path relative to the new skill folder
            extends = os.path.relpath(ext_path.resolve(), folder.resolve())
        else:
            parent = load_skill(extends)
    folder.mkdir(parents=True)
    try:
        if parent is not None:
            body = parent.instructions.replace(f"# {parent.name.title()} data-construction skill", f"# {name.title()} data-construction skill", 1)
            (folder / "SKILL.md").write_text(
                _SKILL_MD.format(
                    name=name,
                    extends_line=f"# extends: the skill this one builds on (a shipped skill name or a relative folder path).\nextends: {extends}\n",
                    description=json.dumps(description, ensure_ascii=False),
                    domain=domain,
                    inherit_note=f"\n# The types of '{parent.name}' ({', '.join(parent.sample_types)}) are inherited; list only new ones.",
                    sample_types="",
                    body=body,
                ),
                encoding="utf-8",
            )
            inherits = f"inherits the rules of '{parent.name}'."
            (folder / "filters.yaml").write_text(_FILTERS_CHILD.format(inherits=inherits), encoding="utf-8")
            (folder / "coverage.yaml").write_text(
                _COVERAGE_CHILD.format(inherits=f"inherits the coverage settings of '{parent.name}'."), encoding="utf-8"
            )
            for sub in ("schemas", "prompts", "examples"):
                (folder / sub).mkdir()
                (folder / sub / ".keep").write_text(_KEEP, encoding="utf-8")
        else:
            base = load_skill(installed_skills_dir() / "general")
            for sub in ("schemas", "prompts", "examples"):
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
                    sample_types=", ".join(base.sample_types),
                    body=_default_body(name, domain),
                ),
                encoding="utf-8",
            )
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
                row.update(name=sk.name, domain=sk.domain, version=sk.version, sample_types=list(sk.sample_types), extends=list(sk.extends))
            except SkillError as e:
                row.update(name=sub.name, domain="", version="", sample_types=[], extends=[], error=str(e))
            rows.append(row)
    rows.sort(key=lambda r: (r["where"] != "installed", r["name"]))
    return rows


# ---------------------------------------------------------------------------------------
# skill try
# ---------------------------------------------------------------------------------------


@dataclass
class TryResult:
    """What :func:`try_skill` found on the first chunks of a corpus.

    Attributes:
        skill: the skill name.
        chunks: per chunk in corpus order: ``{"idx", "chunk_id", "doc_path", "heading", "status",
            "skip_reason", "error", "text", "accepted": [sample...], "rejected": [sample...]}``
            where a rejected sample has ``rule`` and ``detail``.
        coverage: the coverage report (see :func:`prepbench.tools.coverage.coverage_report`).
        exported: number of samples the export wrote (ShareGPT/Alpaca/OpenAI), in the throwaway run.
        seconds: wall time of the run.
    """

    skill: str
    chunks: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    exported: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> list[dict]:
        """Every accepted sample, in corpus order."""
        return [s for c in self.chunks for s in c["accepted"]]

    @property
    def rejected(self) -> list[dict]:
        """Every rejected sample (with ``rule`` and ``detail``), in corpus order."""
        return [s for c in self.chunks for s in c["rejected"]]


def try_skill(
    skill: str | Path,
    corpus: list[str | Path] | str | Path,
    limit: int = 5,
    model: str = "extractive",
    model_options: dict[str, Any] | None = None,
    generator: Any = None,
    keep_dir: str | Path | None = None,
    progress: Any = None,
) -> TryResult:
    """Run a skill on the first ``limit`` chunks of a corpus into a throwaway run folder.

    It is the real main job (:func:`prepbench.tools.run.run_pipeline`: ingest, chunk,
    ledger, skill agent, validation, coverage, export) with ``--limit``, in a temporary
    folder that is deleted afterwards (unless ``keep_dir`` is given).

    Args:
        skill: a skill folder or shipped skill name.
        corpus: corpus folder(s) or file(s).
        limit: number of chunks (from the corpus start) to process (>= 1).
        model: model spec (``extractive`` offline, ``openai:<model>``, ...).
        model_options: options for the model layer (``base_url``, ...).
        generator: a ready generator object (tests).
        keep_dir: run into this folder (new or empty) and keep it, instead of a temporary one.
        progress: progress factory passed to :func:`~prepbench.tools.run.run_pipeline` (the CLI's bar).

    Returns:
        A :class:`TryResult` with every chunk's accepted and rejected samples and the coverage.

    Raises:
        PrepbenchError: a broken skill, corpus or model spec (as ``prepbench run``), a
            ``limit`` below 1, or a ``keep_dir`` that already holds files.
    """
    from prepbench.tools.errors import PrepbenchError
    from prepbench.tools.ledger import LEDGER_FILE, Ledger
    from prepbench.tools.run import RunOptions, run_pipeline

    if limit < 1:
        raise PrepbenchError("--limit must be at least 1")
    if keep_dir is not None and Path(keep_dir).exists() and any(Path(keep_dir).iterdir()):
        raise PrepbenchError(f"{keep_dir}: --keep needs a new or empty folder (skill try never overwrites a run)")
    if isinstance(corpus, (str, Path)):
        corpus = [corpus]
    with tempfile.TemporaryDirectory(prefix="prepbench-try-") as tmp:
        out = Path(keep_dir) if keep_dir else Path(tmp) / "run"
        opts = RunOptions(
            corpus=[str(c) for c in corpus], skill=str(skill), out=str(out), model=model, limit=limit,
            fresh=True, model_options=dict(model_options or {}),
        )
        result = run_pipeline(opts, progress=progress, generator=generator)
        ledger = Ledger(out / LEDGER_FILE)
        try:
            rows = list(ledger.db.query("SELECT * FROM chunks ORDER BY idx"))
            samples: dict[str, list[dict]] = {}
            for s in ledger.db.query("SELECT * FROM samples ORDER BY chunk_idx, pos"):
                d = json.loads(s["data"])
                d.setdefault("sample_type", s["sample_type"])
                d["_status"], d["_rule"], d["_detail"] = s["status"], s["rule"], s["detail"]
                samples.setdefault(s["chunk_id"], []).append(d)
        finally:
            ledger.close()
    tr = TryResult(skill=load_skill(skill).name, coverage=result["coverage"],
                   exported=int(result["export"].get("count", 0)), seconds=float(result["seconds"]))
    for r in rows:
        try:
            heading = " > ".join(json.loads(r["heading_path"] or "[]"))
        except json.JSONDecodeError:
            heading = r["heading_path"] or ""
        mine = samples.get(r["chunk_id"], [])
        tr.chunks.append(
            {
                "idx": r["idx"],
                "chunk_id": r["chunk_id"],
                "doc_path": r["doc_path"],
                "heading": heading,
                "status": r["status"],
                "skip_reason": r["skip_reason"],
                "error": r["error"],
                "text": r["text"],
                "accepted": [_public(s) for s in mine if s["_status"] == "accepted"],
                "rejected": [dict(_public(s), rule=s["_rule"], detail=s["_detail"]) for s in mine if s["_status"] != "accepted"],
            }
        )
    return tr


def _public(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if not k.startswith("_")}


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
