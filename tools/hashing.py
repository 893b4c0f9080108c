"""Content hashes used for stable ids (documents, chunks, samples, skills)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (64 hex chars)."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return sha256_bytes(text.encode("utf-8"))


def short_id(*parts: Any, length: int = 16) -> str:
    """A stable id: the first ``length`` hex chars of SHA-256 over ``parts`` joined by NUL."""
    joined = "\x00".join(str(p) for p in parts)
    return sha256_text(joined)[:length]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace variance, for hashing structured values."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
