"""AgoraBench's intrinsic metrics: per-sample response perplexity under a reference LM (a tiny
random model built from a config here), LLM-judged quality and difficulty through the real
client against the local test server, and instruction/response diversity from embeddings."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from prepbench.evaluation import model_metrics as mm
from prepbench.evaluation.compare.modes import judge_notes
from prepbench.evaluation.judge_metrics import judge, parse_score, rubric
from prepbench.evaluation.metrics import compute_metrics
from prepbench.evaluation.readers import ScoredSample, read_samples
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED, run_cli
from llm_messages import Reply

DATA = SHARED / "datasets"


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A tiny random Llama (from a LlamaConfig) with a BPE tokenizer trained offline on GSM8K text."""
    from prepbench.evaluation.tiny import build_tiny_model

    texts = [s.text for s in read_samples(DATA / "gsm8k" / "train.jsonl")[:200]]
    path = build_tiny_model(tmp_path_factory.mktemp("lm"), texts, vocab_size=400, hidden_size=32, num_layers=2, seed=7)
    return mm.load_causal_lm(str(path))


def _direct_ppl(tok, model, instruction: str, response: str) -> float:
    """exp of the model's own mean loss over the response tokens, one sequence at a time."""
    p = [tok.bos_token_id] + tok(instruction + mm.RESPONSE_SEPARATOR, add_special_tokens=False)["input_ids"]
    t = tok(response, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return math.exp(float(model(input_ids=torch.tensor([p + t]), labels=torch.tensor([[-100] * len(p) + t])).loss))


def test_response_perplexity_is_each_samples_own(lm):
    tok, model = lm
    rows = read_samples(DATA / "gsm8k" / "train.jsonl")[:6]
    # different lengths in one batch: a one-line response, a truncated one, full ones
    samples = [
        ScoredSample(r.id, [("user", r.instruction), ("assistant", r.response if i % 2 else r.response.split("\n")[0])])
        for i, r in enumerate(rows)
    ]
    samples.append(ScoredSample("short", [("user", rows[0].instruction), ("assistant", "72")]))
    lengths = {len(tok(s.response, add_special_tokens=False)["input_ids"]) for s in samples}
    assert len(lengths) >= 5
    res = mm.response_ppl(samples, tok, model, batch_size=len(samples), progress=False)  # all in one batch
    got = [p["ppl"] for p in res["per_sample"]]
    want = [_direct_ppl(tok, model, s.instruction, s.response) for s in samples]
    assert np.allclose(got, want, rtol=1e-4)
    assert [p["id"] for p in res["per_sample"]] == [s.id for s in samples]
    assert len({round(g, 3) for g in got}) == len(samples)  # each its own value
    # AgoraBench's released code gives every sample exp(the batch's mean token loss); no sample gets that
    tokens = [p["tokens"] for p in res["per_sample"]]
    batch_ppl = math.exp(sum(n * math.log(g) for n, g in zip(tokens, got)) / sum(tokens))
    assert all(abs(g - batch_ppl) > 1e-3 * batch_ppl for g in got)
    assert res["response_ppl"]["mean"] == pytest.approx(float(np.mean(want)), rel=1e-4)
    assert res["tokens"] == sum(tokens)


def test_judge_metrics_through_the_client_with_unparsed_replies_recorded(llm_server):
    from prepbench.agents.models.specs import make_chat_model

    samples = read_samples(DATA / "gsm8k" / "train.jsonl")[:10]
    asked: dict[str, int] = {}

    def grade(req):
        text = req.last_user_text
        q = re.search(r"### Instruction\n(.*?)\n\n### Response", text, re.S).group(1)
        asked[q] = asked.get(q, 0) + 1
        if q == samples[3].instruction:  # never names a score, even when asked again
            return Reply(content="This one is fine, I think.")
        if q == samples[4].instruction and asked[q] == 1:  # names it on the second try
            return Reply(content="Hmm.")
        n = 1 + len(q) % 5 if "Aspect to grade\nquality" in text else 1 + len(q.split()) % 5
        return Reply(content=f"Feedback: clear enough.\nScore: {n}")

    llm_server.add_rule("### Aspect to grade", grade)
    chat = make_chat_model("openai:judge", base_url=llm_server.url + "/v1", api_key="sk-j", temperature=0.0, max_tokens=128)
    res = judge(samples, chat, "judge_quality", domain="math", n=None, progress=False)
    assert res["n"] == 10 and res["n_scored"] == 9 and res["n_unparsed"] == 1 and res["n_errors"] == 0
    bad = next(p for p in res["per_sample"] if p["id"] == samples[3].id)
    assert bad["score"] is None and "fine, I think" in bad["feedback"]
    want = [1 + len(s.instruction) % 5 for i, s in enumerate(samples) if i != 3]
    assert res["mean"] == pytest.approx(sum(want) / 9) and sum(res["counts"].values()) == 9
    assert res["criteria"] == rubric("math", "quality")["criteria"] and res["domain"] == "math"
    # compare --mode's report says how many replies named no score instead of leaving a bare gap
    (note,) = judge_notes({"judge_quality": res, "diversity": {"n": 10}})
    assert note.startswith("judge_quality: 9 of 10 instances scored; 1 judge replies named no score, 0 judge calls failed")
    assert judge_notes({"judge_quality": {**res, "n_unparsed": 0}}) == []
    body = llm_server.requests[0]["body"]["messages"]
    assert body[0]["role"] == "system" and "5: Correct, complete and rigorous" in body[1]["content"]
    d = judge(samples, chat, "judge_difficulty", domain="unknown-domain", n=4, seed=1, progress=False)
    assert (
        d["n"] == 4
        and d["domain"] == "general"
        and "how hard it is to answer perfectly" in llm_server.requests[-1]["body"]["messages"][1]["content"]
    )
    assert parse_score("**Score:** 4") == 4 and parse_score("[RESULT] 2") == 2 and parse_score("Score: 9") is None


def test_score_metrics_cli_judge_and_diversity(llm_server, tmp_path):
    llm_server.add_rule("### Aspect to grade", "Feedback: good.\nScore: 4")
    rows = (DATA / "gsm8k" / "train.jsonl").read_text().splitlines()[:12]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.json"
    args = ["score", "metrics", str(data), "--metrics", "judge_quality,judge_difficulty,diversity", "--judge", "openai:j"]
    args += [
        "--judge-base-url",
        llm_server.url + "/v1",
        "--judge-domain",
        "math",
        "--cache",
        str(tmp_path / "e.sqlite"),
        "-o",
        str(out),
    ]
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": "sk-j"})
    assert p.returncode == 0, p.stderr
    m = json.loads(out.read_text())["metrics"]
    assert m["judge_quality"]["mean"] == 4 and m["judge_difficulty"]["n_scored"] == 12
    assert 0 < m["diversity"]["instruction_diversity"] < 1 and 0 < m["diversity"]["response_diversity"] < 1
    p = run_cli("score", "metrics", str(data), "--metrics", "judge_quality")
    assert p.returncode == 2 and "needs --judge" in p.stderr


def test_diversity_is_measured_on_instructions_and_responses_separately():
    from prepbench.tools.embed import EmbeddingCache, embed_texts, make_encoder

    enc, store = make_encoder("minilm"), EmbeddingCache(":memory:")
    rows = read_samples(DATA / "gsm8k" / "train.jsonl")[:16]
    same_instruction = [ScoredSample(r.id, [("user", rows[0].instruction), ("assistant", r.response)]) for r in rows]
    embed = lambda texts: embed_texts(texts, enc, store, progress=False)  # noqa: E731
    varied = compute_metrics(rows, ["diversity"], embed=embed)["metrics"]["diversity"]
    one = compute_metrics(same_instruction, ["diversity"], embed=embed)["metrics"]["diversity"]
    assert one["instruction_diversity"] == pytest.approx(0.0, abs=1e-6) and varied["instruction_diversity"] > 0.2
    assert one["response_diversity"] == pytest.approx(varied["response_diversity"])
    with pytest.raises(PrepbenchError, match="at least 2 samples"):
        compute_metrics(rows[:1], ["diversity"], embed=embed)
