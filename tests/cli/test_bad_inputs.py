"""Bad input: one-line error naming the file (and line or field), exit code 2, no traceback,
nothing written to the ledger. Undecodable files inside a good corpus are skipped with a
recorded reason and the run goes on."""

import json
import shutil
from pathlib import Path

import pytest

from prepbench.tools.ledger import RunFolder

from cli_helpers import REPO, SLICE, error_lines, run_cli

CHAPTER = SLICE / "07-time-value-of-money-i-single-payment-value.md"


def assert_clean_error(proc, *needles):
    text = proc.stderr + proc.stdout
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:")
    for n in needles:
        assert n in lines[0], (n, lines[0])


def run_on(corpus, out, *extra):
    return run_cli("run", "--corpus", str(corpus), "--out", str(out), "--quiet", *extra)


def no_ledger(out: Path) -> bool:
    return not (out / "ledger.sqlite").exists()


def test_missing_corpus(tmp_path):
    p = run_on(tmp_path / "nope", tmp_path / "out")
    assert_clean_error(p, "nope", "does not exist")
    assert no_ledger(tmp_path / "out")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    p = run_on(tmp_path / "empty", tmp_path / "out")
    assert_clean_error(p, "empty", "no corpus files")
    assert no_ledger(tmp_path / "out")


BAD_FILES = {
    "binary.md": (lambda f: f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4), "binary content"),
    "latin1.md": (
        lambda f: f.write_bytes("# Caf\u00e9\n\nLine two.\nThe caf\u00e9 is closed.\n".encode("latin-1")),
        "invalid UTF-8 at line 1",
    ),
    "zero.md": (lambda f: f.write_bytes(b""), "empty file"),
    "oneline.md": (lambda f: f.write_bytes(b"a" * (20 * 1024 * 1024)), "line 1 is 20,971,520 characters"),
    "fake.pdf": (lambda f: f.write_bytes(b"this is not a pdf"), "not a PDF"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_single_bad_file(tmp_path, name):
    make, needle = BAD_FILES[name]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make(corpus / name)
    p = run_on(corpus / name, tmp_path / "out")
    assert_clean_error(p, name, needle)
    assert no_ledger(tmp_path / "out")
    # the same file as the only file of a folder
    p = run_on(corpus, tmp_path / "out2")
    assert_clean_error(p, name, needle)
    assert no_ledger(tmp_path / "out2")


def test_bad_files_inside_good_corpus_are_skipped_with_reason(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CHAPTER, corpus / "07.md")
    for name, (make, _) in BAD_FILES.items():
        make(corpus / name)
    out = tmp_path / "out"
    p = run_on(corpus, out, "--limit", "12")
    assert p.returncode == 0, p.stderr
    led = RunFolder.open(out)
    skipped = {d["document"]: d["reason"] for d in led.document_rows() if d["doc_status"] == "skipped"}
    assert set(skipped) == set(BAD_FILES)
    for name, (_, needle) in BAD_FILES.items():
        assert needle in skipped[name]
    assert led.counts()["chunks"]["total"] == 12
    led.close()
    cov = json.loads((out / "coverage.json").read_text())
    assert cov["chunks"]["pending"] == 0


def test_skill_with_invalid_yaml(tmp_path):
    skill = tmp_path / "sk"
    shutil.copytree(REPO / "skills" / "finance", skill)
    (skill / "coverage.yaml").write_text("skip_reasons: [navigation\ncompletion: {}\n")
    p = run_on(SLICE, tmp_path / "out", "--skill", str(skill))
    assert_clean_error(p, "coverage.yaml", "line", "invalid YAML")
    assert no_ledger(tmp_path / "out")


def test_skill_with_invalid_json_schema(tmp_path):
    skill = tmp_path / "sk"
    shutil.copytree(REPO / "skills" / "finance", skill)
    f = skill / "schemas" / "calculation_qa.json"
    f.write_text(f.read_text().replace('"minItems": 1, "maxItems": 6', '"minItems": "one", "maxItems": 6'))
    p = run_on(SLICE, tmp_path / "out", "--skill", str(skill))
    assert_clean_error(p, "calculation_qa.json", "reasoning_steps")
    assert no_ledger(tmp_path / "out")


def test_skill_example_violating_schema(tmp_path):
    skill = tmp_path / "sk"
    shutil.copytree(REPO / "skills" / "finance", skill)
    f = skill / "examples" / "finance.jsonl"
    lines = f.read_text().splitlines()
    ex = json.loads(lines[2])
    ex["reasoning_steps"] = ex["reasoning_steps"][:1]
    lines[2] = json.dumps(ex)
    f.write_text("\n".join(lines) + "\n")
    p = run_on(SLICE, tmp_path / "out", "--skill", str(skill))
    assert_clean_error(p, "finance.jsonl:3", "reasoning_steps")
    assert no_ledger(tmp_path / "out")


def test_unknown_agent_and_model(tmp_path):
    p = run_on(SLICE, tmp_path / "out", "--agent", "magic")
    assert_clean_error(p, "magic")
    p = run_on(SLICE, tmp_path / "out", "--model", "nonsense:abc")
    assert_clean_error(p, "nonsense")
    assert no_ledger(tmp_path / "out")


@pytest.mark.parametrize(
    "args, says",
    [
        (("run", "--bogus"), "No such option: --bogus"),
        (("skill", "check", "a", "b"), "unexpected extra argument"),
        (("score", "das"), "Missing argument"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args, says):
    p = run_cli(*args)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and says in p.stderr
