"""Heading-aware Markdown chunking with stable chunk ids.

A document is cut at its ATX headings into sections (each keeps its heading path and its
1-based line span). Sections shorter than ``min_chars`` are merged with the following
sections of the same parent heading (in the spirit of the Data-Construction-Skill:
merge sections under ~1200 chars, cap ~3000); sections longer than ``max_chars`` are
split with langchain-text-splitters' ``RecursiveCharacterTextSplitter`` (paragraphs,
then lines, then sentences), with optional overlap.

Chunk ids are ``short_id(doc content hash, rel_path, index, text hash)``, so re-chunking
the same corpus with the same parameters gives the same ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from .hashing import sha256_text, short_id
from .ingest import Document

HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
FENCE_RE = re.compile(r"^\s*(```|~~~)")

DEFAULT_MIN_CHARS = 1200
DEFAULT_MAX_CHARS = 3000
DEFAULT_OVERLAP = 0


@dataclass
class Chunk:
    """A piece of a document that an agent turns into samples.

    Attributes:
        chunk_id: stable 16-hex id (document hash + path + position + text hash).
        doc_id: id of the :class:`~prepbench.tools.ingest.Document`.
        doc_path: the document's path relative to the corpus root.
        index: 0-based position of the chunk in its document.
        heading_path: headings from the top level down to the chunk's first section.
        start_line: first line of the chunk in the document (1-based, inclusive).
        end_line: last line (1-based, inclusive).
        text: the chunk's Markdown (headings included).
    """

    chunk_id: str
    doc_id: str
    doc_path: str
    index: int
    heading_path: list[str]
    start_line: int
    end_line: int
    text: str
    headings: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return len(self.text)

    @property
    def text_hash(self) -> str:
        return sha256_text(self.text)[:16]

    @property
    def title(self) -> str:
        """The most specific heading, or the document path when there is none."""
        return self.heading_path[-1] if self.heading_path else self.doc_path


@dataclass
class Section:
    heading_path: list[str]
    level: int
    start_line: int  # 1-based, inclusive
    end_line: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip("\n")

    @property
    def body_chars(self) -> int:
        return len(self.text)


def clean_heading(text: str) -> str:
    """Heading text without emphasis markers and trailing anchors."""
    text = re.sub(r"\{#[^}]*\}\s*$", "", text)
    text = re.sub(r"[*_`]+", "", text)
    return text.strip()


def split_sections(text: str) -> list[Section]:
    """Cut Markdown into sections at ATX headings outside fenced code blocks."""
    lines = text.split("\n")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    cur = Section(heading_path=[], level=0, start_line=1, end_line=0, lines=[])
    in_fence = False
    for i, line in enumerate(lines, start=1):
        if FENCE_RE.match(line):
            in_fence = not in_fence
        m = None if in_fence else HEADING_RE.match(line)
        if m:
            if cur.lines and "".join(cur.lines).strip():
                cur.end_line = i - 1
                sections.append(cur)
            level = len(m.group(1))
            title = clean_heading(m.group(2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            cur = Section(heading_path=[t for _, t in stack], level=level, start_line=i, end_line=i, lines=[line])
        else:
            cur.lines.append(line)
    if cur.lines and "".join(cur.lines).strip():
        cur.end_line = len(lines)
        sections.append(cur)
    # trim leading/trailing blank lines so spans point at text
    for s in sections:
        while s.lines and not s.lines[0].strip():
            s.lines.pop(0)
            s.start_line += 1
        while s.lines and not s.lines[-1].strip():
            s.lines.pop()
            s.end_line -= 1
    return [s for s in sections if s.lines]


def _parent(path: list[str], depth: int) -> tuple[str, ...]:
    return tuple(path[:depth])


def _merge_sections(sections: list[Section], min_chars: int, max_chars: int, merge_depth: int) -> list[list[Section]]:
    groups: list[list[Section]] = []
    cur: list[Section] = []
    cur_chars = 0
    for s in sections:
        if cur:
            head = cur[0].heading_path
            same_parent = _parent(head, merge_depth) == _parent(s.heading_path, merge_depth) or (
                bool(head) and s.heading_path[: len(head)] == head  # s lies inside the group's first section
            )
            fits = cur_chars + 2 + s.body_chars <= max_chars
            if cur_chars < min_chars and same_parent and fits:
                cur.append(s)
                cur_chars += 2 + s.body_chars
                continue
            groups.append(cur)
        cur = [s]
        cur_chars = s.body_chars
    if cur:
        groups.append(cur)
    # a trailing small group joins its predecessor when they share a parent and fit
    if len(groups) >= 2:
        last, prev = groups[-1], groups[-2]
        last_chars = sum(s.body_chars + 2 for s in last)
        prev_chars = sum(s.body_chars + 2 for s in prev)
        if (
            last_chars < min_chars
            and _parent(prev[0].heading_path, merge_depth) == _parent(last[0].heading_path, merge_depth)
            and prev_chars + last_chars <= max_chars
        ):
            groups[-2] = prev + last
            groups.pop()
    return groups


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def chunk_document(
    doc: Document,
    min_chars: int = DEFAULT_MIN_CHARS,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
    merge_depth: int = 2,
) -> list[Chunk]:
    """Split one document into chunks.

    Args:
        doc: the ingested document (Markdown text).
        min_chars: sections shorter than this are merged with following siblings (chars).
        max_chars: no chunk is longer than this (chars); longer sections are split.
        overlap: characters shared between consecutive pieces of a split section.
        merge_depth: sections merge only when their first ``merge_depth`` headings agree.

    Returns:
        Chunks in document order with ``index`` 0..n-1.

    Raises:
        ValueError: ``min_chars``/``max_chars``/``overlap`` inconsistent.
    """
    if max_chars <= 0 or min_chars < 0 or min_chars > max_chars:
        raise ValueError(f"chunk sizes must satisfy 0 <= min_chars <= max_chars (got {min_chars}, {max_chars})")
    if overlap < 0 or overlap >= max_chars:
        raise ValueError(f"overlap must be in [0, max_chars) (got {overlap})")
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # imported when needed (CLI start-up)

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_chars,
        chunk_overlap=overlap,
        separators=["\n\n", "\n", ". ", " ", ""],
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=False,
    )
    pieces: list[tuple[list[str], list[str], int, int, str]] = []
    for group in _merge_sections(split_sections(doc.text), min_chars, max_chars, merge_depth):
        first = group[0]
        headings = [s.heading_path[-1] for s in group if s.heading_path and s.level > 0]
        text = "\n\n".join(s.text for s in group)
        if len(text) <= max_chars:
            pieces.append((first.heading_path, headings, first.start_line, group[-1].end_line, text))
            continue
        # Oversized: split each section's own lines to keep exact line spans.
        for s in group:
            body = "\n".join(s.lines)
            if len(body) <= max_chars:
                pieces.append((s.heading_path, headings, s.start_line, s.end_line, body))
                continue
            for d in splitter.create_documents([body]):
                start = d.metadata["start_index"]
                piece = d.page_content
                stripped = piece.strip()
                if not stripped:
                    continue
                lead = len(piece) - len(piece.lstrip())
                s_line = s.start_line + _line_of(body, start + lead)
                e_line = s.start_line + _line_of(body, start + lead + len(stripped) - 1)
                pieces.append((s.heading_path, headings, s_line, e_line, stripped))
    chunks: list[Chunk] = []
    for index, (hpath, headings, s_line, e_line, text) in enumerate(pieces):
        text_hash = sha256_text(text)[:16]
        chunks.append(
            Chunk(
                chunk_id=short_id(doc.content_hash, doc.rel_path, index, text_hash),
                doc_id=doc.doc_id,
                doc_path=doc.rel_path,
                index=index,
                heading_path=list(hpath),
                start_line=s_line,
                end_line=e_line,
                text=text,
                headings=headings,
            )
        )
    return chunks


def chunk_corpus(docs: list[Document], **kwargs) -> Iterator[Chunk]:
    """Chunk every document in order (see :func:`chunk_document` for ``kwargs``)."""
    for doc in docs:
        yield from chunk_document(doc, **kwargs)
