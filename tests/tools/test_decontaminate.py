"""Benchmark decontamination (issue 14, item 1): GSM8K test items planted among a real offline run's
samples, verbatim and rephrased. The 13-gram rule flags the verbatim ones, the embedding rule the
rephrased ones, no finance sample is flagged; as a gate step (``run --decontaminate``) or applied to a
finished run (``prepbench decontaminate RUN``) the flagged samples stay in the ledger with the reason
and the export leaves out exactly those. An LLM judge (through the model layer, against the scripted
test server) confirms or clears each flag. MMLU domain tasks check only their own subjects."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest

from prepbench.agents.extractive import ExtractiveGenerator
from prepbench.agents.runner import run_pipeline
from prepbench.tools.decontaminate import NgramIndex, decontaminate, normalise, read_benchmark_items
from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.export_set import verify_manifest
from prepbench.tools.jsonfile import iter_json_records
from prepbench.tools.ledger import RunFolder
from prepbench.tools.run import RunOptions

from cli_helpers import REPO, SHARED, SLICE, error_lines, run_cli

GSM8K = SHARED / "datasets" / "gsm8k" / "test.jsonl"
MMLU = SHARED / "datasets" / "mmlu" / "test.jsonl"
REPHRASED = REPO / "tests" / "fixtures" / "decontamination" / "gsm8k_rephrased.jsonl"
VERBATIM_LINES = (10, 200, 900)  # 0-based rows of GSM8K's test file
KEY = "sk-test-decontamination"


def _rows(path: Path) -> list[dict]:
    return [r for _, r in iter_json_records(path)]


def planted_pairs() -> list[tuple[str, str]]:
    """Three verbatim GSM8K test items (question, answer), then three rephrased questions, each
    with only its item's final number as the answer (the gate refuses a calculation answered
    without a result; the number alone shares no n-gram with the item)."""
    tests = _rows(GSM8K)
    verbatim = [(tests[i]["question"], tests[i]["answer"]) for i in VERBATIM_LINES]
    final = [tests[r["gsm8k_line"] - 1]["answer"].rsplit("####", 1)[-1].strip() for r in _rows(REPHRASED)]
    return verbatim + [(r["question"], f"The result is {n}.") for r, n in zip(_rows(REPHRASED), final)]


class PlantingGenerator(ExtractiveGenerator):
    """The offline generator, plus one planted candidate in each chunk that yields a concept_qa
    (the candidate is that concept_qa with the planted question and answer: it passes the gate)."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = list(pairs)
        self.planted: dict[str, str] = {}  # question -> chunk id

    async def agenerate(self, chunk, skill, targets):
        samples, calls = await super().agenerate(chunk, skill, targets)
        base = next((s for s in samples if s["sample_type"] == "concept_qa"), None)
        if base is not None and self.pairs:
            q, a = self.pairs.pop(0)
            samples.append({**base, "question": q, "answer": a})
            self.planted[q] = chunk.chunk_id
        return samples, calls


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding cache for the module (GSM8K's 1319 test questions are embedded once)."""
    return tmp_path_factory.mktemp("emb") / "emb.sqlite"


@functools.lru_cache(maxsize=1)
def planting_skill() -> str:
    """finance without its ``faithful`` rule: a GSM8K item planted in a finance chunk is not
    supported by that chunk, and the gate's faithfulness check would refuse it before the
    decontamination step this module tests."""
    from prepbench.tools.skills.authoring import scaffold_skill

    folder = scaffold_skill("finance-planted", tempfile.mkdtemp(prefix="planting-"), extends="finance")
    (folder / "filters.yaml").write_text("rules:\n  - name: faithful\n    enabled: false\n", encoding="utf-8")
    return str(folder)


def planted_run(out: Path, decontaminate_spec=None) -> dict[str, str]:
    """A real offline run of the slice's first 40 chunks with the six planted items; question -> sample id."""
    gen = PlantingGenerator(planted_pairs())
    opts = RunOptions(corpus=[str(SLICE)], skill=planting_skill(), out=str(out), limit=40, decontamination=decontaminate_spec)
    run_pipeline(opts, generator=gen)
    assert not gen.pairs, "every item was planted"
    led = RunFolder.open(out, readonly=True)
    ids = {
        s["data"]["question"]: s["sample_id"] for s in led.sample_rows(status="accepted") if s["data"]["question"] in gen.planted
    }
    led.close()
    assert len(ids) == 6, "every planted item passed the gate"
    return ids


def _flags(out: Path) -> list[tuple]:
    led = RunFolder.open(out, readonly=True)
    try:
        return [(r["sample_id"], r["benchmark"], r["rule"], r["item"], r["excluded"]) for r in led.contamination_rows()]
    finally:
        led.close()


def _expected(ids: dict[str, str]) -> set[tuple]:
    pairs = planted_pairs()
    verbatim = {(ids[q], "gsm8k", "ngram_overlap", f"test.jsonl:{n + 1}", 1) for (q, _), n in zip(pairs[:3], VERBATIM_LINES)}
    rephrased = {(ids[q], "gsm8k", "embedding_similarity", f"test.jsonl:{n}", 1) for (q, _), n in zip(pairs[3:], (1, 2, 3))}
    return verbatim | rephrased


@pytest.fixture(scope="module")
def gated(tmp_path_factory, cache):
    """``run --decontaminate gsm8k`` (the gate step) on the planted run."""
    from prepbench.tools.cli.decontaminate import decontamination_spec

    out = tmp_path_factory.mktemp("gated") / "run"
    ids = planted_run(out, decontamination_spec("gsm8k", cache=cache))
    return out, ids


def test_gate_step_flags_the_planted_items_and_the_export_leaves_out_exactly_them(gated):
    out, ids = gated
    assert set(_flags(out)) == _expected(ids)  # and no finance sample
    led = RunFolder.open(out, readonly=True)
    accepted = {s["sample_id"]: s["data"] for s in led.sample_rows(status="accepted")}
    reasons = {r["sample_id"]: r for r in led.contamination_rows()}
    settings = led.get_config()["decontamination"]
    led.close()
    assert set(ids.values()) <= set(accepted), "flagged samples stay accepted in the ledger (never deleted)"
    assert all(reasons[i]["evidence"] and reasons[i]["item"].startswith("test.jsonl:") for i in ids.values())
    assert settings["benchmarks"] == {"gsm8k": {"file": "test.jsonl", "field": None, "values": []}} and settings["ngram"] == 13
    exported = [r["sample_id"] for r in _rows(out / "export" / "samples.jsonl")]
    assert exported == [i for i in accepted if i not in set(ids.values())]
    questions = {r["conversations"][0]["value"] for r in _rows(out / "export" / "sharegpt.jsonl")}
    assert not questions & set(ids)
    card = (out / "export" / "README.md").read_text()
    assert "**Excluded by decontamination**: 6; **exported**: " + str(len(exported)) in card
    assert "| gsm8k | 6 | 3 | 3 | 0 | 6 |" in card
    assert verify_manifest(out / "export") == []


def test_decontaminate_run_gives_a_finished_run_the_same_flags_and_export(gated, tmp_path, cache):
    out = tmp_path / "run"
    ids = planted_run(out)
    assert (
        _flags(out) == []
        and len(_rows(out / "export" / "samples.jsonl")) == len(_rows(gated[0] / "export" / "samples.jsonl")) + 6
    )
    p = run_cli("decontaminate", str(out), "--benchmarks", "gsm8k", "--cache", str(cache))
    assert p.returncode == 0, p.stderr
    assert "6 of " in p.stderr and "6 excluded" in p.stderr
    assert set(_flags(out)) == _expected(ids)
    for name in ("sharegpt.jsonl", "alpaca.jsonl", "openai.jsonl", "samples.jsonl"):
        assert (out / "export" / name).read_bytes() == (gated[0] / "export" / name).read_bytes(), name
    p = run_cli("status", str(out))
    assert "6 accepted sample(s) left out of the export" in p.stdout


def test_resuming_with_decontaminate_checks_the_committed_samples(tmp_path, cache):
    """A run that resumes with ``--decontaminate`` added checks what it committed before."""
    from prepbench.tools.cli.decontaminate import decontamination_spec

    out = tmp_path / "run"
    ids = planted_run(out)
    spec = decontamination_spec("gsm8k", cache=cache, embed_threshold=None)
    run_pipeline(RunOptions(corpus=[str(SLICE)], skill=planting_skill(), out=str(out), limit=40, decontamination=spec))
    verbatim = [(ids[q], "gsm8k", "ngram_overlap") for q, _ in planted_pairs()[:3]]
    assert sorted(f[:3] for f in _flags(out)) == sorted(verbatim)


def test_verbatim_items_are_caught_by_ngrams_and_rephrased_ones_by_embeddings(cache, tmp_path):
    rows = _rows(REPHRASED)
    pairs = planted_pairs()
    clean = [
        ("c1", "What is the time value of money?\n\nMoney now is worth more than later.", "What is the time value of money?")
    ]
    samples = clean + [(f"p{i}", f"{q}\n\n{a}", q) for i, (q, a) in enumerate(pairs)]
    enc, store = make_encoder("minilm"), EmbeddingCache(cache)
    rep = decontaminate(
        samples, {"gsm8k": GSM8K}, embed=lambda t: embed_texts(t, enc, store, progress=False)[0], cache_dir=tmp_path
    )
    by = {f.sample: (f.rule, f.item) for f in rep.flags}
    assert [by[f"p{i}"] for i in range(3)] == [("ngram_overlap", f"test.jsonl:{n + 1}") for n in VERBATIM_LINES]
    assert [by[f"p{i}"] for i in range(3, 6)] == [("embedding_similarity", f"test.jsonl:{r['gsm8k_line']}") for r in rows]
    assert "c1" not in rep.flagged and rep.benchmarks["gsm8k"]["test_items"] == 1319
    assert rep.benchmarks["gsm8k"]["index_cached"] is False
    again = decontaminate(samples, {"gsm8k": GSM8K}, embed_threshold=None, cache_dir=tmp_path)
    assert again.benchmarks["gsm8k"]["index_cached"] is True and again.flagged == {"p0", "p1", "p2"}


def test_the_ngram_rule_uses_the_harness_normalisation():
    items = read_benchmark_items(GSM8K)
    index = NgramIndex.build(items[:50], 13)
    q = items[7].question
    assert index.match(q.upper().replace(",", " ,")) == 7  # case and punctuation do not hide a copy
    words = normalise(q)
    assert index.match(" ".join(words[:12])) is None  # 12 words are not a 13-gram
    with pytest.raises(PrepbenchError, match="--ngram 3"):
        decontaminate([("a", q, q)], {"gsm8k": GSM8K}, n=3, embed_threshold=None)


@pytest.fixture(scope="module")
def planted_jsonl(tmp_path_factory):
    """ShareGPT rows of the slice's first 20 chunks plus the six planted items."""
    tmp = tmp_path_factory.mktemp("jsonl")
    p = run_cli("run", "--corpus", str(SLICE), "--skill", "finance", "--out", str(tmp / "run"), "--limit", "20", "--quiet")
    assert p.returncode == 0, p.stderr
    rows = _rows(tmp / "run" / "export" / "sharegpt.jsonl")
    clean = len(rows)
    rows += [{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]} for q, a in planted_pairs()]
    data = tmp / "planted.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, clean


def test_cli_reports_per_benchmark_and_refuses_an_unknown_one(planted_jsonl, tmp_path):
    data, clean = planted_jsonl
    flags = tmp_path / "flags.jsonl"
    args = ("decontaminate", str(data), "--benchmarks", "gsm8k,arc_challenge", "--no-embed", "--json")
    p = run_cli(*args, "--out", str(flags), "--cache", str(tmp_path / "e.sqlite"))
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["samples"] == clean + 6 and rep["flagged"] == 3
    assert rep["benchmarks"]["gsm8k"]["ngram_overlap"] == 3 and rep["benchmarks"]["arc_challenge"]["ngram_overlap"] == 0
    assert [json.loads(line)["rule"] for line in flags.read_text().splitlines()] == ["ngram_overlap"] * 3
    p = run_cli("decontaminate", str(data), "--benchmarks", "gsm9k", "--no-embed")
    assert p.returncode == 2 and len(error_lines(p)) == 1 and "unknown benchmark 'gsm9k'" in p.stderr


def test_mmlu_domains_check_only_their_own_subjects(tmp_path):
    """The MMLU test file is shared by five domain tasks; each flags only its subjects' items."""
    from prepbench.evaluation.evaluate import benchmark_test_sets

    mmlu = _rows(MMLU)
    domains = json.loads((SHARED / "datasets" / "mmlu" / "domains.json").read_text())
    sets = benchmark_test_sets(["mmlu_finance", "mmlu_law", "legalbench"], SHARED / "datasets")
    assert sets["mmlu_finance"].values == frozenset(domains["finance"]) and sets["mmlu_finance"].field == "subject"
    assert sets["legalbench"].field == "task" and "rule_qa" not in sets["legalbench"].values  # not a scored task
    accounting = next(r for r in mmlu if r["subject"] == "professional_accounting" and len(normalise(r["question"])) > 30)
    law = next(r for r in mmlu if r["subject"] == "professional_law" and len(normalise(r["question"])) > 30)
    rows = [
        {"conversations": [{"from": "human", "value": r["question"]}, {"from": "gpt", "value": r["answer"]}]}
        for r in (accounting, law)
    ]
    data = tmp_path / "mmlu.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = tmp_path / "flags.jsonl"
    p = run_cli("decontaminate", str(data), "--benchmarks", "mmlu_finance,mmlu_law", "--no-embed", "--json", "--out", str(flags))
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)["benchmarks"]
    n_fin = sum(r["subject"] in domains["finance"] for r in mmlu)
    assert rep["mmlu_finance"]["test_items"] == n_fin and rep["mmlu_law"]["test_items"] == sum(
        r["subject"] in domains["law"] for r in mmlu
    )
    got = sorted((f["sample"], f["benchmark"]) for f in map(json.loads, flags.read_text().splitlines()))
    assert got == [("mmlu.jsonl:1", "mmlu_finance"), ("mmlu.jsonl:2", "mmlu_law")]


def _judge_script(server, clears: str, garbles: str) -> None:
    """The judge says False when part 1 holds ``clears``, something else twice for ``garbles``, else True."""

    def reply(req):
        part1 = req.last_user_text.split("part 2:")[0]
        return "False" if clears in part1 else "I am not sure." if garbles in part1 else "True"

    server.add_rule(lambda req: "benchmark contamination" in req.text, lambda req: _reply(reply(req)))


def _reply(text):
    from llm_messages import Reply

    return Reply(content=text)


def test_llm_judge_confirms_or_clears_each_flag(llm_server, planted_jsonl, tmp_path, cache):
    data, clean = planted_jsonl
    _judge_script(llm_server, clears="robe", garbles="Josh")
    flags = tmp_path / "flags.jsonl"
    p = run_cli(
        *("decontaminate", str(data), "--benchmarks", "gsm8k", "--cache", str(cache), "--json", "--out", str(flags)),
        *("--judge", "openai:judge-model", "--base-url", llm_server.url + "/v1"),
        env_extra={"OPENAI_API_KEY": KEY},
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["flagged"] == 6 and rep["excluded"] == 5 and rep["benchmarks"]["gsm8k"]["cleared"] == 1
    got = {f["item"]: (f["judge"], f["excluded"]) for f in map(json.loads, flags.read_text().splitlines())}
    assert got["test.jsonl:2"] == ("clean", False)  # the robe: cleared, not excluded
    assert got["test.jsonl:3"] == ("error", True)  # no verdict after a second ask: the flag stands
    assert [got[f"test.jsonl:{n}"] for n in (1, 11, 201, 901)] == [("contaminated", True)] * 4
    # one request per flag, the garbled one asked twice; each shows both questions
    assert llm_server.count() == 7
    assert all(KEY not in json.dumps(r["body"]) for r in llm_server.requests)


def test_judge_on_a_run_folder_keeps_cleared_samples_in_the_export_and_records_its_calls(llm_server, tmp_path, cache):
    out = tmp_path / "run"
    ids = planted_run(out)
    _judge_script(llm_server, clears="robe", garbles="no such text")
    p = run_cli(
        *("decontaminate", str(out), "--benchmarks", "gsm8k", "--cache", str(cache)),
        *("--judge", "openai:judge-model", "--base-url", llm_server.url + "/v1"),
        env_extra={"OPENAI_API_KEY": KEY},
    )
    assert p.returncode == 0, p.stderr
    led = RunFolder.open(out, readonly=True)
    rows = {r["sample_id"]: r for r in led.contamination_rows()}
    calls = led.call_rows()
    settings = led.get_config()["decontamination"]
    led.close()
    robe = next(i for q, i in ids.items() if "robe" in q)
    assert rows[robe]["judge"] == "clean" and rows[robe]["excluded"] == 0
    assert sum(r["excluded"] for r in rows.values()) == 5 and settings["judge"] == "openai:judge-model"
    judged = [c for c in calls if c["node"] == "decontamination_judge"]
    assert len(judged) == 6 and all(c["ok"] for c in judged)
    exported = {r["sample_id"] for r in _rows(out / "export" / "samples.jsonl")}
    assert robe in exported and not (set(ids.values()) - {robe}) & exported
