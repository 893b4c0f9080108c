"""Ingest: corpus files -> :class:`Document` objects with content hashes.

A corpus is a folder (searched recursively) or a list of files. Supported formats:
Markdown (``.md``, ``.markdown``), plain text (``.txt``) and PDF (``.pdf``). PDF goes
through MinerU when it is installed and selected (``pdf_engine="mineru"``), else
PyMuPDF's Markdown conversion (``pymupdf4llm``, shipped by ``pymupdf>=2.0``).

Files that cannot be decoded inside an otherwise good corpus are returned as
:class:`SkippedFile` with a reason; a corpus with no readable document at all raises
:class:`~prepbench.tools.errors.CorpusError` naming the file and the problem.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .errors import CorpusError
from .hashing import sha256_bytes

MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES

#: Licence and provenance files that are never corpus content (matched on the file name
#: and on the path relative to the corpus root).
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "SOURCE.md",
    "SOURCES.md",
    "LICENSE*",
    "LICENCE*",
    "COPYING*",
    "NOTICE*",
    "CHANGELOG*",
    "CONTRIBUTING*",
    "CODE_OF_CONDUCT*",
    ".*",
    "_tools/*",
)

#: Longest line accepted in a text document (characters). Longer lines are not prose:
#: minified data, base64 blobs or a broken conversion.
MAX_LINE_CHARS = 100_000
#: Largest text document accepted (bytes).
MAX_FILE_BYTES = 50_000_000


@dataclass
class Document:
    """One ingested document.

    Attributes:
        doc_id: stable id, the first 16 hex chars of SHA-256 over ``rel_path`` and ``content_hash``.
        path: absolute path of the source file.
        rel_path: path relative to the corpus root (POSIX separators); the file name for single files.
        format: ``"markdown"``, ``"text"`` or ``"pdf"``.
        content_hash: hex SHA-256 of the raw file bytes.
        text: the document as Markdown (PDF converted, text as is).
        converter: how the text was obtained (``"raw"``, ``"pymupdf4llm"``, ``"mineru"``).
    """

    doc_id: str
    path: Path
    rel_path: str
    format: str
    content_hash: str
    text: str
    converter: str = "raw"

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass
class SkippedFile:
    """A corpus file that was not ingested, with a one-line reason."""

    rel_path: str
    reason: str


@dataclass
class Corpus:
    """The result of :func:`ingest_corpus`: documents in path order plus skipped files."""

    root: Path
    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def hashes(self) -> dict[str, str]:
        """``rel_path -> content_hash`` for every ingested document."""
        return {d.rel_path: d.content_hash for d in self.documents}


def _excluded(rel_path: str, patterns: Sequence[str]) -> bool:
    name = rel_path.rsplit("/", 1)[-1]
    parts = rel_path.split("/")
    for pat in patterns:
        if fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(rel_path, pat):
            return True
        # a pattern like ".*" also excludes hidden folders
        if any(fnmatch.fnmatch(p, pat) for p in parts[:-1]) and "/" not in pat and pat.startswith("."):
            return True
    return False


def discover_files(
    paths: Sequence[str | Path],
    exclude: Sequence[str] = (),
    use_default_excludes: bool = True,
    follow_symlinks: bool = False,
) -> tuple[Path, list[tuple[Path, str]], list[SkippedFile]]:
    """Resolve corpus paths into ``(root, [(file, rel_path), ...], skipped)`` sorted by ``rel_path``.

    A folder is searched recursively. A symbolic link (to a file or a folder) that leads out
    of the corpus root is not followed unless ``follow_symlinks``: it is returned in
    ``skipped`` with its reason, so no byte of it is read. Links that stay inside the root are
    read once, under the path they resolve to. A file named explicitly is always read.

    Raises:
        CorpusError: a path does not exist, or no supported file is found.
    """
    if not paths:
        raise CorpusError("no corpus given: pass a folder or files with --corpus")
    patterns = list(exclude) + (list(DEFAULT_EXCLUDES) if use_default_excludes else [])
    found: list[tuple[Path, str]] = []
    skipped: list[SkippedFile] = []
    resolved = [Path(p).expanduser() for p in paths]
    for p in resolved:
        if not p.exists():
            raise CorpusError(f"{p}: corpus path does not exist")
    root = resolved[0].resolve() if (len(resolved) == 1 and resolved[0].is_dir()) else _common_root(resolved)
    for p in resolved:
        if p.is_dir():
            for f, rel, outside in _walk(p, root, follow_symlinks):
                if _excluded(rel, patterns):
                    continue
                if outside and not follow_symlinks:
                    if f.is_dir() or f.suffix.lower() in SUPPORTED_SUFFIXES:
                        skipped.append(SkippedFile(rel, _outside_reason(rel, f)))
                elif f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append((f.resolve(), rel))
        else:
            if p.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise CorpusError(f"{p}: unsupported file type '{p.suffix or '(none)'}' (supported: .md, .markdown, .txt, .pdf)")
            rel = p.resolve().relative_to(root).as_posix() if _is_under(p, root) else p.name
            found.append((p.resolve(), rel))
    seen: set[str] = set()
    unique: list[tuple[Path, str]] = []
    for f, rel in sorted(found, key=lambda x: x[1]):
        if rel not in seen:
            seen.add(rel)
            unique.append((f, rel))
    if not unique:
        where = ", ".join(str(p) for p in resolved)
        extra = f" ({len(skipped)} link(s) out of the corpus not followed: --follow-symlinks reads them)" if skipped else ""
        raise CorpusError(f"{where}: no corpus files found (looked for .md, .markdown, .txt, .pdf){extra}")
    return root, unique, sorted(skipped, key=lambda s: s.rel_path)


def _walk(top: Path, root: Path, follow: bool) -> Iterable[tuple[Path, str, bool]]:
    """``(path, rel_path, leads_out_of_root)`` for every file under ``top``, and for every
    symlinked folder that leads out of the root when links are not followed. ``rel_path`` is
    the resolved path relative to the root; for a link that leads out, the link's own path.
    Followed folder links are entered once (a link cycle ends)."""
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=follow):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        here = Path(dirpath)
        for name in sorted(dirnames):
            d = here / name
            if d.is_symlink() and not _is_under(d, root) and not follow:
                yield d, _lexical_rel(d, top, root), True
        dirnames.sort()
        for name in sorted(filenames):
            f = here / name
            if not f.is_file() and not f.is_symlink():
                continue
            if _is_under(f, root):
                yield f, f.resolve().relative_to(root).as_posix(), False
            elif f.exists():  # a link out of the corpus (a dangling one is no file at all)
                yield f, _lexical_rel(f, top, root), True


def _lexical_rel(p: Path, top: Path, root: Path) -> str:
    """``p``'s path relative to the root, without resolving links (the link's own place)."""
    base = top.resolve() / p.relative_to(top)
    try:
        return base.relative_to(root).as_posix()
    except ValueError:
        return p.name


def _outside_reason(rel: str, link: Path) -> str:
    kind = "folder" if link.is_dir() else "file"
    return (
        f"{rel}: symbolic link to a {kind} outside the corpus ({os.path.realpath(link)}); "
        "not followed (--follow-symlinks reads it)"
    )


def _is_under(f: Path, root: Path) -> bool:
    try:
        f.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _common_root(paths: Sequence[Path]) -> Path:
    parents = [p.resolve() if p.is_dir() else p.resolve().parent for p in paths]
    common = Path(*Path(parents[0]).parts)
    for par in parents[1:]:
        while not _is_under(par, common):
            common = common.parent
    return common


def decode_text(data: bytes, rel_path: str) -> str:
    """Decode a Markdown/text file's bytes, checking it is real text.

    Raises:
        ValueError: with a one-line reason naming the line (zero-byte file, binary content,
            invalid UTF-8, an over-long line).
    """
    if len(data) == 0:
        raise ValueError(f"{rel_path}: empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{rel_path}: file is {len(data):,} bytes (limit {MAX_FILE_BYTES:,})")
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ValueError(f"{rel_path}: binary content (NUL byte at line {line}), not a text document")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{rel_path}: invalid UTF-8 at line {line} (byte offset {e.start})") from None
    start = 0
    lineno = 1
    n = len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            end = n
        if end - start > MAX_LINE_CHARS:
            raise ValueError(
                f"{rel_path}: line {lineno} is {end - start:,} characters long (limit {MAX_LINE_CHARS:,}); not a prose document"
            )
        start = end + 1
        lineno += 1
    if not text.strip():
        raise ValueError(f"{rel_path}: file has no text (only whitespace)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def mineru_available() -> bool:
    """Whether the MinerU command-line tool (``mineru``) is on PATH."""
    return shutil.which("mineru") is not None


def convert_pdf(path: Path, rel_path: str, engine: str = "auto") -> tuple[str, str]:
    """Convert a PDF to Markdown, returning ``(markdown, converter_name)``.

    ``engine`` is ``"auto"`` (PyMuPDF), ``"pymupdf"`` or ``"mineru"``.

    Raises:
        CorpusError: the selected engine is not installed.
        ValueError: the PDF cannot be opened or yields no text (a per-file reason).
    """
    if engine == "mineru":
        if not mineru_available():
            raise CorpusError(
                f"{rel_path}: --pdf-engine mineru selected but the 'mineru' command is not installed "
                "(pip install 'mineru[core]'), or use --pdf-engine pymupdf"
            )
        with tempfile.TemporaryDirectory(prefix="prepbench-mineru-") as tmp:
            proc = subprocess.run(
                ["mineru", "-p", str(path), "-o", tmp],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["unknown error"]
                raise ValueError(f"{rel_path}: MinerU failed: {last[0]}")
            mds = sorted(Path(tmp).rglob("*.md"))
            if not mds:
                raise ValueError(f"{rel_path}: MinerU produced no Markdown")
            text = mds[0].read_text(encoding="utf-8")
        return text, "mineru"
    if engine not in ("auto", "pymupdf"):
        raise CorpusError(f"unknown --pdf-engine '{engine}' (choose auto, pymupdf or mineru)")
    try:
        import pymupdf4llm  # provided by pymupdf>=2.0
    except ImportError:
        raise CorpusError(f"{rel_path}: PDF ingest needs PyMuPDF (pip install 'prepbench[pdf]' or 'pymupdf>=2.0')") from None
    try:
        text = pymupdf4llm.to_markdown(str(path), show_progress=False)
    except TypeError:
        text = pymupdf4llm.to_markdown(str(path))
    except Exception as e:  # corrupt PDF: a per-file reason, the run goes on
        raise ValueError(f"{rel_path}: cannot read PDF ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not text or not text.strip():
        raise ValueError(f"{rel_path}: PDF has no extractable text (scanned? try --pdf-engine mineru)")
    return text, "pymupdf4llm"


def load_document(path: Path, rel_path: str, pdf_engine: str = "auto") -> Document:
    """Read one file into a :class:`Document`.

    Raises:
        ValueError: a one-line per-file reason (see :func:`decode_text`, :func:`convert_pdf`).
        CorpusError: a problem with the whole setup (missing PDF engine).
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{rel_path}: cannot read file ({e.strerror})") from None
    content_hash = sha256_bytes(data)
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        if len(data) == 0:
            raise ValueError(f"{rel_path}: empty file (0 bytes)")
        if not data.startswith(b"%PDF"):
            raise ValueError(f"{rel_path}: not a PDF file (no %PDF header)")
        text, converter = convert_pdf(path, rel_path, pdf_engine)
        fmt = "pdf"
    else:
        text = decode_text(data, rel_path)
        converter = "raw"
        fmt = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    from .hashing import short_id

    return Document(
        doc_id=short_id(rel_path, content_hash),
        path=path,
        rel_path=rel_path,
        format=fmt,
        content_hash=content_hash,
        text=text,
        converter=converter,
    )


def ingest_corpus(
    paths: Sequence[str | Path] | str | Path,
    exclude: Iterable[str] = (),
    pdf_engine: str = "auto",
    use_default_excludes: bool = True,
    follow_symlinks: bool = False,
) -> Corpus:
    """Ingest a corpus folder or file list.

    Args:
        paths: a folder, a file, or a list of them.
        exclude: extra glob patterns (on the file name or the path relative to the corpus root).
        pdf_engine: ``"auto"``, ``"pymupdf"`` or ``"mineru"``.
        use_default_excludes: also exclude :data:`DEFAULT_EXCLUDES` (licence/provenance files).
        follow_symlinks: read symbolic links that lead out of the corpus root (by default they
            are skipped with their reason, see :func:`discover_files`).

    Returns:
        A :class:`Corpus` with documents sorted by relative path and the skipped files.

    Raises:
        CorpusError: missing path, no supported file, or no readable document at all (the
            message names the file and why, e.g. ``bad.md: invalid UTF-8 at line 3``).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    root, files, outside = discover_files(paths, list(exclude), use_default_excludes, follow_symlinks)
    corpus = Corpus(root=root, skipped=list(outside))
    for f, rel in files:
        try:
            corpus.documents.append(load_document(f, rel, pdf_engine))
        except ValueError as e:
            corpus.skipped.append(SkippedFile(rel_path=rel, reason=str(e)))
    if not corpus.documents:
        first = corpus.skipped[0].reason if corpus.skipped else "no documents"
        if len(files) == 1:
            raise CorpusError(first)
        raise CorpusError(f"no readable document in corpus {root} ({len(files)} files); first: {first}")
    return corpus
