"""Domain filter rule kinds: checks a domain allows beyond the generic ones.

Each kind registers with :func:`prepbench.tools.validate.register_rule_kind` (this module is
loaded through the ``prepbench.rule_kinds`` entry points in ``pyproject.toml``) and is used
from a skill's ``filters.yaml`` like the generic kinds (``name``, ``kind``, optional
``sample_types``). A rule whose fields are absent from a sample passes it, so a rule can
be restricted with ``sample_types`` or simply name the fields of the types it checks.

``formula_result`` (finance calculations)
    ``formula_field`` (default ``formula``: ``"FV = PV * (1 + r) ** n"``, the left-hand
    side optional), ``inputs_field`` (default ``inputs``: ``{"PV": 1000, "r": 0.03, "n": 4}``),
    ``result_field`` (default ``result``), ``answer_field`` (optional: the answer text must
    state the result), ``rel_tol`` (default 0.005), ``abs_tol`` (default 0.01). The formula
    is re-computed by a safe arithmetic evaluator over Python's ``ast`` (numbers, the
    input names, ``+ - * / // % **`` and ``^`` as power, and ``sqrt``, ``log``/``ln``,
    ``log10``, ``exp``, ``abs``, ``min``, ``max``), never ``eval``.
``boxed_answer`` (math worked problems; the ``\\boxed{}`` final-answer convention of the MATH
dataset: Hendrycks et al. 2021, "Measuring Mathematical Problem Solving With the MATH Dataset")
    ``fields`` (default ``[final_answer]``): each must hold exactly one ``\\boxed{...}`` with
    balanced braces and non-empty content; ``also_in`` (optional field): the boxed content
    must appear in that field too (the solution ends where the final answer says).
``option_letter`` (multiple choice in the style of MedQA: Jin et al. 2021, "What Disease Does
This Patient Have?", Applied Sciences 11(14):6421)
    ``options_field`` (default ``options``: ``{"A": "...", "B": "..."}``), ``answer_field``
    (default ``answer``), ``letters`` (default ``ABCDE``), ``min_options`` (default 4): the
    option keys are consecutive letters from ``A``, the option texts non-empty and
    distinct, and the answer is one letter that exists among the options.
``units_consistent`` (science quantitative problems)
    ``formula_field`` (default ``formula``), ``given_field`` (default ``given``:
    ``{"v": {"value": 12, "unit": "m/s"}}``), ``answer_value_field`` (default
    ``answer_value``), ``answer_unit_field`` (default ``answer_unit``), ``rel_tol`` (default
    0.02). Every given quantity and the answer carry a unit that pint parses
    (``dimensionless`` for pure numbers); the formula, evaluated on pint quantities, must
    be dimensionally consistent (no metres added to seconds), its dimension must equal the
    answer unit's, and its value converted to the answer unit must match the answer value.
``quoted_in`` (law: faithful to the quoted text)
    ``field`` (the quote, a string or list), ``within`` (list of fields, default
    ``[evidence]``): every quote must occur, whitespace- and case-insensitively, in one of
    the ``within`` fields (which ``evidence_in_chunk`` in turn ties to the chunk).
"""

from __future__ import annotations

import ast
import math
import operator
import re
import unicodedata
from functools import lru_cache
from typing import Any, Callable

from prepbench.tools.errors import SkillError
from prepbench.tools.validate.rules import PASS, RuleFn, Verdict, register_rule_kind

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPONENT = 1000
_MAX_NODES = 200

#: Functions a stated formula may call (numbers only).
NUMERIC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "ln": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "abs": abs,
    "min": min,
    "max": max,
}
#: Named constants a formula may use.
CONSTANTS = {"pi": math.pi, "e": math.e}


class FormulaError(ValueError):
    """A stated formula that cannot be evaluated (syntax, unknown name, inconsistent units)."""


def _rhs(formula: str) -> str:
    """The expression of ``"LHS = RHS"`` (or the whole string when there is no ``=``)."""
    text = formula.strip().replace("×", "*").replace("·", "*").replace("−", "-").replace("÷", "/").replace("^", "**")
    if text.count("=") == 1:
        text = text.split("=", 1)[1]
    return text.strip()


def safe_eval(formula: str, names: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None) -> Any:
    """Evaluate an arithmetic formula safely by walking its ``ast`` (never ``eval``).

    Args:
        formula: ``"NAME = expression"`` or an expression; ``^`` means power, ``×``/``·``
            multiply, ``−`` minus, ``÷`` divide.
        names: variable name -> value (numbers, or pint quantities for unit checks).
        functions: callable names the formula may use (default :data:`NUMERIC_FUNCTIONS`).

    Returns:
        The value (a number, or whatever the operators on ``names`` give).

    Raises:
        FormulaError: syntax error, a name that is neither an input nor a constant, a call
            to anything but a listed function, an exponent above 1000, or an arithmetic
            error (division by zero, overflow, mismatched units).
    """
    functions = NUMERIC_FUNCTIONS if functions is None else functions
    expr = _rhs(formula)
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise FormulaError(f"cannot parse formula {formula!r}") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise FormulaError("formula is too long")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise FormulaError(f"formula uses {node.id!r}, which is not among the inputs")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow):
                exp = getattr(right, "magnitude", right)
                if isinstance(exp, (int, float)) and abs(exp) > _MAX_EXPONENT:
                    raise FormulaError(f"exponent {exp} is too large")
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fn = functions.get(node.func.id)
            if fn is None:
                raise FormulaError(f"formula calls {node.func.id!r}, which is not an allowed function")
            return fn(*[ev(a) for a in node.args])
        raise FormulaError(f"formula has an unsupported element {type(node).__name__}")

    try:
        return ev(tree)
    except FormulaError:
        raise
    except Exception as e:  # ZeroDivisionError, OverflowError, pint DimensionalityError, ...
        raise FormulaError(f"cannot evaluate formula {formula!r}: {e}") from None


_NUM_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def to_number(value: Any) -> float | None:
    """A number from a JSON value: numbers as is, strings like ``"$1,125.51"`` or ``"5%"`` (-> 5)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _NUM_RE.search(value.replace("−", "-"))
        if m and m.group(0).replace(",", "").replace("-", "").replace(".", ""):
            try:
                return float(m.group(0).replace(",", ""))
            except ValueError:
                return None
    return None


def numbers_in(text: str) -> list[float]:
    """Every number written in a text (thousands separators allowed)."""
    out = []
    for m in _NUM_RE.finditer(text.replace("−", "-")):
        try:
            out.append(float(m.group(0).replace(",", "")))
        except ValueError:
            continue
    return out


def significant_figures(x: float) -> int:
    """Significant figures of a stated number as written in its shortest form (``1.7e15`` -> 2,
    ``0.0250`` -> 2: trailing zeros after a decimal point are lost in JSON); a whole number
    below one million counts every digit (``4000`` -> 4)."""
    if float(x).is_integer() and abs(x) < 1e6:
        return max(1, len(str(abs(int(x)))))
    digits = repr(abs(float(x))).split("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(digits))


def _close(a: float, b: float, rel_tol: float, abs_tol: float) -> bool:
    """``a`` (computed) matches ``b`` (stated) within the tolerances, or equals it once
    rounded to ``b``'s significant figures (a book's ``1.7e15`` for ``1.7355e15``)."""
    if math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol):
        return True
    if a == 0 or b == 0 or not math.isfinite(a):
        return False
    n = significant_figures(b)
    return math.isclose(float(f"{a:.{n - 1}e}"), b, rel_tol=1e-9)


def _tol(spec: dict, name: str, key: str, default: float) -> float:
    v = spec.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        raise SkillError(f"filters.yaml: rule '{name}': field '{key}' must be a non-negative number")
    return float(v)


def _field_name(spec: dict, name: str, key: str, default: str | None) -> str | None:
    v = spec.get(key, default)
    if v is not None and not isinstance(v, str):
        raise SkillError(f"filters.yaml: rule '{name}': field '{key}' must be a sample field name")
    return v


@register_rule_kind("formula_result")
def formula_result_rule(spec: dict, name: str) -> RuleFn:
    ff = _field_name(spec, name, "formula_field", "formula")
    inf = _field_name(spec, name, "inputs_field", "inputs")
    rf = _field_name(spec, name, "result_field", "result")
    af = _field_name(spec, name, "answer_field", None)
    rel_tol = _tol(spec, name, "rel_tol", 0.005)
    abs_tol = _tol(spec, name, "abs_tol", 0.01)

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if ff not in sample:
            return PASS
        formula, inputs = sample.get(ff), sample.get(inf)
        if not isinstance(formula, str) or not isinstance(inputs, dict):
            return Verdict(False, name, f"{ff} must be a formula string and {inf} a mapping of its inputs")
        values = {}
        for k, v in inputs.items():
            x = to_number(v)
            if x is None:
                return Verdict(False, name, f"{inf}.{k} is not a number: {v!r}")
            values[k] = x
        try:
            got = safe_eval(formula, values)
        except FormulaError as e:
            return Verdict(False, name, str(e))
        if not isinstance(got, (int, float)) or isinstance(got, complex):
            return Verdict(False, name, f"{ff} does not evaluate to a real number")
        stated = to_number(sample.get(rf))
        if stated is None:
            return Verdict(False, name, f"{rf} is not a number: {sample.get(rf)!r}")
        if not _close(got, stated, rel_tol, abs_tol):
            return Verdict(False, name, f"{ff} gives {got:.6g}, but {rf} states {stated:.6g}")
        if af is not None and af in sample:
            if not any(_close(x, stated, rel_tol, abs_tol) for x in numbers_in(str(sample[af]))):
                return Verdict(False, name, f"{af} does not state the result {stated:g}")
        return PASS

    return check


def boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` in a text, nested braces balanced.

    Raises:
        ValueError: a ``\\boxed{`` whose braces never close.
    """
    out = []
    for m in re.finditer(r"\\boxed\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            raise ValueError("unbalanced braces in \\boxed{...}")
        out.append(text[m.end() : i - 1])
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


@register_rule_kind("boxed_answer")
def boxed_answer_rule(spec: dict, name: str) -> RuleFn:
    fields = spec.get("fields", spec.get("field", ["final_answer"]))
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise SkillError(f"filters.yaml: rule '{name}': field 'fields' must be a list of sample field names")
    also_in = _field_name(spec, name, "also_in", None)

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        for f in fields:
            if f not in sample:
                continue
            text = sample[f] if isinstance(sample[f], str) else str(sample[f])
            try:
                boxes = boxed_contents(text)
            except ValueError as e:
                return Verdict(False, name, f"{f}: {e}")
            if len(boxes) != 1:
                return Verdict(False, name, f"{f} has {len(boxes)} \\boxed{{}} answers (exactly one needed)")
            content = boxes[0].strip()
            if not content:
                return Verdict(False, name, f"{f} has an empty \\boxed{{}}")
            if also_in and also_in in sample:
                hay = _squash(" ".join(sample[also_in]) if isinstance(sample[also_in], list) else str(sample[also_in]))
                if _squash(content) not in hay:
                    return Verdict(False, name, f"boxed answer {content!r} does not appear in {also_in}")
        return PASS

    return check


@register_rule_kind("option_letter")
def option_letter_rule(spec: dict, name: str) -> RuleFn:
    of = _field_name(spec, name, "options_field", "options")
    af = _field_name(spec, name, "answer_field", "answer")
    letters = spec.get("letters", "ABCDE")
    if not isinstance(letters, str) or not letters.isalpha() or not letters.isupper():
        raise SkillError(f"filters.yaml: rule '{name}': field 'letters' must be upper-case letters like 'ABCDE'")
    min_options = spec.get("min_options", 4)
    if not isinstance(min_options, int) or not 2 <= min_options <= len(letters):
        raise SkillError(f"filters.yaml: rule '{name}': field 'min_options' must be an integer in [2, {len(letters)}]")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if of not in sample:
            return PASS
        options = sample[of]
        if not isinstance(options, dict):
            return Verdict(False, name, f"{of} must map option letters to texts")
        keys = list(options)
        if len(keys) < min_options:
            return Verdict(False, name, f"{of} has {len(keys)} options (min {min_options})")
        if keys != list(letters[: len(keys)]):
            return Verdict(False, name, f"{of} letters are {''.join(keys)!r}, expected {letters[: len(keys)]!r}")
        texts = [_squash(str(v)) for v in options.values()]
        if any(not t for t in texts):
            return Verdict(False, name, f"{of} has an empty option")
        if len(set(texts)) != len(texts):
            return Verdict(False, name, f"{of} repeats an option")
        answer = sample.get(af)
        letter = answer.strip().rstrip(").").strip("(") if isinstance(answer, str) else None
        if not letter or letter not in options:
            return Verdict(False, name, f"{af} {answer!r} is not one of the option letters {''.join(keys)}")
        return PASS

    return check


@lru_cache(maxsize=1)
def unit_registry():
    """The shared pint ``UnitRegistry`` (built once; about 0.1 s)."""
    import pint

    return pint.UnitRegistry()


def _quantity_functions() -> dict[str, Callable[..., Any]]:
    def dimensionless(fn):
        def call(x):
            mag = x.to("dimensionless").magnitude if hasattr(x, "to") else x
            return fn(mag)

        return call

    return {
        "sqrt": lambda x: x**0.5,
        "abs": abs,
        "min": min,
        "max": max,
        "exp": dimensionless(math.exp),
        "log": dimensionless(math.log),
        "ln": dimensionless(math.log),
        "log10": dimensionless(math.log10),
        "sin": dimensionless(math.sin),
        "cos": dimensionless(math.cos),
        "tan": dimensionless(math.tan),
    }


def _parse_unit(ureg, unit: Any) -> Any:
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError("no unit")
    text = unit.strip().replace("·", "*").replace("²", "**2").replace("³", "**3").replace("°C", "degC")
    return ureg.parse_units(text if text != "1" else "dimensionless")


@register_rule_kind("units_consistent")
def units_consistent_rule(spec: dict, name: str) -> RuleFn:
    ff = _field_name(spec, name, "formula_field", "formula")
    gf = _field_name(spec, name, "given_field", "given")
    vf = _field_name(spec, name, "answer_value_field", "answer_value")
    uf = _field_name(spec, name, "answer_unit_field", "answer_unit")
    rel_tol = _tol(spec, name, "rel_tol", 0.02)

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if ff not in sample:
            return PASS
        ureg = unit_registry()
        given = sample.get(gf)
        if not isinstance(given, dict) or not given:
            return Verdict(False, name, f"{gf} must map each input to its value and unit")
        values = {}
        for k, q in given.items():
            if not isinstance(q, dict):
                return Verdict(False, name, f"{gf}.{k} must be {{value, unit}}")
            x = to_number(q.get("value"))
            if x is None:
                return Verdict(False, name, f"{gf}.{k}.value is not a number: {q.get('value')!r}")
            try:
                values[k] = ureg.Quantity(x, _parse_unit(ureg, q.get("unit")))
            except Exception as e:
                return Verdict(False, name, f"{gf}.{k}.unit {q.get('unit')!r} is not a unit ({str(e)[:60]})")
        try:
            answer_unit = _parse_unit(ureg, sample.get(uf))
        except Exception as e:
            return Verdict(False, name, f"{uf} {sample.get(uf)!r} is not a unit ({str(e)[:60]})")
        stated = to_number(sample.get(vf))
        if stated is None:
            return Verdict(False, name, f"{vf} is not a number: {sample.get(vf)!r}")
        try:
            got = safe_eval(str(sample.get(ff)), values, _quantity_functions())
        except FormulaError as e:
            return Verdict(False, name, f"inconsistent units or formula: {e}"[:200])
        if not hasattr(got, "dimensionality"):
            got = got * ureg.dimensionless
        if got.dimensionality != (1 * answer_unit).dimensionality:
            return Verdict(
                False, name, f"{ff} gives {got.dimensionality}, but {uf} {sample.get(uf)!r} is {(1 * answer_unit).dimensionality}"
            )
        value = got.to(answer_unit).magnitude
        if not _close(float(value), stated, rel_tol, 1e-12):
            return Verdict(False, name, f"{ff} gives {value:.6g} {sample.get(uf)}, but {vf} states {stated:.6g}")
        return PASS

    return check


@register_rule_kind("quoted_in")
def quoted_in_rule(spec: dict, name: str) -> RuleFn:
    qf = _field_name(spec, name, "field", None)
    if not qf:
        raise SkillError(f"filters.yaml: rule '{name}': field 'field' (the quote) is required")
    within = spec.get("within", ["evidence"])
    if isinstance(within, str):
        within = [within]
    if not isinstance(within, list) or not within or not all(isinstance(w, str) for w in within):
        raise SkillError(f"filters.yaml: rule '{name}': field 'within' must be a list of sample field names")

    def check(sample: dict, chunk_text: str | None) -> Verdict:
        if qf not in sample:
            return PASS
        quotes = sample[qf] if isinstance(sample[qf], list) else [sample[qf]]
        hay = []
        for w in within:
            v = sample.get(w)
            hay.extend(v if isinstance(v, list) else [v] if v is not None else [])
        hay_text = " \x00 ".join(_squash(str(h)) for h in hay)
        for q in quotes:
            if not isinstance(q, str) or not q.strip():
                return Verdict(False, name, f"{qf} is empty")
            if _squash(q.strip().strip('"“”')) not in hay_text:
                return Verdict(False, name, f"{qf} {q[:60]!r} is not quoted verbatim in {'/'.join(within)}")
        return PASS

    return check
