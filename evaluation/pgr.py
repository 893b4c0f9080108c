"""Performance Gap Recovered (PGR), AgoraBench (Kim et al., 2024, "Evaluating Language Models
as Synthetic Data Generators", arXiv:2412.03679, definition of PGR):

    PGR(T) = (score(T) - score(B)) / (score(R) - score(B)) x 100

per benchmark, where B is the base model, R the reference model (in AgoraBench the base's
instruction-tuned release) and T the base trained on the data being judged. In prepbench's construction track (DataPrep-Bench) R is the base model
fine-tuned on Dolly-15k only ("no synthetic training") and T the base fine-tuned on the run's
accepted samples mixed with Dolly-15k, so PGR 100 means the run's data adds as much as the
reference gap, 0 means nothing, negative means it hurt.

When |score(R) - score(B)| < eps the gap is degenerate: that benchmark's PGR is not computed
(never a division by ~0), its row says so, and it is left out of the average with a note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prepbench.tools.errors import PrepbenchError

from .records import ScoreRecord

DEFAULT_EPS = 1e-6


@dataclass
class PGRRow:
    """PGR of one trained model on one benchmark metric.

    ``status`` is ``ok`` (``pgr`` set), ``degenerate`` (|R - B| < eps, ``pgr`` None) or
    ``missing`` (a score is absent for B, R or T, ``pgr`` None). Scores are fractions, PGR in %.
    """

    benchmark: str
    metric: str
    base: float | None
    reference: float | None
    trained: float | None
    pgr: float | None
    status: str
    note: str = ""


@dataclass
class PGRResult:
    """PGR of one trained model over all benchmarks; ``average`` is the mean over ``ok`` rows
    (None when none is ``ok``); ``notes`` explain left-out benchmarks."""

    trained_model: str
    rows: list[PGRRow]
    average: float | None
    n_used: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The result as a plain dict (JSON-serialisable)."""
        return asdict(self)


def pgr_value(base: float, reference: float, trained: float, eps: float = DEFAULT_EPS) -> float | None:
    """AgoraBench PGR in percent for one benchmark; None when |reference - base| < eps."""
    gap = reference - base
    if abs(gap) < eps:
        return None
    return (trained - base) / gap * 100.0


def select_scores(records: list[ScoreRecord], metric: str | None, role: str) -> dict[str, ScoreRecord]:
    """One model's score per benchmark: ``{benchmark: record}`` with the given metric (full name
    or its part before ``,``, e.g. ``exact_match``), else the benchmark's primary metric.

    Raises:
        PrepbenchError: the records hold several models (``role`` names them in the message).
    """
    models = sorted({r.model for r in records})
    if len(models) > 1:
        raise PrepbenchError(f"{role} score records hold several models ({', '.join(models)}); give one model per file")
    out: dict[str, ScoreRecord] = {}
    for r in records:
        if metric is not None:
            if r.metric == metric or r.metric.split(",")[0] == metric:
                out.setdefault(r.benchmark, r)
        elif r.primary:
            out[r.benchmark] = r
    if metric is None:  # benchmarks without a primary flag: only usable if they have one metric
        by_bench: dict[str, list[ScoreRecord]] = {}
        for r in records:
            by_bench.setdefault(r.benchmark, []).append(r)
        for b, rs in by_bench.items():
            if b not in out and len({x.metric for x in rs}) == 1:
                out[b] = rs[0]
    return out


def compute_pgr(
    base: list[ScoreRecord],
    reference: list[ScoreRecord],
    trained: list[ScoreRecord],
    metric: str | None = None,
    eps: float = DEFAULT_EPS,
) -> PGRResult:
    """PGR of one trained model per benchmark and averaged (AgoraBench, Kim et al., 2024).

    Args:
        base, reference, trained: score records of the base model B, the reference model R
            (Dolly-only in the construction track) and the trained model T, one model each.
        metric: metric to compare (e.g. ``acc``); default: each benchmark's primary metric.
        eps: a gap |score(R) - score(B)| below this is degenerate (no PGR, out of the average).

    Returns:
        A :class:`PGRResult`: one row per benchmark found in any of the three, sorted by name.

    Raises:
        PrepbenchError: a record set holds several models, or no benchmark has all three scores.
    """
    b = select_scores(base, metric, "base")
    r = select_scores(reference, metric, "reference")
    t = select_scores(trained, metric, "trained")
    rows: list[PGRRow] = []
    notes: list[str] = []
    for bench in sorted(set(b) | set(r) | set(t)):
        sb, sr, st = b.get(bench), r.get(bench), t.get(bench)
        met = (sb or sr or st).metric
        if sb is None or sr is None or st is None:
            lacking = [n for n, s in (("base", sb), ("reference", sr), ("trained", st)) if s is None]
            note = f"no {'/'.join(lacking)} score"
            rows.append(PGRRow(bench, met, sb and sb.score, sr and sr.score, st and st.score, None, "missing", note))
            notes.append(f"{bench}: {note}; left out of the average")
            continue
        value = pgr_value(sb.score, sr.score, st.score, eps)
        if value is None:
            note = f"reference ≈ base (|{sr.score:.4f} - {sb.score:.4f}| < {eps:g}): PGR undefined"
            rows.append(PGRRow(bench, met, sb.score, sr.score, st.score, None, "degenerate", note))
            notes.append(f"{bench}: {note}; left out of the average")
        else:
            rows.append(PGRRow(bench, met, sb.score, sr.score, st.score, value, "ok"))
    ok = [row.pgr for row in rows if row.status == "ok"]
    if not rows or all(row.status == "missing" for row in rows):
        raise PrepbenchError("no benchmark has base, reference and trained scores for the same metric")
    average = sum(ok) / len(ok) if ok else None
    trained_model = trained[0].model if trained else ""
    return PGRResult(trained_model=trained_model, rows=rows, average=average, n_used=len(ok), notes=notes)
