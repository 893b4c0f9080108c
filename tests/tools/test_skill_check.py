"""`prepbench skill check`: the finance skill passes; each kind of breakage gives a one-line
error naming the file (and field or line) and exit code 2, no traceback."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prepbench.tools.errors import SkillError
from prepbench.tools.skills import check_skill

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "skills" / "finance"


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "prepbench.tools.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture()
def skill(tmp_path):
    """A copy of finance over a copy of general (finance ships only what differs from general)."""
    shutil.copytree(REPO / "skills" / "general", tmp_path / "general")
    dst = tmp_path / "finance"
    shutil.copytree(FINANCE, dst)
    edit(dst / "SKILL.md", "extends: general", "extends: ../general")
    return dst


def general(s: Path) -> Path:
    """The parent skill's folder next to the finance copy."""
    return s.parent / "general"


def test_finance_passes():
    summary = check_skill(FINANCE)
    assert summary["name"] == "finance"
    assert set(summary["sample_types"]) >= {"concept_qa", "process_qa", "case_application"}
    r = cli("skill", "check", "finance")
    assert r.returncode == 0, r.stderr
    assert "finance OK" in r.stdout


def edit(path: Path, old: str, new: str):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture edit: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BREAKAGES = {
    "front_matter_yaml": (lambda s: edit(s / "SKILL.md", "domain: finance", "domain: [finance"), "SKILL.md", "line"),
    "front_matter_missing_field": (lambda s: edit(s / "SKILL.md", '  version: "1.0.0"\n', ""), "SKILL.md", "version"),
    "front_matter_absent": (lambda s: (s / "SKILL.md").write_text("# no front matter\n"), "SKILL.md", "front matter"),
    "bad_json_schema": (
        lambda s: edit(
            general(s) / "schemas" / "concept_qa.json",
            '"question": {"type": "string", "minLength": 10}',
            '"question": {"type": "strin", "minLength": 10}',
        ),
        "concept_qa.json",
        "question",
    ),
    "schema_not_json": (
        lambda s: edit(general(s) / "schemas" / "process_qa.json", '"title"', "'title'"),
        "process_qa.json",
        "line",
    ),
    "example_violates_schema": (
        lambda s: edit(s / "examples" / "finance.jsonl", '"question_type": "definition"', '"question_type": "gossip"'),
        "finance.jsonl:1",
        "question_type",
    ),
    "example_fails_filter": (
        lambda s: edit(
            s / "examples" / "finance.jsonl",
            '"question": "What is the time value of money?"',
            '"question": "According to the text, what is the time value of money?"',
        ),
        "finance.jsonl:1",
        "source_anchored_phrasing",
    ),
    "filters_yaml_invalid": (lambda s: edit(s / "filters.yaml", "rules:\n", "rules: [\n"), "filters.yaml", "line"),
    "filter_bad_regex": (
        lambda s: edit(s / "filters.yaml", "'^\\s*what is (this|the)", "'^\\s*what is ((this|the)"),
        "filters.yaml",
        "placeholder_question",
    ),
    "filter_unknown_kind": (
        lambda s: edit(s / "filters.yaml", "kind: answer_repeats_question", "kind: vibes"),
        "filters.yaml",
        "kind",
    ),
    "coverage_unknown_type": (
        lambda s: edit(s / "coverage.yaml", "  process_qa:\n", "  proces_qa:\n"),
        "coverage.yaml",
        "proces_qa",
    ),
    "coverage_max_below_per_chunk": (
        lambda s: edit(s / "coverage.yaml", "    max_per_chunk: 40\n", "    max_per_chunk: 2\n"),
        "coverage.yaml",
        "max_per_chunk",
    ),
    "coverage_offline_type_not_offered": (
        lambda s: edit(
            s / "coverage.yaml",
            "    min_shares:\n      process_qa",
            "    sample_types: [concept_qa]\n    min_shares:\n      process_qa",
        ),
        "coverage.yaml",
        "does not offer 'process_qa'",
    ),
    "coverage_offline_unknown_type": (
        lambda s: edit(s / "coverage.yaml", "      case_application: 0.005", "      case_aplication: 0.005"),
        "coverage.yaml",
        "completion.offline.min_shares.case_aplication",
    ),
    "coverage_offline_unknown_field": (
        lambda s: edit(s / "coverage.yaml", "    why: >-", "    reason: >-"),
        "coverage.yaml",
        "completion.offline.reason",
    ),
    "coverage_bad_share": (
        lambda s: edit(s / "coverage.yaml", "min_kept_share: 0.5", "min_kept_share: 1.5"),
        "coverage.yaml",
        "min_kept_share",
    ),
    # finance extends general, so a deleted base-form prompt is inherited; delete finance's own type's prompt
    "prompt_missing": (
        lambda s: (s / "prompts" / "generate_calculation_qa.md").unlink(),
        "generate_calculation_qa.md",
        "missing",
    ),
    "prompt_bad_jinja": (
        lambda s: edit(general(s) / "prompts" / "triage.md", "{{ chunk.text }}", "{{ chunk.text "),
        "triage.md",
        "triage",
    ),
    "prompt_undefined_var": (
        lambda s: edit(general(s) / "prompts" / "judge.md", "{{ chunk.text }}", "{{ chunk.txet }}"),
        "judge.md",
        "txet",
    ),
    # a generation mode's prompt gets its own variables only: response.md has no demonstrations, instance.md no chunk
    "mode_prompt_other_modes_variable": (
        lambda s: edit(general(s) / "prompts" / "response.md", "{{ instruction }}", "{{ demonstrations }}"),
        "response.md: line 6",
        "unknown variable 'demonstrations' (prompts/response.md may use skill, instruction, schema_json, feedback)",
    ),
    "mode_prompt_chunk_variable": (
        lambda s: edit(general(s) / "prompts" / "instance.md", "Write one new instance.", "Write one on {{ chunk.text }}."),
        "instance.md: line",
        "unknown variable 'chunk'",
    ),
    "mode_prompt_missing": (
        lambda s: (general(s) / "prompts" / "enhance.md").unlink(),
        "enhance.md",
        "generation-mode sample type 'instruction_response'",
    ),
    "mode_prompt_without_mode_type": (
        lambda s: (
            edit(general(s) / "SKILL.md", " instruction_response\n", "\n"),
            (general(s) / "schemas" / "instruction_response.json").unlink(),
            (general(s) / "render" / "instruction_response.md").unlink(),
            (f := general(s) / "filters.yaml").write_text(f.read_text().replace("[instruction_response]", "[concept_qa]")),
        ),
        "general/prompts/",
        "a generation-mode prompt, but no sample type of the skill has x-prepbench-form 'instruction_response'",
    ),
    "schema_for_unlisted_type": (
        lambda s: shutil.copy(general(s) / "schemas" / "concept_qa.json", s / "schemas" / "extra_qa.json"),
        "extra_qa.json",
        "sample_types",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_broken_skill_is_rejected_with_file_and_field(skill, name):
    breaker, file_part, field_part = BREAKAGES[name]
    breaker(skill)
    with pytest.raises(SkillError) as exc:
        check_skill(skill)
    msg = str(exc.value)
    assert "\n" not in msg
    assert file_part in msg, msg
    assert field_part in msg, msg


def test_cli_reports_one_line_exit_2(skill):
    edit(skill / "examples" / "finance.jsonl", '"question_type": "definition"', '"question_type": "gossip"')
    r = cli("skill", "check", str(skill))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "finance.jsonl:1" in lines[0]


def test_missing_skill():
    r = cli("skill", "check", "no-such-skill")
    assert r.returncode == 2 and "no-such-skill" in r.stderr and "Traceback" not in r.stderr


def test_examples_that_passed_this_gate_are_not_checked_again_until_the_skill_changes(skill, tmp_path, monkeypatch):
    from prepbench.tools.skills import load_skill
    from prepbench.tools.skills.check import check_examples
    from prepbench.tools.skills.checked import check_examples_once, record_path

    monkeypatch.setenv("PREPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    ran: list[str] = []

    def check(s):
        ran.append(s.content_hash)
        check_examples(s)

    assert check_examples_once(load_skill(skill), check) is True
    assert record_path().parent == tmp_path / "cache" and record_path().is_file()
    assert check_examples_once(load_skill(skill), check) is False  # same skill, same gate: skipped
    assert len(ran) == 1
    # an example changed so that it fails: a new key, the check runs, refuses, records nothing
    edit(skill / "examples" / "finance.jsonl", '"question_type": "definition"', '"question_type": "gossip"')
    broken = load_skill(skill)
    with pytest.raises(SkillError):
        check_examples_once(broken, check)
    with pytest.raises(SkillError):
        check_examples_once(broken, check)  # a failure is never recorded: refused every time
    assert len(ran) == 3
    record_path().write_text("{not json", encoding="utf-8")  # an unreadable record: the check just runs
    assert check_examples_once(load_skill(general(skill)), check) is True
