"""The generation modes end to end: real seeds from ``../shared/datasets``, the real
``langchain-openai`` client over HTTP to the local test server, the shipped skills' prompts and
gate, the ledger and the LlamaFactory export.

- instance mode on GSM8K train (math skill, decontaminated against GSM8K and MATH-500 test);
- response mode on Dolly instructions (general skill);
- enhance mode on Alpaca instances (general skill), where placeholders left in letters are
  rejected and the slot is asked again with the rule as feedback;
- the seed-aware gate: a copied demonstration (``seed_duplicate``), a GSM8K test item
  (``ngram_overlap``) and an unparseable reply (``reply_format``) are rejected and retried,
  then recorded with their rule.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from prepbench.agents.modes import run_generate, slot_prompt
from prepbench.evaluation.readers import read_seeds
from prepbench.tools.errors import PrepbenchError
from prepbench.tools.ledger import RunFolder
from prepbench.tools.skills import load_skill
from prepbench.tools.slots import GenerateOptions, plan_slots, slot_input
from prepbench.tools.validate import Gate

from cli_helpers import SHARED, error_lines, run_cli
from llm_messages import Reply
from llm_modes import DEMO_RE, PLACEHOLDER_RE
from llm_replies import _wrap_structured

KEY = "sk-prepbench-modes-key-31c9"
DATA = SHARED / "datasets"
GSM8K_TRAIN = DATA / "gsm8k" / "train.jsonl"
DOLLY = DATA / "dolly" / "databricks-dolly-15k-nocategory.jsonl"
ALPACA = DATA / "alpaca" / "alpaca_data_5000.jsonl"


def options(server, out: Path, mode: str, seeds: Path, skill: str, **kw) -> GenerateOptions:
    return GenerateOptions(
        mode=mode,
        seeds=str(seeds),
        skill=skill,
        out=str(out),
        model="openai:test-model",
        model_options={"base_url": server.url + "/v1", "api_key": KEY, "concurrency": 4},
        concurrency=4,
        **kw,
    )


def ngram_spec(tmp_path: Path, **files: Path):
    """The n-gram decontamination of ``name=test file`` benchmarks, indexes cached under ``tmp_path``."""
    from prepbench.tools.decontaminate import DecontaminationSpec, TestSet

    return DecontaminationSpec({k: TestSet(v) for k, v in files.items()}, embed_threshold=None, cache=tmp_path / "c" / "e.sqlite")


def ledger_view(out: Path) -> dict:
    run = RunFolder.open(out, readonly=True)
    try:
        return {
            "config": run.get_config(),
            "chunks": run.chunk_rows(),
            "accepted": list(run.accepted_samples()),
            "rejected": run.sample_rows(status="rejected"),
            "calls": run.call_rows(),
        }
    finally:
        run.close()


def check_export(out: Path, n: int) -> None:
    """The export is LlamaFactory-ready: every dataset_info entry points at a file of ``n`` rows in its format."""
    exp = out / "export"
    info = json.loads((exp / "dataset_info.json").read_text())
    assert {k.rsplit("_", 1)[1] for k in info} == {"alpaca", "sharegpt", "openai"}
    for entry in info.values():
        rows = [json.loads(x) for x in (exp / entry["file_name"]).read_text().splitlines()]
        assert len(rows) == n
        if "conversations" in entry["columns"].values():
            tags = entry["tags"]
            for r in rows:
                assert [m[tags["role_tag"]] for m in r["conversations"]] == [tags["user_tag"], tags["assistant_tag"]]
                assert all(m[tags["content_tag"]].strip() for m in r["conversations"])
        elif entry["columns"].get("prompt"):
            assert all(r["instruction"].strip() and r["output"].strip() and r["input"] == "" for r in rows)


def test_instance_mode_on_gsm8k_train_through_the_cli(llm_server, tmp_path):
    out = tmp_path / "run"
    args = ["generate", "--mode", "instance", "--seeds", str(GSM8K_TRAIN), "--n", "24", "--skill", "math"]
    args += ["--model", "openai:test-model", "--base-url", llm_server.url + "/v1", "--out", str(out), "-q"]
    args += ["--run-seed", "7", "--decontaminate", "gsm8k,math500", "--concurrency", "4"]
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})
    assert p.returncode == 0, p.stderr + p.stdout
    v = ledger_view(out)
    assert v["config"]["mode"] == "instance" and set(v["config"]["decontaminate"]["benchmarks"]) == {"gsm8k", "math500"}
    assert len(v["chunks"]) == 24 and all(c["status"] == "kept" for c in v["chunks"])
    # each slot's input is the draw of the run seed: re-planned, the same demonstrations and themes
    skill = load_skill("math")
    # a seed sharing a 13-gram with a GSM8K or MATH-500 test item is left out of the draws
    spec = ngram_spec(tmp_path, gsm8k=DATA / "gsm8k" / "test.jsonl", math500=DATA / "math" / "math500_test.jsonl")
    matcher = spec.build().ngram_match
    seeds = [s for s in read_seeds(GSM8K_TRAIN) if not matcher(f"{s.instruction} {s.response}")]
    assert v["config"]["seeds_contaminated"] == 7473 - len(seeds) > 0
    planned = plan_slots("instance", seeds, 24, 7, skill, "d", "train.jsonl")
    assert [c.text for c in planned] == [c["text"] for c in v["chunks"]]
    slots = [json.loads(c["text"]) for c in v["chunks"]]
    assert all(len(s["demonstrations"]) == 3 for s in slots)
    assert len({s["theme"] for s in slots}) >= 10 and all(s["theme"] in skill.coverage.modes.themes for s in slots)
    # the accepted instances: the math skill's type, the demonstrations as evidence, one boxed answer at the end
    fresh = Gate(skill)
    for s, slot in zip(v["accepted"], slots):
        assert s["evidence"] == [d["id"] for d in slot["demonstrations"]] and s["theme"] == slot["theme"]
        assert s["response"].rstrip().endswith("}") and s["response"].count("\\boxed{") == 1
        sample = {k: x for k, x in s.items() if k != "sample_id"}
        assert fresh.check(sample, None).ok
        fresh.add(sample)
    # one request per slot, each carrying its slot's demonstrations; guided output asked for
    assert llm_server.count() == 24
    prompts = [m["content"] for r in llm_server.requests for m in r["body"]["messages"]]
    assert sorted(prompts) == sorted(slot_prompt(skill, s) for s in slots)
    assert all(r["body"]["response_format"]["type"] == "json_schema" for r in llm_server.requests)
    check_export(out, 24)
    assert not any(KEY.encode() in f.read_bytes() for f in out.rglob("*") if f.is_file())
    # the dataset card names the mode and the seed file, with its folder's licence and its SHA-256
    import hashlib

    card = (out / "export" / "README.md").read_text()
    assert "generation mode `instance` from seed data" in card and "## Seed data" in card and "license: mit" in card
    assert hashlib.sha256(GSM8K_TRAIN.read_bytes()).hexdigest() in card
    # status and export read a generation run like any run
    st = run_cli("status", str(out), "--json")
    cov = json.loads(st.stdout)["coverage"]
    assert (
        st.returncode == 0
        and cov["unit"] == "slot"
        and cov["complete"]
        and cov["sample_types"] == {"instruction_response": {"accepted": 24, "share": 1.0}}
    )
    before = (out / "export" / "sharegpt.jsonl").read_bytes()
    assert run_cli("export", str(out), "--format", "sharegpt,alpaca,openai,samples").returncode == 0
    assert (out / "export" / "sharegpt.jsonl").read_bytes() == before
    # a finished run resumes with nothing to do; a changed run seed is refused with what changed
    p = run_cli(*args, env_extra={"OPENAI_API_KEY": KEY})
    assert p.returncode == 0 and llm_server.count() == 24
    p = run_cli(*[a if a != "7" else "8" for a in args], env_extra={"OPENAI_API_KEY": KEY})
    lines = error_lines(p)
    assert p.returncode == 2 and len(lines) == 1 and "run_seed: 7 -> 8" in lines[0] and "--fresh" in lines[0]


def test_response_mode_on_dolly_instructions(llm_server, tmp_path):
    out = tmp_path / "run"
    result = run_generate(options(llm_server, out, "response", DOLLY, "general", n=20, run_seed=3), read_seeds(DOLLY))
    assert result["coverage"]["unit"] == "slot" and result["coverage"]["complete"]
    v = ledger_view(out)
    dolly = [json.loads(x) for x in DOLLY.read_text().splitlines()]
    picked = sorted(random.Random("3/response").sample(range(len(dolly)), 20))
    assert [json.loads(c["text"])["seed"]["id"] for c in v["chunks"]] == [f"{DOLLY.name}#{i}" for i in picked]
    assert len(v["accepted"]) >= 18
    for s in v["accepted"]:
        row = dolly[int(s["evidence"][0].rsplit("#", 1)[1])]
        # the seed's instruction (with its context) is kept; only the response was generated
        assert s["instruction"] == "\n\n".join(x for x in (row["instruction"], row["context"]) if x.strip())
        assert s["response"] != row["response"] and s["mode"] == "response"
    assert {r["rule"] for r in v["rejected"]} <= {"instance_length", "template_placeholder"}
    check_export(out, len(v["accepted"]))


def test_enhance_mode_on_alpaca_retries_placeholders(llm_server, tmp_path):
    # real Alpaca records: letters with a "[Your Name]"-style placeholder, and plain ones
    rows = ALPACA.read_text().splitlines()
    letters = [x for x in rows if PLACEHOLDER_RE.search(json.loads(x)["output"])][:4]
    plain = [x for x in rows if not PLACEHOLDER_RE.search(x)][:12]
    seeds_file = tmp_path / "alpaca_subset.jsonl"
    seeds_file.write_text("\n".join(letters + plain) + "\n")
    out = tmp_path / "run"
    result = run_generate(options(llm_server, out, "enhance", seeds_file, "general"), read_seeds(seeds_file))
    v = ledger_view(out)
    assert len(v["chunks"]) == 16 and result["coverage"]["chunks"]["kept"] == 16
    # the placeholder letters were rejected once, then accepted with the placeholder filled
    rejected = Counter(r["chunk_id"] for r in v["rejected"])
    assert {r["rule"] for r in v["rejected"]} == {"template_placeholder"} and len(rejected) == 4
    assert all(n == 1 for n in rejected.values())
    retry_prompts = [m["content"] for r in llm_server.requests for m in r["body"]["messages"] if "was rejected:" in m["content"]]
    assert len(retry_prompts) == 4 and all("template_placeholder" in p for p in retry_prompts)
    run = RunFolder.open(out, readonly=True)
    attempts = {r["chunk_id"]: r["attempts"] for r in run.sample_rows(status="accepted")}
    run.close()
    assert sorted(attempts[c] for c in rejected) == [2, 2, 2, 2]
    calls = Counter(c["chunk_id"] for c in v["calls"])
    assert all(calls[c] == 2 for c in rejected) and sum(calls.values()) == 20
    check_export(out, 16)


def test_the_seed_aware_gate_rejects_copies_and_test_items(llm_server, tmp_path):
    """Slot 0 copies its first demonstration, slot 1 writes a GSM8K test item, slot 2 never replies
    with JSON: each is asked again with the rule as feedback; slots 0 and 1 then succeed, slot 2
    is recorded rejected after its retries. Every other slot is accepted at once."""
    test_item = json.loads((DATA / "gsm8k" / "test.jsonl").read_text().splitlines()[5])
    skill = load_skill("math")
    spec = ngram_spec(tmp_path, gsm8k=DATA / "gsm8k" / "test.jsonl")
    matcher = spec.build().ngram_match
    seeds = [s for s in read_seeds(GSM8K_TRAIN) if not matcher(f"{s.instruction} {s.response}")]
    slots = [slot_input(c) for c in plan_slots("instance", seeds, 6, 11, skill, "d", "train.jsonl")]
    first = {s["demonstrations"][0]["instruction"]: i for i, s in enumerate(slots)}

    def scripted(req):
        text = req.messages[0].text
        i = first.get(DEMO_RE.search(text).group("q"))
        if "was rejected:" in text and i in (0, 1):
            return None
        d = slots[0]["demonstrations"][0]
        if i == 0:  # the demonstration with its answer re-marked as the math skill wants: a near copy
            response = d["response"].replace("#### ", "\\boxed{") + "}"
            return _wrap_structured(req, {"instruction": d["instruction"], "response": response})
        if i == 1:
            answer = test_item["answer"].split("####")[-1].strip()
            return _wrap_structured(req, {"instruction": test_item["question"], "response": f"It follows.\n\\boxed{{{answer}}}"})
        if i == 2:
            return Reply(content="I would rather describe the problem in words.")
        return None

    def reply(req):
        from llm_server import smart_reply

        return scripted(req) or smart_reply(req)

    llm_server.add_rule("<demonstration 1>", reply)
    out = tmp_path / "run"
    opts = options(llm_server, out, "instance", GSM8K_TRAIN, "math", n=6, run_seed=11, slot_retries=2, decontamination=spec)
    run_generate(opts, seeds)
    v = ledger_view(out)
    by_slot = {c["idx"]: c for c in v["chunks"]}
    rules = {}
    for r in v["rejected"]:
        rules.setdefault(r["chunk_idx"], []).append((r["rule"], r["detail"]))
    assert [r for r, _ in rules[0]] == ["seed_duplicate"] and "a near-duplicate (Jaccard ~" in rules[0][0][1]
    assert rules[0][0][1].endswith(f"of seed {slots[0]['demonstrations'][0]['id']}")
    assert rules[1][0][0] == "ngram_overlap" and "gsm8k test item test.jsonl:6" in rules[1][0][1]
    assert [r for r, _ in rules[2]] == ["reply_format"] * 3
    assert by_slot[0]["status"] == by_slot[1]["status"] == "kept"
    assert by_slot[2]["status"] == "skipped" and by_slot[2]["skip_reason"] == "all_rejected"
    assert "all 3 candidates rejected: reply_format x3" in by_slot[2]["detail"]
    assert all(by_slot[i]["status"] == "kept" and i not in rules for i in range(3, 6))
    assert len(v["accepted"]) == 5


def test_math_seeds_leave_out_the_math500_problems(llm_server, tmp_path):
    """MATH seeds: the MATH test file with --decontaminate math500 keeps PRM800K's 4,500 training problems
    (and drops the few others that share a 13-gram with a MATH-500 item)."""
    math_test = DATA / "math" / "math_test.jsonl"
    out = tmp_path / "run"
    spec = ngram_spec(tmp_path, math500=DATA / "math" / "math500_test.jsonl")
    opts = options(llm_server, out, "instance", math_test, "math", n=8, run_seed=2, decontamination=spec)
    result = run_generate(opts, read_seeds(math_test))
    v = ledger_view(out)
    assert 500 <= v["config"]["seeds_contaminated"] < 1000 and v["config"]["n_seeds"] == 5000 - v["config"]["seeds_contaminated"]
    math500 = {json.loads(x)["problem"] for x in (DATA / "math" / "math500_test.jsonl").read_text().splitlines()}
    demos = [d["instruction"] for c in v["chunks"] for d in json.loads(c["text"])["demonstrations"]]
    assert len(demos) == 24 and not math500 & set(demos)
    assert result["coverage"]["chunks"]["kept"] >= 6


def test_bad_generate_inputs_are_one_line_errors(llm_server, tmp_path):
    base = ["generate", "--seeds", str(GSM8K_TRAIN), "--out", str(tmp_path / "r"), "--base-url", llm_server.url + "/v1"]
    cases = [
        (["--mode", "instance", "--model", "openai:m"], "--n: instance mode needs"),
        (["--mode", "bogus", "--model", "openai:m", "--n", "2"], "--mode 'bogus'"),
        (["--mode", "response", "--model", "extractive", "--n", "2"], "needs a chat model"),
        (["--mode", "response", "--model", "openai:m", "--n", "2", "--decontaminate", "nosuch"], "unknown benchmark 'nosuch'"),
        (
            ["--mode", "response", "--model", "openai:m", "--n", "2", "--skill", "finance", "--seed-fields", "instruction=q"],
            "--fields",
        ),
    ]
    for extra, want in cases:
        p = run_cli(*base, *extra, env_extra={"OPENAI_API_KEY": KEY})
        lines = error_lines(p)
        assert p.returncode == 2 and len(lines) == 1 and want in lines[0], (extra, lines)
    assert llm_server.count() == 0
    with pytest.raises(PrepbenchError, match="no seed has a response"):
        run_generate(
            options(llm_server, tmp_path / "r2", "enhance", GSM8K_TRAIN, "general", n=2),
            [read_seeds(DOLLY)[0].__class__("x:1", "q")],
        )
