"""Benchmark decontamination: planted GSM8K test items among a real run's samples (issue 14, item 1)."""

from __future__ import annotations

import json

import pytest

from prepbench.evaluation.decontaminate import NgramIndex, decontaminate, normalise, read_benchmark_items
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
from prepbench.tools.errors import PrepbenchError

from cli_helpers import REPO, SHARED, SLICE, error_lines, run_cli

GSM8K = SHARED / "datasets" / "gsm8k" / "test.jsonl"
REPHRASED = REPO / "tests" / "fixtures" / "decontamination" / "gsm8k_rephrased.jsonl"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A real offline run's ShareGPT export plus three verbatim and three rephrased GSM8K test items."""
    tmp = tmp_path_factory.mktemp("decont")
    p = run_cli("run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(tmp / "run"), "--limit", "20", "--quiet")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in (tmp / "run" / "export" / "sharegpt.jsonl").read_text().splitlines()]
    clean = len(rows)
    tests = [json.loads(line) for line in GSM8K.read_text().splitlines()]

    def sharegpt(q, a):
        return {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}

    for i in (10, 200, 900):
        rows.append(sharegpt(tests[i]["question"], tests[i]["answer"]))
    for r in map(json.loads, REPHRASED.read_text().splitlines()):
        rows.append(sharegpt(r["question"], "Work it out step by step."))
    data = tmp / "planted.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, clean


def _samples(path):
    from prepbench.evaluation.readers import read_samples

    return [(s.id, s.text, s.instruction) for s in read_samples(path)]


def test_verbatim_items_are_caught_by_ngrams_and_rephrased_ones_by_embeddings(planted, tmp_path):
    data, clean = planted
    samples = _samples(data)
    enc, store = make_encoder("minilm"), EmbeddingCache(tmp_path / "emb.sqlite")
    rep = decontaminate(
        samples,
        {"gsm8k": GSM8K},
        embed=lambda texts: embed_texts(texts, enc, store, progress=False)[0],
        cache_dir=tmp_path / "idx",
    )
    by_rule = {f.sample: (f.rule, f.item) for f in rep.flags}
    ids = [s[0] for s in samples]
    verbatim, rephrased = ids[clean : clean + 3], ids[clean + 3 :]
    assert [by_rule.get(i) for i in verbatim] == [("ngram_overlap", f"test.jsonl:{n + 1}") for n in (10, 200, 900)]
    assert [by_rule.get(i, ("-",))[0] for i in rephrased] == ["embedding_similarity"] * 3
    assert [by_rule[i][1] for i in rephrased] == ["test.jsonl:1", "test.jsonl:2", "test.jsonl:3"]
    assert not rep.flagged & set(ids[:clean]), "a finance sample was flagged against GSM8K"
    assert rep.benchmarks["gsm8k"]["test_items"] == 1319 and rep.benchmarks["gsm8k"]["index_cached"] is False
    # the index is cached: a second pass builds nothing and flags the same
    again = decontaminate(samples, {"gsm8k": GSM8K}, embed_threshold=None, cache_dir=tmp_path / "idx")
    assert again.benchmarks["gsm8k"]["index_cached"] is True
    assert {f.sample for f in again.flags} == set(verbatim)


def test_the_ngram_rule_uses_the_harness_normalisation():
    items = read_benchmark_items(GSM8K)
    index = NgramIndex.build(items[:50], 13)
    q = items[7].question
    assert index.match(q.upper().replace(",", " ,")) == 7  # case and punctuation do not hide a copy
    words = normalise(q)
    assert index.match(" ".join(words[:12])) is None  # 12 words are not a 13-gram
    with pytest.raises(PrepbenchError, match="--ngram 3"):
        decontaminate([("a", q, q)], {"gsm8k": GSM8K}, n=3, embed_threshold=None)


def test_cli_reports_per_benchmark_and_refuses_an_unknown_one(planted, tmp_path):
    data, clean = planted
    flags = tmp_path / "flags.jsonl"
    p = run_cli(
        "decontaminate",
        str(data),
        "--benchmarks",
        "gsm8k,arc_challenge",
        "--no-embed",
        "--json",
        "--out",
        str(flags),
        "--cache",
        str(tmp_path / "e.sqlite"),
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["samples"] == clean + 6 and rep["flagged"] == 3
    assert rep["benchmarks"]["gsm8k"]["ngram_overlap"] == 3 and rep["benchmarks"]["arc_challenge"]["ngram_overlap"] == 0
    assert [json.loads(line)["rule"] for line in flags.read_text().splitlines()] == ["ngram_overlap"] * 3
    p = run_cli("decontaminate", str(data), "--benchmarks", "gsm9k", "--no-embed")
    assert p.returncode == 2 and len(error_lines(p)) == 1 and "unknown benchmark 'gsm9k'" in p.stderr
