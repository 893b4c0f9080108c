"""The dataset card: ``README.md`` in the Hugging Face dataset-card format, written with every export.

A dataset card is Markdown with a YAML metadata block between ``---`` lines
(https://huggingface.co/docs/hub/datasets-cards): ``license``, ``task_categories``,
``size_categories``, ``pretty_name``, ``tags`` and ``configs`` (which file the Hub's viewer and
``datasets.load_dataset`` read). The body says how the data was made, from the run's ledger:
prepbench's version, the skill (name, version, content hash), the corpus files with their
SHA-256, model and agent, dates, chunks kept and skipped by reason, samples accepted and
rejected by rule, decontamination, and cost.

The licence comes from the corpus's ``SOURCE.md`` (its ``License:``/``Licence:`` entry, the
first licence named there): a Creative Commons, GFDL, MIT or Apache licence maps to its Hub
identifier; anything else is ``other`` with the text kept in the body.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import yaml

from prepbench.tools import __version__

SOURCE_FILES = ("SOURCE.md", "SOURCES.md")
#: size buckets of the Hub's ``size_categories`` (upper bounds, exclusive)
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))
_ENTRY = re.compile(r"^\s*[-*]\s+\*\*([^*:]+)(?::\*\*|\*\*:)\s*(.*)$")  # - **Key:** value, or - **Key**: value
_LICENCES = (
    (re.compile(r"\bCC[ -]?BY((?:[ -](?:NC|SA|ND))*)[ -](\d\.\d)\b", re.IGNORECASE), None),
    (re.compile(r"\bCC0[ -]1\.0\b", re.IGNORECASE), "cc0-1.0"),
    (re.compile(r"\bGNU Free Documentation License\b|\bGFDL\b", re.IGNORECASE), "gfdl"),
    (re.compile(r"\bApache(?: License)?[ ,-]*(?:Version )?2\.0\b", re.IGNORECASE), "apache-2.0"),
    (re.compile(r"\bMIT License\b|\(MIT\)|^\s*MIT\b", re.IGNORECASE), "mit"),
)


def licence_of(text: str) -> str | None:
    """The Hub licence identifier of the first licence a licence text names (``cc-by-4.0``,
    ``cc-by-sa-4.0``, ``cc0-1.0``, ``gfdl``, ``apache-2.0``, ``mit``), else None."""
    found: list[tuple[int, str]] = []
    for pattern, ident in _LICENCES:
        m = pattern.search(text)
        if m:
            if ident is None:
                parts = [p.lower() for p in re.split(r"[ -]", m.group(1)) if p]
                ident = "-".join(["cc-by", *parts, m.group(2)])
            found.append((m.start(), ident))
    return min(found)[1] if found else None


def source_entries(text: str) -> dict[str, str]:
    """The ``- **Key:** value`` (or ``- **Key**: value``, the shared datasets' layout) items of a ``SOURCE.md`` (keys lower-cased, ``licence`` spelled
    ``license``), each with its indented continuation lines joined."""
    out: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m:
            key = m.group(1).strip().lower().replace("licence", "license")
            out.setdefault(key, m.group(2).strip())
        elif key and line.startswith((" ", "\t")) and line.strip():
            out[key] += " " + line.strip()
        else:
            key = None
    return {k: v.replace("**", "") for k, v in out.items()}


def read_source(path: Path) -> dict[str, Any]:
    """What the card takes from a ``SOURCE.md``: ``{"file", "title", "authors", "licence_text",
    "attribution", "repository", "commit", "license"}`` (``license``: the Hub identifier of the
    first licence its licence entry names, None when unrecognised)."""
    e = source_entries(path.read_text(encoding="utf-8", errors="replace"))
    text = e.get("license", "")
    return {
        "file": path.name,
        "title": e.get("title"),
        "authors": e.get("authors"),
        "licence_text": text,
        "attribution": e.get("attribution"),
        "repository": e.get("original repository"),
        "commit": e.get("commit"),
        "license": licence_of(text),
    }


def corpus_sources(root: str | Path | None, rel_paths: list[str]) -> list[dict[str, Any]]:
    """The ``SOURCE.md`` entries of a corpus: in its root and in each document's folder (each once)."""
    if not root:
        return []
    base = Path(root)
    folders = sorted({base, *(base / Path(p).parent for p in rel_paths)}, key=str)
    out = []
    for folder in folders:
        for name in SOURCE_FILES:
            f = folder / name
            if f.is_file():
                out.append({**read_source(f), "file": f.relative_to(base).as_posix() if f.is_relative_to(base) else f.name})
    return out


def document_sources(root: str | Path | None, rel_paths: list[str]) -> dict[str, dict[str, Any]]:
    """``rel_path -> SOURCE.md entry`` (see :func:`read_source`) for each document: the entry of
    the nearest folder above it that has one (documents without one are left out)."""
    if not root:
        return {}
    base = Path(root)
    out: dict[str, dict[str, Any]] = {}
    for rel in rel_paths:
        for folder in [base / Path(rel).parent, *(base / Path(rel).parent).parents]:
            f = next((folder / n for n in SOURCE_FILES if (folder / n).is_file()), None)
            if f is not None:
                out[rel] = read_source(f)
                break
            if folder == base:
                break
    return out


def _iso(ts: float | None) -> str | None:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def provenance(ledger: Any, skill: Any = None) -> dict[str, Any]:
    """Everything the card says, from a run's ledger (:class:`~prepbench.tools.ledger.RunFolder`)
    and its skill (None when it cannot be loaded: the run config's names are used)."""
    config, counts = ledger.get_config(), ledger.counts()
    hashes: dict[str, str] = config.get("corpus_hashes") or {}
    excluded = ledger.excluded_count()
    return {
        "prepbench_version": __version__,
        "run_prepbench_version": config.get("prepbench_version"),
        "skill": {
            "name": getattr(skill, "name", None) or config.get("skill_name"),
            "version": getattr(skill, "version", None) or config.get("skill_version"),
            "hash": config.get("skill_hash"),
            "domain": getattr(skill, "domain", None),
        },
        "corpus": {
            "root": config.get("corpus_root"),
            "files": [{"path": p, "sha256": h} for p, h in sorted(hashes.items())],
            "skipped": config.get("corpus_skipped") or {},
            "sources": corpus_sources(config.get("corpus_root"), sorted(hashes)),
        },
        "mode": config.get("mode"),  # a generation run (prepbench generate): its "corpus" is the seed file
        "model": config.get("model"),
        "generator": f"{config.get('generator')} {config.get('generator_version')}",
        "agent": config.get("agent"),
        "dates": {"run_started": _iso(config.get("created_at")), "last_recorded": _iso(_last_recorded(ledger))},
        "chunks": counts["chunks"],
        "skip_reasons": ledger.skip_reason_counts(),
        "samples": {**counts["samples"], "excluded": excluded, "exported": counts["samples"]["accepted"] - excluded},
        "sample_types": ledger.type_counts(),
        "rejections": ledger.rejection_counts(),
        "decontamination": {"settings": config.get("decontamination"), "benchmarks": ledger.contamination_counts()},
        "cost": counts["calls"],
    }


def _last_recorded(ledger: Any) -> float | None:
    """When the ledger last changed (a chunk recorded or revisited, a decontamination pass): the card
    holds no clock reading, so exporting an unchanged run again writes the same card."""
    return ledger.last_recorded_at()


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    return next((label for bound, label in _SIZES if n < bound), "n>10M")


def card_metadata(prov: dict[str, Any], rows: int, data_file: str) -> dict[str, Any]:
    """The card's YAML metadata block (a dict), Hub field names."""
    sources = prov.get("corpus", {}).get("sources") or []
    ids = sorted({s["license"] for s in sources if s.get("license")})
    meta: dict[str, Any] = {"license": "other"}
    if sources and all(s.get("license") for s in sources):
        meta["license"] = ids[0] if len(ids) == 1 else ids
    else:  # the Hub's way to name a licence it has no identifier for; the body quotes SOURCE.md
        meta["license_name"] = "see-source" if sources else "unknown"
    skill = prov.get("skill") or {}
    meta.update(
        {
            "pretty_name": f"{skill.get('name') or 'prepbench'} SFT data from {Path(str(prov.get('corpus', {}).get('root') or 'a corpus')).name}",
            "task_categories": ["question-answering", "text-generation"],
            "size_categories": [size_category(rows)],
            "tags": [t for t in ("sft", "prepbench", skill.get("domain")) if t],
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
        }
    )
    return meta


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _made_section(prov: dict[str, Any]) -> list[str]:
    skill, dates = prov.get("skill") or {}, prov.get("dates") or {}
    version = prov.get("prepbench_version")
    run_version = prov.get("run_prepbench_version")
    return [
        "## How it was made",
        "",
        f"- **prepbench**: {version}"
        + (f" (the run was made with {run_version})" if run_version and run_version != version else ""),
        f"- **Skill**: {skill.get('name')} {skill.get('version')} (content SHA-256 `{skill.get('hash')}`)",
        f"- **Model**: {prov.get('model')} (generator {prov.get('generator')}); **agent**: {prov.get('agent')}",
        f"- **Dates**: run started {dates.get('run_started')}, last recorded {dates.get('last_recorded')}",
        "",
    ]


def _corpus_section(prov: dict[str, Any]) -> list[str]:
    corpus = prov.get("corpus") or {}
    title = "## Seed data" if prov.get("mode") else "## Source corpus"
    out = [title, "", f"Root folder: `{Path(str(corpus.get('root'))).name}`.", ""]
    for s in corpus.get("sources") or []:
        out += [f"From `{s['file']}`:", ""]
        for label, key in (("Title", "title"), ("Authors", "authors"), ("Repository", "repository"), ("Commit", "commit")):
            if s.get(key):
                out.append(f"- {label}: {s[key]}")
        out.append(f"- Licence: {s['licence_text'] or 'not stated'}")
        if s.get("attribution"):
            out.append(f"- Attribution: {s['attribution']}")
        out.append("")
    if not corpus.get("sources"):
        out += ["- Licence: no SOURCE.md in the corpus; check the source's licence before publishing."]
    out += ["", *_table(("file", "SHA-256"), [(f["path"], f"`{f['sha256']}`") for f in corpus.get("files") or []])]
    skipped = corpus.get("skipped") or {}
    if skipped:
        out += ["", "Files not read:", *[f"- {_cell(p)}: {_cell(r)}" for p, r in sorted(skipped.items())]]
    return out + [""]


def _data_sections(prov: dict[str, Any]) -> list[str]:
    chunks, samples = prov.get("chunks") or {}, prov.get("samples") or {}
    cost = prov.get("cost") or {}
    return [
        "## Chunks and samples",
        "",
        f"- **Chunks**: {chunks.get('total', 0)} in all; kept {chunks.get('kept', 0)}, skipped {chunks.get('skipped', 0)}, "
        f"failed {chunks.get('failed', 0)}, pending {chunks.get('pending', 0)}",
        f"- **Skipped by reason**: {_counts_line(prov.get('skip_reasons') or {})}",
        f"- **Samples accepted**: {samples.get('accepted', 0)} ({_counts_line(prov.get('sample_types') or {})})",
        f"- **Samples rejected by rule**: {samples.get('rejected', 0)} ({_counts_line(prov.get('rejections') or {})})",
        f"- **Excluded by decontamination**: {samples.get('excluded', 0)}; **exported**: {samples.get('exported', 0)}",
        "",
        "## Cost",
        "",
        f"{cost.get('count', 0)} model calls, {cost.get('input_tokens', 0)} input and {cost.get('output_tokens', 0)} "
        f"output tokens, USD {cost.get('cost_usd', 0.0):.4f}.",
        "",
    ]


def _decontamination_section(prov: dict[str, Any]) -> list[str]:
    dec = prov.get("decontamination") or {}
    settings, per = dec.get("settings"), dec.get("benchmarks") or {}
    out = ["## Benchmark decontamination", ""]
    if not settings and not per:
        return out + ["Not checked (`prepbench decontaminate RUN --benchmarks ...` checks it and re-exports).", ""]
    if settings:
        judge = f"; judge {settings['judge']}" if settings.get("judge") else ""
        emb = settings.get("embed_threshold")
        out += [
            f"Checked against {', '.join(settings.get('benchmarks') or {}) or 'no benchmark'}: {settings.get('ngram')}-gram "
            f"overlap on normalised text"
            + (f", question embedding cosine >= {emb} ({settings.get('encoder')})" if emb else "")
            + judge
            + ".",
            "",
        ]
    rows = [
        (b, c["flagged"], c["ngram_overlap"], c["embedding_similarity"], c["cleared"], c["excluded"])
        for b, c in sorted(per.items())
    ]
    return out + _table(("benchmark", "flagged", "n-gram", "embedding", "cleared by judge", "excluded"), rows) + [""]


def render_card(prov: dict[str, Any], files: dict[str, int], data_file: str) -> str:
    """The card's text: the YAML block, then the body.

    Args:
        prov: :func:`provenance` (``{}`` for data without a run: the body says what is known).
        files: exported file name -> rows.
        data_file: the file the card's ``configs`` points the Hub at.
    """
    rows = max(files.values(), default=0)
    meta = card_metadata(prov, rows, data_file)
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    body = [
        f"# {meta['pretty_name']}",
        "",
        (
            f"Instruction-response SFT data made by prepbench {__version__} in generation mode `{prov['mode']}` "
            "from seed data; every sample's slot, seeds and verdict are in the run's ledger."
            if prov.get("mode")
            else f"Question-answer SFT data made by prepbench {__version__} from a book corpus; "
            "every sample's chunk, evidence and verdict are in the run's ledger."
        ),
        "",
        "## Files",
        "",
        *_table(("file", "rows"), sorted(files.items())),
        "",
        "`manifest.json` lists the SHA-256 of every file of this export; `dataset_info.json` is LlamaFactory's entry.",
        "",
    ]
    if prov:
        body += _made_section(prov) + _corpus_section(prov) + _data_sections(prov) + _decontamination_section(prov)
    return f"---\n{head}---\n\n" + "\n".join(body)
