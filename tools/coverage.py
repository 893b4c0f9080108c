"""Coverage: where every chunk of a run ended, and whether the skill's completion rule is met.

The report (a dict, also written as ``coverage.json``) holds chunk counts by status,
skip-reason counts, accepted samples per sample type and their shares, rejections per
rule, per-document coverage, and ``complete`` with the list of unmet requirements from
the skill's ``coverage.yaml``.
"""

from __future__ import annotations

import math
from typing import Any

from .ledger import RunFolder


def type_deficits(ledger: RunFolder, skill) -> dict[str, int]:
    """How many more accepted samples each under-covered sample type needs.

    For a type with ``min_share`` s (``coverage.yaml``; ``completion.offline.min_shares`` in a run of
    the offline generator) and c of T accepted samples, the
    deficit is the least n with (c + n) / (T + n) >= s, i.e. ceil((s T - c) / (1 - s)).

    Returns:
        ``{sample_type: n}`` for the types below their share (empty when the mix is met).
    """
    counts = ledger.type_counts()
    total = sum(counts.values())
    offline = _offline_rule(skill, ledger.get_config())
    out: dict[str, int] = {}
    for t, target in skill.coverage.sample_types.items():
        s, c = (offline.min_shares.get(t, target.min_share) if offline else target.min_share), counts.get(t, 0)
        if not s or target.per_chunk <= 0 or (total and c / total >= s):
            continue
        out[t] = max(1, math.ceil((s * total - c) / (1 - s))) if s < 1 else max(1, total - c)
    return out


def plan_revisit_round(ledger: RunFolder, skill) -> list[tuple[str, str]]:
    """The next round of the coverage loop: kept chunks to revisit per under-covered type.

    Each under-covered sample type gets as many candidate chunks as it needs samples
    (:func:`type_deficits`, divided by the type's ``per_chunk``), taken from the kept chunks
    not yet revisited for it, those with fewest samples of the type first, then corpus order.
    A chunk is revisited at most once per sample type, so the loop ends; it also ends after a
    round that accepted nothing (DataPrep issue 10: a barren round predicts the next).

    Returns:
        ``[(chunk_id, sample_type)]``; empty when the mix is met, no candidate is left or the last
        round accepted nothing.
    """
    if ledger.last_round_barren():
        return []
    items: list[tuple[str, str]] = []
    for t, need in type_deficits(ledger, skill).items():
        n = math.ceil(need / max(1, skill.coverage.sample_types[t].per_chunk))
        items.extend((cid, t) for cid in ledger.revisit_candidates(t, n))
    return items


def coverage_report(ledger: RunFolder, skill=None) -> dict[str, Any]:
    """Build the coverage report of a run.

    Args:
        ledger: the run's ledger.
        skill: the run's :class:`~prepbench.tools.skills.Skill` (its ``coverage.yaml`` gives the
            completion rule); without it only the counts are reported.

    Returns:
        ``{"unit": "chunk" | "slot", "chunks": {...}, "skip_reasons": {...}, "failed_errors": {...}, "sample_types": {...},
        "rejections": {...}, "documents": [...], "calls": {...}, "revisits": {...}, "complete": bool,
        "unmet": [...]}``; ``revisits`` counts the coverage loop (:meth:`RunFolder.revisit_counts`, with
        ``stopped_barren`` when its last round accepted nothing);
        ``decontamination`` (only when a sample is flagged): the accepted samples the export leaves
        out and the flags per benchmark (:meth:`RunFolder.contamination_counts`).
    """
    counts = ledger.counts()
    type_counts = ledger.type_counts()
    total_acc = sum(type_counts.values())
    mode = ledger.get_config().get("mode")  # a generation run (prepbench generate): its units are slots
    types = sorted(type_counts)
    if skill is not None:
        types = list(skill.mode_types if mode else skill.chunk_types)
    sample_types = {
        t: {"accepted": type_counts.get(t, 0), "share": (type_counts.get(t, 0) / total_acc) if total_acc else 0.0} for t in types
    }
    docs = ledger.document_rows()
    ch = counts["chunks"]
    offline = _offline_rule(skill, ledger.get_config())
    unmet = _unmet(skill, ch, docs, sample_types, bool(mode), offline) if skill is not None else []
    flags = ledger.contamination_counts()
    dec = {"decontamination": {"excluded": ledger.excluded_count(), "benchmarks": flags}} if flags else {}
    return {
        "unit": "slot" if mode else "chunk",
        "chunks": ch,
        "kept_share": (ch["kept"] / ch["total"]) if ch["total"] else 0.0,
        "skip_reasons": ledger.skip_reason_counts(),
        "failed_errors": ledger.failed_error_counts(),
        "samples": counts["samples"],
        "sample_types": sample_types,
        "rejections": ledger.rejection_counts(),
        "documents": docs,
        "calls": counts["calls"],
        "revisits": {**ledger.revisit_counts(), "stopped_barren": ledger.last_round_barren()},
        "complete": not unmet if skill is not None else (ch["pending"] == 0 and ch["failed"] == 0),
        "completion_rule": "offline" if offline else "skill",
        **({"completion_why": offline.why} if offline else {}),
        "unmet": unmet,
        **dec,
    }


def _offline_rule(skill, config: dict):
    """The skill's ``completion.offline`` rule when the run's generator is the offline extractive
    one (run config ``generator``), else None."""
    if skill is None or config.get("generator") != "extractive":
        return None
    return skill.coverage.completion.offline


def _unmet(skill, ch: dict, docs: list[dict], sample_types: dict, slots: bool = False, offline=None) -> list[str]:
    """What keeps the run from meeting the skill's completion rule (``coverage.yaml``), one line each.
    A generation run (``slots``) is complete when every slot is recorded: the chunk rules do not apply.
    ``offline`` (:class:`~prepbench.tools.skills.spec.OfflineCompletionSpec`) replaces the values it sets."""
    unmet: list[str] = []
    comp = skill.coverage.completion
    unit = "slot" if slots else "chunk"
    if (comp.require_all_resolved or slots) and (ch["pending"] or ch["failed"]):
        unmet.append(f"{ch['pending']} {unit}(s) pending and {ch['failed']} failed (all must end kept or skipped)")
    if slots:
        return unmet
    pick = lambda value, default: default if value is None else value  # noqa: E731
    min_kept = pick(offline and offline.min_kept_share, comp.min_kept_share)
    per_doc = pick(offline and offline.per_document_min_kept, comp.per_document_min_kept)
    kept_share = ch["kept"] / ch["total"] if ch["total"] else 0.0
    if kept_share < min_kept:
        unmet.append(f"kept share {kept_share:.1%} < required {min_kept:.0%}")
    if per_doc:
        low = [d["document"] for d in docs if d["doc_status"] == "ingested" and (d["kept"] or 0) < per_doc]
        if low:
            unmet.append(f"{len(low)} document(s) with fewer than {per_doc} kept chunk(s): {', '.join(low[:3])}")
    for t, target in skill.coverage.sample_types.items():
        need = offline.min_shares.get(t, target.min_share) if offline else target.min_share
        share = sample_types.get(t, {}).get("share", 0.0)
        if need and share < need:
            unmet.append(f"sample type {t} share {share:.1%} < required {need:.0%}")
    return unmet


def render_coverage(report: dict[str, Any], console=None) -> None:
    """Print a coverage report as rich tables."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    ch = report["chunks"]
    t = Table(title="coverage", show_header=False)
    t.add_row(
        report.get("unit", "chunk") + "s",
        f"{ch['total']} total: {ch['kept']} kept, {ch['skipped']} skipped, {ch['failed']} failed, {ch['pending']} pending",
    )
    t.add_row("samples", f"{report['samples']['accepted']} accepted, {report['samples']['rejected']} rejected")
    t.add_row(
        "sample types",
        escape(", ".join(f"{k} {v['accepted']} ({v['share']:.0%})" for k, v in report["sample_types"].items()) or "-"),
    )
    t.add_row("skip reasons", escape(", ".join(f"{k} {v}" for k, v in report["skip_reasons"].items()) or "-"))
    t.add_row("rejections", escape(", ".join(f"{k} {v}" for k, v in report["rejections"].items()) or "-"))
    dec = report.get("decontamination")
    if dec:
        per = ", ".join(f"{k} {v['excluded']}/{v['flagged']}" for k, v in dec["benchmarks"].items())
        t.add_row(
            "decontamination", escape(f"{dec['excluded']} accepted sample(s) left out of the export (excluded/flagged: {per})")
        )
    calls = report["calls"]
    t.add_row(
        "calls",
        f"{calls['count']} calls, {calls['input_tokens']:,} in / {calls['output_tokens']:,} out tokens, ${calls['cost_usd']:.4f}",
    )
    rv = report.get("revisits") or {}
    if rv.get("done") or rv.get("planned"):
        t.add_row(
            "coverage loop",
            f"{rv['rounds']} round(s): {rv['done']} chunk revisits, {rv['accepted']} samples accepted"
            + (f", {rv['planned']} still planned" if rv["planned"] else "")
            + ("; stopped: the last round accepted nothing" if rv.get("stopped_barren") else ""),
        )
    t.add_row("complete", "yes" if report["complete"] else escape("no: " + "; ".join(report["unmet"])))
    if report.get("completion_why"):
        t.add_row("rule", escape("the skill's offline completion rule: " + report["completion_why"]))
    console.print(t)
    docs = report["documents"]
    if docs:
        d = Table(title="per document")
        for col in ("document", "chunks", "kept", "skipped", "failed", "pending", "accepted"):
            d.add_column(col, justify="left" if col == "document" else "right")
        for row in docs[:MAX_DOCUMENT_ROWS]:
            name = row["document"] + ("" if row["doc_status"] == "ingested" else f" (skipped: {row['reason']})")
            d.add_row(escape(name), *(str(row[c] or 0) for c in ("chunks", "kept", "skipped", "failed", "pending", "accepted")))
        if len(docs) > MAX_DOCUMENT_ROWS:
            d.add_row(f"... {len(docs) - MAX_DOCUMENT_ROWS} more documents (--json lists every one)", *[""] * 6)
        console.print(d)


#: Documents the per-document table prints (a corpus of thousands of files: ``status --json`` has them all).
MAX_DOCUMENT_ROWS = 200
