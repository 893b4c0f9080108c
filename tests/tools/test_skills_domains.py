"""The six shipped domain skills and their domain filter rule kinds.

- every skill passes ``skill check``, extends ``general`` (but general), has the three base
  forms plus its domain sample types, each mapped to a base form;
- every example is drawn from the domain's shipped corpus: its evidence is verbatim in a
  book of ``../shared/corpora/<domain>/``, its ``chunk_id`` is that chunk's id, and it
  passes the skill's validator with the chunk text (so ``evidence_in_chunk`` runs too);
- the domain rule kinds accept the real examples and reject broken variants of them;
- each skill runs offline (extractive generator) on a slice of its corpus and accepts samples;
- with a chat model over HTTP (the local test server), each domain sample type is
  produced, validated, accepted and exported.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from prepbench.tools.chunking import chunk_document
from prepbench.tools.errors import SkillError
from prepbench.tools.ingest import load_document
from prepbench.tools.skills import BASE_FORMS, check_skill, load_skill
from prepbench.tools.skills.spec import PREPBENCH_SKIP_REASONS
from prepbench.tools.validate import Gate, known_kinds
from prepbench.tools.validate.rules_domain import FormulaError, boxed_contents, safe_eval

from cli_helpers import SHARED

REPO = Path(__file__).resolve().parents[2]
CORPORA = SHARED / "corpora"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="the shared book corpora are not on this machine")

#: skill -> (its domain sample types, the primary corpus of its domain)
DOMAINS = {
    "general": ([], "general/thoreau-walden"),
    "math": (["worked_problem", "theorem_statement", "proof_step"], "math/abstract-algebra-judson"),
    "science": (["concept_explanation", "quantitative_problem"], "science/openstax-university-physics-v1"),
    "medical": (["clinical_vignette_mcq", "mechanism_of_action", "contraindication"], "medical/openstax-pharmacology-for-nurses"),
    "finance": (["calculation_qa", "term_definition"], "finance/openstax-principles-of-finance"),
    "law": (["rule_question", "irac_case"], "law/gowder-constitutional-law"),
}


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


def example(skill_name: str, sample_type: str) -> dict:
    sk = load_skill(skill_name)
    return copy.deepcopy(next(e for e in sk.examples if e["sample_type"] == sample_type))


def verdict(skill_name: str, sample: dict, chunk_text: str | None = None):
    return Gate(load_skill(skill_name), dedup=False).check(sample, chunk_text)


# ---------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_skill_checks_and_has_base_and_domain_types(name):
    summary = check_skill(name)
    domain_types, _ = DOMAINS[name]
    assert summary["sample_types"][:3] == list(BASE_FORMS)
    assert set(domain_types) <= set(summary["sample_types"])
    assert summary["extends"] == ([] if name == "general" else ["general"])
    sk = load_skill(name)
    for t in domain_types:
        assert sk.form(t) in BASE_FORMS and sk.form(t) != t
        assert "x-render" not in sk.schemas[t] and sk.file(f"render/{t}.md").parent.parent == sk.path, t
        assert f"generate_{t}" in sk.prompts
        assert sk.file(f"schemas/{t}.json").parent.parent == sk.path  # the domain's own schema
        assert any(e["sample_type"] == t for e in sk.examples)


def test_finance_inherits_general_base_schemas_and_rules():
    fin, gen = load_skill("finance"), load_skill("general")
    for t in BASE_FORMS:  # finance ships only what differs from general
        assert fin.file(f"schemas/{t}.json") == gen.path / "schemas" / f"{t}.json"
        assert fin.renders[t] == gen.renders[t]
    assert fin.file("prompts/triage.md") == gen.path / "prompts" / "triage.md"
    assert fin.file("prompts/generate_process_qa.md").parent.parent == fin.path  # finance's own wording
    ours = {f.relative_to(fin.path).as_posix() for f in fin.path.rglob("*") if f.is_file()}
    same = [r for r in ours if (gen.path / r).is_file() and (gen.path / r).read_bytes() == (fin.path / r).read_bytes()]
    assert not same, f"finance repeats general's files: {same}"
    names = [r.name for r in fin.filters.rules]
    assert {"recomputed_result", "evidence_in_chunk", "source_anchored_phrasing"} <= set(names)


def test_child_rule_of_same_name_overrides_parent_rule():
    med = load_skill("medical")
    rule = next(r for r in med.filters.rules if r.name == "answer_length")
    assert "clinical_vignette_mcq" not in rule.sample_types  # a single-letter MCQ answer is fine
    assert [r.name for r in med.filters.rules].count("answer_length") == 1
    src = next(r for r in med.filters.rules if r.name == "source_anchored_phrasing")
    assert "explanation" in src.model_dump()["fields"]  # medical's version, not general's


# ---------------------------------------------------------------------------------------
# examples come from the shipped corpora
# ---------------------------------------------------------------------------------------


def _own_examples(name: str):
    sk = load_skill(name)
    for ex, src in zip(sk.examples, sk.example_sources):
        if src.startswith(str(sk.path)):
            yield ex, src


@needs_corpora
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_examples_are_real_sentences_of_the_domain_corpus(name):
    _, corpus = DOMAINS[name]
    domain_dir = CORPORA / corpus.split("/")[0]
    books = {f: squash(f.read_text(encoding="utf-8")) for f in domain_dir.rglob("*.md") if f.name != "SOURCE.md"}
    checked = 0
    mode_types = load_skill(name).mode_types
    for ex, src in _own_examples(name):
        if ex["sample_type"] in mode_types:  # a generation-mode instance: made from a seed record, not a chunk
            _check_seed_example(name, ex, src)
            continue
        for span in ex["evidence"]:
            hits = [f for f, text in books.items() if squash(span) in text]
            assert hits, f"{src}: evidence not in {domain_dir}: {span[:80]!r}"
        if Path(src.rsplit(":", 1)[0]).name == "finance.jsonl":
            continue  # the lead's finance examples: their chunk ids come from another chunking
        doc_file = hits[0]
        chunks = chunk_document(load_document(doc_file, doc_file.name))
        chunk = next((c for c in chunks if c.chunk_id == ex["chunk_id"]), None)
        assert chunk is not None, f"{src}: chunk_id {ex['chunk_id']} is not a chunk of {doc_file.name}"
        v = verdict(name, ex, chunk.text)
        assert v.ok, f"{src}: {v.rule}: {v.detail}"
        checked += 1
    assert checked >= 3


def _check_seed_example(name: str, ex: dict, src: str) -> None:
    """A generation-mode example names real seed records (``<dataset>/<file>:<line>`` of the shared
    datasets); an enhanced seed keeps the record's instruction; it passes the skill's gate."""
    for ref in ex["evidence"]:
        rel, line = ref.rsplit(":", 1)
        rows = (SHARED / "datasets" / rel).read_text(encoding="utf-8").splitlines()
        record = json.loads(rows[int(line) - 1])
        if ex["mode"] == "enhance":
            assert ex["instruction"] == (record.get("question") or record.get("instruction")), src
    v = verdict(name, ex, None)
    assert v.ok, f"{src}: {v.rule}: {v.detail}"


# ---------------------------------------------------------------------------------------
# domain rule kinds: accept the real examples, reject broken variants
# ---------------------------------------------------------------------------------------


def test_domain_rule_kinds_are_registered():
    assert {"formula_result", "boxed_answer", "option_letter", "units_consistent", "quoted_in"} <= set(known_kinds())


def test_safe_eval_is_arithmetic_only():
    assert safe_eval("FV = PV * (1 + r) ^ n", {"PV": 1000, "r": 0.03, "n": 4}) == pytest.approx(1125.50881)
    assert safe_eval("sqrt(x) + ln(e)", {"x": 16}) == pytest.approx(5.0)
    for bad in (
        "__import__('os').system('true')",
        "x.__class__",
        "[1, 2]",
        "lambda: 1",
        "open('f')",
        "y + 1",
        "2 ** 100000",
        "1 / 0",
        "x +",
    ):
        with pytest.raises(FormulaError):
            safe_eval(bad, {"x": 2})


def test_formula_result_recomputes_the_finance_calculation():
    ex = example("finance", "calculation_qa")
    assert verdict("finance", ex).ok
    v = verdict("finance", dict(ex, result=1.5))
    assert (v.rule, v.detail) == ("recomputed_result", "formula gives 1.6, but result states 1.5")
    v = verdict("finance", dict(ex, answer="The quick ratio is 2.0, or 2:1."))
    assert v.rule == "recomputed_result" and "does not state the result" in v.detail
    v = verdict("finance", dict(ex, formula="quick_ratio = (cash + inventory) / current_liabilities"))
    assert v.rule == "recomputed_result" and "'inventory'" in v.detail
    v = verdict("finance", dict(ex, formula="__import__('os')"))
    assert v.rule == "recomputed_result" and "not an allowed function" in v.detail
    v = verdict("finance", dict(ex, formula="__import__('os').getcwd()"))
    assert v.rule == "recomputed_result" and "unsupported element" in v.detail


def test_boxed_answer_rule():
    ex = example("math", "worked_problem")
    assert verdict("math", ex).ok
    assert boxed_contents(r"\boxed{\frac{1}{2}} and \boxed{x^{2}}") == [r"\frac{1}{2}", "x^{2}"]
    cases = {
        "$\\gcd(945, 2415) = 105$": "0 \\boxed{} answers",
        "\\boxed{105} or \\boxed{21}": "2 \\boxed{} answers",
        "\\boxed{105": "unbalanced",
        "\\boxed{ }": "empty",
        "\\boxed{315}": "does not appear in solution_steps",
    }
    for final, why in cases.items():
        v = verdict("math", dict(ex, final_answer=final))
        assert v.rule in ("boxed_final_answer", "schema") and (why in v.detail or v.rule == "schema"), (final, v)
    v = verdict("math", dict(ex, final_answer="\\boxed{315}"))
    assert v.rule == "boxed_final_answer"


def test_option_letter_rule():
    ex = example("medical", "clinical_vignette_mcq")
    assert verdict("medical", ex).ok
    v = verdict("medical", dict(ex, answer="F"))
    assert v.rule == "schema"  # F is not a letter the schema allows
    four = {k: ex["options"][k] for k in "ABCD"}
    v = verdict("medical", dict(ex, options=four, answer="E"))
    assert v.rule == "valid_option_letter" and "not one of the option letters ABCD" in v.detail
    gap = {"A": "Penicillins", "B": "Fluoroquinolones", "D": "Macrolides", "E": "Tetracyclines"}
    v = verdict("medical", dict(ex, options=gap))
    assert v.rule == "valid_option_letter" and "expected 'ABCD'" in v.detail
    dup = dict(ex["options"], C="fluoroquinolones")
    v = verdict("medical", dict(ex, options=dup))
    assert v.rule == "valid_option_letter" and "repeats an option" in v.detail


def test_units_consistent_rule():
    ex = example("science", "quantitative_problem")
    assert verdict("science", ex).ok
    joules = dict(ex, answer_value=4000, answer_unit="J")
    assert verdict("science", joules).ok  # same quantity in another unit
    kmh = copy.deepcopy(ex)
    kmh["given"]["v"] = {"value": 36, "unit": "km/h"}  # 36 km/h = 10 m/s: converted before combining
    assert verdict("science", kmh).ok
    checks = [
        (dict(ex, answer_unit="kg"), "[mass]"),
        (dict(ex, answer_value=40.0), "gives 4 kJ, but answer_value states 40"),
        (dict(ex, formula="K = 0.5 * m + v**2"), "inconsistent units"),
        (dict(ex, given={"m": {"value": 80, "unit": "kilogramz"}, "v": {"value": 10, "unit": "m/s"}}), "is not a unit"),
        (dict(ex, answer_unit="furlongs per"), "is not a unit"),
    ]
    for sample, why in checks:
        v = verdict("science", sample)
        assert v.rule == "units_consistent" and why in v.detail, (why, v)
    no_unit = copy.deepcopy(ex)
    no_unit["given"]["m"]["unit"] = ""
    v = verdict("science", no_unit)
    assert v.rule == "schema"  # the schema requires a non-empty unit


def test_quoted_in_rule_keeps_law_faithful():
    ex = example("law", "rule_question")
    assert verdict("law", ex).ok
    v = verdict("law", dict(ex, quoted_text="an act of the legislature, repugnant to the constitution, is voidable"))
    assert v.rule == "quote_in_evidence" and "not quoted verbatim" in v.detail
    irac = example("law", "irac_case")
    assert verdict("law", irac).ok
    v = verdict("law", dict(irac, quoted_rule="a suit about a political right is always a political question"))
    assert v.rule == "quoted_rule_in_evidence"


def test_domain_rule_config_errors_name_the_rule(tmp_path):
    dst = tmp_path / "medical"
    shutil.copytree(REPO / "skills" / "medical", dst)
    f = dst / "filters.yaml"
    f.write_text(f.read_text().replace("letters: ABCDE", "letters: abcde"), encoding="utf-8")
    with pytest.raises(SkillError) as e:
        check_skill(dst)
    assert "filters.yaml" in str(e.value) and "valid_option_letter" in str(e.value) and "letters" in str(e.value)


# ---------------------------------------------------------------------------------------
# runs: offline on a slice of the domain corpus, and with a chat model over HTTP
# ---------------------------------------------------------------------------------------


@needs_corpora
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_offline_run_on_domain_slice_accepts_samples(name):
    from prepbench.agents.runner import try_skill

    _, corpus = DOMAINS[name]
    # the law reader opens with its editor's guide (offline, only its opinions' Courts are taught) and
    # the algebra text states few results in words (its symbols are never dropped): both run on
    # documents that state some (two opinions; the cryptography chapter), every chunk of them
    files = {"law": ["012-zivotofsky-v-kerry.md", "015-united-states-v-nixon.md"], "math": ["07-introduction-to-cryptography.md"]}
    limit = {"law": 18, "math": 14}.get(name, 12)
    res = try_skill(name, [CORPORA / corpus / f for f in files[name]] if name in files else CORPORA / corpus, limit=limit)
    assert len(res.chunks) == limit
    assert all(c["status"] in ("kept", "skipped") for c in res.chunks)
    reasons = set(load_skill(name).coverage.skip_reasons) | set(PREPBENCH_SKIP_REASONS)
    assert all(c["skip_reason"] in reasons for c in res.chunks if c["status"] == "skipped")
    assert len(res.accepted) >= 3 and res.exported == len(res.accepted)
    validator = Gate(load_skill(name), dedup=False)
    texts = {c["chunk_id"]: c["text"] for c in res.chunks}
    for s in res.accepted:  # no accepted sample breaks a rule of the skill
        v = validator.check(s, texts[s["chunk_id"]])
        assert v.ok, (s, v)


def _scripted(llm_server, targets: dict[str, list[dict]]):
    """Answer generation prompts with the examples of the chunk asked about (none otherwise),
    and triage prompts by keeping only the target chunks."""
    from llm_server import _wrap_structured

    def chunk_id_of(req):
        m = re.search(r'Set "chunk_id" to "([^"]+)"', req.text) or re.search(r"Chunk `([0-9a-f]+)`", req.text)
        return m.group(1) if m else ""

    def triage(req):
        keep = chunk_id_of(req) in targets
        return _wrap_structured(req, {"keep": True} if keep else {"keep": False, "skip_reason": "low_information"})

    def generate(req):
        st = re.search(r"Write \d+ `(\w+)` sample", req.text).group(1)
        return _wrap_structured(req, [e for e in targets.get(chunk_id_of(req), []) if e["sample_type"] == st])

    llm_server.add_rule("Decide whether the chunk", triage)
    llm_server.add_rule(re.compile(r"Write \d+ `\w+` sample"), generate)


@needs_corpora
@pytest.mark.parametrize("name", [n for n in sorted(DOMAINS) if DOMAINS[n][0]])
def test_chat_model_produces_validates_and_exports_each_domain_type(name, llm_server, tmp_path):
    from prepbench.agents.runner import try_skill

    domain_types, corpus = DOMAINS[name]
    sk = load_skill(name)
    wanted = [e for e in sk.examples if e["sample_type"] in domain_types]
    books = {f: squash(f.read_text(encoding="utf-8")) for f in (CORPORA / corpus).glob("*.md") if f.name != "SOURCE.md"}
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    targets: dict[str, list[dict]] = {}
    last = 0
    order: dict[str, int] = {}
    for ex in wanted:
        f = next(f for f, text in books.items() if squash(ex["evidence"][0]) in text)
        shutil.copy(f, corpus_dir / f.name)
        targets.setdefault(ex["chunk_id"], []).append(ex)
    from prepbench.tools.chunking import chunk_corpus
    from prepbench.tools.ingest import ingest_corpus

    for i, c in enumerate(chunk_corpus(ingest_corpus(corpus_dir).documents)):
        order[c.chunk_id] = i
    assert set(targets) <= set(order)
    last = max(order[c] for c in targets)
    _scripted(llm_server, targets)
    keep = tmp_path / "run"
    res = try_skill(
        name,
        corpus_dir,
        limit=last + 1,
        model="openai:test-model",
        model_options={"base_url": llm_server.url + "/v1", "max_retries": 0},
        keep_dir=keep,
    )
    accepted = {s["sample_type"] for s in res.accepted}
    assert set(domain_types) <= accepted, (accepted, res.rejected)
    assert llm_server.count() > 0
    rows = [json.loads(line) for line in (keep / "export" / "sharegpt.jsonl").read_text().splitlines()]
    assert len(rows) == len(res.accepted) == res.exported
    outputs = "\n".join(r["conversations"][-1]["value"] for r in rows)
    renders = {
        "math": "Final answer: $\\gcd(945, 2415) = \\boxed{105}$",
        "science": "Formula: K = 0.5 * m * v**2",
        "medical": "The answer is B.",
        "finance": "Formula: quick_ratio",
        "law": "Conclusion: The Supreme Court held",
    }
    assert renders[name] in outputs
