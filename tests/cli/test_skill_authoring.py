"""Skill authoring: broken-skill fixtures, `skill new`, `skill list`, `skill try`, `extends`,
and the walk-through of ``skills/README.md`` run step by step as the guide says."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from prepbench.agents.runner import try_skill
from prepbench.tools.cli import main
from prepbench.tools.cli import skill as cli_skill
from prepbench.tools.errors import SkillError
from prepbench.tools.skills import check_skill, load_skill
from prepbench.tools.skills.authoring import list_skills, scaffold_skill

from cli_helpers import SHARED

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "broken_skills"
GUIDE = REPO / "skills" / "README.md"
CORPORA = SHARED / "corpora"
NURSING_BOOK = CORPORA / "medical" / "openstax-pharmacology-for-nurses"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="the shared book corpora are not on this machine")

#: fixture -> (the file the error names, the field or cause it names)
BROKEN = {
    "bad_front_matter": ("bad_front_matter/SKILL.md", "field 'name'"),
    "unknown_type_in_coverage": ("unknown_type_in_coverage/coverage.yaml", "field 'sample_types.concept_qaa'"),
    "example_fails_schema": ("example_fails_schema/examples/general.jsonl:1", "'knowledge_point' is a required property"),
    "example_fails_filter": ("example_fails_filter/examples/general.jsonl:1", "source_anchored_phrasing"),
    "circular_a": ("SKILL.md", "field 'metadata.extends': circular inheritance circular_a -> circular_b -> circular_a"),
    "circular_b": ("SKILL.md", "field 'metadata.extends': circular inheritance circular_b -> circular_a -> circular_b"),
    "invalid_yaml": ("invalid_yaml/filters.yaml", "line 5: invalid YAML"),
    "invalid_json_schema": ("invalid_json_schema/schemas/concept_qa.json", "'properties/question/type'"),
}


@pytest.fixture()
def screen(monkeypatch):
    """Capture what the skill commands print, wide enough that nothing wraps."""
    buf = io.StringIO()
    monkeypatch.setattr(cli_skill, "out", Console(file=buf, width=400, color_system=None))
    return buf


def test_every_fixture_is_covered():
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_skill_fixture_is_rejected_with_file_and_field(name):
    file_part, field_part = BROKEN[name]
    with pytest.raises(SkillError) as exc:
        check_skill(FIXTURES / name)
    msg = str(exc.value)
    assert "\n" not in msg
    assert file_part in msg and field_part in msg, msg


def test_cli_check_on_broken_fixture_prints_one_line_and_exits_2():
    r = subprocess.run(
        [sys.executable, "-m", "prepbench.tools.cli", "skill", "check", str(FIXTURES / "circular_a")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "circular inheritance" in lines[0]


# ---------------------------------------------------------------------------------------
# extends
# ---------------------------------------------------------------------------------------


def test_extends_resolves_parent_files_rules_and_examples():
    law, gen = load_skill("law"), load_skill("general")
    assert law.extends == ["general"]
    assert law.sample_types == gen.sample_types + ["rule_question", "irac_case"]
    assert law.file("schemas/concept_qa.json") == gen.path / "schemas" / "concept_qa.json"  # inherited
    assert law.file("schemas/irac_case.json") == law.path / "schemas" / "irac_case.json"
    assert law.prompts["triage"] == gen.prompts["triage"]
    names = [r.name for r in law.filters.rules]
    assert names.index("question_length") == 0 and "quote_in_evidence" in names  # parent's first, then law's
    src = next(r for r in law.filters.rules if r.name == "source_anchored_phrasing").model_dump()
    assert "issue" in src["fields"]  # law's rule replaced general's of the same name
    # the child's examples of a type replace the parent's (Walden is not a law example)
    assert all("law" in s for s, e in zip(law.example_sources, law.examples) if e["sample_type"] == "concept_qa")
    assert (
        law.coverage.sample_types["concept_qa"].min_share == 0.2 != gen.coverage.sample_types["concept_qa"].min_share
    )  # law's value
    assert law.coverage.sample_types["process_qa"].min_share == gen.coverage.sample_types["process_qa"].min_share
    assert law.content_hash != gen.content_hash


def test_child_can_disable_an_inherited_rule_and_parent_change_changes_hash(tmp_path):
    parent = tmp_path / "base"
    shutil.copytree(REPO / "skills" / "general", parent)
    child = scaffold_skill("child", tmp_path, extends=str(parent))
    assert "  extends: ../base" in (child / "SKILL.md").read_text()
    before = load_skill(child)
    assert "answer_repeats_question" in [r.name for r in before.filters.rules]
    (child / "filters.yaml").write_text("rules:\n  - name: answer_repeats_question\n    enabled: false\n", encoding="utf-8")
    after = load_skill(child)
    assert "answer_repeats_question" not in [r.name for r in after.filters.rules]
    h = after.content_hash
    (parent / "coverage.yaml").write_text(
        (parent / "coverage.yaml").read_text().replace("min_kept_share: 0.5", "min_kept_share: 0.4")
    )
    assert load_skill(child).content_hash != h  # a resumed run notices a changed parent


def test_extends_unknown_parent_names_field(tmp_path):
    child = scaffold_skill("orphan", tmp_path)
    md = child / "SKILL.md"
    md.write_text(md.read_text().replace("extends: general", "extends: no-such-parent"), encoding="utf-8")
    with pytest.raises(
        SkillError, match=r"SKILL.md: field 'metadata.extends': no shipped skill or skill folder 'no-such-parent'"
    ):
        check_skill(child)


# ---------------------------------------------------------------------------------------
# skill new / list
# ---------------------------------------------------------------------------------------


def test_skill_new_scaffolds_a_skill_that_passes_check(tmp_path, screen):
    main(["skill", "new", "geology", "--dir", str(tmp_path)])
    folder = tmp_path / "geology"
    assert "created" in screen.getvalue() and "extends general" in screen.getvalue()
    summary = check_skill(folder)
    assert summary["extends"] == ["general"] and summary["domain"] == "general"  # the parent's domain
    text = (folder / "SKILL.md").read_text()
    assert text.count("\n# ") >= 5  # commented front matter
    assert "# kind" not in (folder / "filters.yaml").read_text() and "formula_result" in (folder / "filters.yaml").read_text()
    main(["skill", "new", "solo", "--extends", "none", "--dir", str(tmp_path)])
    solo = check_skill(tmp_path / "solo")
    assert solo["extends"] == [] and solo["sample_types"] == [
        "concept_qa",
        "process_qa",
        "case_application",
        "instruction_response",
    ]
    assert not solo["inherited"]


def test_skill_new_refuses_bad_name_and_existing_folder(tmp_path):
    with pytest.raises(SkillError, match="invalid skill name"):
        scaffold_skill("Nursing Manual", tmp_path)
    scaffold_skill("nursing", tmp_path)
    with pytest.raises(SkillError, match="already exists"):
        scaffold_skill("nursing", tmp_path)
    with pytest.raises(SkillError, match="no-such"):
        scaffold_skill("x", tmp_path, extends="no-such")
    assert not (tmp_path / "x").exists()


def test_skill_list_shows_installed_and_local(tmp_path, screen):
    scaffold_skill("nursing", tmp_path, extends="medical")
    shutil.copytree(FIXTURES / "bad_front_matter", tmp_path / "bad_front_matter")
    rows = list_skills([tmp_path])
    by = {(r["where"], r["name"]): r for r in rows}
    for name in ("general", "math", "science", "medical", "finance", "law"):
        assert ("installed", name) in by and by[("installed", name)]["error"] is None
    assert by[("local", "nursing")]["extends"] == ["medical", "general"]
    assert by[("local", "bad_front_matter")]["error"].endswith("must be lowercase letters, digits, '-' or '_' (max 64)")
    main(["skill", "list", "--dir", str(tmp_path)])
    out = screen.getvalue()
    assert re.search(
        r"│ medical\s+│ installed │ medical\s+│ 1\.0\.0\s+│ general\s+│ concept_qa, process_qa, case_application, instruction_response, clinical_vignette_mcq",
        out,
    )
    assert re.search(r"│ nursing\s+│ local\s+│ medical\s+│ 0\.1\.0\s+│ medical -> general", out)
    assert "broken:" in out


# ---------------------------------------------------------------------------------------
# skill try
# ---------------------------------------------------------------------------------------


@needs_corpora
def test_skill_try_shows_accepted_and_rejected_side_by_side(tmp_path, screen):
    skill = scaffold_skill("strict", tmp_path, extends="medical")
    # a deliberately strict rule, so the throwaway run has rejections to show
    (skill / "filters.yaml").write_text(
        "rules:\n  - name: no_bare_what_is\n    kind: forbid_regex\n    fields: [question]\n    patterns: ['^What (is|are) [\\w-]+\\?$']\n",
        encoding="utf-8",
    )
    res = try_skill(skill, NURSING_BOOK, limit=8)
    assert len(res.chunks) == 8 and res.rejected and res.accepted
    assert {s["rule"] for s in res.rejected} == {"no_bare_what_is"}
    assert all(not re.match(r"^What (is|are) [\w-]+\?$", s.get("question", "")) for s in res.accepted)
    assert res.coverage["chunks"]["total"] == 8 and sum(res.coverage["rejections"].values()) == len(res.rejected)
    main(["skill", "try", str(skill), "--corpus", str(NURSING_BOOK), "--limit", "8"])
    out = screen.getvalue()
    header = next(ln for ln in out.splitlines() if "accepted" in ln and "rejected (rule: reason)" in ln)
    assert header.index("accepted") < header.index("rejected (rule: reason)")
    assert re.search(r"-> no_bare_what_is: question contains 'What (is|are) [\w-]+\?'", out)
    assert "skipped: " in out and "coverage" in out
    assert f"{len(res.accepted)} accepted, {len(res.rejected)} rejected" in out


def test_skill_try_refuses_bad_limit(screen):
    from prepbench.tools.errors import PrepbenchError

    with pytest.raises(PrepbenchError, match="--limit"):
        cli_skill.try_cmd(path="general", corpus=["."], limit=0, model="extractive", base_url=None, keep=None)


# ---------------------------------------------------------------------------------------
# the guide's walk-through, run as the guide says
# ---------------------------------------------------------------------------------------

FENCE_RE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.S | re.M)


def guide_steps() -> list[tuple[str, dict, str]]:
    """The walk-through's fenced blocks, in order: (language, attributes, body)."""
    text = GUIDE.read_text(encoding="utf-8")
    walk = text[text.index("## 4. Walk-through") :]
    steps = []
    for m in FENCE_RE.finditer(walk):
        info = m.group("info").strip()
        lang = info.split()[0] if info else ""
        attrs = dict(re.findall(r"""(\w+)=("[^"]*"|'[^']*'|\S+)""", info))
        attrs = {k: v[1:-1] if v[:1] in "\"'" else v for k, v in attrs.items()}
        steps.append((lang, attrs, m.group("body")))
    return steps


@needs_corpora
def test_guide_walkthrough_scaffold_edit_check_try(tmp_path, monkeypatch, screen):
    monkeypatch.chdir(tmp_path)
    skill_dir = tmp_path / "my-skills" / "nursing"
    ran, wrote, edited = [], [], []
    for lang, attrs, body in guide_steps():
        if lang == "bash":
            for line in body.splitlines():
                if line.startswith("prepbench skill "):
                    args = [a.replace("../shared/corpora", str(CORPORA)) for a in shlex.split(line)[1:]]
                    main(args)
                    ran.append(args[1])
        elif "file" in attrs:
            target = skill_dir / attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
            wrote.append(attrs["file"])
        elif "edit" in attrs:
            target = skill_dir / attrs["edit"]
            text = target.read_text(encoding="utf-8")
            assert attrs["replace"] in text, f"the guide says to replace {attrs['replace']!r} in {attrs['edit']}"
            target.write_text(text.replace(attrs["replace"], body.rstrip("\n"), 1), encoding="utf-8")
            edited.append(attrs["edit"])
    assert ran == ["new", "check", "check", "try"]
    assert set(wrote) == {
        "schemas/nursing_intervention.json",
        "render/nursing_intervention.md",
        "prompts/generate_nursing_intervention.md",
        "filters.yaml",
        "coverage.yaml",
        "examples/nursing.jsonl",
    }
    assert edited == ["SKILL.md", "SKILL.md"]

    summary = check_skill(skill_dir)
    assert summary["extends"] == ["medical", "general"]
    assert summary["sample_types"][-1] == "nursing_intervention"
    assert {"question_names_the_nurse", "intervention_items", "valid_option_letter"} <= set(summary["rules"])
    sk = load_skill(skill_dir)
    assert sk.form("nursing_intervention") == "concept_qa"
    assert "`nursing_intervention`: a `question` about what the nurse" in sk.instructions
    out = screen.getvalue()
    assert "skill nursing OK" in out and "medical -> general" in out
    assert "skill nursing on 5 chunk(s)" in out and "rejected (rule: reason)" in out and "coverage" in out

    # the guide's example is a real chunk of the book, and passes the skill with that chunk's text
    from prepbench.tools.chunking import chunk_document
    from prepbench.tools.ingest import load_document
    from prepbench.tools.validate import Gate

    ex = next(e for e in sk.examples if e["sample_type"] == "nursing_intervention")
    doc = NURSING_BOOK / "07-anti-infective-drugs.md"
    chunk = next(c for c in chunk_document(load_document(doc, doc.name)) if c.chunk_id == ex["chunk_id"])
    assert Gate(sk, dedup=False).check(ex, chunk.text).ok
    bad = dict(ex, interventions=ex["interventions"][:1])
    v = Gate(sk, dedup=False).check(bad, chunk.text)
    assert v.rule in ("schema", "intervention_items")
    vague = dict(ex, question="What should be done for a client who is taking antibiotics?")
    assert not Gate(sk, dedup=False).check(vague, chunk.text).ok
    (names_the_nurse,) = [r.check for r in Gate(sk, dedup=False).rules if r.name == "question_names_the_nurse"]
    assert not names_the_nurse(vague, chunk.text).ok  # the guide's own rule refuses it too
