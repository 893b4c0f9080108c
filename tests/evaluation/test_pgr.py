"""PGR (AgoraBench) arithmetic, degenerate gaps, record files and the `prepbench pgr` command."""

from __future__ import annotations

import json

import pytest

from prepbench.evaluation.pgr import compute_pgr, pgr_value
from prepbench.evaluation.records import ScoreRecord, read_records, write_records
from prepbench.tools.errors import PrepbenchError

from cli_helpers import error_lines, run_cli


def recs(model, **scores):
    """benchmark=score (primary acc) records; a tuple value gives (score, n)."""
    out = []
    for bench, v in scores.items():
        s, n = v if isinstance(v, tuple) else (v, 100)
        out.append(ScoreRecord(model=model, benchmark=bench, metric="acc", score=s, n=n, primary=True))
        out.append(ScoreRecord(model=model, benchmark=bench, metric="acc_norm", score=s / 2, n=n))
    return out


def test_pgr_formula():
    assert pgr_value(0.20, 0.40, 0.30) == pytest.approx(50.0)
    assert pgr_value(0.20, 0.40, 0.50) == pytest.approx(150.0)
    assert pgr_value(0.20, 0.40, 0.10) == pytest.approx(-50.0)
    assert pgr_value(0.50, 0.30, 0.40) == pytest.approx(50.0)  # reference below base: still the share of the gap
    assert pgr_value(0.3, 0.3, 0.9) is None


def test_per_benchmark_average_and_degenerate_case():
    base = recs("base", gsm8k=0.10, arc_challenge=0.25, medqa=0.30)
    ref = recs("ref", gsm8k=0.20, arc_challenge=0.35, medqa=0.30)
    mix = recs("mix", gsm8k=0.25, arc_challenge=0.30, medqa=0.40)
    res = compute_pgr(base, ref, mix)
    rows = {r.benchmark: r for r in res.rows}
    assert rows["gsm8k"].pgr == pytest.approx(150.0) and rows["gsm8k"].status == "ok"
    assert rows["arc_challenge"].pgr == pytest.approx(50.0)
    assert rows["medqa"].status == "degenerate" and rows["medqa"].pgr is None
    assert res.average == pytest.approx(100.0) and res.n_used == 2
    assert any("medqa" in n and "left out of the average" in n for n in res.notes)
    assert res.trained_model == "mix" and rows["gsm8k"].metric == "acc"
    # choosing the other metric uses acc_norm records (scores halved: same PGR)
    res2 = compute_pgr(base, ref, mix, metric="acc_norm")
    assert {r.metric for r in res2.rows} == {"acc_norm"}
    assert res2.average == pytest.approx(100.0)


def test_all_degenerate_gives_no_average_and_missing_scores_are_reported():
    res = compute_pgr(recs("b", gsm8k=0.2), recs("r", gsm8k=0.2), recs("t", gsm8k=0.5))
    assert res.average is None and res.n_used == 0 and res.rows[0].status == "degenerate"
    res = compute_pgr(recs("b", gsm8k=0.2, medqa=0.3), recs("r", gsm8k=0.4, medqa=0.5), recs("t", gsm8k=0.3))
    rows = {r.benchmark: r for r in res.rows}
    assert rows["medqa"].status == "missing" and "no trained score" in rows["medqa"].note
    assert res.average == pytest.approx(50.0)
    with pytest.raises(PrepbenchError, match="no benchmark has base, reference and trained"):
        compute_pgr(recs("b", gsm8k=0.2), recs("r", medqa=0.4), recs("t", arc_challenge=0.3))
    with pytest.raises(PrepbenchError, match="several models"):
        compute_pgr(recs("b", gsm8k=0.2) + recs("c", gsm8k=0.3), recs("r", gsm8k=0.4), recs("t", gsm8k=0.3))


def test_records_round_trip_and_bad_files(tmp_path):
    rows = recs("base", gsm8k=(0.125, 8))
    for suffix in (".jsonl", ".csv"):
        p = write_records(tmp_path / f"s{suffix}", rows)
        back = read_records(p)
        assert [r.to_dict() for r in back] == [r.to_dict() for r in rows]
    write_records(tmp_path / "s.jsonl", recs("base", medqa=0.5), append=True)
    assert [r.benchmark for r in read_records(tmp_path / "s.jsonl")] == ["gsm8k", "gsm8k", "medqa", "medqa"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(rows[0].to_dict()) + "\n" + json.dumps({"model": "m", "benchmark": "b", "metric": "acc", "n": 3}) + "\n"
    )
    with pytest.raises(PrepbenchError, match=r"bad.jsonl:2: score record lacks field 'score'"):
        read_records(bad)
    bad.write_text('{"model": "m", "benchmark": "b", "metric": "acc", "score": "high", "n": 3}\n')
    with pytest.raises(PrepbenchError, match=r"bad.jsonl:1: field 'score' is not a number"):
        read_records(bad)
    with pytest.raises(PrepbenchError, match="must be a .jsonl or .csv"):
        write_records(tmp_path / "s.txt", rows)


def test_cli_pgr(tmp_path):
    b = write_records(tmp_path / "base.jsonl", recs("base", gsm8k=0.10, arc_challenge=0.25, medqa=0.30))
    r = write_records(tmp_path / "ref.csv", recs("dolly", gsm8k=0.20, arc_challenge=0.35, medqa=0.30))
    t1 = write_records(tmp_path / "mix1.jsonl", recs("mix1", gsm8k=0.25, arc_challenge=0.30, medqa=0.40))
    t2 = write_records(tmp_path / "mix2.jsonl", recs("mix2", gsm8k=0.10, arc_challenge=0.45, medqa=0.35))
    out = tmp_path / "pgr.json"
    p = run_cli("pgr", "--base", str(b), "--reference", str(r), "--trained", f"{t1},{t2}", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "average PGR over 2 benchmark(s): 100.0%" in p.stdout
    assert "medqa" in p.stdout and "degenerate" in p.stdout
    res = json.loads(out.read_text())
    assert [x["trained_model"] for x in res] == ["mix1", "mix2"]
    assert res[1]["average"] == pytest.approx((0.0 + 200.0) / 2)
    p = run_cli("pgr", "--base", str(tmp_path / "none.jsonl"), "--reference", str(r), "--trained", str(t1))
    assert p.returncode == 2 and error_lines(p)[-1] == f"error: {tmp_path / 'none.jsonl'}: score record file not found"
