"""HTTP paths of the scoring backend against local 127.0.0.1 servers (no mocked clients):
the OpenAI-compatible /v1/embeddings encoder, and the LLM data verifier through langchain-openai."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from prepbench.evaluation.das import das_score
from prepbench.evaluation.readers import read_samples
from prepbench.evaluation.verifier import LABELS, parse_label, verify
from prepbench.tools.embed import EmbeddingCache, OpenAIEmbeddingEncoder, embed_texts, make_encoder
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED

DATA = str(SHARED / "datasets")
DIM = 16


def vec(text: str) -> np.ndarray:
    """The deterministic vector the test server returns for a text (unit norm, 16-d)."""
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest(), dtype=np.uint8).astype(np.float32)[:DIM] - 127.5
    return raw / np.linalg.norm(raw)


class EmbeddingServer:
    """A tiny OpenAI-compatible embeddings server (FastAPI + uvicorn in a thread) on 127.0.0.1."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail = False
        app = FastAPI()

        @app.post("/v1/embeddings")
        async def embeddings(request: Request):
            body = await request.json()
            self.requests.append(body)
            if self.fail:
                return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for i, t in enumerate(inputs):
                v = vec(t)
                emb = (
                    base64.b64encode(v.astype("<f4").tobytes()).decode()
                    if body.get("encoding_format") == "base64"
                    else v.tolist()
                )
                data.append({"object": "embedding", "index": i, "embedding": emb})
            return {
                "object": "list",
                "data": data[::-1],
                "model": body["model"],  # out of order on purpose
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }

        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "embedding server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def emb_server():
    with EmbeddingServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def gsm_texts():
    return [s.text for s in read_samples(f"{DATA}/gsm8k/train.jsonl")[:90]]


def test_openai_embeddings_encoder_over_http(emb_server, gsm_texts):
    emb_server.requests.clear()
    enc = make_encoder("openai:Qwen/Qwen3-Embedding-8B", base_url=emb_server.url, batch_size=32)
    X = enc.encode(gsm_texts[:70])
    assert X.shape == (70, DIM) and X.dtype == np.float32
    assert np.allclose(X, np.stack([vec(t) for t in gsm_texts[:70]]), atol=1e-6)  # order restored by index
    assert [len(r["input"]) for r in emb_server.requests] == [32, 32, 6]
    assert {r["model"] for r in emb_server.requests} == {"Qwen/Qwen3-Embedding-8B"}
    assert enc.encoder_id == f"openai:Qwen/Qwen3-Embedding-8B@{emb_server.url}"


def test_das_through_the_http_encoder_embeds_the_proxy_once(emb_server, gsm_texts, tmp_path):
    enc = make_encoder("openai:test-embed", base_url=emb_server.url, batch_size=64)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    proxy, cands = gsm_texts[:30], [gsm_texts[30:50], gsm_texts[50:70], gsm_texts[70:90]]
    emb_server.requests.clear()
    res = [das_score(c, proxy, enc, cache, progress=False) for c in cands]
    sent = [t for r in emb_server.requests for t in r["input"]]
    assert len(sent) == 30 + 60 and sorted(sent) == sorted(proxy + gsm_texts[30:90])  # the proxy went over the wire once
    assert all(r["dim"] == DIM and r["encoder"] == enc.encoder_id for r in res)
    # same vectors as the server's formula -> same MMD as computing it directly
    from prepbench.evaluation.das import mmd

    direct = mmd(np.stack([vec(t) for t in cands[0]]), np.stack([vec(t) for t in proxy]))
    assert res[0]["mmd2"] == pytest.approx(direct["mmd2"], abs=1e-9)
    # a different encoder id does not reuse the cached vectors
    other = OpenAIEmbeddingEncoder("other-model", base_url=emb_server.url)
    _, info = embed_texts(proxy, other, cache, progress=False)
    assert info["encoded"] == 30


def test_embedding_server_failure_is_a_one_line_error(emb_server, monkeypatch):
    enc = OpenAIEmbeddingEncoder("m", base_url=emb_server.url, max_retries=0)
    emb_server.fail = True
    try:
        with pytest.raises(
            PrepbenchError, match=r"embeddings request to http://127\.0\.0\.1:\d+/v1 failed: InternalServerError"
        ) as e:
            enc.encode(["x"])
        assert "\n" not in str(e.value)
    finally:
        emb_server.fail = False
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PrepbenchError, match="needs --base-url"):
        make_encoder("openai:m", base_url=None)


# ----------------------------------------------------------------------------- verifier
def test_parse_label_variants():
    assert parse_label("Label: E\nReason: fine") == "E"
    assert parse_label("**Label:** (C) wrong arithmetic") == "C"
    assert parse_label("D) off task") == "D"
    assert parse_label("I cannot decide.") is None


def _scripted_judge(llm_server, samples, labels):
    """Script the local server: each instance gets its label; the first instance answers garbage once."""
    by_question = {s.instruction: lab for s, lab in zip(samples, labels)}
    seen: dict[str, int] = {}

    def reply(req):
        text = req.last_user_text
        q = text.split("### Instruction\n", 1)[1].split("\n\n### Response", 1)[0]
        seen[q] = seen.get(q, 0) + 1
        if q == samples[0].instruction and seen[q] == 1:
            return "I am not sure about this one."
        return f"Label: {by_question[q]}\nReason: scripted verdict for the test."

    llm_server.add_rule(lambda req: "### Instruction" in req.last_user_text, reply)
    return seen


def test_verifier_dvs_end_to_end_through_langchain_openai(llm_server):
    from prepbench.agents.models.specs import make_chat_model

    samples = read_samples(f"{DATA}/gsm8k/train.jsonl")[:10]
    labels = ["E", "E", "D", "C", "E", "A", "B", "E", "D", "E"]
    seen = _scripted_judge(llm_server, samples, labels)
    chat = make_chat_model("openai:judge", base_url=llm_server.url + "/v1", temperature=0.0)
    res = verify(
        samples, chat, task="grade-school math word problems with worked solutions", n=None, max_concurrency=3, progress=False
    )
    want = sum(LABELS[x][1] for x in labels) / len(labels)  # 5 x 1.0 + 2 x 0.4 = 5.8 / 10
    assert res["dvs"] == pytest.approx(want) and want == pytest.approx(0.58)
    assert res["counts"] == {"A": 1, "B": 1, "C": 1, "D": 2, "E": 5}
    assert res["n_scored"] == 10 and res["n_unparsed"] == 0
    assert seen[samples[0].instruction] == 2  # the unparsable answer was retried once
    assert [x["label"] for x in res["labels"]] == labels
    body = llm_server.requests[0]["body"]
    assert body["model"] == "judge" and body["messages"][0]["role"] == "system"
    assert "E) Pass" in body["messages"][0]["content"] and "grade-school math" in body["messages"][1]["content"]


def test_verifier_random_subset_is_seeded(llm_server):
    from prepbench.agents.models.specs import make_chat_model

    samples = read_samples(f"{DATA}/gsm8k/train.jsonl")[:40]
    _scripted_judge(llm_server, samples, ["E" if i % 4 else "C" for i in range(40)])
    chat = make_chat_model("openai:judge", base_url=llm_server.url + "/v1")
    a = verify(samples, chat, task="math", n=12, seed=7, progress=False)
    b = verify(samples, chat, task="math", n=12, seed=7, progress=False)
    ids = [x["id"] for x in a["labels"]]
    assert a["n"] == 12 and ids == [x["id"] for x in b["labels"]] and len(set(ids)) == 12
    pos = {s.id: i for i, s in enumerate(samples)}
    assert a["dvs"] == pytest.approx(np.mean([0.0 if pos[i] % 4 == 0 else 1.0 for i in ids]))


def test_cli_score_verify(llm_server, tmp_path):
    from prepbench.tools.cli import main

    rows = open(f"{DATA}/gsm8k/train.jsonl").read().split("\n")[:6]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n")
    samples = read_samples(tmp_path / "d.jsonl")
    _scripted_judge(llm_server, samples, ["E", "E", "E", "D", "C", "E"])
    out = tmp_path / "v.json"
    main(
        [
            "score",
            "verify",
            str(tmp_path / "d.jsonl"),
            "--model",
            "openai:judge",
            "--base-url",
            llm_server.url + "/v1",
            "--task",
            "math word problems",
            "-o",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    assert res["dvs"] == pytest.approx((4 * 1.0 + 0.4) / 6) and res["model"] == "openai:judge"
