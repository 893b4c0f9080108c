"""Model-based metrics with tiny randomly initialised models built offline in the test (no hub)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from prepbench.evaluation import model_metrics as mm
from prepbench.evaluation.readers import read_samples
from prepbench.tools.errors import PrepbenchError

from cli_helpers import SHARED

DATA = str(SHARED / "datasets")


@pytest.fixture(scope="module")
def samples():
    return read_samples(f"{DATA}/gsm8k/train.jsonl")[:6]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory, samples):
    from prepbench.evaluation.tiny import build_tiny_model

    texts = [s.text for s in read_samples(f"{DATA}/gsm8k/train.jsonl")[:200]]
    texts.append(mm.DEITA_QUALITY_TEMPLATE + mm.IFD_PROMPT + " 1 2 3 4 5 6")
    return build_tiny_model(tmp_path_factory.mktemp("lm"), texts, vocab_size=400, hidden_size=32, num_layers=2, seed=3)


@pytest.fixture(scope="module")
def lm(lm_path):
    return mm.load_causal_lm(str(lm_path))


@pytest.fixture(scope="module")
def clf_path(tmp_path_factory, lm_path):
    """A tiny sequence-classification head (num_labels=1) on the same tokenizer: reward / FineWeb-Edu stand-in."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(lm_path)
    tok.chat_template = None  # the plain "User: ... Assistant: ..." rendering
    torch.manual_seed(5)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
    )
    out = tmp_path_factory.mktemp("clf")
    LlamaForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _manual_target_loss(tok, model, prefix: str, target: str) -> float:
    """Mean NLL of the target tokens via the model's own loss with -100 labels on BOS + prefix."""
    p = [tok.bos_token_id] + (tok(prefix, add_special_tokens=False)["input_ids"] if prefix else [])
    t = tok(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + t])
    labels = torch.tensor([[-100] * len(p) + t])
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)


def test_perplexity_matches_the_models_own_loss_and_batching(lm, samples):
    tok, model = lm
    res1 = mm.perplexity(samples, tok, model, batch_size=1, progress=False)
    res4 = mm.perplexity(samples, tok, model, batch_size=4, progress=False)
    want = [math.exp(_manual_target_loss(tok, model, "", s.text)) for s in samples]
    assert res1["ppl"]["mean"] == pytest.approx(float(np.mean(want)), rel=1e-5)
    assert res4["ppl"]["mean"] == pytest.approx(res1["ppl"]["mean"], rel=1e-5)  # right padding is masked
    assert res1["ppl"]["n_valid"] == len(samples) and res1["tokens"] > 100
    # a random 400-token model is near-uniform: perplexity of the order of the vocabulary
    assert 50 < res1["corpus_ppl"] < 2000


def test_ifd_is_the_ratio_of_conditional_to_plain_answer_perplexity(lm, samples):
    tok, model = lm
    res = mm.ifd(samples, tok, model, batch_size=3, progress=False)
    ratios, loss_ratios = [], []
    for s in samples:
        lc = _manual_target_loss(tok, model, mm.IFD_PROMPT.format(instruction=s.instruction), s.response)
        la = _manual_target_loss(tok, model, "", s.response)
        ratios.append(math.exp(lc) / math.exp(la))
        loss_ratios.append(lc / la)
    assert res["ifd"]["mean"] == pytest.approx(float(np.mean(ratios)), rel=1e-5)
    assert res["ifd_loss"]["mean"] == pytest.approx(float(np.mean(loss_ratios)), rel=1e-5)
    assert res["share_ifd_above_1"] == pytest.approx(float(np.mean(np.array(ratios) > 1)))


def test_deita_expected_score_over_tokens_1_to_6(lm, samples):
    tok, model = lm
    ids = mm.score_token_ids(tok)
    assert len(set(ids)) == 6 and all(tok.convert_ids_to_tokens(i) == str(k + 1) for k, i in enumerate(ids))
    prompts = [mm.DEITA_QUALITY_TEMPLATE.format(instruction=s.instruction, output=s.response) for s in samples]
    want = []
    for p in prompts:
        enc = tok(p, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0, -1].double()
        probs = torch.softmax(logits[ids], -1)
        want.append(float((probs * torch.arange(1, 7, dtype=torch.float64)).sum()))
    got = mm.deita_scores(prompts, tok, model, batch_size=4, progress=False)  # left-padded batches
    assert np.allclose(got, want, atol=1e-4)
    assert all(1.0 <= g <= 6.0 for g in got)
    q = mm.deita_quality(samples, tok, model, progress=False)["deita_quality"]
    assert q["mean"] == pytest.approx(float(np.mean(want)), abs=1e-4)
    c = mm.deita_complexity(samples, tok, model, progress=False)["deita_complexity"]
    assert 1.0 <= c["mean"] <= 6.0 and c["n_valid"] == len(samples)


def test_reward_and_edu_scores_are_the_classifier_logits(clf_path, samples):
    tok, model = mm.load_classifier(str(clf_path))
    got = mm.reward(samples, tok, model, batch_size=4, progress=False)["reward"]
    want = []
    for s in samples:
        text = "\n\n".join(f"{'User' if r == 'user' else 'Assistant'}: {t}" for r, t in s.turns)
        with torch.no_grad():
            want.append(float(model(**tok(text, return_tensors="pt")).logits[0, 0]))
    assert got["mean"] == pytest.approx(float(np.mean(want)), abs=1e-5)
    assert got["std"] == pytest.approx(float(np.std(want)), abs=1e-5)
    e = mm.edu(samples, tok, model, progress=False)
    with torch.no_grad():
        w0 = float(model(**tok(samples[0].text, return_tensors="pt")).logits[0, 0])
    v = mm.classifier_scores([samples[0].text], tok, model, progress=False)
    assert v[0] == pytest.approx(w0, abs=1e-5) and e["edu"]["n_valid"] == len(samples)
    assert 0.0 <= e["share_int_score_ge_3"] <= 1.0


def test_missing_weights_say_what_to_download(tmp_path):
    with pytest.raises(PrepbenchError, match=r"huggingface-cli download hkust-nlp/deita-quality-scorer"):
        mm.load_causal_lm("hkust-nlp/deita-quality-scorer")
    with pytest.raises(PrepbenchError, match=r"HuggingFaceFW/fineweb-edu-classifier"):
        mm.load_classifier("HuggingFaceFW/fineweb-edu-classifier")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepbenchError, match="cannot be loaded offline"):
        mm.load_causal_lm(str(tmp_path / "empty"))


def test_cli_score_metrics_with_model_sets(tmp_path, lm_path, clf_path):
    from prepbench.tools.cli import main

    rows = open(f"{DATA}/gsm8k/train.jsonl").read().split("\n")[:8]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.json"
    main(
        [
            "score",
            "metrics",
            str(tmp_path / "d.jsonl"),
            "--metrics",
            "length,perplexity,ifd,reward",
            "--lm",
            str(lm_path),
            "--reward-model",
            str(clf_path),
            "-o",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    assert set(res["metrics"]) == {"length", "perplexity", "ifd", "reward"}
    assert res["metrics"]["perplexity"]["n"] == 8 and res["metrics"]["perplexity"]["model"] == str(lm_path)
    assert res["metrics"]["ifd"]["ifd"]["n_valid"] == 8
    with pytest.raises(SystemExit) as e:
        main(["score", "metrics", str(tmp_path / "d.jsonl"), "--metrics", "edu"])
    assert e.value.code == 2
