"""`prepbench compare`: three agent families on a slice of the shipped finance corpus.

The skill family runs on the offline ``extractive`` generator, ``direct`` and ``react`` on the
local test server (``tests/llm_server.py``) through the real OpenAI client. The report's
figures are checked against each run's ledger, the HTML must be self-contained, and a second
``compare`` must resume every run without a single generation request and keep the wall times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from prepbench.tools.ledger import RunFolder

from cli_helpers import REPO, SHARED, SLICE
from llm_server import Reply

KEY = "sk-prepbench-compare-key-8c2f41"
FAMILIES = ("skill", "direct", "react")
PRICE_IN, PRICE_OUT = 0.5, 1.5  # USD per 1M tokens for the test model
FINANCEBENCH = SHARED / "datasets" / "financebench" / "financebench_open_source.jsonl"


def run_cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "OPENAI_API_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-m", "prepbench.tools.cli", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


class _Tables(HTMLParser):
    """Cell texts of every <table id=...>: {id: [[cell, ...], ...]} (header row first)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value) of every src/href
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "action"):
                self.refs.append((tag, k, v or ""))
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _ledger_totals(run: Path) -> dict:
    """Accepted samples and call totals summed here from the ledger's rows (RunFolder's row readers)."""
    led = RunFolder.open(run)
    try:
        acc = len(led.sample_rows(status="accepted"))
        calls = led.call_rows()
        tin = sum(c["input_tokens"] or 0 for c in calls)
        tout = sum(c["output_tokens"] or 0 for c in calls)
        cost = sum(c["cost_usd"] or 0.0 for c in calls)
        attempts = sum(c["attempts"] for c in led.chunk_rows())
        return {
            "accepted": acc,
            "calls": len(calls),
            "input_tokens": tin,
            "output_tokens": tout,
            "cost_usd": cost,
            "attempts": attempts,
        }
    finally:
        led.close()


def _generation_requests(server) -> int:
    """Requests of the agents (the verifier's judge calls left out)."""
    return sum(1 for r in server.requests if "strict data verifier" not in json.dumps(r["body"]))


def _check_construction_figures(out, fams: dict) -> dict:
    """Each family's construction figures and scores equal its ledger's; returns the ledger totals."""
    totals = {}
    for fam in FAMILIES:
        run = out / "runs" / fam
        t = totals[fam] = _ledger_totals(run)
        f = fams[fam]
        assert f["run"] == str(run)
        assert f["samples"]["accepted"] == t["accepted"] and t["accepted"] > 0
        assert f["chunks"]["total"] == 6 and f["chunks"]["pending"] == 0
        assert f["calls"]["input_tokens"] == t["input_tokens"] and f["calls"]["output_tokens"] == t["output_tokens"]
        assert f["calls"]["cost_usd"] == pytest.approx(t["cost_usd"], abs=1e-6)
        assert f["wall_s"] > 0
        # scores: DAS against the proxy (an MMD is >= 0, DAS = -MMD), weight-free metrics, DVS from the judge
        das = f["scores"]["das"]
        assert das["n_proxy"] == 24 and das["n_candidate"] == t["accepted"]
        assert das["das"] == pytest.approx(-das["mmd"]) and das["das"] < 0
        assert f["scores"]["metrics"]["ngram"]["distinct_1"] > 0 and f["scores"]["metrics"]["embedding"]["vendi"] >= 1
        assert f["scores"]["dvs"]["dvs"] == 1.0 and f["scores"]["dvs"]["n_scored"] == min(5, t["accepted"])
    assert totals["skill"]["input_tokens"] == 0 and totals["skill"]["cost_usd"] == 0
    for fam in ("direct", "react"):
        t = totals[fam]
        assert t["input_tokens"] > 0 and t["cost_usd"] == pytest.approx(
            (t["input_tokens"] * PRICE_IN + t["output_tokens"] * PRICE_OUT) / 1e6, rel=1e-3
        )

    return totals


def _check_report_files(out, totals: dict) -> None:
    """The HTML is self-contained with one row per family holding the ledger's numbers and the
    plots inline; the Markdown links the PNGs written next to it."""
    page = (out / "report.html").read_text(encoding="utf-8")
    parser = _Tables()
    parser.feed(page)
    assert parser.refs and all(v.startswith("data:") for _, _, v in parser.refs), parser.refs
    assert sum(1 for tag, _, v in parser.refs if tag == "img" and v.startswith("data:image/png;base64,")) == 3
    assert not re.search(r"url\(\s*['\"]?(?!data:)", page) and "@import" not in page and "<link" not in page
    table_a = parser.tables["construction"]
    head = table_a[0]
    col = {h.split(" ")[0]: i for i, h in enumerate(head)}
    rows = {r[0]: r for r in table_a[1:]}
    assert set(rows) == {"skill (extractive)", "direct (openai:test-model)", "react (openai:test-model)"}
    for fam in FAMILIES:
        row = next(r for k, r in rows.items() if k.startswith(fam + " "))
        t = totals[fam]
        assert row[col["accepted"]] == f"{t['accepted']:,}"
        assert row[head.index("tokens in ↓")] == f"{t['input_tokens']:,}"
        assert row[head.index("tokens out ↓")] == f"{t['output_tokens']:,}"
        assert row[head.index("cost (USD) ↓")] == f"${t['cost_usd']:.4f}"
    assert {r[0] for r in parser.tables["metrics"][1:]} == set(rows)
    assert "DAS ↑" in parser.tables["metrics"][0] and "DVS ↑" in parser.tables["metrics"][0]
    assert parser.tables["downstream"][-1][0] == "average PGR (%)"
    # the Markdown links PNGs written next to it
    md = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == ["benchmarks.png", "cost_vs_accepted.png", "coverage_per_document.png"]
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in links)
    for fam in FAMILIES:
        assert f"| {fam} (" in md


def _compare_inputs(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, tuple[float, float]]]:
    """Prices file, a FinanceBench proxy, downstream score records and the scores they hold."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"models:\n  test-model: {{input: {PRICE_IN}, output: {PRICE_OUT}}}\n")
    proxy = tmp_path / "proxy.jsonl"  # 24 FinanceBench questions as the finance domain proxy (question/answer)
    rows = [json.loads(line) for line in FINANCEBENCH.read_text(encoding="utf-8").splitlines()[:24]]
    proxy.write_text("".join(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in rows))
    # downstream records (made up for the test): base, reference and one trained model per family
    scores = {"base": (0.30, 0.50), "dolly": (0.40, 0.60), "skill": (0.45, 0.55), "direct": (0.35, 0.70), "react": (0.40, 0.50)}
    records = tmp_path / "scores.jsonl"
    records.write_text(
        "".join(
            json.dumps({"model": m, "benchmark": b, "metric": "acc", "score": s[i], "n": 100, "primary": True}) + "\n"
            for m, s in scores.items()
            for i, b in enumerate(("arc_challenge", "mmlu_finance"))
        )
    )
    return prices, proxy, records, scores


def test_compare_three_families(llm_server, tmp_path):
    # the verifier's judge passes every sample: DVS must come out 1.0
    llm_server.add_rule("strict data verifier", lambda req: Reply(content="Label: E\nReason: correct and on task."))
    prices, proxy, records, scores = _compare_inputs(tmp_path)
    out = tmp_path / "cmp"
    args = (
        "compare",
        "--agents",
        "skill=extractive,direct,react",
        "--model",
        "openai:test-model",
        "--base-url",
        llm_server.url + "/v1",
        "--prices",
        str(prices),
        "--skill",
        "finance",
        "--corpus",
        str(SLICE),
        "--limit",
        "6",
        "--concurrency",
        "4",
        "--out",
        str(out),
        "--proxy",
        str(proxy),
        "--cache",
        str(tmp_path / "emb.sqlite"),
        "--judge",
        "openai:test-model",
        "--judge-n",
        "5",
        "--records",
        str(records),
        "--base",
        "base",
        "--reference",
        "dolly",
        "-q",
    )
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr + p.stdout
    report = json.loads((out / "report.json").read_text())
    fams = {f["family"]: f for f in report["families"]}
    assert list(fams) == list(FAMILIES)
    assert fams["skill"]["model"] == "extractive" and fams["direct"]["model"] == fams["react"]["model"] == "openai:test-model"

    totals = _check_construction_figures(out, fams)
    # PGR per family from the records: (T - B) / (R - B) * 100, averaged over the two benchmarks
    pgr = report["downstream"]["pgr"]
    for fam in FAMILIES:
        want = [(scores[fam][i] - scores["base"][i]) / (scores["dolly"][i] - scores["base"][i]) * 100 for i in range(2)]
        assert pgr[fam]["average"] == pytest.approx(sum(want) / 2)
        assert report["downstream"]["benchmarks"]["arc_challenge"][fam] == scores[fam][0]

    _check_report_files(out, totals)
    # a second compare resumes every run: no generation request, same ledgers, same wall times
    state = json.loads((out / "compare.json").read_text())
    n = _generation_requests(llm_server)
    assert n > 0
    p2 = run_cli(*args)
    assert p2.returncode == 0, p2.stderr + p2.stdout
    assert _generation_requests(llm_server) == n
    assert {fam: _ledger_totals(out / "runs" / fam) for fam in FAMILIES} == totals
    assert json.loads((out / "compare.json").read_text()) == state
    again = {f["family"]: f for f in json.loads((out / "report.json").read_text())["families"]}
    for fam in FAMILIES:
        assert again[fam]["wall_s"] == fams[fam]["wall_s"] == state["families"][fam]["seconds"]
    # the API key went to the server only
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "agents, message",
    [
        ("skill,reflexion", "unknown agent family 'reflexion'"),
        ("skill,skill", "family 'skill' given twice"),
        ("skill,direct=extractive", "family 'direct' needs a chat model"),
        ("react", "family 'react' has no model"),
    ],
)
def test_compare_refuses_bad_agents(tmp_path, agents, message):
    out = tmp_path / "cmp"
    p = run_cli("compare", "--agents", agents, "--corpus", str(SLICE), "--out", str(out), "-q")
    assert p.returncode == 2
    lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_compare_refuses_unknown_record_names(tmp_path):
    records = tmp_path / "scores.jsonl"
    records.write_text(json.dumps({"model": "skill", "benchmark": "gsm8k", "metric": "acc", "score": 0.1, "n": 5}) + "\n")
    out = tmp_path / "cmp"
    p = run_cli(
        "compare",
        "--agents",
        "skill",
        "--corpus",
        str(SLICE),
        "--out",
        str(out),
        "--records",
        str(records),
        "--base",
        "base",
        "--reference",
        "dolly",
        "-q",
    )
    assert p.returncode == 2
    lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and "--base 'base': no score record has that model" in lines[0], lines
    assert not (out / "runs").exists()
