"""Dataset readers for scoring: any SFT dataset -> a list of :class:`ScoredSample`.

Supported inputs (auto-detected where unambiguous, else pass ``fmt``):

``sharegpt``  JSONL/JSON rows ``{"conversations": [{"from": "human"|"gpt"|..., "value": ...}], "system"?}``
``openai``    JSONL/JSON rows ``{"messages": [{"role": "user"|"assistant"|..., "content": ...}]}``
``alpaca``    JSONL/JSON rows ``{"instruction", "input"?, "output", "system"?, "history"?}``
``fields``    plain JSONL/JSON with a field mapping, e.g. Dolly ``instruction=instruction+context,
              response=response`` or GSM8K ``instruction=question,response=answer``
``run``       a prepbench run folder: accepted samples from its ledger through
              :class:`~prepbench.tools.ledger.RunFolder` (rendered by the run's skill, as the
              export renders them); a folder with only ``export/sharegpt.jsonl``, from that file
``hf``        a Hugging Face ``datasets`` folder written by ``save_to_disk``; its rows are read
              with the same row formats as above

One sample -> one text: the whole conversation (every user and assistant turn, system prompt
excluded) joined by blank lines, as DataPrep-Bench (§4) embeds a sample for DAS.
Bad input raises :class:`~prepbench.tools.errors.PrepbenchError` naming the file and line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from prepbench.tools.errors import PrepbenchError
from prepbench.tools.jsonfile import iter_json_records

FORMATS = ("sharegpt", "openai", "alpaca", "fields", "run", "hf")
TURN_SEPARATOR = "\n\n"

_USER_ROLES = {"human", "user", "instruction", "prompt"}
_ASSISTANT_ROLES = {"gpt", "assistant", "model", "bot", "chatgpt", "response"}
_SYSTEM_ROLES = {"system"}

# field mappings detected automatically from a row's keys (first match wins; checked in order)
FIELD_PRESETS: dict[str, dict[str, list[str]]] = {
    "dolly": {"instruction": ["instruction", "context"], "response": ["response"]},
    "math": {"instruction": ["problem"], "response": ["solution"]},
    "pubmedqa": {"instruction": ["QUESTION", "CONTEXTS"], "response": ["LONG_ANSWER"]},
    "medqa": {"instruction": ["question", "options"], "response": ["answer"]},
    "qa": {"instruction": ["question"], "response": ["answer"]},
    "prompt_response": {"instruction": ["prompt"], "response": ["response"]},
}
_PRESET_KEYS = {
    "dolly": {"instruction", "context", "response"},
    "math": {"problem", "solution"},
    "pubmedqa": {"QUESTION", "CONTEXTS", "LONG_ANSWER"},
    "medqa": {"question", "options", "answer"},
    "qa": {"question", "answer"},
    "prompt_response": {"prompt", "response"},
}


@dataclass
class ScoredSample:
    """One SFT sample as the scorers see it.

    Attributes:
        id: a stable id (the row's id field, else ``<file>:<line>``).
        turns: ``[(role, text), ...]`` with role ``user`` or ``assistant`` (system excluded).
        system: the system prompt, if any (not part of :attr:`text`).
    """

    id: str
    turns: list[tuple[str, str]]
    system: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The whole conversation (user + assistant turns) joined by blank lines."""
        return TURN_SEPARATOR.join(t for _, t in self.turns if t)

    @property
    def instruction(self) -> str:
        """The user turns joined (for a single-turn sample: the instruction + input)."""
        return TURN_SEPARATOR.join(t for r, t in self.turns if r == "user" and t)

    @property
    def response(self) -> str:
        """The assistant turns joined (for a single-turn sample: the answer)."""
        return TURN_SEPARATOR.join(t for r, t in self.turns if r == "assistant" and t)


def parse_field_mapping(spec: str | Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    """Parse ``"instruction=question+context,response=answer"`` into ``{"instruction": [...], ...}``.

    Keys must be ``instruction`` and ``response`` (``system`` optional); several source fields
    joined by ``+`` are concatenated with blank lines.

    Raises:
        PrepbenchError: malformed spec or missing ``instruction``/``response``.
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        out = {k: ([v] if isinstance(v, str) else list(v)) for k, v in spec.items()}
    else:
        out = {}
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise PrepbenchError(f"--fields {spec!r}: expected key=field[+field], got {part!r}")
            k, v = part.split("=", 1)
            out[k.strip()] = [f.strip() for f in v.split("+") if f.strip()]
    bad = set(out) - {"instruction", "response", "system", "id"}
    if bad:
        raise PrepbenchError(f"--fields {spec!r}: unknown key(s) {sorted(bad)}; use instruction, response, system, id")
    if not out.get("instruction") or not out.get("response"):
        raise PrepbenchError(f"--fields {spec!r}: needs both instruction=... and response=...")
    return out


def _flatten(value: Any) -> str:
    """A field value as text: lists joined by newlines, dicts as ``key: value`` lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "\n".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "\n".join(_flatten(v) for v in value)
    return str(value)


def detect_row_format(row: Mapping[str, Any]) -> tuple[str, dict[str, list[str]] | None]:
    """The row format of one record: ``(fmt, mapping)``; ``mapping`` only for ``fields``.

    Raises:
        ValueError: no known format matches (the caller adds file and line).
    """
    if isinstance(row.get("conversations"), list):
        return "sharegpt", None
    if isinstance(row.get("messages"), list):
        return "openai", None
    if "instruction" in row and "output" in row:
        return "alpaca", None
    keys = set(row)
    for name, need in _PRESET_KEYS.items():
        if need <= keys:
            return "fields", FIELD_PRESETS[name]
    raise ValueError(
        f"cannot tell the format from the fields {sorted(keys)[:12]}; pass --format, or --fields "
        "instruction=FIELD[+FIELD],response=FIELD"
    )


def _turns_sharegpt(row: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str]:
    conv = row.get("conversations")
    if not isinstance(conv, list):
        raise ValueError("ShareGPT row has no 'conversations' list")
    turns, system = [], _flatten(row.get("system"))
    for i, m in enumerate(conv):
        if not isinstance(m, Mapping):
            raise ValueError(f"conversations[{i}] is not an object")
        role = str(m.get("from", m.get("role", ""))).lower()
        text = _flatten(m.get("value", m.get("content")))
        if role in _SYSTEM_ROLES:
            system = system or text
        elif role in _USER_ROLES or role in {"observation", "tool"}:
            turns.append(("user", text))
        elif role in _ASSISTANT_ROLES or role == "function_call":
            turns.append(("assistant", text))
        else:
            raise ValueError(f"conversations[{i}].from = {role!r} is not a known role")
    return turns, system


def _turns_openai(row: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str]:
    msgs = row.get("messages")
    if not isinstance(msgs, list):
        raise ValueError("OpenAI-chat row has no 'messages' list")
    turns, system = [], ""
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping) or "role" not in m:
            raise ValueError(f"messages[{i}] has no 'role'")
        role = str(m["role"]).lower()
        content = m.get("content")
        if isinstance(content, list):  # content parts
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        text = _flatten(content)
        if role in _SYSTEM_ROLES or role == "developer":
            system = system or text
        elif role in _USER_ROLES or role == "tool":
            turns.append(("user", text))
        elif role in _ASSISTANT_ROLES:
            turns.append(("assistant", text))
        else:
            raise ValueError(f"messages[{i}].role = {role!r} is not a known role")
    return turns, system


def _turns_alpaca(row: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str]:
    if "instruction" not in row or "output" not in row:
        raise ValueError("Alpaca row needs 'instruction' and 'output'")
    turns: list[tuple[str, str]] = []
    for pair in row.get("history") or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            turns += [("user", _flatten(pair[0])), ("assistant", _flatten(pair[1]))]
    inst = _flatten(row["instruction"])
    inp = _flatten(row.get("input"))
    turns += [("user", inst + ("\n" + inp if inp.strip() else "")), ("assistant", _flatten(row["output"]))]
    return turns, _flatten(row.get("system"))


def _turns_fields(row: Mapping[str, Any], mapping: Mapping[str, list[str]]) -> tuple[list[tuple[str, str]], str]:
    def get(key: str) -> str:
        parts = []
        for f in mapping.get(key, []):
            if f not in row:
                raise ValueError(f"field {f!r} (mapped to {key}) is missing")
            t = _flatten(row[f])
            if t.strip():
                parts.append(t)
        return TURN_SEPARATOR.join(parts)

    return [("user", get("instruction")), ("assistant", get("response"))], (get("system") if "system" in mapping else "")


def row_to_sample(
    row: Mapping[str, Any], fmt: str | None, mapping: Mapping[str, list[str]] | None, default_id: str
) -> ScoredSample:
    """Convert one record to a :class:`ScoredSample`.

    Raises:
        ValueError: the record does not fit the format (the caller adds file and line).
    """
    if not isinstance(row, Mapping):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    if mapping is not None:
        fmt = "fields"
    if fmt is None:
        fmt, mapping = detect_row_format(row)
    if fmt == "sharegpt":
        turns, system = _turns_sharegpt(row)
    elif fmt == "openai":
        turns, system = _turns_openai(row)
    elif fmt == "alpaca":
        turns, system = _turns_alpaca(row)
    elif fmt == "fields":
        if mapping is None:
            raise ValueError("format 'fields' needs a field mapping (--fields instruction=...,response=...)")
        turns, system = _turns_fields(row, mapping)
    else:
        raise ValueError(f"unknown row format {fmt!r}")
    if not any(t.strip() for _, t in turns):
        raise ValueError("sample has no text")
    sid = None
    if mapping and mapping.get("id"):
        sid = row.get(mapping["id"][0])
    for k in ("id", "sample_id", "idx", "index", "pmid", "realidx"):
        if sid is None and k in row and isinstance(row[k], (str, int)):
            sid = row[k]
    return ScoredSample(id=str(sid) if sid is not None else default_id, turns=turns, system=system)


def _samples_from_records(
    records: Iterable[tuple[int, Any]], where: str, fmt: str | None, mapping: Mapping[str, list[str]] | None
) -> list[ScoredSample]:
    out: list[ScoredSample] = []
    detected: tuple[str, Any] | None = None
    for lineno, rec in records:
        f, m = fmt, mapping
        if f is None and m is None:
            if detected is None:
                try:
                    detected = detect_row_format(rec) if isinstance(rec, Mapping) else ("?", None)
                except ValueError as e:
                    raise PrepbenchError(f"{where}:{lineno}: {e}") from None
            f, m = detected
        try:
            out.append(row_to_sample(rec, f, m, f"{Path(where).name}:{lineno}"))
        except ValueError as e:
            raise PrepbenchError(f"{where}:{lineno}: {e}") from None
    if not out:
        raise PrepbenchError(f"{where}: no samples found")
    return out


def _read_run(folder: Path) -> list[ScoredSample]:
    """A run folder: its ledger is the one source of truth; a folder with only an export (a
    copied dataset) is read from ``export/sharegpt.jsonl``."""
    if (folder / "ledger.sqlite").is_file():
        return _read_ledger(folder)
    exp = folder / "export" / "sharegpt.jsonl"
    return _samples_from_records(iter_json_records(exp), str(exp), "sharegpt", None)


def _read_ledger(folder: Path) -> list[ScoredSample]:
    """Accepted samples through :class:`~prepbench.tools.ledger.RunFolder`, rendered by the run's
    skill as the export renders them; without a loadable skill, question/answer (or
    instruction[+input]/output) fields."""
    from prepbench.evaluation.run_samples import accepted_samples
    from prepbench.tools.export_rows import render_pair
    from prepbench.tools.skills import load_run_skill

    ledger = folder / "ledger.sqlite"
    config, samples = accepted_samples(folder)
    skill = load_run_skill(config)
    out = []
    for i, d in enumerate(samples, 1):
        sid, stype = d["sample_id"], d.get("sample_type")
        if skill is not None:
            inst, resp = render_pair(d, skill.renders.get(stype))
        else:
            inst = d.get("instruction") or d.get("question")
            resp = d.get("output") or d.get("answer") or d.get("response")
            if d.get("input") and inst:
                inst = f"{inst}\n{d['input']}"
        if not inst or not resp:
            raise PrepbenchError(f"{ledger}: samples row {i} ({sid}, {stype}): no question/answer or instruction/output fields")
        out.append(ScoredSample(id=str(sid), turns=[("user", _flatten(inst)), ("assistant", _flatten(resp))]))
    if not out:
        raise PrepbenchError(f"{ledger}: no accepted samples")
    return out


def _read_hf(folder: Path, fmt: str | None, mapping, split: str | None) -> list[ScoredSample]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(folder))
    except Exception as e:  # datasets raises FileNotFoundError/ValueError for a bad folder
        raise PrepbenchError(f"{folder}: not a Hugging Face datasets folder ({type(e).__name__}: {e})") from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        pick = split or ("train" if "train" in ds else names[0] if len(names) == 1 else None)
        if pick is None or pick not in ds:
            raise PrepbenchError(f"{folder}: choose a split with --split (one of {names})")
        ds = ds[pick]
    return _samples_from_records(((i + 1, r) for i, r in enumerate(ds)), str(folder), fmt if fmt != "hf" else None, mapping)


def read_samples(
    path: str | Path,
    fmt: str | None = None,
    fields: str | Mapping[str, Any] | None = None,
    split: str | None = None,
) -> list[ScoredSample]:
    """Read an SFT dataset as a list of :class:`ScoredSample` (order of the file).

    Args:
        path: a JSONL/JSON file, a prepbench run folder, or a ``datasets`` folder.
        fmt: one of :data:`FORMATS`; ``None`` auto-detects from the path and the first row.
        fields: a field mapping (see :func:`parse_field_mapping`); implies ``fmt="fields"``.
        split: the split of a ``DatasetDict`` folder (default ``train``).

    Raises:
        PrepbenchError: missing path, undetectable format, or a bad record (names file and line).
    """
    p = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise PrepbenchError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    mapping = parse_field_mapping(fields)
    if not p.exists():
        raise PrepbenchError(f"{p}: no such file or folder")
    if p.is_dir():
        if fmt == "run" or (fmt is None and (p / "ledger.sqlite").is_file()):
            if not (p / "ledger.sqlite").is_file() and not (p / "export" / "sharegpt.jsonl").is_file():
                raise PrepbenchError(f"{p}: not a prepbench run folder (no ledger.sqlite)")
            return _read_run(p)
        if fmt in (None, "hf") and any((p / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return _read_hf(p, None, mapping, split)
        if fmt not in (None, "hf", "run"):
            return _read_hf(p, fmt, mapping, split)
        raise PrepbenchError(f"{p}: a folder that is neither a prepbench run (ledger.sqlite) nor a datasets folder")
    if fmt in ("run", "hf"):
        raise PrepbenchError(f"{p}: format {fmt!r} needs a folder")
    return _samples_from_records(iter_json_records(p), str(p), fmt, mapping)


def read_seeds(path: str | Path, fmt: str | None = None, fields: str | Mapping[str, Any] | None = None) -> list:
    """A seed set for the generation modes (``prepbench generate --seeds``), read like any dataset.

    Each record becomes a :class:`~prepbench.tools.slots.Seed`: its user turns are the instruction
    (Dolly's context and Alpaca's input included), its assistant turns the response.

    Raises:
        PrepbenchError: as :func:`read_samples` (names file and line).
    """
    from prepbench.tools.slots import Seed

    name = Path(path).name
    return [
        Seed(id=s.id if ":" in s.id else f"{name}#{s.id}", instruction=s.instruction, response=s.response)
        for s in read_samples(path, fmt, fields)
    ]


def subsample(items: list, n: int | None, seed: int = 42) -> list:
    """At most ``n`` items drawn without replacement with ``random.Random(seed)``, in original order.

    ``n=None`` or ``n >= len(items)`` returns ``items`` unchanged.
    """
    if n is None or n >= len(items):
        return list(items)
    idx = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in idx]
