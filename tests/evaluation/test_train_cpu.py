"""CPU training path: chat-template masking, loss decrease on a repeated batch, LlamaFactory dispatch."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
import yaml

from prepbench.evaluation import train as T
from prepbench.tools.errors import PrepbenchError

from training_fixtures import gsm8k_rows, make_run, make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def _config(tmp_path, model, rows, **extra):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    with open(data / "qa.jsonl", "w") as f:
        for r in rows:
            f.write(
                json.dumps({"conversations": [{"from": "human", "value": r["question"]}, {"from": "gpt", "value": r["answer"]}]})
                + "\n"
            )
    (data / "dataset_info.json").write_text(
        json.dumps(
            {
                "qa": {
                    "file_name": "qa.jsonl",
                    "formatting": "sharegpt",
                    "columns": {"messages": "conversations"},
                    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
                }
            }
        )
    )
    cfg = {
        "model_name_or_path": str(model),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": "qa",
        "dataset_dir": str(data),
        "template": "default",
        "cutoff_len": 256,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 3e-3,
        "num_train_epochs": 100.0,
        "lr_scheduler_type": "constant",
        "warmup_ratio": 0.0,
        "logging_steps": 1,
        "output_dir": str(tmp_path / "saves"),
        "bf16": True,
        **extra,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_prompt_tokens_are_masked_with_the_llamafactory_default_template(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    tok.chat_template = T.chat_templates()["default"]["chat_template"]
    r = gsm8k_rows(1)[0]
    msgs = [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]
    enc = T.encode_conversation(tok, msgs, cutoff_len=4096)
    learned = [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != -100]
    prompt = [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab == -100]
    # LlamaFactory "default": "Human: {q}</s>\nAssistant:" is the prompt, "{a}</s>\n" is learned
    assert tok.decode(prompt) == f"Human: {r['question']}</s>\nAssistant:"
    assert tok.decode(learned) == f"{r['answer']}</s>\n"
    assert enc["labels"][: len(prompt)] == [-100] * len(prompt)
    short = T.encode_conversation(tok, msgs, cutoff_len=40)  # long prompt cut, answer kept (infer_seqlen)
    assert len(short["input_ids"]) == 40
    s_len, t_len = T.infer_seqlen(len(prompt), len(learned), 40)
    assert t_len > 0 and sum(lab != -100 for lab in short["labels"]) == t_len
    assert short["input_ids"][s_len:] == learned[:t_len]


def test_infer_seqlen_splits_the_budget_like_llamafactory():
    assert T.infer_seqlen(100, 10, 50) == (40, 10)  # short answer kept whole
    assert T.infer_seqlen(10, 100, 50) == (10, 40)  # short prompt kept whole
    assert T.infer_seqlen(60, 40, 50) == (30, 20)  # both cut in proportion
    assert T.infer_seqlen(5, 5, 50) == (5, 5)


def test_loss_goes_down_on_a_repeated_batch(tmp_path, tiny):
    cfg = _config(tmp_path, tiny, gsm8k_rows(4))
    summary = T.run_training(cfg, max_steps=25, backend="cpu")
    losses = summary["losses"]
    assert summary["backend"] == "cpu-transformers" and summary["steps"] == 25 and len(losses) == 25
    assert losses[-1] < losses[0] - 1.0, losses
    assert summary["ignored_gpu_options"] == ["bf16"]
    saved = tmp_path / "saves"
    assert (saved / "config.json").is_file() and (saved / "prepbench_train.json").is_file()
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(saved).chat_template == T.chat_templates()["default"]["chat_template"]


def test_overrides_are_checked_and_unsupported_modes_refused(tmp_path, tiny):
    cfg = _config(tmp_path, tiny, gsm8k_rows(2))
    assert T.parse_overrides(["learning_rate=1e-3", "bf16=false"]) == {"learning_rate": 1e-3, "bf16": False}
    with pytest.raises(PrepbenchError, match="unknown LlamaFactory argument 'lr'"):
        T.run_training(cfg, overrides={"lr": 1e-3}, backend="cpu")
    with pytest.raises(PrepbenchError, match="finetuning_type 'full' only"):
        T.run_training(cfg, overrides={"finetuning_type": "lora"}, backend="cpu")
    with pytest.raises(PrepbenchError, match="'dataset': 'nope' is not in"):
        T.run_training(cfg, overrides={"dataset": "nope"}, backend="cpu")


def test_llamafactory_cli_is_called_when_installed(tmp_path, tiny, monkeypatch):
    cfg = _config(tmp_path, tiny, gsm8k_rows(2))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.json"
    fake = bindir / "llamafactory-cli"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    out = T.run_training(cfg, max_steps=7, overrides={"learning_rate": 1e-4})
    assert out["backend"] == "llamafactory"
    assert json.loads(log.read_text()) == ["train", str(cfg), "learning_rate=0.0001", "max_steps=7"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PrepbenchError, match="llamafactory-cli is not on PATH"):
        T.run_training(cfg, backend="llamafactory")


def test_mix_config_trains_on_run_and_dolly(tmp_path, tiny):
    run = make_run(tmp_path, n=6)
    man = T.write_configs([run], "dataprep-construction", str(tiny), tmp_path / "cfg", dolly_limit=6, template="default")
    cfg = T.load_training_config(man["mix_config"])
    convs = T.load_conversations(cfg)
    assert len(convs) == 12
    assert convs[0][0] == {"role": "user", "content": gsm8k_rows(1)[0]["question"]}
    summary = T.run_training(man["mix_config"], max_steps=2, overrides={"cutoff_len": 64}, backend="cpu")
    assert summary["steps"] == 2 and summary["samples"] == 12
    assert set(summary["ignored_gpu_options"]) == {"bf16", "deepspeed"}
