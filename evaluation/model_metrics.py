"""Model-based data-quality metrics with their real loading code (transformers, by hub name or path).

==================  ==========================================  ==========================================
set                 model (typical weights)                     value per sample
==================  ==========================================  ==========================================
``perplexity``      any causal LM (e.g. Qwen/Qwen2.5-0.5B)      exp(mean token NLL of the whole text)
``response_ppl``    any causal LM                               exp(mean NLL of the response's tokens
                                                                given the instruction)
``ifd``             any causal LM                               PPL(answer | instruction) / PPL(answer)
``reward``          a sequence-classification reward model      the reward logit
                    (e.g. OpenAssistant/reward-model-deberta-v3-large-v2)
``edu``             HuggingFaceFW/fineweb-edu-classifier        regression logit (0-5 educational value)
``deita_quality``   hkust-nlp/deita-quality-scorer              expected score over tokens "1".."6"
``deita_complexity`` hkust-nlp/deita-complexity-scorer          expected score over tokens "1".."6"
==================  ==========================================  ==========================================

Weights are loaded with ``local_files_only=True`` unless downloads are allowed; a model that is
not available raises a one-line :class:`~prepbench.tools.errors.PrepbenchError` saying what to
download. torch/transformers are imported inside the functions.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from prepbench.tools.errors import PrepbenchError

from .readers import ScoredSample

MODEL_METRIC_SETS = ("perplexity", "response_ppl", "ifd", "reward", "edu", "deita_quality", "deita_complexity")
#: between an instruction and its response when the response is scored given the instruction
RESPONSE_SEPARATOR = "\n\n"

# Deita scorer prompts, verbatim from the Deita release (Liu et al., 2024, ICLR, "What Makes Good
# Data for Alignment?", scorers hkust-nlp/deita-{complexity,quality}-scorer).
DEITA_COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
DEITA_QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the Question. \n"
    " #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
# IFD conditions the answer on the instruction in the Alpaca prompt, as Cherry LLM does
# (Li et al., 2024, NAACL, "From Quantity to Quality", §2.3).
IFD_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def _missing(name: str, what: str) -> PrepbenchError:
    hint = "" if Path(name).exists() else f"download it first: huggingface-cli download {name} (or pass a local folder)"
    return PrepbenchError(f"{what} {name!r} cannot be loaded offline; {hint or 'the folder has no usable weights/config'}")


def load_causal_lm(name_or_path: str, allow_download: bool = False, device: str = "cpu", dtype: str | None = None):
    """``(tokenizer, model)`` for a causal LM, in eval mode on ``device``; a pad token is ensured.

    Raises:
        PrepbenchError: weights/config/tokenizer not available offline (says what to download).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, local_files_only=not allow_download)
        kw = {"dtype": getattr(torch, dtype)} if dtype else {}
        model = AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=not allow_download, **kw)
    except (OSError, ValueError) as e:
        raise _missing(name_or_path, "causal LM") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok, model.to(device).eval()


def load_classifier(name_or_path: str, allow_download: bool = False, device: str = "cpu"):
    """``(tokenizer, model)`` for a sequence-classification model (reward model, FineWeb-Edu classifier).

    Raises:
        PrepbenchError: not available offline (says what to download).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, local_files_only=not allow_download)
        model = AutoModelForSequenceClassification.from_pretrained(name_or_path, local_files_only=not allow_download)
    except (OSError, ValueError) as e:
        raise _missing(name_or_path, "classifier") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        model.config.pad_token_id = tok.pad_token_id
    return tok, model.to(device).eval()


def _progress(total: int, description: str, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )
    return bar, bar.add_task(description, total=total)


def _summary(values: Sequence[float]) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "median": None, "std": None, "n_valid": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "std": float(v.std()), "n_valid": int(v.size)}


def target_nll(
    tok,
    model,
    prefixes: Sequence[str],
    targets: Sequence[str],
    max_length: int = 1024,
    batch_size: int = 8,
    progress: bool = False,
    description: str = "scoring",
) -> tuple[np.ndarray, np.ndarray]:
    """Summed negative log-likelihood (nats) of each target's tokens given its prefix, and the token counts.

    Prefix and target are tokenized separately and concatenated (so the boundary is exact);
    a BOS token is prepended when the tokenizer has one, so the first target token is scored
    even with an empty prefix. Longer pairs keep the target (cut to ``max_length - 1`` tokens)
    and drop the prefix's oldest tokens.

    Returns:
        ``(nll_sum, n_tokens)``: float64 and int arrays of shape ``(len(targets),)``; a target with
        no scorable token gets NaN / 0.
    """
    import torch

    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    seqs, starts = [], []
    for p, t in zip(prefixes, targets):
        p_ids = bos + (tok(p, add_special_tokens=False)["input_ids"] if p else [])
        t_ids = tok(t, add_special_tokens=False)["input_ids"][: max_length - 1]
        room = max_length - len(t_ids)
        if len(p_ids) > room:
            p_ids = p_ids[len(p_ids) - room :]
        seqs.append(p_ids + t_ids)
        starts.append(len(p_ids))
    nll = np.full(len(seqs), np.nan)
    cnt = np.zeros(len(seqs), dtype=np.int64)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    pad = tok.pad_token_id
    bar, task = _progress(len(seqs), description, progress)
    with bar, torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            L = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), L), pad, dtype=torch.long)
            att = torch.zeros((len(idx), L), dtype=torch.long)
            tmask = torch.zeros((len(idx), L), dtype=torch.bool)
            for r, i in enumerate(idx):
                s = seqs[i]
                ids[r, : len(s)] = torch.tensor(s)
                att[r, : len(s)] = 1
                tmask[r, max(starts[i], 1) : len(s)] = True  # position 0 has no context
            logits = model(input_ids=ids, attention_mask=att).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            tok_lp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
            m = tmask[:, 1:]
            sums = -(tok_lp * m).sum(1).double()
            counts = m.sum(1)
            for r, i in enumerate(idx):
                if counts[r] > 0:
                    nll[i] = float(sums[r])
                    cnt[i] = int(counts[r])
            bar.advance(task, len(idx))
    return nll, cnt


def perplexity(
    samples: Sequence[ScoredSample], tok, model, max_length: int = 1024, batch_size: int = 8, progress: bool = True
) -> dict:
    """Perplexity of each sample's whole text under a causal LM.

    Returns ``ppl`` (mean/median/std of per-sample exp(mean token NLL)) and ``corpus_ppl`` =
    exp(total NLL / total tokens).
    """
    nll, cnt = target_nll(
        tok, model, [""] * len(samples), [s.text for s in samples], max_length, batch_size, progress, "perplexity"
    )
    ok = cnt > 0
    per = np.where(ok, np.exp(nll / np.maximum(cnt, 1)), np.nan)
    return {
        "ppl": _summary(per.tolist()),
        "corpus_ppl": float(np.exp(nll[ok].sum() / cnt[ok].sum())) if ok.any() else None,
        "tokens": int(cnt.sum()),
    }


def response_ppl(
    samples: Sequence[ScoredSample], tok, model, max_length: int = 1024, batch_size: int = 8, progress: bool = True
) -> dict:
    """Perplexity of each sample's response given its instruction under a reference causal LM.

    AgoraBench's intrinsic "response perplexity" (Kim et al., ACL 2025, §4: lower means the
    response is more predictable for the reference model). Each sample gets its own value,
    exp(summed NLL of its response tokens / their number), with the instruction and
    :data:`RESPONSE_SEPARATOR` as context (:func:`target_nll`); AgoraBench's released code gives
    every sample of a batch the batch's mean loss instead, which this does not copy.

    Returns:
        ``{"response_ppl": summary, "per_sample": [{"id", "ppl", "tokens"}], "tokens"}``; a sample
        whose response has no token gets ``ppl`` None.
    """
    nll, cnt = target_nll(
        tok,
        model,
        [s.instruction + RESPONSE_SEPARATOR for s in samples],
        [s.response for s in samples],
        max_length,
        batch_size,
        progress,
        "response perplexity",
    )
    ok = cnt > 0
    per = np.where(ok, np.exp(nll / np.maximum(cnt, 1)), np.nan)
    return {
        "response_ppl": _summary(per.tolist()),
        "per_sample": [
            {"id": s.id, "ppl": float(p) if k else None, "tokens": int(c)} for s, p, k, c in zip(samples, per, ok, cnt)
        ],
        "tokens": int(cnt.sum()),
    }


def ifd(samples: Sequence[ScoredSample], tok, model, max_length: int = 1024, batch_size: int = 8, progress: bool = True) -> dict:
    """Instruction-Following Difficulty: IFD = PPL(answer | instruction) / PPL(answer).

    Li et al. (2024), NAACL, "From Quantity to Quality: Boosting LLM Performance with Self-Guided
    Data Selection for Instruction Tuning", §2.3 (Cherry LLM computes the ratio of perplexities;
    the paper's ratio of mean losses is reported as ``ifd_loss``). The instruction is wrapped in
    :data:`IFD_PROMPT`. IFD > 1 means the instruction does not help predict the answer.
    """
    resp = [s.response for s in samples]
    c_nll, c_cnt = target_nll(
        tok,
        model,
        [IFD_PROMPT.format(instruction=s.instruction) for s in samples],
        resp,
        max_length,
        batch_size,
        progress,
        "IFD: answer | instruction",
    )
    a_nll, a_cnt = target_nll(tok, model, [""] * len(samples), resp, max_length, batch_size, progress, "IFD: answer alone")
    ok = (c_cnt > 0) & (a_cnt > 0)
    c_loss = np.where(ok, c_nll / np.maximum(c_cnt, 1), np.nan)
    a_loss = np.where(ok, a_nll / np.maximum(a_cnt, 1), np.nan)
    ratio = np.exp(c_loss) / np.exp(a_loss)
    return {
        "ifd": _summary(ratio.tolist()),
        "ifd_loss": _summary((c_loss / a_loss).tolist()),
        "share_ifd_above_1": float(np.mean(ratio[ok] > 1)) if ok.any() else None,
    }


def _chat_text(tok, s: ScoredSample) -> str:
    if getattr(tok, "chat_template", None):
        msgs = ([{"role": "system", "content": s.system}] if s.system else []) + [{"role": r, "content": t} for r, t in s.turns]
        return tok.apply_chat_template(msgs, tokenize=False)
    return "\n\n".join(f"{'User' if r == 'user' else 'Assistant'}: {t}" for r, t in s.turns)


def classifier_scores(
    texts: Sequence[str],
    tok,
    model,
    max_length: int = 512,
    batch_size: int = 8,
    progress: bool = True,
    description: str = "classifier",
) -> np.ndarray:
    """One score per text from a sequence-classification head.

    ``num_labels == 1`` (reward models, the FineWeb-Edu regression head): the logit; otherwise the
    softmax probability of the last label. Shape ``(len(texts),)``, float64.
    """
    import torch

    out = np.zeros(len(texts))
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    bar, task = _progress(len(texts), description, progress)
    with bar, torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding="longest", truncation=True, max_length=max_length)
            logits = model(**enc).logits.float()
            vals = logits[:, 0] if logits.shape[-1] == 1 else torch.softmax(logits, -1)[:, -1]
            out[idx] = vals.double().numpy()
            bar.advance(task, len(idx))
    return out


def reward(
    samples: Sequence[ScoredSample], tok, model, max_length: int = 1024, batch_size: int = 8, progress: bool = True
) -> dict:
    """Reward-model score of each conversation (chat template of the reward model's tokenizer when it has one)."""
    v = classifier_scores([_chat_text(tok, s) for s in samples], tok, model, max_length, batch_size, progress, "reward model")
    return {"reward": _summary(v.tolist())}


def edu(samples: Sequence[ScoredSample], tok, model, max_length: int = 512, batch_size: int = 8, progress: bool = True) -> dict:
    """FineWeb-Edu classifier (Penedo et al., 2024, "The FineWeb Datasets", §3.2): regression logit
    of each sample's text, and ``int_score`` = round(clamp(score, 0, 5)) as on the model card."""
    v = classifier_scores([s.text for s in samples], tok, model, max_length, batch_size, progress, "FineWeb-Edu")
    ints = np.rint(np.clip(v, 0, 5))
    return {"edu": _summary(v.tolist()), "share_int_score_ge_3": float(np.mean(ints >= 3))}


def score_token_ids(tok, labels: Sequence[str] = ("1", "2", "3", "4", "5", "6")) -> list[int]:
    """Vocabulary ids of the score tokens (the token itself, else the last piece of its encoding).

    Raises:
        PrepbenchError: a label has no token in the vocabulary.
    """
    ids = []
    for lab in labels:
        tid = tok.convert_tokens_to_ids(lab)
        if tid is None or tid == tok.unk_token_id:
            enc = tok(lab, add_special_tokens=False)["input_ids"]
            tid = enc[-1] if enc else None
        if tid is None or tid == tok.unk_token_id:
            raise PrepbenchError(f"Deita scorer tokenizer has no token for score {lab!r}")
        ids.append(int(tid))
    return ids


def deita_scores(
    prompts: Sequence[str],
    tok,
    model,
    max_length: int = 2048,
    batch_size: int = 4,
    progress: bool = True,
    description: str = "Deita",
) -> np.ndarray:
    """Expected Deita score per prompt: softmax over the next-token logits of "1".."6", then sum_i i * p_i.

    Liu et al. (2024), ICLR, "What Makes Good Data for Alignment?" §2.2-2.3 (the released scorers
    read the first generated token's logits the same way). Shape ``(len(prompts),)``, in [1, 6].
    """
    import torch

    ids = torch.tensor(score_token_ids(tok))
    weights = torch.arange(1, 7, dtype=torch.float64)
    out = np.zeros(len(prompts))
    bar, task = _progress(len(prompts), description, progress)
    with bar, torch.no_grad():
        for b in range(0, len(prompts), batch_size):
            batch = list(range(b, min(b + batch_size, len(prompts))))
            seqs = [tok(prompts[i], add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"] for i in batch]
            L = max(len(s) for s in seqs)
            inp = torch.full((len(seqs), L), tok.pad_token_id, dtype=torch.long)
            att = torch.zeros((len(seqs), L), dtype=torch.long)
            for r, s in enumerate(seqs):  # left padding: the next-token position is the last column
                inp[r, L - len(s) :] = torch.tensor(s)
                att[r, L - len(s) :] = 1
            pos = att.cumsum(-1) - 1
            logits = model(input_ids=inp, attention_mask=att, position_ids=pos.clamp(min=0)).logits[:, -1].double()
            p = torch.softmax(logits[:, ids], dim=-1)
            out[batch] = (p * weights).sum(-1).numpy()
            bar.advance(task, len(batch))
    return out


def deita_quality(
    samples: Sequence[ScoredSample], tok, model, max_length: int = 2048, batch_size: int = 4, progress: bool = True
) -> dict:
    """Deita quality score of each (instruction, response) pair, prompted with :data:`DEITA_QUALITY_TEMPLATE`."""
    prompts = [DEITA_QUALITY_TEMPLATE.format(instruction=s.instruction, output=s.response) for s in samples]
    return {
        "deita_quality": _summary(deita_scores(prompts, tok, model, max_length, batch_size, progress, "Deita quality").tolist())
    }


def deita_complexity(
    samples: Sequence[ScoredSample], tok, model, max_length: int = 2048, batch_size: int = 4, progress: bool = True
) -> dict:
    """Deita complexity score of each instruction, prompted with :data:`DEITA_COMPLEXITY_TEMPLATE`."""
    prompts = [DEITA_COMPLEXITY_TEMPLATE.format(instruction=s.instruction) for s in samples]
    return {
        "deita_complexity": _summary(
            deita_scores(prompts, tok, model, max_length, batch_size, progress, "Deita complexity").tolist()
        )
    }


_CAUSAL = {
    "perplexity": perplexity,
    "response_ppl": response_ppl,
    "ifd": ifd,
    "deita_quality": deita_quality,
    "deita_complexity": deita_complexity,
}
_CLASSIFIER = {"reward": reward, "edu": edu}


def compute_model_metrics(
    samples: Sequence[ScoredSample],
    models: dict[str, str],
    allow_download: bool = False,
    device: str = "cpu",
    max_length: int = 1024,
    batch_size: int = 8,
    progress: bool = True,
) -> dict:
    """Compute model-based metric sets.

    Args:
        models: ``{set_name: model name or path}`` for sets in :data:`MODEL_METRIC_SETS`; a model
            shared by several sets (e.g. perplexity and IFD) is loaded once.

    Returns:
        ``{set: {"n", "model", "seconds", ...values}}``.

    Raises:
        PrepbenchError: unknown set, or a model that cannot be loaded.
    """
    if not samples:
        raise PrepbenchError("no samples to score")
    loaded: dict[tuple[str, str], tuple] = {}
    out: dict = {}
    for name, path in models.items():
        if name not in MODEL_METRIC_SETS:
            raise PrepbenchError(f"unknown model metric {name!r}; known: {', '.join(MODEL_METRIC_SETS)}")
        t0 = time.perf_counter()
        kind = "causal" if name in _CAUSAL else "cls"
        key = (kind, str(path))
        if key not in loaded:
            loaded[key] = (
                load_causal_lm(str(path), allow_download, device)
                if kind == "causal"
                else load_classifier(str(path), allow_download, device)
            )
        tok, model = loaded[key]
        fn = _CAUSAL.get(name) or _CLASSIFIER[name]
        res = fn(samples, tok, model, max_length=max_length, batch_size=batch_size, progress=progress)
        out[name] = {"n": len(samples), "model": str(path), **res, "seconds": round(time.perf_counter() - t0, 4)}
    return out
