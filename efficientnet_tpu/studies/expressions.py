"""Safe arithmetic over a trial's values, for constraints and derived fields.

A spec may say ``abs(alpha * beta**2 * gamma**2 - 2) <= 0.1`` or
``resolution: "round(32 * r)"``. The text is parsed with ``ast`` and only
numbers, names of the trial's values, arithmetic, comparisons, boolean
operators and a few math functions are allowed, so a spec file can never run
code.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable, Mapping

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float,
    "sqrt": math.sqrt, "log": math.log, "exp": math.exp, "floor": math.floor, "ceil": math.ceil,
}
_MAX_EXPONENT = 64  # keeps ``9 ** 9 ** 9`` from hanging the loader


def parse(text: str, source: str) -> ast.Expression:
    """Parses and checks an expression; ValueError naming what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{source}: an expression must be a non-empty string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"{source}: {text!r} is not a valid arithmetic expression") from None
    for node in ast.walk(tree):
        allowed = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Name,
                                    ast.Load, ast.And, ast.Or, ast.Call, ast.IfExp)) \
            or type(node) in _BINARY or type(node) in _UNARY or type(node) in _COMPARE
        if isinstance(node, ast.Constant):
            allowed = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.Call):
            allowed = isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords
        if not allowed:
            raise ValueError(f"{source}: {text!r} uses {type(node).__name__}, which is not allowed; expressions "
                             f"may use numbers, the trial's values, + - * / // % **, comparisons, and/or/not "
                             f"and {', '.join(FUNCTIONS)}")
    return tree


def names(tree: ast.Expression) -> set[str]:
    """The value names an expression reads (function names excluded)."""
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in callees}


def evaluate(text: str, values: Mapping[str, Any], source: str) -> Any:
    """The value of ``text`` with ``values`` bound to names; ValueError on an unknown name."""
    tree = parse(text, source)

    def run(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return run(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in values or values[node.id] is None:
                known = sorted(k for k, v in values.items() if isinstance(v, (int, float)))
                raise ValueError(f"{source}: {text!r} reads {node.id!r}, which this trial does not set; "
                                 f"known values: {', '.join(known)}")
            return values[node.id]
        if isinstance(node, ast.BinOp):
            left, right = run(node.left), run(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
                raise ValueError(f"{source}: exponent {right} in {text!r} is too large")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](run(node.operand))
        if isinstance(node, ast.BoolOp):
            results = [run(v) for v in node.values]
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.Compare):
            left = run(node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = run(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return run(node.body) if run(node.test) else run(node.orelse)
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(run(a) for a in node.args))
        raise AssertionError(type(node).__name__)  # parse() admits nothing else

    try:
        return run(tree)
    except (ArithmeticError, TypeError) as e:
        raise ValueError(f"{source}: {text!r} cannot be computed: {e}") from None
