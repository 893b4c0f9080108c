"""The layout rules of DESIGN.md, computed from the code with ``ast``.

- dependencies run one way: evaluation -> agents -> tools; ``tools/cli`` is the top of the
  stack and the only code that may import all three packages;
- no import cycles between modules (lazy imports inside functions included);
- no module over 600 lines, no function over 80 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"agents": "prepbench.agents", "tools": "prepbench.tools", "evaluation": "prepbench.evaluation"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

#: Known exceptions still to be split (ceilings: each may shrink, none may grow, no new one may appear).
KNOWN_LONG_MODULES: dict[str, int] = {}
KNOWN_LONG_FUNCTIONS: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    """``prepbench.x.y`` -> file, for every module of the three code packages."""
    out = {}
    for folder, pkg in PACKAGES.items():
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = f
    return out


MODULES = _modules()


def _imports(name: str, file: Path) -> set[str]:
    """Modules of prepbench that ``file`` imports (at any depth), resolved to known module names."""
    is_pkg = file.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            # ``from pkg import submodule`` depends on the submodule; ``from pkg import name`` on pkg
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [*subs, base]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, f) for name, f in MODULES.items()}


def _layer(name: str) -> str:
    if name.startswith("prepbench.tools.cli"):
        return "cli"
    return name.split(".")[1]


#: what each layer may import
ALLOWED = {
    "tools": {"tools"},
    "agents": {"tools", "agents"},
    "evaluation": {"tools", "agents", "evaluation"},
    "cli": {"tools", "agents", "evaluation", "cli"},
}


def test_dependencies_run_one_way():
    upward = sorted(f"{a} imports {b}" for a, deps in GRAPH.items() for b in deps if _layer(b) not in ALLOWED[_layer(a)])
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    """Depth-first search for a back edge; a package importing its own submodules is not a cycle
    unless a submodule imports the package back."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if state.get(m) == 1:
                cycles.append(" -> ".join(stack[stack.index(m) :] + [m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _python_files():
    for folder in (*PACKAGES, "tests", "benchmarks"):
        yield from sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("limit", [MAX_MODULE_LINES])
def test_no_module_over_600_lines(limit):
    big = [
        f"{f.relative_to(REPO)}: {n} lines"
        for f in _python_files()
        if (n := len(f.read_text(encoding="utf-8").splitlines())) > KNOWN_LONG_MODULES.get(str(f.relative_to(REPO)), limit)
    ]
    assert not big, "modules over the limit:\n" + "\n".join(big)


def test_no_function_over_80_lines():
    long = []
    for f in _python_files():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > KNOWN_LONG_FUNCTIONS.get(f"{f.relative_to(REPO)}::{node.name}", MAX_FUNCTION_LINES):
                    long.append(f"{f.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "functions over the limit:\n" + "\n".join(long)


def test_the_checks_see_the_code():
    """The graph is built from the real tree: the CLI package imports all three packages."""
    cli = set().union(*(GRAPH[n] for n in GRAPH if n.startswith("prepbench.tools.cli")))
    assert {_layer(m) for m in cli} >= {"tools", "agents", "evaluation"}
    assert "prepbench.tools.ledger" in GRAPH["prepbench.tools.run"]
