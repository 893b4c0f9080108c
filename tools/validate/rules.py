"""Filter-rule kinds: the registry, the verdict type, and compiling a skill's ``filters.yaml``.

A kind is a factory ``factory(spec: dict, name: str) -> check(sample, chunk_text) -> Verdict``
that checks its spec up front (errors name the file and field) and returns a small closure.
Kinds register with :func:`register_rule_kind`; kinds shipped outside this module (prepbench's
domain kinds, or a skill pack's) are found through the ``prepbench.rule_kinds`` entry-point
group, loaded on first use, so a pack adds a kind without editing prepbench.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable

from prepbench.tools.errors import SkillError

ENTRY_POINT_GROUP = "prepbench.rule_kinds"


@dataclass
class Verdict:
    """Result of checking one sample: ``ok``, else the ``rule`` name and a one-line ``detail``."""

    ok: bool
    rule: str | None = None
    detail: str = ""


PASS = Verdict(True)

RuleFn = Callable[[dict, "str | None"], "Verdict"]
RULE_KINDS: dict[str, Callable[[dict, str], RuleFn]] = {}


def register_rule_kind(kind: str):
    """Decorator: register ``factory(spec: dict, name: str) -> check(sample, chunk_text) -> Verdict``."""

    def deco(factory):
        RULE_KINDS[kind] = factory
        return factory

    return deco


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def rule_kind(kind: str) -> Callable[[dict, str], RuleFn] | None:
    """The factory of ``kind``: registered here, else loaded from its entry point; None if unknown."""
    if kind not in RULE_KINDS:
        ep = _entry_points().get(kind)
        if ep is not None:
            RULE_KINDS[kind] = ep.load()
    return RULE_KINDS.get(kind)


def known_kinds() -> list[str]:
    """Every kind a skill may name: registered ones and those of installed entry points."""
    return sorted(set(RULE_KINDS) | set(_entry_points()))


@dataclass
class Rule:
    name: str
    kind: str
    sample_types: set[str] | None
    check: RuleFn


def build_rules(skill) -> list[Rule]:
    """Compile the skill's ``filters.yaml`` rules.

    Raises:
        SkillError: unknown rule kind, unknown sample type, bad regex or bound.
    """
    rules: list[Rule] = []
    ffile = skill.path / "filters.yaml"
    for spec in skill.filters.rules:
        factory = rule_kind(spec.kind)
        if factory is None:
            raise SkillError(
                f"{ffile}: rule '{spec.name}': field 'kind': unknown kind '{spec.kind}' (known: {', '.join(known_kinds())})"
            )
        if spec.sample_types:
            unknown = [t for t in spec.sample_types if t not in skill.sample_types]
            if unknown:
                raise SkillError(f"{ffile}: rule '{spec.name}': field 'sample_types': unknown sample type {unknown[0]!r}")
        try:
            fn = factory(spec.model_dump(), spec.name)
        except SkillError as e:
            raise SkillError(f"{ffile}: {str(e).removeprefix('filters.yaml: ')}") from None
        rules.append(Rule(spec.name, spec.kind, set(spec.sample_types) if spec.sample_types else None, fn))
    return rules
