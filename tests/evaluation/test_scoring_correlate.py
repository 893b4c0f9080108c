"""`prepbench correlate`: hand-checked Pearson/Spearman/p on a small fixture, flags, tables and plots."""

from __future__ import annotations

import csv
import json
import math

import pytest

from prepbench.evaluation.correlate import AVG, correlate, load_records, load_scores
from prepbench.tools.cli import main
from prepbench.tools.errors import PrepbenchError

# Four candidates. das = 1..4 (mmd = its negative). Base model m1 scores, averaged over its two
# benchmarks, are [1, 3, 2, 4]; m2 scores [1, 2, 3, 5] on both benchmarks.
SCORES = "candidate,das,mmd\nc1,1,-1\nc2,2,-2\nc3,3,-3\nc4,4,-4\n"
M1 = {"b1": [0, 2, 2, 4], "b2": [2, 4, 2, 4]}
M2 = {"b1": [1, 2, 3, 5], "b2": [1, 2, 3, 5]}


def _records_csv() -> str:
    lines = ["candidate,base_model,benchmark,score"]
    for bm, table in (("m1", M1), ("m2", M2)):
        for bench, vals in table.items():
            lines += [f"c{i + 1},{bm},{bench},{v}" for i, v in enumerate(vals)]
    return "\n".join(lines) + "\n"


def p_two_sided_df2(r: float) -> float:
    """Two-sided p of a correlation r with n = 4 (t with 2 df has the closed form 1 - t / sqrt(t² + 2))."""
    t = abs(r) * math.sqrt(2) / math.sqrt(1 - r * r)
    return 1 - t / math.sqrt(t * t + 2)


# Hand-checked values.
# m1: dx = [-1.5, -.5, .5, 1.5], dy = [-1.5, .5, -.5, 1.5]: sum dx dy = 4, sum dx² = sum dy² = 5 -> r = 0.8;
#     ranks of y are y itself -> rho = 0.8; t = 0.8 √2 / 0.6 -> p = 1 - 0.8 = 0.2 exactly.
# m2: dy = [-1.75, -.75, .25, 2.25]: sum dx dy = 6.5, sum dy² = 8.75 -> r = 6.5 / √43.75 = 0.982708;
#     p = 0.017292; ranks identical -> rho = 1, p = 0.
R_M2 = 6.5 / math.sqrt(43.75)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "scores.csv").write_text(SCORES)
    (tmp_path / "records.csv").write_text(_records_csv())
    return tmp_path


def test_hand_checked_pearson_spearman_and_p(files):
    cells = correlate(load_scores(files / "scores.csv"), load_records(files / "records.csv"))
    by = {(c.metric, c.group, c.benchmark): c for c in cells}
    m1 = by[("das", "m1", AVG)]
    assert m1.n == 4
    assert m1.pearson_r == pytest.approx(0.8, abs=1e-12) and m1.pearson_p == pytest.approx(0.2, abs=1e-9)
    assert m1.spearman_rho == pytest.approx(0.8, abs=1e-12) and m1.spearman_p == pytest.approx(0.2, abs=1e-9)
    assert p_two_sided_df2(0.8) == pytest.approx(0.2, abs=1e-12)
    m2 = by[("das", "m2", AVG)]
    assert m2.pearson_r == pytest.approx(R_M2, abs=1e-9) and R_M2 == pytest.approx(0.982708, abs=1e-6)
    assert m2.pearson_p == pytest.approx(p_two_sided_df2(R_M2), abs=1e-9) and m2.pearson_p == pytest.approx(0.017292, abs=1e-6)
    assert m2.spearman_rho == pytest.approx(1.0) and m2.spearman_p == pytest.approx(0.0, abs=1e-12)
    # flags: significant AND expected direction; m1 is not significant
    assert not m1.flag("pearson") and m2.flag("pearson") and m2.flag("spearman")
    # mmd is expected negative: the negated metric is flagged too, with r of opposite sign
    mm = by[("mmd", "m2", AVG)]
    assert mm.expected == -1 and mm.pearson_r == pytest.approx(-R_M2) and mm.flag("pearson")
    # per benchmark: m1 on b1 -> y = [0, 2, 2, 4]: r = 6/√(5·8) = 0.948683
    assert by[("das", "m1", "b1")].pearson_r == pytest.approx(6 / math.sqrt(40), abs=1e-9)
    # averaged over base models: y = [1, 2.5, 2.5, 4.5] -> sum dx dy = 5.25, sum dy² = 6.1875
    assert by[("das", AVG, AVG)].pearson_r == pytest.approx(5.25 / math.sqrt(5 * 6.1875), abs=1e-9)


def test_direction_override_flips_the_expectation(files):
    from prepbench.evaluation.correlate import parse_directions

    cells = correlate(load_scores(files / "scores.csv"), load_records(files / "records.csv"), parse_directions("das=-1"))
    c = next(c for c in cells if (c.metric, c.group, c.benchmark) == ("das", "m2", AVG))
    assert c.expected == -1 and not c.flag("pearson")
    with pytest.raises(PrepbenchError, match="--direction"):
        parse_directions("das=up")


def test_long_json_scores_and_evaluate_records_give_the_same_cells(files):
    long = [{"candidate": f"c{i}", "metric": "das", "value": i} for i in range(1, 5)]
    (files / "scores.json").write_text(json.dumps(long))
    rows = []
    for bm, table in (("m1", M1), ("m2", M2)):
        for bench, vals in table.items():
            for i, v in enumerate(vals):
                # prepbench evaluate records: a primary metric row and a non-primary one to be ignored
                rows.append(
                    {
                        "model": f"{bm}-c{i + 1}",
                        "benchmark": bench,
                        "metric": "acc",
                        "score": v,
                        "n": 10,
                        "primary": True,
                        "base_model": bm,
                        "candidate": f"c{i + 1}",
                    }
                )
                rows.append(
                    {
                        "model": f"{bm}-c{i + 1}",
                        "benchmark": bench,
                        "metric": "acc_norm",
                        "score": 99,
                        "n": 10,
                        "primary": False,
                        "base_model": bm,
                        "candidate": f"c{i + 1}",
                    }
                )
        rows.append(
            {
                "model": bm,
                "benchmark": "b1",
                "metric": "acc",
                "score": 0.5,
                "n": 10,
                "primary": True,
                "base_model": bm,
                "candidate": "",
            }
        )  # the untrained base model: skipped
    (files / "records.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a = correlate(load_scores(files / "scores.json"), load_records(files / "records.jsonl"))
    b = [c for c in correlate(load_scores(files / "scores.csv"), load_records(files / "records.csv")) if c.metric == "das"]
    assert [(c.group, c.benchmark, c.pearson_r, c.spearman_p) for c in a] == [
        (c.group, c.benchmark, c.pearson_r, c.spearman_p) for c in b
    ]


def test_cli_correlate_writes_table_csv_and_plots(files, capsys):
    out = files / "corr"
    main(["correlate", str(files / "scores.csv"), str(files / "records.csv"), "-o", str(out)])
    md = (out / "correlations.md").read_text()
    header = md.split("## Performance averaged over benchmarks")[1].strip().split("\n")[0]
    assert header.startswith("| metric | exp. | m1 r | m1 p | m1 ρ | m1 p | m2 r |") and "avg r" in header
    das_row = next(line for line in md.split("\n") if line.startswith("| das |"))
    assert "| 0.800 | 0.200 | 0.800 | 0.200 |" in das_row and "**0.983**†" in das_row
    mmd_row = next(line for line in md.split("\n") if line.startswith("| mmd | − |"))
    assert "**-0.983**†" in mmd_row
    assert "## Benchmark: b1" in md and "## Benchmark: b2" in md
    with open(out / "correlations.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 3  # metrics x (m1, m2, avg) x (avg, b1, b2)
    r = next(r for r in rows if (r["metric"], r["base_model"], r["benchmark"]) == ("das", "m2", "avg"))
    assert float(r["pearson_p"]) == pytest.approx(0.017292, abs=1e-6) and r["pearson_flag"] == "1"
    for metric in ("das", "mmd"):
        png = (out / "plots" / f"{metric}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "| das |" in capsys.readouterr().out


def test_bad_score_value_names_file_row_and_field(files, capsys):
    (files / "bad.csv").write_text("candidate,das\nc1,1\nc2,high\n")
    with pytest.raises(SystemExit) as e:
        main(["correlate", str(files / "bad.csv"), str(files / "records.csv"), "-o", str(files / "x")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "bad.csv: row 3, field 'das'" in err and "'high' is not a number" in err
