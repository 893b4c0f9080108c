"""Local models as LangChain chat models: transformers (CPU or GPU) and in-process vLLM (GPU).

Imported only when an ``hf:`` or ``vllm:`` spec is used (it imports langchain-core).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from prepbench.tools.errors import ModelSpecError


def _to_chat_dicts(messages: list) -> list[dict]:
    role = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
    out = []
    for m in messages:
        content = (
            m.content
            if isinstance(m.content, str)
            else "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in m.content)
        )
        out.append({"role": role.get(m.type, "user"), "content": content})
    return out


def _local_path(provider: str, path: str) -> str:
    p = Path(path).expanduser()
    if p.exists():
        return str(p)
    if "/" in path and not path.startswith((".", "/", "~")):
        return path  # a hub id: loading it needs the hub (not reachable on every machine)
    raise ModelSpecError(f"{provider}:{path}: model path not found")


class HFChatModel(BaseChatModel):
    """A transformers causal LM with a chat template as a LangChain chat model.

    Generation is greedy unless ``temperature`` > 0; ``max_tokens`` caps new tokens; a
    reply that hits the cap has ``finish_reason="length"``. Calls are serialised (one
    model, one lock) and run in a worker thread from async code.
    """

    model_path: str
    max_tokens: int = 512
    temperature: float = 0.0
    hf_model: Any = None
    tokenizer: Any = None
    lock: Any = None

    @classmethod
    def create(cls, path: str, max_tokens: int = 512, temperature: float = 0.0, **kw: Any) -> "HFChatModel":
        try:
            import torch  # noqa: F401
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ModelSpecError(f"hf:{path}: transformers/torch are not installed (pip install 'prepbench[train]')") from None
        src = _local_path("hf", path)
        try:
            tok = AutoTokenizer.from_pretrained(src)
            model = AutoModelForCausalLM.from_pretrained(src, **kw)
        except OSError as e:
            raise ModelSpecError(f"hf:{path}: cannot load the model: {str(e).splitlines()[0]}") from None
        if tok.chat_template is None:
            raise ModelSpecError(f"hf:{path}: the tokenizer has no chat template")
        model.eval()
        return cls(
            model_path=src,
            max_tokens=max_tokens,
            temperature=temperature or 0.0,
            hf_model=model,
            tokenizer=tok,
            lock=threading.Lock(),
        )

    @property
    def _llm_type(self) -> str:
        return "prepbench-hf"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        import torch

        max_new = int(kwargs.get("max_tokens") or self.max_tokens)
        ids = self.tokenizer.apply_chat_template(
            _to_chat_dicts(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        gen_kw: dict[str, Any] = {
            "max_new_tokens": max_new,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if self.temperature > 0:
            gen_kw.update(do_sample=True, temperature=self.temperature)
        else:
            gen_kw.update(do_sample=False)
        with self.lock, torch.no_grad():
            out = self.hf_model.generate(**ids, **gen_kw)
        n_in = int(ids["input_ids"].shape[1])
        new = out[0, n_in:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        n_out = int(new.shape[0])
        eos = self.tokenizer.eos_token_id
        finished = n_out > 0 and eos is not None and int(new[-1]) == eos
        reason = "stop" if finished or n_out < max_new else "length"
        msg = AIMessage(
            content=text,
            usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out},
            response_metadata={"finish_reason": reason, "model_name": self.model_path},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


class VLLMChatModel(BaseChatModel):
    """In-process vLLM (``vllm.LLM``) as a LangChain chat model.

    Concurrent async requests are gathered for ``batch_window_s`` and sent as one
    ``LLM.chat(list_of_conversations, SamplingParams)`` call, so the GPU sees batches.
    """

    model_path: str
    max_tokens: int = 2048
    temperature: float = 0.0
    batch_window_s: float = 0.02
    llm: Any = None
    queue: Any = None

    @classmethod
    def create(cls, path: str, max_tokens: int = 2048, temperature: float = 0.0, **kw: Any) -> "VLLMChatModel":
        try:
            import vllm
        except ImportError:
            raise ModelSpecError(f"vllm:{path}: vllm is not installed (pip install vllm, on a machine with a GPU)") from None
        src = _local_path("vllm", path)
        llm = vllm.LLM(model=src, **kw)
        return cls(model_path=src, max_tokens=max_tokens, temperature=temperature or 0.0, llm=llm)

    @property
    def _llm_type(self) -> str:
        return "prepbench-vllm"

    def _params(self, max_tokens: int):
        import vllm

        return vllm.SamplingParams(max_tokens=max_tokens, temperature=self.temperature)

    def _result(self, out) -> ChatResult:
        comp = out.outputs[0]
        n_in, n_out = len(out.prompt_token_ids or []), len(comp.token_ids or [])
        msg = AIMessage(
            content=comp.text,
            usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out},
            response_metadata={"finish_reason": comp.finish_reason or "stop", "model_name": self.model_path},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        outs = self.llm.chat(
            [_to_chat_dicts(messages)], self._params(int(kwargs.get("max_tokens") or self.max_tokens)), use_tqdm=False
        )
        return self._result(outs[0])

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        if self.queue is None:
            self.queue = []
            asyncio.get_running_loop().call_later(self.batch_window_s, lambda: asyncio.ensure_future(self._flush()))
        fut = asyncio.get_running_loop().create_future()
        self.queue.append((_to_chat_dicts(messages), int(kwargs.get("max_tokens") or self.max_tokens), fut))
        return await fut

    async def _flush(self) -> None:
        batch, self.queue = self.queue or [], None
        if not batch:
            return
        limit = max(mt for _, mt, _ in batch)
        try:
            outs = await asyncio.to_thread(self.llm.chat, [c for c, _, _ in batch], self._params(limit), use_tqdm=False)
        except Exception as e:  # noqa: BLE001 - handed to every waiter
            for _, _, fut in batch:
                fut.set_exception(e)
            return
        for (_, _, fut), out in zip(batch, outs):
            fut.set_result(self._result(out))
