"""Skills from strangers: templates cannot run code, a skill reads only its own files, its
schemas never reach the network, YAML bombs are refused, and the old layout is explained."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prepbench.tools.errors import PrepbenchError, SkillError
from prepbench.tools.export_rows import render_pair
from prepbench.tools.skills import check_skill, load_skill
from prepbench.tools.skills.authoring import scaffold_skill

REPO = Path(__file__).resolve().parents[2]


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "prepbench.tools.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture()
def general(tmp_path):
    """A standalone copy of the general skill that a test may tamper with."""
    dst = tmp_path / "skill"
    shutil.copytree(REPO / "skills" / "general", dst)
    return dst


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


# ---------------------------------------------------------------------------------------
# templates run in the sandbox
# ---------------------------------------------------------------------------------------

#: Classic Jinja server-side template injection payloads, each writing a marker file.
PAYLOADS = {
    "globals": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "mro": "{{ chunk.text.__class__.__mro__[1].__subclasses__() }}",
    "attr_filter": "{{ (skill | attr('__class__')) }}",
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_prompt_payload_does_not_run_and_check_names_the_file(general, tmp_path, name):
    marker = tmp_path / "pwned"
    append(general / "prompts" / "judge.md", "\n" + PAYLOADS[name].replace("MARKER", str(marker)) + "\n")
    with pytest.raises(SkillError) as exc:
        check_skill(general)
    assert not marker.exists()
    msg = str(exc.value)
    assert "judge.md" in msg and "\n" not in msg
    assert "line" in msg


def test_prompt_using_an_unknown_variable_is_refused_with_its_line(general):
    append(general / "prompts" / "judge.md", "\n{{ config }}\n")
    n = len((general / "prompts" / "judge.md").read_text().splitlines())
    with pytest.raises(SkillError, match=rf"judge.md: line {n}: unknown variable 'config'"):
        check_skill(general)


def test_render_payload_does_not_run_at_check_or_export(general, tmp_path):
    marker = tmp_path / "pwned"
    payload = "{{ question.__class__.__mro__[1].__subclasses__() }}{{ cycler.__init__.__globals__.os.popen('touch %s') }}"
    render = general / "render" / "concept_qa.md"
    render.write_text("{% block instruction %}" + payload % marker + "{% endblock %}{% block output %}x{% endblock %}")
    with pytest.raises(SkillError, match=r"render/concept_qa.md: line 1: unknown variable 'cycler'"):
        check_skill(general)
    sample = {"sample_type": "concept_qa", "sample_id": "s1", "question": "What is a bond?", "answer": "A debt."}
    with pytest.raises(PrepbenchError, match="render/concept_qa.md"):
        render_pair(sample, render.read_text())
    assert not marker.exists()


def test_render_template_must_use_schema_fields_and_define_both_blocks(general):
    render = general / "render" / "process_qa.md"
    render.write_text("{% block instruction %}{{ question }}{% endblock %}{% block output %}{{ answr }}{% endblock %}")
    with pytest.raises(SkillError, match=r"render/process_qa.md: line 1: unknown variable 'answr'"):
        check_skill(general)
    render.write_text("{% block instruction %}{{ question }}{% endblock %}")
    with pytest.raises(SkillError, match=r"render/process_qa.md.*block output"):
        check_skill(general)


# ---------------------------------------------------------------------------------------
# a skill reads only its own files, and never the network
# ---------------------------------------------------------------------------------------


def test_symlink_out_of_the_skill_is_refused(general):
    (general / "prompts" / "judge.md").unlink()
    os.symlink("/etc/passwd", general / "prompts" / "judge.md")
    with pytest.raises(SkillError, match=r"judge.md: points outside the skill folder"):
        load_skill(general)


@pytest.mark.parametrize(
    "ref",
    ["https://example.com/evil.json", "file:///etc/passwd", "/etc/passwd", "../../finance/schemas/x.json", "process_qa.json"],
)
def test_ref_leaving_the_skill_is_refused_at_load(general, ref):
    f = general / "schemas" / "concept_qa.json"
    f.write_text(f.read_text().replace('"question": {"type": "string", "minLength": 10}', f'"question": {{"$ref": "{ref}"}}'))
    with pytest.raises(SkillError) as exc:
        load_skill(general)
    msg = str(exc.value)
    assert "concept_qa.json" in msg and "properties.question.$ref" in msg and "leaves the skill" in msg


def test_unresolvable_local_ref_is_a_one_line_check_error(general):
    f = general / "schemas" / "concept_qa.json"
    f.write_text(f.read_text().replace('"question": {"type": "string", "minLength": 10}', '"question": {"$ref": "#/$defs/nope"}'))
    r = cli("skill", "check", str(general))
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "concept_qa.json: field 'properties.question.$ref': $ref '#/$defs/nope' does not resolve" in r.stderr


def test_local_ref_validates(general):
    f = general / "schemas" / "concept_qa.json"
    text = f.read_text().replace('"question": {"type": "string", "minLength": 10}', '"question": {"$ref": "#/$defs/q"}')
    f.write_text(
        text.replace('"type": "object",', '"$defs": {"q": {"type": "string", "minLength": 10}},\n  "type": "object",', 1)
    )
    check_skill(general)
    from prepbench.tools.skills.refs import validator

    v = validator("concept_qa", load_skill(general).schemas)
    assert any("is too short" in e.message for e in v.iter_errors({"question": "short"}))


# ---------------------------------------------------------------------------------------
# YAML is bounded
# ---------------------------------------------------------------------------------------

BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
)


def test_alias_bomb_in_front_matter_is_refused(general):
    md = general / "SKILL.md"
    text = md.read_text()
    md.write_text(text.replace("metadata:\n", "bomb:\n" + "\n".join("  " + ln for ln in BOMB.splitlines()) + "\nmetadata:\n", 1))
    with pytest.raises(SkillError, match=r"SKILL.md: YAML expands to more than"):
        load_skill(general)


def test_alias_bomb_in_filters_is_refused(general):
    (general / "filters.yaml").write_text(BOMB + "\nrules: []\n")
    r = cli("skill", "check", str(general))
    assert r.returncode == 2 and "filters.yaml: YAML expands to more than" in r.stderr


# ---------------------------------------------------------------------------------------
# the Agent Skills layout
# ---------------------------------------------------------------------------------------


def test_old_layout_gets_a_one_line_pointer(general):
    md = general / "SKILL.md"
    text = md.read_text()
    md.write_text(text.replace("metadata:\n  domain: general\n", "domain: general\nmetadata:\n", 1))
    r = cli("skill", "check", str(general))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "field 'domain': old skill layout; move it under 'metadata:'" in lines[0]


def test_old_x_render_is_explained(general):
    f = general / "schemas" / "concept_qa.json"
    f.write_text(
        f.read_text().replace('"type": "object",', '"x-render": {"instruction": "{{ question }}"},\n  "type": "object",', 1)
    )
    with pytest.raises(
        SkillError, match=r"concept_qa.json: field 'x-render': old skill layout; write the templates to render/concept_qa.md"
    ):
        check_skill(general)


def test_shipped_front_matter_uses_only_agent_skills_fields():
    from prepbench.tools.skills import parse_front_matter
    from prepbench.tools.skills.spec import AGENT_SKILLS_FIELDS

    for md in sorted((REPO / "skills").glob("*/SKILL.md")):
        meta, _ = parse_front_matter(md, md.parent)
        assert set(meta) <= set(AGENT_SKILLS_FIELDS), md
        assert all(isinstance(v, str) for v in meta["metadata"].values()), md  # Agent Skills: string values


def test_skill_new_is_usable_by_the_name_skill_list_shows(tmp_path):
    r = cli("skill", "new", "mynursing", "--extends", "medical", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "skills" / "mynursing" / "SKILL.md").is_file()
    assert load_skill(tmp_path / "skills" / "mynursing").domain == "medical"  # the parent's domain
    listed = cli("skill", "list", cwd=tmp_path)
    assert "mynursing" in listed.stdout and "local" in listed.stdout
    r = cli("skill", "check", "mynursing", cwd=tmp_path)
    assert r.returncode == 0 and "mynursing OK" in r.stdout, r.stderr
    scaffold_skill("other", tmp_path / "elsewhere")
    r = cli("skill", "check", "other", cwd=tmp_path)
    assert r.returncode == 2 and "no such skill folder, shipped skill or local skill (./skills/other)" in r.stderr


def test_prompts_get_the_skills_json_as_is_and_copies_of_everything_else(general):
    from prepbench.tools.skills.model import plain

    skill = load_skill(general)
    known = skill._plain_json()
    schema = next(iter(skill.schemas.values()))
    assert plain(schema, known) is schema  # JSON read from the skill's files: given as it is
    assert plain([schema], known)[0] is schema
    fresh = {"a": (1, 2), "b": Path("x")}
    assert plain(fresh, known) == {"a": [1, 2], "b": "x"} and plain(fresh, known) is not fresh
    assert id(fresh) not in known
