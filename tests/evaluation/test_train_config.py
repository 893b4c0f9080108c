"""Training configs: recipes, LlamaFactory argument/dataset_info checks, the Dolly mix and reference."""

from __future__ import annotations

import json

import pytest
import yaml

from prepbench.evaluation import train as T
from prepbench.tools.errors import PrepbenchError

from cli_helpers import error_lines, run_cli
from training_fixtures import DOLLY, make_run


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfg")
    run = make_run(root, n=120)
    man = T.write_configs([run], "dataprep-construction", "meta-llama/Llama-3.1-8B", root / "out", dolly_limit=300)
    return root, run, man


def test_shipped_recipes_have_the_published_hyper_parameters():
    assert {"dataprep-construction", "oda-llama3.1-8b", "oda-qwen2.5-7b"} <= set(T.list_recipes())
    dp = T.load_recipe("dataprep-construction")["llamafactory"]
    assert (dp["cutoff_len"], dp["per_device_train_batch_size"], dp["gradient_accumulation_steps"]) == (4096, 4, 4)
    assert (dp["learning_rate"], dp["num_train_epochs"], dp["lr_scheduler_type"], dp["warmup_ratio"]) == (
        1e-5,
        3.0,
        "cosine",
        0.1,
    )
    assert dp["bf16"] is True and T.load_recipe("dataprep-construction")["deepspeed"] == "zero3"
    ll = T.load_recipe("oda-llama3.1-8b")["llamafactory"]
    qw = T.load_recipe("oda-qwen2.5-7b")["llamafactory"]
    assert (ll["learning_rate"], ll["warmup_ratio"]) == (2e-5, 0.03)
    assert (qw["learning_rate"], qw["warmup_ratio"]) == (5e-6, 0.1)
    for r in (dp, ll, qw):
        assert r["stage"] == "sft" and r["finetuning_type"] == "full" and r["cutoff_len"] == 4096
    assert ll["enable_liger_kernel"] is True and qw["enable_liger_kernel"] is True


def test_argument_names_come_from_llamafactory_sources():
    names = T.llamafactory_arg_names()
    assert names["cutoff_len"] == "DataArguments"
    assert names["enable_liger_kernel"] == "ModelArguments"
    assert names["finetuning_type"] == "FinetuningArguments"
    assert names["warmup_ratio"] == "TrainingArguments" and names["deepspeed"] == "TrainingArguments"
    assert names["max_new_tokens"] == "GeneratingArguments"
    assert "learning_rat" not in names
    for spec in T.llamafactory_schema()["classes"].values():
        assert "LLaMA-Factory" in spec["source"] or "transformers" in spec["source"]


def test_written_configs_match_llamafactory_schema(configs):
    root, run, man = configs
    out = root / "out"
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    T.validate_dataset_info(info, "dataset_info.json")
    run_entry = info["prepbench_gsm8k_run"]
    assert run_entry["formatting"] == "sharegpt"
    assert run_entry["columns"] == {"messages": "conversations"}
    assert run_entry["tags"]["user_tag"] == "human" and run_entry["tags"]["assistant_tag"] == "gpt"
    assert info["dolly15k"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
    mix = yaml.safe_load(open(man["mix_config"]))
    ref = yaml.safe_load(open(man["reference_config"]))
    known = T.llamafactory_arg_names()
    assert set(mix) <= set(known) and set(ref) <= set(known)
    assert mix["dataset"] == "prepbench_gsm8k_run,dolly15k" and ref["dataset"] == "dolly15k"
    assert mix["template"] == "llama3" and mix["model_name_or_path"] == "meta-llama/Llama-3.1-8B"
    assert mix["output_dir"] != ref["output_dir"]
    ds = json.loads(open(mix["deepspeed"]).read())
    assert ds["zero_optimization"]["stage"] == 3
    # the data files LlamaFactory will read exist and hold the right rows
    run_rows = [x for x in (out / "data" / run_entry["file_name"]).read_text().split("\n") if x]
    assert len(run_rows) == 120 == man["runs"][0]["rows"]
    assert run_rows[0] == (run / "export" / "sharegpt.jsonl").read_text().split("\n")[0]


def test_dolly_context_becomes_alpaca_input(configs):
    root, _, man = configs
    raw = [json.loads(line) for line in DOLLY.read_text().split("\n")[:300]]
    conv = [json.loads(line) for line in (root / "out" / "data" / "dolly15k.alpaca.jsonl").read_text().split("\n") if line]
    assert len(conv) == 300 == man["dolly"]["rows"]
    with_ctx = next(i for i, r in enumerate(raw) if r["context"])
    assert conv[with_ctx] == {
        "instruction": raw[with_ctx]["instruction"],
        "input": raw[with_ctx]["context"],
        "output": raw[with_ctx]["response"],
    }
    no_ctx = next(i for i, r in enumerate(raw) if not r["context"])
    assert conv[no_ctx]["input"] == ""


def test_template_by_family_and_unknown_family_needs_template(tmp_path):
    assert T.template_for("meta-llama/Meta-Llama-3.1-8B-Instruct") == "llama3"
    assert T.template_for("Qwen/Qwen2.5-7B") == "qwen"
    assert T.template_for("/models/my-own-model") is None
    run = make_run(tmp_path, n=5)
    with pytest.raises(PrepbenchError, match="--template"):
        T.write_configs([run], "dataprep-construction", "/models/my-own-model", tmp_path / "o", dolly_limit=5)


def test_unknown_keys_and_bad_values_are_named():
    with pytest.raises(PrepbenchError, match="unknown LlamaFactory argument 'learning_rat'"):
        T.validate_training_config({"learning_rat": 1e-5}, "x.yaml", require=())
    with pytest.raises(PrepbenchError, match="'finetuning_type': 'qlora'"):
        T.validate_training_config({"finetuning_type": "qlora"}, "x.yaml", require=())
    with pytest.raises(PrepbenchError, match="missing LlamaFactory argument 'template'"):
        T.validate_training_config(
            {
                "model_name_or_path": "m",
                "stage": "sft",
                "finetuning_type": "full",
                "dataset": "d",
                "dataset_dir": "x",
                "output_dir": "o",
            },
            "x.yaml",
        )
    with pytest.raises(PrepbenchError, match="dataset 'd': field 'columns.messages' is not a alpaca column"):
        T.validate_dataset_info({"d": {"file_name": "f.jsonl", "columns": {"messages": "conversations"}}}, "di.json")
    with pytest.raises(PrepbenchError, match="unknown field 'tags.speaker_tag'"):
        T.validate_dataset_info({"d": {"file_name": "f", "formatting": "sharegpt", "tags": {"speaker_tag": "x"}}}, "di.json")


def test_bad_recipe_file_is_rejected_with_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("name: r\nllamafactory:\n  stage: sft\n  finetuning_type: full\n  lerning_rate: 1.0e-5\n")
    with pytest.raises(PrepbenchError, match=r"r.yaml: unknown LlamaFactory argument 'lerning_rate'"):
        T.load_recipe(str(bad))
    with pytest.raises(PrepbenchError, match="unknown recipe 'nope'"):
        T.load_recipe("nope")


def test_bad_run_exports_name_file_and_line(tmp_path):
    run = make_run(tmp_path, n=3)
    lines = [x for x in (run / "export" / "sharegpt.jsonl").read_text().split("\n") if x]
    lines[1] = json.dumps({"conversations": [{"from": "human", "value": "q"}]})
    (run / "export" / "sharegpt.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepbenchError, match=r"sharegpt.jsonl:2: field 'conversations'"):
        T.read_run_export(run)
    with pytest.raises(PrepbenchError, match="run folder not found"):
        T.read_run_export(tmp_path / "nope")


def test_cli_train_config_and_error(tmp_path):
    run = make_run(tmp_path, n=10)
    p = run_cli(
        "train",
        "config",
        str(run),
        "--base",
        "Qwen/Qwen2.5-7B",
        "--recipe",
        "oda-qwen2.5-7b",
        "--dolly-limit",
        "20",
        "--out",
        str(tmp_path / "cfg"),
    )
    assert p.returncode == 0, p.stderr
    mix = yaml.safe_load((tmp_path / "cfg" / "mix.yaml").read_text())
    assert mix["template"] == "qwen" and mix["learning_rate"] == 5e-6 and mix["enable_liger_kernel"] is True
    p = run_cli("train", "config", str(run), "--base", "Qwen/Qwen2.5-7B", "--recipe", "nope")
    assert p.returncode == 2
    assert error_lines(p)[-1].startswith("error: unknown recipe 'nope'")
    assert "Traceback" not in p.stderr
