"""The test server's default script: plausible triage, samples and ReAct tool calls built from the prompt's chunk."""

from __future__ import annotations

import json
import re
from typing import Any

# ---------------------------------------------------------------------------------------
# request / reply model
# ---------------------------------------------------------------------------------------
from llm_messages import Reply, Request  # noqa: E402


def approx_tokens(text: str) -> int:
    """Token estimate used for usage fields and max_tokens cuts: ⌈chars / 4⌉."""
    return (len(text) + 3) // 4


# ---------------------------------------------------------------------------------------
# the smart script: valid finance-skill samples built from the chunk's own sentences
# ---------------------------------------------------------------------------------------

_BAD_SENTENCE = re.compile(
    r"\b(chapter|section|passage|text|figure|fig\.|table|exhibit|appendix|equation|example|exercise|problem|"
    r"according to|above|below|following|author|this|these|those|it|they)\b|https?://|\[|\]|\$\$|\|",
    re.I,
)
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CHUNK_RE = re.compile(r"<chunk(?: id=\"(?P<id>[^\"]+)\")?>\n?(?P<text>.*?)\n?</chunk>", re.S)


def usable_sentences(text: str) -> list[str]:
    """Sentences of a chunk fit to quote as evidence (verbatim substrings of ``text``).

    Headings, tables, math blocks, list markers and sentences that point at the book
    ("this section", "Figure 3") are left out; 60–400 characters each.
    """
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.split("\n")]
        if not lines or lines[0].lstrip().startswith(("#", "|", "$$", ">", "![", "```")):
            continue
        if any(ln.lstrip().startswith(("- ", "* ", "|")) or re.match(r"\s*\d+\.\s", ln) for ln in lines):
            continue
        if len(lines) > 1:
            continue  # keep single-line paragraphs so sentences stay verbatim
        for s in _SENT_SPLIT.split(lines[0].strip()):
            s = s.strip()
            if 60 <= len(s) <= 400 and s.endswith(".") and not _BAD_SENTENCE.search(s) and "$" not in s and "\\" not in s:
                out.append(s)
    return out


def topic_of(heading_path: list[str] | str) -> str:
    """A short topic name from a heading (numbers and book-structure words removed)."""
    title = heading_path[-1] if isinstance(heading_path, list) and heading_path else str(heading_path or "")
    title = re.sub(r"[*_`#]", "", title)
    title = re.sub(r"\b(chapter|section|figure|table|example|appendix|unit|module|part)\b", " ", title, flags=re.I)
    title = re.sub(r"\d+(\.\d+)*", " ", title)
    title = re.sub(r"\s+", " ", title).strip(" :.-")
    return title or "finance"


def _heading_of(text: str) -> str:
    for ln in text.split("\n"):
        m = re.match(r"^#{1,6}\s+(.+)$", ln)
        if m:
            return m.group(1)
    return ""


def _body_chars(text: str) -> int:
    return len("\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith("#")).strip())


def smart_triage(chunk_text: str) -> dict:
    """Keep a chunk with quotable sentences; skip navigation and short chunks."""
    if re.search(r"learning outcomes|by the end of this section|in this chapter", chunk_text, re.I):
        return {"keep": False, "skip_reason": "navigation"}
    if _body_chars(chunk_text) < 200 or not usable_sentences(chunk_text):
        return {"keep": False, "skip_reason": "low_information"}
    return {"keep": True}


def smart_samples(chunk_id: str, chunk_text: str, sample_type: str, count: int, offset: int = 0) -> list[dict]:
    """Up to ``count`` samples of ``sample_type`` that pass the finance skill's validators.

    Types: ``concept_qa``, ``process_qa``, ``case_application``, ``term_definition``; any other
    type (e.g. ``calculation_qa``, whose result a filter re-computes) gets no samples.
    """
    sents = usable_sentences(chunk_text)
    if not sents:
        return []
    topic = topic_of(_heading_of(chunk_text))
    n = len(sents)
    out: list[dict] = []
    for i in range(count):
        k = offset + 3 * i
        a, b, c = sents[k % n], sents[(k + 1) % n], sents[(k + 2) % n]
        lead = " ".join(a.split()[:5]).rstrip(",;:")
        if sample_type == "concept_qa":
            out.append(
                {
                    "sample_type": "concept_qa",
                    "chunk_id": chunk_id,
                    "evidence": [a],
                    "question": f"What should an investor know about {topic}, starting with '{lead}'?",
                    "answer": a,
                    "question_type": "explanation",
                    "knowledge_point": topic[:120],
                }
            )
        elif sample_type == "term_definition":
            out.append(
                {
                    "sample_type": "term_definition",
                    "chunk_id": chunk_id,
                    "evidence": [a],
                    "question": f"What does an investor need to know about the meaning of {topic}, as in '{lead}'?",
                    "answer": a,
                    "term": topic[:120],
                    "term_kind": "measure",
                }
            )
        elif sample_type == "process_qa":
            if n < 2:
                break
            out.append(
                {
                    "sample_type": "process_qa",
                    "chunk_id": chunk_id,
                    "evidence": [a, b],
                    "question": f"How does reasoning about {topic} proceed, starting from '{lead}'?",
                    "reasoning_steps": [a, b],
                    "answer": c if c not in (a, b) else b,
                    "reasoning_pattern": "causal_chain",
                }
            )
        elif sample_type == "case_application":
            if n < 2:
                break
            out.append(
                {
                    "sample_type": "case_application",
                    "chunk_id": chunk_id,
                    "evidence": [a, b],
                    "case": f"A financial analyst preparing a briefing on {topic} notes the following: {a}",
                    "question": f"What should the analyst add to the briefing on {topic}?",
                    "analysis_steps": [a],
                    "answer": f"The analyst should add that {b[0].lower()}{b[1:]}"
                    if b[:1].isupper() and not b[:2].isupper()
                    else b,
                }
            )
        if len(out) >= count:
            break
    # distinct samples only
    seen, uniq = set(), []
    for s in out:
        key = json.dumps(s, sort_keys=True)
        if key not in seen:
            seen.add(key)
            uniq.append(s)
    return uniq


def _json_blocks(text: str) -> list[Any]:
    out = []
    for m in re.finditer(r"```json\n(.*?)\n```", text, re.S):
        try:
            out.append(json.loads(m.group(1)))
        except json.JSONDecodeError:
            pass
    return out


def _wrap_structured(req: Request, value: Any) -> Reply:
    """Return ``value`` through the channel the request asked for (tool, schema'd JSON or text)."""
    tool = req.forced_tool()
    rf = req.response_format or {}
    if tool:
        args = value if isinstance(value, dict) else {"items": value}
        return Reply(tool_calls=[{"name": tool, "args": args}], finish_reason="tool_calls")
    if rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema") or {}
        if schema.get("type") == "object" and not isinstance(value, dict):
            key = next(iter(schema.get("properties") or {"items": None}))
            value = {key: value}
    return Reply(content=json.dumps(value, ensure_ascii=False))


REACT_SYSTEM_MARK = "corpus tools"


def smart_react(req: Request) -> Reply:
    """A scripted ReAct loop over prepbench's corpus tools, decided from the conversation."""
    calls = [tc for m in req.messages if m.role == "assistant" for tc in m.tool_calls]
    last = req.messages[-1]
    used = {tc["name"] for tc in calls}
    if last.role != "tool":
        return Reply(tool_calls=[{"name": "list_pending_chunks", "args": {"limit": 5}}], finish_reason="tool_calls")
    try:
        result = json.loads(last.text)
    except json.JSONDecodeError:
        result = {"error": last.text}
    name = last.tool_name
    if name == "list_pending_chunks":
        chunks = result.get("chunks", []) if isinstance(result, dict) else result
        if not chunks:
            return Reply(content="All chunks are processed: nothing left to do.")
        return Reply(tool_calls=[{"name": "read_chunk", "args": {"chunk_id": chunks[0]["chunk_id"]}}], finish_reason="tool_calls")
    if name == "read_chunk":
        cid, text = result.get("chunk_id"), result.get("text", "")
        if "search_corpus" not in used:
            return Reply(
                tool_calls=[
                    {"name": "search_corpus", "args": {"query": topic_of(result.get("heading_path") or ["finance"]), "limit": 3}}
                ],
                finish_reason="tool_calls",
            )
        return _react_work(cid, text, result.get("heading_path"))
    if name == "search_corpus":
        # go back to the chunk read last
        for m in reversed(req.messages):
            if m.role == "tool" and m.tool_name == "read_chunk":
                r = json.loads(m.text)
                return _react_work(r.get("chunk_id"), r.get("text", ""), r.get("heading_path"))
    if name == "save_samples":
        cid = result.get("chunk_id")
        if result.get("accepted", 0) > 0:
            return Reply(
                tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, "status": "kept"}}], finish_reason="tool_calls"
            )
        return Reply(
            tool_calls=[{"name": "mark_chunk", "args": {"chunk_id": cid, "status": "skipped", "skip_reason": "low_information"}}],
            finish_reason="tool_calls",
        )
    # after mark_chunk (or an error): look for more work
    return Reply(tool_calls=[{"name": "list_pending_chunks", "args": {"limit": 5}}], finish_reason="tool_calls")


def _react_work(cid: str, text: str, heading_path: Any) -> Reply:
    tri = smart_triage(text)
    if not tri["keep"]:
        return Reply(
            tool_calls=[
                {"name": "mark_chunk", "args": {"chunk_id": cid, "status": "skipped", "skip_reason": tri["skip_reason"]}}
            ],
            finish_reason="tool_calls",
        )
    samples = smart_samples(cid, text, "concept_qa", 2) + smart_samples(cid, text, "process_qa", 1, offset=6)
    return Reply(tool_calls=[{"name": "save_samples", "args": {"chunk_id": cid, "samples": samples}}], finish_reason="tool_calls")


def probe_reply(req: Request) -> Reply | None:
    """The answers to prepbench's capability probe (``agents/models/probe.py``), or None: a guided
    request gets ``{"answer": 1}`` through its channel, a plain one a greeting; an offered tool is called."""
    text = req.last_user_text.strip()
    if text == "Say hello.":
        guided = req.forced_tool() or (req.response_format or {}).get("type") in ("json_schema", "json_object")
        return _wrap_structured(req, {"answer": 1}) if guided else Reply(content="Hello! How can I help you today?")
    if text.startswith("Call the tool add_numbers"):
        if any(t["name"] == "add_numbers" for t in req.tools):
            return Reply(tool_calls=[{"name": "add_numbers", "args": {"a": 2, "b": 3}}], finish_reason="tool_calls")
        return Reply(content="2 + 3 = 5.")
    return None


def smart_reply(req: Request) -> Reply:
    """The default script (see the module docstring)."""
    probe = probe_reply(req)
    if probe is not None:
        return probe
    if any(t["name"] == "save_samples" for t in req.tools):
        return smart_react(req)
    text = req.text
    from llm_modes import is_judge_prompt, is_mode_prompt, judge_reply, mode_reply  # noqa: PLC0415  (llm_modes imports this module)

    if is_mode_prompt(text):
        return mode_reply(req)
    if is_judge_prompt(req.last_user_text):
        return judge_reply(req)
    chunks = list(_CHUNK_RE.finditer(text))
    chunk_text = chunks[0].group("text") if chunks else ""
    if "Decide whether the chunk" in text:
        return _wrap_structured(req, smart_triage(chunk_text))
    m = re.search(r"Write (\d+) `(\w+)` sample", text)
    if m:
        cid = re.search(r'Set "chunk_id" to "([^"]+)"', text)
        count, st = int(m.group(1)), m.group(2)
        offset = {"concept_qa": 0, "process_qa": 1, "case_application": 2, "term_definition": 4}.get(st, 0)
        return _wrap_structured(req, smart_samples(cid.group(1) if cid else "", chunk_text, st, count, offset))
    if "You check training data for faithfulness" in text:
        blocks = _json_blocks(text)
        cand = blocks[0] if blocks else {}
        ev = cand.get("evidence") or []
        squash = lambda s: re.sub(r"\s+", " ", s).strip().lower()  # noqa: E731
        ok = bool(ev) and all(squash(e) in squash(chunk_text) for e in ev)
        return _wrap_structured(req, {"supported": True} if ok else {"supported": False, "reason": "evidence not in the chunk"})
    if "was rejected:" in text and "Rejected sample" in text:
        blocks = _json_blocks(text)
        cand = blocks[0] if blocks else {}
        st = cand.get("sample_type", "concept_qa")
        cid = cand.get("chunk_id", "")
        fixed = smart_samples(cid, chunk_text, st, 1, offset=7)
        return _wrap_structured(req, fixed[0] if fixed else {})
    if "Create question-answer training samples" in text:
        out: list[dict] = []
        for cm in chunks:
            cid, ct = cm.group("id") or "", cm.group("text")
            if not smart_triage(ct)["keep"]:
                continue
            out += smart_samples(cid, ct, "concept_qa", 2) + smart_samples(cid, ct, "process_qa", 1, offset=6)
        return _wrap_structured(req, out)
    return Reply(content="OK.")


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------
