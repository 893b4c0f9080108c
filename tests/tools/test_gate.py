"""The gate's entry point, rule kinds from entry points, and the run-folder and options APIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prepbench.tools.errors import LedgerError, PrepbenchError, SkillError
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import ModelOptions, RunOptions
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import PASS, Candidate, Gate, Verdict, rules

from cli_helpers import REPO

EXAMPLES = REPO / "skills" / "finance" / "examples" / "finance.jsonl"


def _examples() -> list[dict]:
    return [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_admit_chunk_catches_a_duplicate_inside_the_chunk_and_keeps_screening_rules():
    skill = load_skill("finance")
    gate = Gate(skill)
    good = _examples()[0]
    chunk_text = " ".join(good.get("evidence", []))
    first = Candidate(good, gate.screen(good, chunk_text))
    assert first.verdict.ok
    refused = Candidate({"sample_type": "nope"}, gate.screen({"sample_type": "nope"}, chunk_text))
    records = gate.admit_chunk("c1", [first, Candidate(dict(good), PASS), refused])
    assert [r.status for r in records] == ["accepted", "rejected", "rejected"]
    assert records[1].rule == "exact_duplicate"
    assert records[2].rule == "schema" and "unknown sample_type" in records[2].detail
    # the accepted one is now part of the run's dedup state
    assert gate.check_duplicate(good).rule == "exact_duplicate"


@pytest.mark.parametrize("value", [{"type": "concept_qa"}, ["concept_qa"], 3])
def test_a_sample_type_that_is_not_a_string_is_a_schema_rejection(value):
    # SmolLM2 on the real server once sent "sample_type": {...}; the gate raised TypeError (unhashable)
    gate = Gate(load_skill("finance"), dedup=False)
    sample = {**_examples()[0], "sample_type": value}
    v = gate.screen(sample, "any text")
    assert (v.ok, v.rule) == (False, "schema")
    assert v.detail.startswith("unknown sample_type ") and json.dumps(value) in v.detail


def test_a_rule_kind_from_an_entry_point_is_loaded_on_first_use(monkeypatch):
    calls = []

    def shouting_rule(spec, name):
        def check(sample, chunk_text):
            calls.append(sample.get("question"))
            q = sample.get("question", "")
            return Verdict(False, name, "question is all capitals") if q.isupper() else PASS

        return check

    class EP:
        name = "no_shouting"

        def load(self):
            return shouting_rule

    monkeypatch.setattr(rules, "_entry_points", lambda: {"no_shouting": EP()})
    monkeypatch.delitem(rules.RULE_KINDS, "no_shouting", raising=False)
    assert "no_shouting" in rules.known_kinds()
    skill = load_skill("finance")
    skill.filters.rules.insert(0, type(skill.filters.rules[0])(name="no_shouting", kind="no_shouting"))
    gate = Gate(skill)
    good = _examples()[0]
    assert gate.screen(dict(good, question=good["question"].upper()), None).rule == "no_shouting"
    assert calls


def test_an_unknown_rule_kind_names_the_file_and_the_known_kinds():
    skill = load_skill("finance")
    skill.filters.rules.append(type(skill.filters.rules[0])(name="x", kind="no_such_kind"))
    with pytest.raises(
        SkillError, match=r"filters.yaml: rule 'x': field 'kind': unknown kind 'no_such_kind' \(known: .*formula_result"
    ):
        Gate(skill)


def test_model_options_refuse_an_unknown_key_and_keep_family_options_out_of_the_model_layer():
    with pytest.raises(PrepbenchError, match="unknown model option 'temprature'"):
        RunOptions(corpus=["c"], skill="finance", out="o", model_options={"temprature": 0.2})
    mo = ModelOptions.coerce({"base_url": "http://127.0.0.1:1/v1", "direct_mode": "book", "judge": True})
    assert mo.direct_mode == "book"
    assert mo.layer_kwargs() == {"base_url": "http://127.0.0.1:1/v1", "judge": True}


def test_run_folder_open_refuses_a_folder_without_a_ledger(tmp_path):
    with pytest.raises(LedgerError, match="not a prepbench run folder"):
        RunFolder.open(tmp_path)
    assert not (Path(tmp_path) / "ledger.sqlite").exists()  # opening never creates one


def test_a_candidate_without_sample_type_takes_the_one_type_it_fits_or_is_told_the_closest():
    skill = load_skill("finance")
    gate = Gate(skill, dedup=False)
    ex = next(e for e in _examples() if e["sample_type"] == "concept_qa")
    untyped = {k: v for k, v in ex.items() if k != "sample_type"}
    assert gate.screen(untyped, None).ok
    assert untyped["sample_type"] == "concept_qa"  # recorded with the type it fits
    bare = {"sample_type": None, "question": "What is a bond?", "answer": "A debt security issued by a borrower."}
    v = gate.screen(bare, None)
    assert not v.ok and v.rule == "schema"
    assert "no sample_type" in v.detail and "closest:" in v.detail
    assert any(t in v.detail for t in skill.schemas)


def test_warm_loads_the_parser_and_the_minhash_index_before_the_first_screening():
    from prepbench.tools import nlp

    skill = load_skill("finance")
    gate = Gate(skill)
    assert gate._dups._lsh_index is None  # datasketch is not touched by making a gate
    gate.warm()
    assert nlp._NLP is not None and gate._dups._lsh_index is not None and gate._dups._perms is not None
    example = skill.examples[0]
    assert gate.check(dict(example), None).ok
    gate.add_many([("ex0", dict(example))])
    assert gate.check(dict(example), None).rule == "exact_duplicate"  # the warmed index is the one checks use
