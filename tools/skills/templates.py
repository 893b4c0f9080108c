"""The one template environment for everything a skill renders: prompts and render templates.

Skill templates come from strangers, so they run in Jinja's sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no ``__`` attributes, no
``__globals__``, no mutation of what they are given) with strict undefined variables, and
they are given plain data only (strings, numbers, lists, dicts: never a Python object whose
methods could reach files). :func:`unknown_variables` lets ``skill check`` refuse a template
that reaches for a variable prepbench does not pass, naming the file and line.

Render templates (``render/<type>.md``) define two blocks, ``instruction`` and ``output``,
rendered separately with the sample's fields as variables::

    {% block instruction %}{{ question }}{% endblock %}
    {% block output %}{{ answer }}{% endblock %}
"""

from __future__ import annotations

import functools
import json
import threading
import traceback
from typing import Any, Iterable

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The two blocks of a render template, in the order they are rendered.
RENDER_BLOCKS = ("instruction", "output")


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _environment(keep_trailing_newline: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=keep_trailing_newline, autoescape=False
    )
    env.filters["tojson"] = _tojson
    # only the harmless helpers; a skill template needs no cycler/joiner/namespace/lipsum
    env.globals = {"range": range, "dict": dict}
    return env


#: Prompts keep their trailing newline (a model request is the whole file); render templates do not.
PROMPT_ENV = _environment(keep_trailing_newline=True)
RENDER_ENV = _environment(keep_trailing_newline=False)


@functools.lru_cache(maxsize=256)
def compile_prompt(source: str) -> jinja2.Template:
    """The compiled template of a prompt's source (compiled once per source text: compiling
    costs far more than rendering, and every model request renders one).

    Raises:
        jinja2.TemplateSyntaxError: invalid template (with ``lineno``).
    """
    return PROMPT_ENV.from_string(source)


@functools.lru_cache(maxsize=256)
def compile_render(source: str) -> jinja2.Template:
    """The compiled ``render/<type>.md`` template (once per source text, not per sample).

    Raises:
        jinja2.TemplateSyntaxError: invalid template (with ``lineno``).
    """
    return RENDER_ENV.from_string(source)


class BlockRenderer:
    """The ``instruction`` and ``output`` blocks of one compiled render template, rendered for
    sample after sample (an export renders millions).

    Jinja builds a fresh :class:`jinja2.runtime.Context` per ``new_context`` call (the globals
    merged into the sample's variables, a list per block), which cost more than rendering the
    two blocks. Here one context is built once per template and each render only puts the
    sample's variables (with the sandbox's globals) in as its ``parent``: a block reads names
    through ``context.resolve_or_missing``, which looks in ``vars`` (top-level ``{% set %}``s,
    which rendering blocks alone never runs; a ``{% set %}`` inside a block stays local to it)
    and then in ``parent``. Whatever a render leaves in ``vars`` is cleared before the next, so
    no sample sees another's variables. Each thread has its own context (a render in one thread
    never sees another's sample).

    Raises (on construction):
        jinja2.TemplateError: a syntax error or a missing block.
    """

    def __init__(self, source: str) -> None:
        template = compile_render(source)
        missing = [b for b in RENDER_BLOCKS if b not in template.blocks]
        if missing:
            raise jinja2.TemplateError(f"defines no '{{% block {missing[0]} %}}'")
        self._template = template
        self._globals = dict(template.globals)
        self._local = threading.local()
        self._instruction = template.blocks["instruction"]
        self._output = template.blocks["output"]

    def render(self, variables: dict[str, Any]) -> tuple[str, str]:
        """``(instruction, output)`` of one sample's fields, untrimmed.

        Raises:
            jinja2.TemplateError: a field the sample lacks, or a sandbox violation.
        """
        ctx = getattr(self._local, "context", None)
        if ctx is None:
            ctx = self._local.context = self._template.new_context({}, shared=True)
        elif ctx.vars or ctx.exported_vars:
            ctx.vars.clear()
            ctx.exported_vars.clear()
        ctx.parent = {**self._globals, **variables}
        return "".join(self._instruction(ctx)), "".join(self._output(ctx))


@functools.lru_cache(maxsize=256)
def block_renderer(source: str) -> BlockRenderer:
    """The :class:`BlockRenderer` of a render template's source (built once per source text).

    Raises:
        jinja2.TemplateError: a syntax error or a missing block.
    """
    return BlockRenderer(source)


def render_blocks(source: str, variables: dict[str, Any]) -> tuple[str, str]:
    """Render the ``instruction`` and ``output`` blocks of a render template.

    Args:
        source: the template text of ``render/<type>.md``.
        variables: the sample's fields.

    Returns:
        ``(instruction, output)``, untrimmed.

    Raises:
        jinja2.TemplateError: a syntax error, a missing block, a field the sample lacks, or
            a sandbox violation.
    """
    return block_renderer(source).render(variables)


def unknown_variables(source: str, env: jinja2.Environment, allowed: Iterable[str]) -> list[tuple[str, int]]:
    """Variables a template reads that are not in ``allowed``, with the line of first use.

    Returns:
        ``[(name, line)]`` sorted by line; empty when the template uses only allowed names.

    Raises:
        jinja2.TemplateSyntaxError: invalid template.
    """
    tree = env.parse(source)
    unknown = meta.find_undeclared_variables(tree) - set(allowed) - set(env.globals)
    lines: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in unknown and node.name not in lines:
            lines[node.name] = node.lineno
    return sorted(((n, lines.get(n, 1)) for n in unknown), key=lambda x: (x[1], x[0]))


def error_line(exc: BaseException) -> int | None:
    """The template line an error was raised at (Jinja puts template frames in tracebacks)."""
    if getattr(exc, "lineno", None):
        return int(exc.lineno)  # type: ignore[attr-defined]
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line
