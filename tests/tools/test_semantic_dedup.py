"""Semantic dedup (issue 14, item 2): ``dedup.semantic_threshold`` in filters.yaml rejects
paraphrases MinHash misses, as ``semantic_duplicate``, in corpus order, and a resumed gate decides
exactly as an uninterrupted one. Replayed on the real candidates of an offline run of the slice."""

import shutil
from itertools import groupby

import pytest

from prepbench.tools.errors import SkillError
from prepbench.tools.ledger import RunFolder, sample_id
from prepbench.tools.skills import load_skill
from prepbench.tools.validate import Candidate, Gate

from cli_helpers import REPO, SLICE, run_cli

THRESHOLD = 0.95


def semantic_skill(dest, threshold=THRESHOLD):
    """A copy of the finance skill with semantic dedup on."""
    shutil.copytree(REPO / "skills" / "finance", dest)
    f = dest / "filters.yaml"
    f.write_text(
        f.read_text().replace(
            "  fields: [question, answer]\n", f"  fields: [question, answer]\n  semantic_threshold: {threshold}\n"
        )
    )
    return dest


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """Every candidate of a finished offline run of the slice, per chunk in canonical order, with its chunk's text."""
    out = tmp_path_factory.mktemp("sem") / "run"
    p = run_cli("run", "--skill", "finance", "--corpus", str(SLICE), "--out", str(out), "--quiet")
    assert p.returncode == 0, p.stderr
    led = RunFolder.open(out, readonly=True)
    texts = {r["chunk_id"]: r["text"] for r in led.chunk_rows()}
    rows = led.sample_rows()
    led.close()
    return [(cid, texts[cid], [r["data"] for r in group]) for cid, group in groupby(rows, key=lambda r: r["chunk_id"])]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding cache for the module: the run below finds the replay's vectors there."""
    return tmp_path_factory.mktemp("emb") / "emb.sqlite"


@pytest.fixture
def skill(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("PREPBENCH_EMBED_CACHE", str(cache))
    return load_skill(semantic_skill(tmp_path / "finance"))


def _admit(gate, chunks):
    out = []
    for cid, text, samples in chunks:
        cands = [Candidate(dict(s), gate.screen(dict(s), text)) for s in samples]
        out.extend((cid, r.status, r.rule, r.detail) for r in gate.admit_chunk(cid, cands))
    return out


def _accepted(chunks, records):
    """``(sample_id, sample)`` of the candidates ``records`` accepted, in canonical order."""
    flat = [(cid, s) for cid, _, samples in chunks for s in samples]
    return [(sample_id(cid, s["sample_type"], s), dict(s)) for (cid, s), r in zip(flat, records) if r[1] == "accepted"]


def test_paraphrases_are_rejected_and_a_resumed_gate_decides_the_same(replay, skill):
    whole = _admit(Gate(skill), replay)
    sem = [i for i, r in enumerate(whole) if r[2] == "semantic_duplicate"]
    assert len(sem) >= 3, whole
    assert all(float(whole[i][3].split("cosine ")[1].split(")")[0]) >= THRESHOLD for i in sem)
    # the default gate (exact and MinHash only) accepted each of them: paraphrases it misses
    plain = _admit(Gate(load_skill("finance")), replay)
    assert [plain[i][1] for i in sem] == ["accepted"] * len(sem)
    # resume in the middle: a new gate registers the committed samples again, in canonical order
    half = len(replay) // 2
    first = _admit(Gate(skill), replay[:half])
    resumed = Gate(skill)
    resumed.add_many(_accepted(replay[:half], first))
    assert first + _admit(resumed, replay[half:]) == whole


def test_semantic_dedup_is_off_in_the_shipped_skills_and_checked_in_filters(tmp_path):
    for name in ("general", "finance", "law", "math", "medical", "science"):
        assert load_skill(name).filters.dedup.semantic_threshold is None
    with pytest.raises(SkillError, match="semantic_threshold"):
        load_skill(semantic_skill(tmp_path / "bad", threshold=1.5))


def test_run_with_semantic_dedup_records_the_rule(tmp_path, cache):
    skill = semantic_skill(tmp_path / "finance")
    out = tmp_path / "run"
    env = {"PREPBENCH_EMBED_CACHE": str(cache)}
    args = ("run", "--skill", str(skill), "--corpus", str(SLICE), "--out", str(out), "--quiet", "--no-revisit")
    p = run_cli(*args, env_extra=env)
    assert p.returncode == 0, p.stderr
    led = RunFolder.open(out, readonly=True)
    rejections, accepted = led.rejection_counts(), [s["sample_id"] for s in led.accepted_samples()]
    led.close()
    assert rejections.get("semantic_duplicate", 0) >= 2, rejections
    p = run_cli(*args, env_extra=env)  # a finished run resumes to the same samples
    assert p.returncode == 0 and "resumed" in p.stdout
    led = RunFolder.open(out, readonly=True)
    assert [s["sample_id"] for s in led.accepted_samples()] == accepted
    led.close()
