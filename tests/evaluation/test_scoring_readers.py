"""Dataset readers: every format gives the same sample text; run folders, datasets folders, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from prepbench.evaluation.readers import parse_field_mapping, read_samples, subsample
from prepbench.tools.errors import PrepbenchError

from cli_helpers import REPO, SHARED

DATA = str(SHARED / "datasets")
FIN_EXAMPLES = str(REPO / "skills" / "finance" / "examples" / "finance.jsonl")


@pytest.fixture(scope="module")
def gsm_rows():
    return [json.loads(line) for line in open(f"{DATA}/gsm8k/train.jsonl").read().split("\n")[:5]]


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_all_row_formats_give_the_whole_conversation(tmp_path, gsm_rows):
    want = [r["question"] + "\n\n" + r["answer"] for r in gsm_rows]
    fmts = {
        "fields.jsonl": gsm_rows,
        "sharegpt.jsonl": [
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": r["question"]},
                    {"from": "gpt", "value": r["answer"]},
                ]
            }
            for r in gsm_rows
        ],
        "openai.jsonl": [
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": r["question"]},
                    {"role": "assistant", "content": r["answer"]},
                ]
            }
            for r in gsm_rows
        ],
        "alpaca.jsonl": [{"instruction": r["question"], "input": "", "output": r["answer"]} for r in gsm_rows],
    }
    for name, rows in fmts.items():
        got = read_samples(_write(tmp_path / name, rows))
        assert [s.text for s in got] == want, name
        assert [s.response for s in got] == [r["answer"] for r in gsm_rows]
    # a JSON array works too, and the system prompt is kept apart from the text
    (tmp_path / "arr.json").write_text(json.dumps(fmts["sharegpt.jsonl"]))
    s = read_samples(tmp_path / "arr.json")
    assert s[0].system == "Be brief." and s[0].text == want[0]


def test_multi_turn_and_alpaca_input(tmp_path, gsm_rows):
    q0, a0, q1, a1 = gsm_rows[0]["question"], gsm_rows[0]["answer"], gsm_rows[1]["question"], gsm_rows[1]["answer"]
    conv = {
        "conversations": [
            {"from": "human", "value": q0},
            {"from": "gpt", "value": a0},
            {"from": "human", "value": q1},
            {"from": "gpt", "value": a1},
        ]
    }
    s = read_samples(_write(tmp_path / "m.jsonl", [conv]))[0]
    assert s.text == "\n\n".join([q0, a0, q1, a1]) and s.instruction == q0 + "\n\n" + q1
    dolly = [json.loads(x) for x in open(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl").read().split("\n")[:20]]
    ctx = next(r for r in dolly if r["context"])
    a = read_samples(
        _write(tmp_path / "a.jsonl", [{"instruction": ctx["instruction"], "input": ctx["context"], "output": ctx["response"]}])
    )[0]
    assert a.instruction == ctx["instruction"] + "\n" + ctx["context"]


def test_real_dataset_files_detect_their_fields():
    dolly = read_samples(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl")
    assert len(dolly) == 15015 and dolly[0].id == "0"
    row0 = json.loads(open(f"{DATA}/dolly/databricks-dolly-15k-nocategory.jsonl").readline())
    assert dolly[0].text == "\n\n".join(x for x in (row0["instruction"], row0["context"], row0["response"]) if x)
    pub = read_samples(f"{DATA}/pubmedqa/pqal_train_dev.jsonl")  # has U+2028 inside strings
    assert len(pub) == 500
    med = read_samples(f"{DATA}/medqa_usmle/test.jsonl")
    assert len(med) == 1273 and "A: " in med[0].instruction
    assert len(read_samples(f"{DATA}/math/math_test.jsonl")) == 5000


def test_field_mapping(tmp_path, gsm_rows):
    m = parse_field_mapping("instruction=question,response=answer")
    assert m == {"instruction": ["question"], "response": ["answer"]}
    s = read_samples(f"{DATA}/pubmedqa/pqal_train_dev.jsonl", fields="instruction=QUESTION,response=final_decision")
    assert s[0].response in ("yes", "no", "maybe")
    with pytest.raises(PrepbenchError, match="needs both"):
        parse_field_mapping("instruction=question")
    with pytest.raises(PrepbenchError, match=r"g\.jsonl:1: field 'solution' \(mapped to response\) is missing"):
        read_samples(_write(tmp_path / "g.jsonl", gsm_rows), fields="instruction=question,response=solution")


def test_run_folder_reads_its_ledger_else_a_copied_export(tmp_path):
    from prepbench.tools.chunking import Chunk
    from prepbench.tools.ledger import ChunkOutcome, RunFolder, SampleRecord

    ex = [json.loads(x) for x in open(FIN_EXAMPLES).read().split("\n") if x.strip()][:4]
    run = tmp_path / "run"
    led = RunFolder(run)
    chunk = Chunk(
        chunk_id=ex[0]["chunk_id"],
        doc_id="d1",
        doc_path="ch7.md",
        index=0,
        heading_path=["7"],
        start_line=1,
        end_line=9,
        text=" ".join(ex[0]["evidence"]),
    )
    led.initialize({"skill": "finance"}, [{"doc_id": "d1", "rel_path": "ch7.md"}], [chunk])
    led.record_chunk(
        ChunkOutcome(
            chunk.chunk_id,
            "kept",
            samples=[SampleRecord(e["sample_type"], {**e, "chunk_id": chunk.chunk_id}, "accepted") for e in ex[:3]]
            + [SampleRecord(ex[3]["sample_type"], {**ex[3], "chunk_id": chunk.chunk_id}, "rejected", rule="length")],
        )
    )
    led.close()
    got = read_samples(run)
    assert [s.instruction for s in got] == [e["question"] for e in ex[:3]]
    assert [s.response for s in got] == [e["answer"] for e in ex[:3]]
    # the ledger is the one source of truth: a stale export beside it is not what is scored
    (run / "export").mkdir()
    _write(
        run / "export" / "sharegpt.jsonl",
        [{"conversations": [{"from": "human", "value": ex[1]["question"]}, {"from": "gpt", "value": ex[1]["answer"]}]}],
    )
    assert [s.response for s in read_samples(run)] == [e["answer"] for e in ex[:3]]
    # a copied export without its ledger is read from the export
    copy = tmp_path / "copy"
    shutil.copytree(run / "export", copy / "export")
    got = read_samples(copy, fmt="run")
    assert len(got) == 1 and got[0].response == ex[1]["answer"]


def test_hf_datasets_folder(tmp_path, gsm_rows):
    import datasets

    datasets.disable_progress_bars()
    datasets.Dataset.from_list(gsm_rows).save_to_disk(str(tmp_path / "ds"))
    assert [s.response for s in read_samples(tmp_path / "ds")] == [r["answer"] for r in gsm_rows]
    dd = datasets.DatasetDict({"a": datasets.Dataset.from_list(gsm_rows[:2]), "b": datasets.Dataset.from_list(gsm_rows[2:])})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(PrepbenchError, match=r"choose a split with --split \(one of \['a', 'b'\]\)"):
        read_samples(tmp_path / "dd")
    assert len(read_samples(tmp_path / "dd", split="b")) == 3


def test_bad_inputs_name_file_and_line(tmp_path, gsm_rows):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(gsm_rows[0]) + "\n" + json.dumps(gsm_rows[1])[:-5] + "\n")
    with pytest.raises(PrepbenchError, match=r"bad\.jsonl:2: not valid JSON"):
        read_samples(bad)
    role = _write(tmp_path / "role.jsonl", [{"conversations": [{"from": "narrator", "value": gsm_rows[0]["question"]}]}])
    with pytest.raises(PrepbenchError, match=r"role\.jsonl:1: conversations\[0\]\.from = 'narrator'"):
        read_samples(role)
    unk = _write(tmp_path / "unk.jsonl", [{"foo": gsm_rows[0]["question"]}])
    with pytest.raises(PrepbenchError, match=r"unk\.jsonl:1: cannot tell the format"):
        read_samples(unk)
    with pytest.raises(PrepbenchError, match="no such file"):
        read_samples(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PrepbenchError, match="no samples found"):
        read_samples(tmp_path / "empty.jsonl")
    assert "\n" not in str(PrepbenchError(f"{bad}:2: not valid JSON"))


def test_subsample_is_seeded_and_ordered():
    items = list(range(100))
    a, b = subsample(items, 10, 42), subsample(items, 10, 42)
    assert a == b == sorted(a) and len(set(a)) == 10
    assert subsample(items, 10, 43) != a and subsample(items, 200, 42) == items
