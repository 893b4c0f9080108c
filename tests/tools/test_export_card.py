"""Data fit to publish (issue 14, items 3-4): every export carries a Hugging Face dataset card and a
manifest of SHA-256 checksums, and ``--format hf`` writes a ``datasets`` folder and Parquet with
the rows of ``sharegpt.jsonl``. On a real offline run of the shipped finance slice."""

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from prepbench.tools.card import licence_of, read_source, size_category
from prepbench.tools.export_set import verify_manifest
from prepbench.tools.ledger import RunFolder

from cli_helpers import SHARED, SLICE, run_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "run"
    p = run_cli("run", "--skill", "finance", "--corpus", str(SLICE), "--out", str(out), "--limit", "40", "--quiet")
    assert p.returncode == 0, p.stderr
    p = run_cli("export", str(out), "--format", "sharegpt,alpaca,openai,samples,hf")
    assert p.returncode == 0, p.stderr
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _card(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert m, "the card starts with a YAML block between --- lines"
    return yaml.safe_load(m.group(1)), m.group(2)


def test_hf_export_loads_with_the_rows_of_sharegpt(run):
    import datasets
    import pyarrow.parquet as pq

    exp = run / "export"
    rows = _jsonl(exp / "sharegpt.jsonl")
    assert len(rows) > 20
    ds = datasets.load_from_disk(str(exp / "hf"))
    assert list(ds) == rows
    assert pq.read_table(exp / "sharegpt.parquet").to_pylist() == rows
    # the scoring readers take the folder as a dataset, sample for sample
    from prepbench.evaluation.readers import read_samples

    assert [s.text for s in read_samples(exp / "hf")] == [s.text for s in read_samples(exp / "sharegpt.jsonl")]


def test_card_is_a_hub_card_with_the_runs_provenance(run):
    meta, body = _card(run / "export" / "README.md")
    assert meta["license"] == "cc-by-4.0"  # from the slice's SOURCE.md
    assert meta["task_categories"] == ["question-answering", "text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"][0]["path"] == "sharegpt.parquet"
    from huggingface_hub import DatasetCard  # installed with the train extra (datasets, transformers)

    card = DatasetCard((run / "export" / "README.md").read_text(encoding="utf-8"))
    assert card.data.license == "cc-by-4.0" and card.data.size_categories == ["n<1K"]
    led = RunFolder.open(run, readonly=True)
    config, counts, reasons, rejections = led.get_config(), led.counts(), led.skip_reason_counts(), led.rejection_counts()
    led.close()
    assert config["skill_hash"] in body and "finance 1.0.0" in body
    for f in SLICE.glob("*.md"):
        if f.name != "SOURCE.md":  # every corpus file with its SHA-256
            assert f"| {f.name} | `{hashlib.sha256(f.read_bytes()).hexdigest()}` |" in body
    ch = counts["chunks"]
    assert f"{ch['total']} in all; kept {ch['kept']}, skipped {ch['skipped']}" in body
    assert ", ".join(f"{k} {v}" for k, v in reasons.items()) in body
    assert (
        f"**Samples rejected by rule**: {counts['samples']['rejected']} (" + ", ".join(f"{k} {v}" for k, v in rejections.items())
        in body
    )
    assert 'Attribution: "Principles of Finance by Julie Dahlquist and Rainford Knight' in body
    assert "| sharegpt.jsonl | " + str(counts["samples"]["accepted"]) + " |" in body
    assert "Not checked" in body  # no decontamination pass yet


def test_manifest_checksums_verify_and_catch_a_change(run, tmp_path):
    exp = run / "export"
    manifest = json.loads((exp / "manifest.json").read_text())["files"]
    listed = set(manifest)
    assert {"README.md", "sharegpt.jsonl", "sharegpt.parquet", "dataset_info.json", "hf/state.json"} <= listed
    for rel, entry in manifest.items():
        assert hashlib.sha256((exp / rel).read_bytes()).hexdigest() == entry["sha256"]
    assert verify_manifest(exp) == []
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exp, copy)
    with open(copy / "alpaca.jsonl", "a", encoding="utf-8") as f:
        f.write("{}\n")
    (copy / "extra.txt").write_text("x")
    assert verify_manifest(copy) == ["alpaca.jsonl: SHA-256 differs from the manifest", "extra.txt: not in the manifest"]


def test_a_plain_export_replaces_hf_and_keeps_jsonl_bytes(run, tmp_path):
    """Exporting again without hf drops the datasets folder (the set is replaced whole) and writes
    the same JSONL bytes; the card then points the Hub at the JSONL."""
    before = (run / "export" / "sharegpt.jsonl").read_bytes()
    p = run_cli("export", str(run), "--format", "sharegpt")
    assert p.returncode == 0, p.stderr
    exp = run / "export"
    assert sorted(x.name for x in exp.iterdir()) == ["README.md", "dataset_info.json", "manifest.json", "sharegpt.jsonl"]
    assert (exp / "sharegpt.jsonl").read_bytes() == before
    meta, _ = _card(exp / "README.md")
    assert meta["configs"][0]["data_files"][0]["path"] == "sharegpt.jsonl"
    assert verify_manifest(exp) == []


def test_licences_of_the_shared_corpora():
    got = {f.parent.name: read_source(f)["license"] for f in sorted((SHARED / "corpora").glob("*/*/SOURCE.md"))}
    assert got["openstax-principles-of-finance"] == "cc-by-4.0"  # not the later CC BY-NC-SA it also names
    assert got["gowder-constitutional-law"] == "cc-by-sa-4.0"
    assert got["abstract-algebra-judson"] == "gfdl"
    assert got["smith-wealth-of-nations"] == "cc0-1.0"
    assert licence_of("CC BY-NC-SA 4.0") == "cc-by-nc-sa-4.0" and licence_of("all rights reserved") is None
    assert [size_category(n) for n in (0, 999, 1000, 54321)] == ["n<1K", "n<1K", "1K<n<10K", "10K<n<100K"]


def test_hf_without_the_datasets_package_is_a_one_line_error(run, tmp_path, monkeypatch):
    import sys

    from prepbench.tools.errors import PrepbenchError
    from prepbench.tools.export import export_samples

    monkeypatch.setitem(sys.modules, "datasets", None)  # as on a core install
    with pytest.raises(PrepbenchError, match=r"--format hf needs the datasets package: pip install 'prepbench\[train\]'"):
        export_samples([], {}, tmp_path / "export", ("sharegpt", "hf"))
    assert not (tmp_path / "export").exists()  # nothing written
