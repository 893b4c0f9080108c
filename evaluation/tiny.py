"""A tiny randomly initialised causal LM with an offline-trained tokenizer, for smoke runs.

No weights are downloaded: the tokenizer is a byte-level BPE trained with the ``tokenizers``
library on texts you give (e.g. a few hundred rows of real data), and the model is a
``LlamaForCausalLM`` built from a small ``LlamaConfig`` with random weights. It lets the
whole train -> evaluate -> PGR chain run on a CPU in seconds; its scores are chance level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

SPECIAL = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}


def build_tiny_model(
    out_dir: str | os.PathLike,
    texts: Iterable[str],
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    max_positions: int = 4096,
    template: str = "default",
    seed: int = 0,
) -> Path:
    """Write a tiny Llama model + tokenizer (with a LlamaFactory chat template) to ``out_dir``.

    Args:
        out_dir: folder to write (``config.json``, weights, tokenizer files).
        texts: training texts for the BPE tokenizer.
        vocab_size: BPE vocabulary size (tokens), special tokens included.
        hidden_size: model width; heads = 2, intermediate size = 2 x width.
        num_layers: decoder layers.
        max_positions: ``max_position_embeddings`` (tokens).
        template: chat template name from ``chat_templates.yaml`` set on the tokenizer.
        seed: torch seed for the random weights.

    Returns:
        ``out_dir`` as a Path.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from .train import chat_templates

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=SPECIAL["unk"],
        bos_token=SPECIAL["bos"],
        eos_token=SPECIAL["eos"],
        pad_token=SPECIAL["pad"],
    )
    hf_tok.chat_template = chat_templates()[template]["chat_template"]
    hf_tok.save_pretrained(out)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out
