"""The CPU trainer: a transformers ``Trainer`` standing in for LlamaFactory on the same data files,
chat template (``evaluation/chat_templates.yaml``) and hyper-parameters, with prompt tokens masked
from the loss as LlamaFactory does (``train_on_prompt: false``). torch and transformers are
imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prepbench.tools.errors import PrepbenchError

from .train_config import TEMPLATES_FILE, _read_jsonl, chat_templates, load_training_config, validate_dataset_info


def load_conversations(cfg: dict[str, Any], where: str = "config") -> list[list[dict[str, str]]]:
    """The config's training data as chat messages ``[{role, content}]``, one list per sample.

    Reads ``dataset_dir/dataset_info.json`` and each dataset in ``dataset`` (comma-separated)
    as LlamaFactory would: Alpaca entries join ``prompt`` and ``query`` with a newline; ShareGPT
    entries map the tags to user/assistant/system. ``max_samples`` caps each dataset.

    Raises:
        PrepbenchError: missing ``dataset_info.json``, a dataset not in it, an unsupported entry
            (hub datasets), a missing data file, or a malformed row (file:line).
    """
    ddir = Path(cfg["dataset_dir"])
    info_path = ddir / "dataset_info.json"
    if not info_path.is_file():
        raise PrepbenchError(f"{where}: field 'dataset_dir': {info_path} not found")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PrepbenchError(f"{info_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    validate_dataset_info(info, str(info_path))
    cap = cfg.get("max_samples")
    convs: list[list[dict[str, str]]] = []
    for name in [d.strip() for d in str(cfg["dataset"]).split(",") if d.strip()]:
        if name not in info:
            raise PrepbenchError(f"{where}: field 'dataset': '{name}' is not in {info_path}")
        entry = info[name]
        if not entry.get("file_name"):
            raise PrepbenchError(f"{info_path}: dataset '{name}': the CPU trainer reads local files only (field 'file_name')")
        fpath = Path(entry["file_name"])
        fpath = fpath if fpath.is_absolute() else ddir / fpath
        if not fpath.is_file():
            raise PrepbenchError(f"{info_path}: dataset '{name}': file '{fpath}' not found")
        cols = entry.get("columns") or {}
        taken = 0
        for i, row in _read_jsonl(fpath):
            if cap is not None and taken >= int(cap):
                break
            if entry.get("formatting", "alpaca") == "sharegpt":
                tags = {
                    "role_tag": "from",
                    "content_tag": "value",
                    "user_tag": "human",
                    "assistant_tag": "gpt",
                    "system_tag": "system",
                    **(entry.get("tags") or {}),
                }
                roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
                msgs = []
                for m in row.get(cols.get("messages", "conversations")) or []:
                    role = roles.get(m.get(tags["role_tag"]))
                    if role is None:
                        raise PrepbenchError(f"{fpath}:{i}: unknown role '{m.get(tags['role_tag'])}'")
                    msgs.append({"role": role, "content": str(m.get(tags["content_tag"], ""))})
            else:
                prompt = row.get(cols.get("prompt", "instruction")) or ""
                query = row.get(cols.get("query", "input")) or ""
                response = row.get(cols.get("response", "output"))
                if response is None:
                    raise PrepbenchError(f"{fpath}:{i}: row lacks field '{cols.get('response', 'output')}'")
                user = f"{prompt}\n{query}" if query else prompt
                msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": str(response)}]
            sys_col = cols.get("system")
            if sys_col and row.get(sys_col) and not (msgs and msgs[0]["role"] == "system"):
                msgs.insert(0, {"role": "system", "content": row[sys_col]})
            if not msgs or msgs[-1]["role"] != "assistant":
                raise PrepbenchError(f"{fpath}:{i}: a sample must end with an assistant message")
            convs.append(msgs)
            taken += 1
    if not convs:
        raise PrepbenchError(f"{where}: the datasets hold no samples")
    return convs


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """Token budget of one (prompt, answer) turn under ``cutoff_len``, as LlamaFactory splits it
    (``infer_seqlen`` in ``src/llamafactory/data/processor/processor_utils.py``): a short answer
    (< half the budget) is kept whole and the prompt cut; else a short prompt is kept and the
    answer cut; else both are cut in proportion to their lengths.

    Returns:
        ``(new_source_len, new_target_len)`` in tokens, summing to at most ``cutoff_len``.
    """
    if target_len * 2 < cutoff_len:
        max_target = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target = cutoff_len - source_len
    else:
        max_target = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target = min(max_target, target_len)
    new_source = min(max(cutoff_len - new_target, 0), source_len)
    return new_source, new_target


def encode_conversation(
    tokenizer, messages: list[dict[str, str]], cutoff_len: int, train_on_prompt: bool = False
) -> dict[str, list[int]]:
    """Tokenise one conversation with the tokenizer's chat template, LlamaFactory style.

    Each assistant turn's tokens are learned; everything else (system, user turns and the
    template's assistant header) gets label -100 unless ``train_on_prompt``. The text is cut
    into segments at the template's own boundaries (the rendering of ``messages[:k]`` with a
    generation prompt), so the masking follows the chat template exactly. Over ``cutoff_len``,
    each turn is cut by :func:`infer_seqlen`, so a long prompt never hides its answer.

    Returns:
        ``{"input_ids": [...], "attention_mask": [...], "labels": [...]}``, at most ``cutoff_len`` long.

    Raises:
        PrepbenchError: the chat template does not render the conversation as a prefix-stable string.
    """
    turns: list[tuple[str, str]] = []  # (prompt text, answer text) per assistant message
    done = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=False)
        upto = tokenizer.apply_chat_template(messages[: k + 1], tokenize=False)
        if not prompt.startswith(done) or not upto.startswith(prompt):
            raise PrepbenchError("the chat template does not render conversations prefix-stably; cannot mask prompts")
        turns.append((prompt[len(done) :], upto[len(prompt) :]))
        done = upto
    ids: list[int] = []
    labels: list[int] = []
    total = 0
    for prompt_text, answer_text in turns:
        if total >= cutoff_len:
            break
        src = tokenizer(prompt_text, add_special_tokens=False)["input_ids"] if prompt_text else []
        tgt = tokenizer(answer_text, add_special_tokens=False)["input_ids"] if answer_text else []
        s_len, t_len = infer_seqlen(len(src), len(tgt), cutoff_len - total)
        src, tgt = src[:s_len], tgt[:t_len]
        total += s_len + t_len
        ids.extend(src + tgt)
        labels.extend((src if train_on_prompt else [-100] * s_len) + tgt)
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def _setup_tokenizer(tokenizer, template: str) -> str:
    spec = chat_templates().get(template)
    if spec is not None:
        tokenizer.chat_template = spec["chat_template"]
        return f"shipped:{template}"
    if getattr(tokenizer, "chat_template", None):
        return "tokenizer"
    raise PrepbenchError(
        f"template '{template}' is not in {TEMPLATES_FILE.name} and the tokenizer has no chat template; "
        f"use one of {', '.join(chat_templates())}"
    )


def train_cpu(
    config: str | os.PathLike,
    max_steps: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the config's model on CPU with transformers' ``Trainer`` (LlamaFactory stand-in).

    Honours ``model_name_or_path``, ``dataset``/``dataset_dir``/``max_samples``, ``template``,
    ``cutoff_len``, ``train_on_prompt``, ``per_device_train_batch_size``,
    ``gradient_accumulation_steps``, ``learning_rate``, ``num_train_epochs``, ``max_steps``,
    ``lr_scheduler_type``, ``warmup_ratio``/``warmup_steps``, ``weight_decay``,
    ``max_grad_norm``, ``logging_steps``, ``seed`` and ``output_dir``; ``bf16``/``fp16``,
    ``deepspeed`` and ``enable_liger_kernel`` are GPU features and are ignored here (float32).
    Only ``finetuning_type: full`` and ``stage: sft`` are supported on this path.

    Args:
        config: LlamaFactory training YAML.
        max_steps: override the number of optimiser steps (smoke runs).
        overrides: other argument overrides (e.g. ``{"learning_rate": 1e-3}``).

    Returns:
        Summary dict: ``output_dir``, ``steps``, ``losses`` (per logging step), ``train_loss``,
        ``samples``, ``template``; also written to ``<output_dir>/prepbench_train.json``. The
        model and tokenizer (with the chat template set) are saved to ``output_dir``.

    Raises:
        PrepbenchError: bad config or data, unsupported stage/finetuning type, unloadable model.
    """
    cfg = load_training_config(config, overrides)
    if cfg["stage"] != "sft" or cfg["finetuning_type"] != "full":
        raise PrepbenchError(
            f"{config}: the CPU trainer supports stage 'sft' with finetuning_type 'full' only "
            f"(got {cfg['stage']}/{cfg['finetuning_type']}); install LlamaFactory for the rest"
        )
    from transformers import DataCollatorForSeq2Seq, Trainer

    tokenizer, model, used_template = _load_model(cfg, config)
    features = _features(cfg, config, tokenizer)
    out_dir = Path(cfg["output_dir"])
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    trainer = Trainer(model=model, args=_training_args(cfg, max_steps), train_dataset=features, data_collator=collator)
    result = trainer.train()
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "backend": "cpu-transformers",
        "config": str(Path(config).resolve()),
        "output_dir": str(out_dir),
        "steps": int(trainer.state.global_step),
        "losses": losses,
        "train_loss": float(result.training_loss),
        "samples": len(features),
        "template": used_template,
        "ignored_gpu_options": [k for k in ("bf16", "fp16", "deepspeed", "enable_liger_kernel") if cfg.get(k)],
    }
    (out_dir / "prepbench_train.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _load_model(cfg: dict[str, Any], config: str | os.PathLike):
    """``(tokenizer, model, template used)`` for the config's ``model_name_or_path`` (float32, pad token set)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_path = str(cfg["model_name_or_path"])
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise PrepbenchError(
            f"{config}: field 'model_name_or_path': cannot load '{model_path}' ({str(e).splitlines()[0]})"
        ) from None
    used_template = _setup_tokenizer(tokenizer, str(cfg["template"]))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model, used_template


def _features(cfg: dict[str, Any], config: str | os.PathLike, tokenizer) -> list[dict[str, list[int]]]:
    """The config's conversations tokenised and masked; samples cut off before their answer left out."""
    convs = load_conversations(cfg, str(config))
    cutoff = int(cfg.get("cutoff_len", 2048))
    features = [encode_conversation(tokenizer, c, cutoff, bool(cfg.get("train_on_prompt", False))) for c in convs]
    features = [f for f in features if any(x != -100 for x in f["labels"])]
    if not features:
        raise PrepbenchError(f"{config}: every sample is cut off before its answer (raise cutoff_len)")
    return features


def _training_args(cfg: dict[str, Any], max_steps: int | None):
    """transformers ``TrainingArguments`` from the config's hyper-parameters (CPU, no checkpoints)."""
    from transformers import TrainingArguments

    steps = max_steps if max_steps is not None else int(cfg.get("max_steps", -1) or -1)
    warmup = cfg.get("warmup_ratio", cfg.get("warmup_steps", 0)) or 0
    return TrainingArguments(
        output_dir=str(Path(cfg["output_dir"])),
        per_device_train_batch_size=int(cfg.get("per_device_train_batch_size", 8)),
        gradient_accumulation_steps=int(cfg.get("gradient_accumulation_steps", 1)),
        learning_rate=float(cfg.get("learning_rate", 5e-5)),
        num_train_epochs=float(cfg.get("num_train_epochs", 3.0)),
        max_steps=steps,
        lr_scheduler_type=str(cfg.get("lr_scheduler_type", "linear")),
        warmup_steps=float(warmup),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        max_grad_norm=float(cfg.get("max_grad_norm", 1.0)),
        logging_steps=int(cfg.get("logging_steps", 10)),
        seed=int(cfg.get("seed", 42)),
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
