"""The export's JSONL lines, put together around the encoded instruction and output, are the bytes
``json.dumps(row, ensure_ascii=False)`` writes for each format's row: on every worked example of the
shipped skills, rendered by its skill's template, with and without a system prompt."""

from __future__ import annotations

import json

import pytest

from prepbench.tools.export_rows import _builders, _line_builders, render_pair
from prepbench.tools.skills import load_skill

SKILLS = ("general", "finance", "law", "medical", "math", "science")


@pytest.mark.parametrize("system", [None, 'Answer as the book does: "exactly".\n— ünïcode ✓'])
def test_lines_equal_the_json_of_each_row(system):
    lines_of, rows = _line_builders(system), _builders(system)
    n = 0
    for name in SKILLS:
        skill = load_skill(name)
        for ex in skill.examples:
            s = {"sample_id": f"{name}-{n}", **ex}
            instr, out = render_pair(s, skill.renders.get(s.get("sample_type")))
            lines = lines_of(s, instr, out)
            for fmt in ("sharegpt", "alpaca", "openai", "samples"):
                assert lines[fmt] == json.dumps(rows[fmt](s, instr, out), ensure_ascii=False), (name, fmt)
                assert json.loads(lines[fmt]) == rows[fmt](s, instr, out)
            n += 1
    assert n >= 20
