"""The offline ``extractive`` generator: rule-based samples from a chunk's own sentences.

No LLM and no model weights: pure-Python regular expressions over the chunk's Markdown.
The generator is the ``extractive`` model spec of the skill-guided agent
(:mod:`prepbench.agents.skill`) and implements the
:class:`~prepbench.agents.base.Generator` protocol.

What it reads (the text structures of OpenStax-style textbooks and long-form prose):

* definitions: ``**term**: definition`` glossary entries, "X is/are a ...", "X refers
  to ...", "X is defined as ...", "X is known as / called ...";
* enumerations: an intro sentence followed by a list ("... are as follows:", "the
  following ...", "There are three ...") and inline "divided into N ...: a, b and c";
* cause and effect: "because", "leads to", "results in", "causes";
* conditions: "If ..., ...", "When ..., ...", "As <quantity> increases, ...";
* question headings ("What Is a Fixed Asset?") answered by the section's first sentences;
* the book's own checkpoint questions with its answer key (:mod:`.checkpoints`);
* worked examples: block-quoted problems with a ``**Solution:**`` (calculator step tables,
  display math, solution sentences) and scenario paragraphs that ask a question and are
  followed by their computation;
* procedures: numbered lists under a "How to ..." title or a "steps"/"process" lead
  sentence, "To <goal>, <method>" sentences followed by a formula, and causal chains
  ("If ..., ... This then ... As a result ...").

Every candidate records its ``evidence``: verbatim substrings of ``chunk.text`` (the
``evidence_in_chunk`` rule of :mod:`prepbench.tools.validate`). Questions and answers are
the source sentences with Markdown cleaned (bold, links, ``\\$``, footnote markers, simple
LaTeX made readable); questions are built only from sentence parts without dangling
pronouns and never cite "Figure 4"/"Table 3.1" or "this section".

Triage uses the Data-Construction-Skill's nine skip reasons (navigation, non_knowledge,
pedagogy, heading_only, low_information, noisy, broken_ocr, duplicate_scope, index_like),
restricted to those the skill's ``coverage.yaml`` allows (fallback ``low_information``).

Sample types are mapped by their schema's ``x-prepbench-form`` (``concept_qa``,
``process_qa``, ``case_application``) so skills with their own sample types reuse the
three extractors; fields a type's schema requires but the extractor cannot fill make the
generator produce nothing for that type.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

from prepbench.agents.base import Triage
from prepbench.agents.extractive.articles import term_articles
from prepbench.agents.extractive.attributed import (
    attributed_candidates,
    case_names,
    reported_holdings,
    voice_of,
)
from prepbench.agents.extractive.candidates import Cand
from prepbench.agents.extractive.checkpoints import checkpoint_candidates
from prepbench.agents.extractive.conditional import conditional_definitions
from prepbench.agents.extractive.drug_tables import drug_candidates
from prepbench.agents.extractive.extractor import _Extractor, key_terms
from prepbench.agents.extractive.opinions import misspelled_case_names, opinion_speaker, separate_opinion_line
from prepbench.agents.extractive.theorems import book_results, named_results
from prepbench.agents.extractive.triage import triage_chunk
from prepbench.tools.chunking import Chunk
from prepbench.tools.ledger import CallRecord
from prepbench.tools.skills import Skill
from prepbench.tools.validate import Gate
from prepbench.tools.validate.rules_language import LANGUAGE_KINDS, VOICES

# ---------------------------------------------------------------------------------------
# Mapping form-level candidates onto a skill's sample types
# ---------------------------------------------------------------------------------------

_ENUM_FALLBACK = {
    "definition": ("definition", "concept", "fact", "factual", "recall"),
    "enumeration": ("enumeration", "list", "fact", "factual", "recall"),
    "cause_effect": ("cause_effect", "causal", "explanation", "reasoning", "why"),
    "condition": ("condition", "conditional", "explanation", "reasoning"),
    "comparison": ("comparison", "compare", "contrast", "explanation"),
    "explanation": ("explanation", "conceptual", "reasoning", "fact"),
    "fact": ("fact", "factual", "recall", "definition"),
    "procedure": ("procedure", "process", "steps", "calculation"),
    "calculation": ("calculation", "computation", "numeric", "procedure"),
    "causal_chain": ("causal_chain", "causal", "reasoning", "procedure"),
    "decision": ("decision", "judgement", "judgment", "analysis"),
}


def _fit_schema(sample_type: str, chunk_id: str, cand: Cand, schema: dict) -> dict | None:
    """Shape a form-level candidate to a sample type's JSON Schema (None when it cannot)."""
    props: dict = schema.get("properties", {}) or {}
    required = list(schema.get("required", []))
    closed = schema.get("additionalProperties", True) is False
    sample: dict[str, Any] = {"sample_type": sample_type, "chunk_id": chunk_id, "evidence": list(dict.fromkeys(cand.evidence))}
    aliases = {
        "reasoning_steps": ("analysis_steps", "steps"),
        "analysis_steps": ("reasoning_steps", "steps"),
        "steps": ("reasoning_steps", "analysis_steps"),
    }
    for k, v in cand.fields.items():
        if closed and k not in props:
            alt = next((a for a in aliases.get(k, ()) if a in props), None)
            if alt is None:
                continue
            k = alt
        sample[k] = v
    for k, spec in props.items():
        if k not in sample or not isinstance(spec, dict):
            continue
        enum = spec.get("enum")
        if enum and sample[k] not in enum:
            wanted = _ENUM_FALLBACK.get(str(sample[k]), (str(sample[k]),))
            sample[k] = next((e for e in wanted if e in enum), enum[0])
    if any(r not in sample for r in required):
        return None
    if isinstance(sample.get("answer"), str) and _FRAGMENT_END.search(sample["answer"]):
        return None  # the answer stops where a formula or list began
    for k in ("reasoning_steps", "analysis_steps", "steps"):
        if isinstance(sample.get(k), list):
            sample[k] = _clean_steps(sample[k])
            lo = ((props.get(k) or {}).get("minItems") if isinstance(props.get(k), dict) else None) or 1
            if len(sample[k]) < lo:
                return None
    return {
        k: sample[k]
        for k in (
            ["sample_type", "chunk_id", "evidence"] + [k for k in sample if k not in ("sample_type", "chunk_id", "evidence")]
        )
    }


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------


def _rank(cands: list[Cand], used: set[str]) -> list[Cand]:
    """Candidates not ``used``, in the order they are picked: one per kind first (mix), then by
    score; one per source key and question."""
    pool = [c for c in cands if c.key not in used]
    pool.sort(key=lambda c: -c.score)  # stable: document order within a score
    picked: list[Cand] = []
    seen_q: set[str] = set()
    keys: set[str] = set()
    kinds: set[str] = set()
    for round_ in (0, 1):
        for c in pool:
            q = (c.fields.get("question") or "").lower()
            if c.key in keys or q in seen_q:
                continue
            if round_ == 0 and c.kind in kinds:
                continue
            picked.append(c)
            keys.add(c.key)
            seen_q.add(q)
            kinds.add(c.kind)
    return picked


#: a sentence cut where a formula or list followed it ("... grows to.", "... as follows:")
_FRAGMENT_END = re.compile(
    r"(?i)(?:\b(?:to|of|by|as|is|are|the|a|an|and|or|with|for|from|in|into|equals?|us|gives|yields|get|gets|becomes|follows)\.|:)\s*$"
)


def _clean_steps(steps: list[str]) -> list[str]:
    """Steps without fragments cut before a formula, and without a sentence repeated inside a step."""
    out = []
    for st in steps:
        sents = re.split(r"(?<=[.!?])\s+", st.strip())
        st = " ".join(dict.fromkeys(x for x in sents if x))
        if st and not _FRAGMENT_END.search(st):
            out.append(st)
    return out


def _merge_steps(steps: list[str], evidence: list[str], limit: int) -> list[str]:
    steps = list(steps)
    while len(steps) > limit:
        # merge the two shortest neighbours
        k = min(range(len(steps) - 1), key=lambda i: len(steps[i]) + len(steps[i + 1]))
        steps[k : k + 2] = [steps[k] + " " + steps[k + 1]]
    return steps


def document_context(
    documents: list[tuple[str, str]], results: dict | None = None, misspelled: frozenset[str] | None = None
) -> dict[str, dict]:
    """``doc_path -> {"separate_from": line | None, "speaker": :func:`opinion_speaker`, "key_terms":
    frozenset of lemmas, "articles": glossary term -> article, "cases": frozenset of case names, "results": the book's named results}``
    of the ``(doc_path, text)`` pairs (see :meth:`ExtractiveGenerator.read_documents`,
    :func:`term_articles`, :func:`case_names`, :func:`book_results`); ``results``: the whole book's
    :func:`book_results` when ``documents`` are a part of it (None: computed from ``documents``);
    ``misspelled``: the book's :func:`misspelled_case_names` likewise, kept as ``"misspelled"``.
    Module-level so a Ray worker can run it by reference."""
    results = book_results(documents) if results is None else results
    if misspelled is None:
        misspelled = misspelled_case_names([case_names(text) for _, text in documents])
    return {
        path: {
            "separate_from": separate_opinion_line(text),
            "speaker": opinion_speaker(text),
            "key_terms": key_terms(text),
            "articles": term_articles(text),
            "cases": case_names(text),
            "results": results,
            "misspelled": misspelled,
        }
        for path, text in documents
    }


class ExtractiveGenerator:
    """Rule-based, offline generator (model spec ``extractive``).

    Implements :class:`prepbench.agents.base.Generator`. Deterministic: the same chunk
    and skill give the same candidates in the same order. No model calls: every
    :class:`CallRecord` has zero tokens and cost, and the real latency.
    """

    name = "extractive"
    version = "1.0"
    needs_chat_model = False

    def __init__(self) -> None:
        #: ``doc_path -> {"title", "authors"}`` from the corpus's ``SOURCE.md`` (set by the run;
        #: an author to attribute claims to, for skills that require attribution)
        self.sources: dict[str, dict] = {}
        self._gate_of: tuple[Skill, Gate] | None = None
        #: ``doc_path -> {"separate_from", "speaker", "key_terms", ...}`` (:func:`document_context`): what a
        #: chunk alone does not show (set by the run, sent to Ray workers with the sources)
        self.document_context: dict[str, dict] = {}

    def read_documents(
        self, documents, start_each: Callable[..., Callable[[], list]] | None = None, parts: int = 1
    ) -> Callable[[], None]:
        """Note, per document (objects with ``rel_path`` and ``text``), where a separate opinion
        begins (a chunk after it states a dissent's or a concurrence's view, not the Court's) and
        the document's key terms (:func:`key_terms`: what a condition or a cause must be about).

        ``start_each(fn, args_list)`` sends the work elsewhere and returns ``collect()`` (a Ray pool's
        :meth:`~prepbench.tools.executors.ray.RayPool.start_each` over its workers, whose English
        parser is loaded), the documents split into ``parts`` of about equal size, so a Ray driver
        neither loads spaCy nor parses the book's headings, and chunks the corpus meanwhile. None
        computes it here. The result is the same either way: each document's context depends on
        its own text, and the book's named results are found here first.

        Returns:
            ``finish()``: waits for the parts and sets :attr:`document_context`; call it before
            generating (a no-op when computed here). Raises what the workers raised.
        """
        pairs = [(d.rel_path, d.text) for d in documents]
        if start_each is None:
            self.document_context = document_context(pairs)
            return lambda: None
        results = book_results(pairs)
        misspelled = misspelled_case_names([case_names(text) for _, text in pairs])
        groups: list[list[tuple[str, str]]] = [[] for _ in range(max(1, min(parts, len(pairs))))]
        for pair in sorted(pairs, key=lambda p: -len(p[1])):  # largest first, each to the smallest group
            min(groups, key=lambda g: sum(len(t) for _, t in g)).append(pair)
        collect = start_each(document_context, [(g, results, misspelled) for g in groups if g])

        def finish() -> None:
            merged: dict[str, dict] = {}
            for part in collect():
                merged.update(part)
            self.document_context = {path: merged[path] for path, _ in pairs}

        return finish

    def _gate(self, skill: Skill) -> Gate:
        """The skill's schemas and language rules (:mod:`prepbench.tools.validate.rules_language`),
        without duplicate state: the generator offers only samples that are self-contained,
        complete, on the question, faithful and attributed where the skill asks for it."""
        if self._gate_of is None or self._gate_of[0] is not skill:
            gate = Gate(skill, dedup=False)
            # the language rules only: the skill's own rules stay visible as rejections (skill try)
            gate.rules = [r for r in gate.rules if r.kind in LANGUAGE_KINDS]
            self._gate_of = (skill, gate)
        return self._gate_of[1]

    # -- sync core -------------------------------------------------------------------
    def triage(self, chunk: Chunk, skill: Skill) -> Triage:
        """Keep or skip ``chunk`` (see :func:`triage_chunk`)."""
        return triage_chunk(chunk, skill)

    def generate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> list[dict]:
        """Candidate samples for ``chunk``: up to ``targets[t]`` of each sample type ``t``.

        Args:
            chunk: the chunk.
            skill: the skill (its schemas decide each type's form and fields).
            targets: sample type -> maximum count for this chunk.

        Returns:
            Candidate dicts with ``sample_type``, ``chunk_id``, ``evidence`` (verbatim spans
            of ``chunk.text``) and the fields of their type's schema; possibly empty.
        """
        context = self.document_context.get(chunk.doc_path, {})
        ex = _Extractor(chunk, context.get("key_terms", frozenset()), context.get("articles"))
        by_form: dict[str, list[str]] = {}
        offline = skill.coverage.completion.offline
        offered = offline.sample_types if offline is not None and offline.sample_types is not None else skill.sample_types
        for t in skill.sample_types:
            n = int(targets.get(t, 0) or 0)
            if n > 0 and t in skill.schemas and t in offered:
                by_form.setdefault(skill.form(t), []).append(t)
        if not by_form:
            return []
        used: set[str] = set()
        examples: list[dict] | None = None

        def get_examples() -> list[dict]:
            nonlocal examples
            if examples is None:
                examples = ex.worked_examples() + ex.scenario_examples()
            return examples

        # worked examples feed case_application and process_qa; a chunk with a single
        # example gives it to one of them (alternating by chunk id, deterministic)
        reserve: set[str] = set()
        other_process: list[dict] = []
        if by_form.get("process_qa"):
            other_process = ex.procedures() + ex.calculator_procedures() + ex.method_sentences() + ex.causal_chains()
        if by_form.get("case_application") and by_form.get("process_qa"):
            exs = get_examples()
            if len(exs) == 1 and not other_process and int(chunk.chunk_id[-1], 16) % 2 == 1:
                reserve.add(exs[0]["key"])
        gate = self._gate(skill)

        def ok(sample: dict) -> bool:  # precision first: only what the skill's gate would accept
            return gate.screen(dict(sample), chunk.text).ok

        out = _case_samples(chunk, skill, targets, by_form.get("case_application", []), get_examples, used, reserve, ok)
        out += _process_samples(chunk, skill, targets, by_form.get("process_qa", []), get_examples, other_process, used, ok)
        concept_types = by_form.get("concept_qa", [])
        if concept_types and _requires_attribution(skill):
            voice = voice_of(chunk, self.sources.get(chunk.doc_path), context.get("separate_from"), context.get("speaker"))
            cases = context.get("cases", frozenset())
            if voice is not None and voice.kind in _voices(skill):
                cands = attributed_candidates(ex.sents, voice, cases)
            elif voice is not None and "court" in _voices(skill):
                cands = reported_holdings(ex.sents, cases)  # an editor's note: only what it says a court held
            else:
                cands = []
            # a case the book spells two ways is not cited in its rarer spelling (a wrong citation taught)
            misspelled = context.get("misspelled", frozenset())
            cands = [c for c in cands if not any(m in str(c.fields.get("question", "")) for m in misspelled)]
            out += _concept_samples_from(cands, chunk, skill, targets, concept_types, used, ok)
        elif concept_types:
            theorems = named_results(chunk.text, chunk.doc_path, context.get("results"))
            out += _concept_samples(ex, chunk, skill, targets, concept_types, used, ok, theorems)
        order = {t: i for i, t in enumerate(skill.sample_types)}
        out.sort(key=lambda s: order.get(s["sample_type"], 99))
        return out

    # -- async protocol ----------------------------------------------------------------
    async def atriage(self, chunk: Chunk, skill: Skill) -> tuple[Triage, list[CallRecord]]:
        """:meth:`triage` plus one zero-cost :class:`CallRecord` (node ``triage``)."""
        t0 = time.perf_counter()
        tri = self.triage(chunk, skill)
        return tri, [CallRecord(node="triage", model=self.name, latency_s=time.perf_counter() - t0)]

    async def agenerate(self, chunk: Chunk, skill: Skill, targets: dict[str, int]) -> tuple[list[dict], list[CallRecord]]:
        """:meth:`generate` plus one zero-cost :class:`CallRecord` (node ``generate``)."""
        t0 = time.perf_counter()
        cands = self.generate(chunk, skill, targets)
        return cands, [CallRecord(node="generate", model=self.name, latency_s=time.perf_counter() - t0)]

    async def arepair(self, chunk: Chunk, skill: Skill, candidate: dict, feedback: str) -> tuple[None, list[CallRecord]]:
        """The extractive generator cannot repair a candidate: always ``(None, [])``."""
        return None, []


def _max_items(schema: dict, fld: str, default: int) -> int:
    spec = (schema.get("properties", {}) or {}).get(fld, {})
    if not isinstance(spec, dict):
        return default
    return int(spec.get("maxItems", default))


def _case_samples(chunk, skill, targets, types, get_examples, used: set[str], reserve: set[str], ok) -> list[dict]:
    """case_application samples from the chunk's worked examples (not ``used`` or ``reserve``d)
    that pass ``ok`` (the skill's gate)."""
    out = []
    for t in types:
        n = targets[t]
        k = 0
        for e in [e for e in get_examples() if e["key"] not in used and e["key"] not in reserve]:
            if k >= n:
                break
            steps = _merge_steps(e["steps"], e["evidence"], _max_items(skill.schemas[t], "analysis_steps", 8))
            cand = Cand(
                "case_application",
                {"case": e["case"], "question": e["question"], "analysis_steps": steps, "answer": e["answer"]},
                e["evidence"],
                "case",
                1.0,
                e["key"],
            )
            s = _fit_schema(t, chunk.chunk_id, cand, skill.schemas[t])
            if s and ok(s):
                out.append(s)
                used.add(e["key"])
                k += 1
    return out


def _example_processes(examples: list[dict], used: set[str]) -> list[dict]:
    """Worked examples not yet used, as process candidates (case and question joined)."""
    pool = []
    for e in examples:
        if e["key"] in used:
            continue
        q = f"{e['case']} {e['question']}".replace("\n", " ")
        if len(q) > 590:
            continue
        pool.append(
            {
                "question": q,
                "steps": e["steps"],
                "answer": e["answer"],
                "evidence": e["evidence"],
                "pattern": "calculation" if e["numeric"] else "decision",
                "key": e["key"],
            }
        )
    return pool


def _process_samples(chunk, skill, targets, types, get_examples, other_process, used: set[str], ok) -> list[dict]:
    """process_qa samples that pass ``ok`` (the skill's gate): worked examples first, then
    procedures, method sentences and causal chains."""
    out = []
    for t in types:
        n = targets[t]
        pool = _example_processes(get_examples(), used) + other_process
        k = 0
        for p in pool:
            if k >= n:
                break
            if p["key"] in used:
                continue
            limit = _max_items(skill.schemas[t], "reasoning_steps", 6)
            steps = _merge_steps(p["steps"], p["evidence"], limit)
            if len(steps) < 2:
                continue
            fields = {
                "question": p["question"],
                "reasoning_steps": steps,
                "answer": p["answer"],
                "reasoning_pattern": p["pattern"],
            }
            cand = Cand("process_qa", fields, p["evidence"], p["pattern"], 1.0, p["key"])
            s = _fit_schema(t, chunk.chunk_id, cand, skill.schemas[t])
            if s and ok(s):
                out.append(s)
                used.add(p["key"])
                k += 1
    return out


_GENERIC_FIELDS = frozenset(("sample_type", "chunk_id", "evidence", "question", "answer", "question_type", "knowledge_point"))


def _voices(skill: Skill) -> list[str]:
    """Whose statements the skill's ``attributed`` rule lets a sample teach (its ``voices``)."""
    rule = next((r for r in skill.filters.rules if r.kind == "attributed"), None)
    return list(getattr(rule, "voices", None) or VOICES)


def _requires_attribution(skill: Skill) -> bool:
    """The skill's gate has an ``attributed`` rule: its sources state their authors' views."""
    return any(r.kind == "attributed" for r in skill.filters.rules)


def _concept_samples_from(cands: list[Cand], chunk, skill, targets, types, used: set[str], ok) -> list[dict]:
    """Up to ``targets[t]`` samples of each concept-form type ``t`` from ``cands``, best first,
    one candidate per sample, each passing ``ok`` (the skill's gate); in document order."""
    order = {id(c): i for i, c in enumerate(cands)}
    out = []
    # the most specific types first ("mechanism_of_action" needs a drug and its class; concept_qa
    # takes any), so a candidate made for a domain type is not spent on the generic one
    for t in sorted(types, key=lambda t: -len(set(skill.schemas[t].get("required", [])) - _GENERIC_FIELDS)):
        picked: list[tuple[int, dict]] = []
        for c in _rank(cands, used):
            if len(picked) >= targets[t]:
                break
            s = _fit_schema(t, chunk.chunk_id, c, skill.schemas[t])
            if s and ok(s):
                picked.append((order[id(c)], s))
                used.add(c.key)
        out += [s for _, s in sorted(picked, key=lambda x: x[0])]
    return out


def _concept_samples(ex, chunk, skill, targets, types, used: set[str], ok, theorems: list[Cand]) -> list[dict]:
    """concept_qa samples from every concept extractor, best first (:func:`_rank`); ``theorems``:
    the chunk's named results (:func:`named_results`)."""
    cands = (
        theorems
        + checkpoint_candidates(chunk.text)
        + drug_candidates(chunk.text)
        + ex.glossary()
        + conditional_definitions(ex)
        + ex.definitions()
        + ex.bold_leads()
        + ex.enumerations()
        + ex.heading_questions()
        + ex.causes()
        + ex.conditions()
    )
    return _concept_samples_from(cands, chunk, skill, targets, types, used, ok)
