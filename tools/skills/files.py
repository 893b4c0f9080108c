"""Reading a skill folder that a stranger may have written: bounded YAML, front matter,
and file lists that never leave the folder.

A skill is data, never code: nothing here executes what it reads, no path outside the
skill folder is read (a symlink that points out is an error), and YAML is bounded in
size and in expanded size, so an alias bomb ("billion laughs") is refused in
milliseconds instead of exhausting memory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from prepbench.tools.errors import SkillError
from prepbench.tools.hashing import sha256_bytes, sha256_text

FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.S)

#: Largest skill text file read (bytes): a skill's files are small hand-written texts.
MAX_FILE_BYTES = 1 << 20
#: Most YAML nodes after expanding aliases: far above any real filters.yaml, far below a bomb.
MAX_YAML_NODES = 100_000
#: Deepest YAML nesting.
MAX_YAML_DEPTH = 64


def read_text(file: Path, root: Path) -> str:
    """The UTF-8 text of a file inside the skill folder ``root``.

    Raises:
        SkillError: the file (or a symlink on its way) leads outside ``root``, is larger
            than :data:`MAX_FILE_BYTES`, or is not UTF-8 text.
    """
    ensure_inside(file, root)
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SkillError(f"{file}: {size} bytes is too large for a skill file (limit {MAX_FILE_BYTES})")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SkillError(f"{file}: not UTF-8 text") from None


def ensure_inside(file: Path, root: Path) -> None:
    """Refuse a path whose real location is outside ``root`` (a symlink out of the skill).

    Raises:
        SkillError: naming the file and where it points.
    """
    real = file.resolve()
    try:
        real.relative_to(root.resolve())
    except ValueError:
        raise SkillError(f"{file}: points outside the skill folder (to {real}); a skill may only read its own files") from None


def list_files(folder: Path, root: Path, suffix: str) -> list[Path]:
    """The files ``folder/*<suffix>`` in name order, each checked to be inside ``root``.

    Returns an empty list when the folder does not exist.

    Raises:
        SkillError: a file or the folder itself points outside ``root``.
    """
    if not folder.is_dir():
        return []
    ensure_inside(folder, root)
    files = sorted(f for f in folder.iterdir() if f.name.endswith(suffix) and not f.name.startswith("."))
    for f in files:
        ensure_inside(f, root)
    return [f for f in files if f.is_file()]


def skill_content_hash(path: Path) -> str:
    """SHA-256 over the sorted relative paths and bytes of every file in the skill folder
    (symlinks are not followed: a link out of the folder is refused when it is read)."""
    parts = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            f = Path(dirpath) / name
            if name.startswith(".") or f.is_symlink():
                continue
            parts.append(f.relative_to(path).as_posix() + "\x00" + sha256_bytes(f.read_bytes()))
    return sha256_text("\n".join(sorted(parts)))


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int, file: Path) -> int:
    """Nodes under ``node`` with every alias expanded (memoised, so a bomb costs little to measure)."""
    if depth > MAX_YAML_DEPTH:
        raise SkillError(f"{file}: line {node.start_mark.line + 1}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_size(c, memo, depth + 1, file) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_size(k, memo, depth + 1, file) + _expanded_size(v, memo, depth + 1, file) for k, v in node.value)
    else:
        n = 1
    memo[key] = n
    return n


def load_yaml(text: str, file: Path, line_offset: int = 0) -> Any:
    """Parse YAML text from a skill (safe loader: plain data only), bounded in size and expansion.

    Args:
        text: the YAML source.
        file: the file it came from (for messages).
        line_offset: added to line numbers (front matter starts after the first ``---``).

    Raises:
        SkillError: invalid YAML (with its line), or a document that expands beyond
            :data:`MAX_YAML_NODES` nodes or :data:`MAX_YAML_DEPTH` levels.
    """
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise SkillError(f"{file}: YAML larger than {MAX_FILE_BYTES} bytes")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, 0, file)
        if size > MAX_YAML_NODES:
            raise SkillError(
                f"{file}: YAML expands to more than {MAX_YAML_NODES} nodes (an alias bomb?); write the values out instead"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1 + line_offset}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SkillError(f"{file}:{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def read_yaml(file: Path, root: Path) -> Any:
    """A skill's YAML file (``filters.yaml``, ``coverage.yaml``) as plain data; see :func:`load_yaml`."""
    return load_yaml(read_text(file, root), file)


def parse_front_matter(file: Path, root: Path) -> tuple[dict, str]:
    """Split SKILL.md into ``(front matter dict, Markdown body)``.

    Raises:
        SkillError: no front matter, invalid or unbounded YAML (with line), or not a mapping.
    """
    text = read_text(file, root)
    m = FRONT_MATTER_RE.match(text)
    if not m:
        raise SkillError(f"{file}: missing YAML front matter (the file must start with '---')")
    try:
        meta = load_yaml(m.group(1), file, line_offset=1)
    except SkillError as e:
        raise SkillError(str(e).replace("invalid YAML:", "invalid YAML front matter:", 1)) from None
    if not isinstance(meta, dict):
        raise SkillError(f"{file}: front matter must be a YAML mapping")
    return meta, m.group(2)
