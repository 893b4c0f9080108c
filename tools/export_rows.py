"""One accepted sample to the lines of every JSONL format of the export, and a block of samples to
the bytes each format's file gets.

A sample is rendered once, to an ``(instruction, output)`` pair, by its skill's
``render/<type>.md`` template (e.g. ``case_application``: instruction = case + question,
output = numbered analysis steps + answer) in the skills' template sandbox; every format's line
is built from that pair. The chat formats hold the same two strings, so each is JSON-encoded once
and the lines are put together around them; the samples line is the sample's own encoding with
the two strings added. Each line is the bytes ``json.dumps(row, ensure_ascii=False)`` gives for
the format's row (:func:`_builders`), which ``tests/tools/test_export_lines.py`` checks.

:func:`render_block` is the unit of work of an export (:mod:`prepbench.tools.export_pool` runs it
in this process or in worker processes): a list of samples, as dicts or as the ledger's stored rows
(decoded here, so a worker process does the JSON parsing too), to one block of UTF-8 bytes per format.
"""

from __future__ import annotations

import functools
import json
import re
from json.encoder import c_make_encoder, encode_basestring
from typing import Any, Callable, Sequence

import jinja2

from .errors import PrepbenchError
from .ledger.records import sample_of_row
from .skills.templates import render_blocks


def render_pair(sample: dict, template: str | None) -> tuple[str, str]:
    """Render a sample to ``(instruction, output)`` with its type's render template.

    Args:
        sample: the sample's fields.
        template: the source of the skill's ``render/<type>.md`` (blocks ``instruction``
            and ``output``, rendered in the sandbox), or None for the default rendering:
            instruction = ``case`` + ``question`` (or ``question``/``instruction``),
            output = steps (if any) + ``answer``.

    Raises:
        PrepbenchError: the template refers to a field the sample lacks, or breaks the sandbox.
    """
    if template:
        try:
            instr, out = render_blocks(template, sample)
        except jinja2.TemplateError as e:
            raise PrepbenchError(f"render/{sample.get('sample_type')}.md: {e} (sample {sample.get('sample_id', '')})") from None
        return _tidy(instr), _tidy(out)
    q = sample.get("question") or sample.get("instruction") or ""
    if sample.get("case"):
        q = f"{sample['case']}\n\n{q}"
    steps = sample.get("reasoning_steps") or sample.get("analysis_steps") or sample.get("steps") or []
    ans = str(sample.get("answer") or sample.get("output") or "")
    out = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    out = f"{out}\n\nAnswer: {ans}" if steps else ans
    return _tidy(q), _tidy(out)


_BLANK_RUN = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Runs of blank lines cut to one, ends stripped (the regex only where there is such a run)."""
    return (_BLANK_RUN.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def _row_encoder() -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False).encode`` without its per-call set-up: strings go
    straight to the C string encoder it uses, anything else to one C encoder built once (no
    circular-reference check: rows come from JSON and hold no cycles). The same bytes."""
    encoder = json.JSONEncoder(ensure_ascii=False)
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return encoder.encode
    scan = c_make_encoder(None, encoder.default, encode_basestring, None, ": ", ", ", False, False, True)

    def encode(o: Any) -> str:
        return encode_basestring(o) if isinstance(o, str) else "".join(scan(o, 0))

    return encode


#: One JSON encoder for every row; the bytes of ``json.dumps(row, ensure_ascii=False)``.
_ROW = _row_encoder()


def _builders(system: str | None) -> dict[str, Any]:
    """Row builder per format: ``(sample, instruction, output) -> row``."""
    sys_row = {"system": system} if system else {}
    return {
        "sharegpt": lambda s, i, r: {"conversations": [{"from": "human", "value": i}, {"from": "gpt", "value": r}], **sys_row},
        "alpaca": lambda s, i, r: {"instruction": i, "input": "", "output": r, **sys_row},
        "openai": lambda s, i, r: {
            "messages": ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": i}, {"role": "assistant", "content": r}]
        },
        "samples": lambda s, i, r: {**s, "instruction": i, "output": r},
    }


def _line_builders(system: str | None) -> dict[str, Any]:
    """JSONL line per format: ``(sample, instruction, output) -> str``, the bytes of ``_ROW`` of
    :func:`_builders`' row. The chat formats hold the same two strings, so each is encoded once and
    the rows are put together around them (a run of millions of samples spends its export there);
    so is the samples row, the sample's own encoding with the two strings added at its end (where
    the sample has no ``instruction`` or ``output`` field of its own, whose place they would take)."""
    samples_row = _builders(system)["samples"]
    js = _ROW(system) if system else ""
    tail = f', "system": {js}}}' if system else "}"
    first = f'{{"role": "system", "content": {js}}}, ' if system else ""

    def chat(s: dict, i: str, r: str) -> dict[str, str]:
        ji, jr = _ROW(i), _ROW(r)
        if s and "instruction" not in s and "output" not in s:
            sample = f'{_ROW(s)[:-1]}, "instruction": {ji}, "output": {jr}}}'
        else:
            sample = _ROW(samples_row(s, i, r))
        return {
            "sharegpt": f'{{"conversations": [{{"from": "human", "value": {ji}}}, {{"from": "gpt", "value": {jr}}}]{tail}',
            "alpaca": f'{{"instruction": {ji}, "input": "", "output": {jr}{tail}',
            "openai": f'{{"messages": [{first}{{"role": "user", "content": {ji}}}, {{"role": "assistant", "content": {jr}}}]}}',
            "samples": sample,
        }

    return chat


@functools.lru_cache(maxsize=8)
def _lines_for(system: str | None) -> Callable[[dict, str, str], dict[str, str]]:
    return _line_builders(system)


def render_block(
    items: Sequence[dict | tuple[str, str, str, str]],
    renders: dict[str, str],
    formats: Sequence[str],
    system: str | None = None,
    hf: bool = False,
) -> tuple[int, dict[str, bytes], list[dict] | None]:
    """Render a block of samples to what each format's file gets.

    Args:
        items: samples in export order: dicts, or the ledger's ``(sample_id, chunk_id,
            sample_type, data JSON)`` rows (:meth:`~prepbench.tools.ledger.RunFolder.accepted_sample_rows`).
        renders: sample type -> render template source (``Skill.renders``).
        formats: the JSONL formats (``sharegpt``, ``alpaca``, ``openai``, ``samples``).
        system: optional system prompt put on every row.
        hf: also return the ShareGPT rows as dicts (for the ``hf`` format).

    Returns:
        ``(n, {format: bytes}, hf_rows)``: the number of samples, each format's lines (UTF-8,
        each ended by ``\\n``; a format is absent when the block is empty) and the ShareGPT
        rows, or None without ``hf``.

    Raises:
        PrepbenchError: a render template error (naming the template and the sample).
        ValueError: a stored row whose data is not JSON.
    """
    lines_of = _lines_for(system)
    sharegpt_row = _builders(system)["sharegpt"] if hf else None
    out: dict[str, list[str]] = {fmt: [] for fmt in formats}
    hf_rows: list[dict] | None = [] if hf else None
    for item in items:
        s = item if isinstance(item, dict) else sample_of_row(item)
        instr, resp = render_pair(s, renders.get(s.get("sample_type")))
        lines = lines_of(s, instr, resp)
        for fmt, rows in out.items():
            rows.append(lines[fmt])
        if sharegpt_row is not None:
            hf_rows.append(sharegpt_row(s, instr, resp))
    blocks = {}
    for fmt, rows in out.items():
        if rows:
            rows.append("")
            blocks[fmt] = "\n".join(rows).encode("utf-8")
    return len(items), blocks, hf_rows
