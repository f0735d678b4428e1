"""The grammars of what torch writes into a ``.pt2`` archive and later evaluates.

Symbolic-shape expressions (``expr_str``, read back with ``sympy.sympify``)
are ``sympy.srepr`` text; guards (``guards_code``, read back with ``exec``)
are the output of torch's guard printer; call targets are operator names.
Each is parsed with :mod:`ast`, which evaluates nothing, and refused unless
every node is one torch itself writes.
"""
from __future__ import annotations

import ast
import re
from typing import Any, NoReturn

from .errors import ModelLoadError

MAX_EXPR_CHARS = 20_000
MAX_EXPR_DEPTH = 64
MAX_LITERAL = 2**63                    # shapes are int64
MAX_CONST_EXPONENT = 64

# The sympy classes torch's serializer writes (``sympy.srepr``), and the
# functions its deserializer passes to sympify (torch/_export/serde/serialize.py).
SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Abs",
    "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "ExprCondPair",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt",
    "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
    "ToFloat", "Identity",
})
SYMPY_NAMES = frozenset({"true", "false", "oo", "zoo", "nan", "int_oo", "pi", "E"})
ASSUMPTIONS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
                         "infinite", "zero", "nonzero", "even", "odd", "rational", "commutative", "extended_real"})
POWER_LIKE = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift", "RShift"})
_SYMBOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_FLOAT_TEXT = re.compile(r"-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?|[-+]?inf|nan", re.IGNORECASE)

# Functions torch's guard printer (ShapeGuardPythonPrinter) may call, and tensor methods on L['x'].
GUARD_CALLS = frozenset({"max", "min", "abs", "int", "float", "round", "Max", "Min", "Mod", "FloorDiv",
                         "CeilToInt", "FloorToInt", "PythonMod", "IntTrueDiv", "FloatTrueDiv", "ToFloat"})
GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
GUARD_MATH = frozenset({"floor", "ceil", "trunc", "sqrt"})

# Call targets torch writes besides registered operators (torch.ops.<ns>.<op>.<overload>): _SYM_OPS.
SYM_OP_TARGETS = frozenset(
    [f"_operator.{n}" for n in ("eq", "ne", "le", "ge", "lt", "gt", "neg", "pos", "mul", "add", "sub", "floordiv",
                                "mod", "pow", "truediv", "and_", "or_", "lshift", "rshift", "getitem", "not_", "abs")]
    + ["math.trunc", "math.ceil", "math.floor"]
    + [f"torch.{n}" for n in ("sym_not", "sym_int", "sym_float", "sym_ite", "sym_max", "sym_min", "sym_sqrt",
                              "_sym_sqrt", "sym_sum", "_C._set_grad_enabled", "amp.autocast_mode._enter_autocast",
                              "amp.autocast_mode._exit_autocast")]
)
_OP_TARGET = re.compile(r"torch\.ops\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_NOT_OP_NAMESPACES = frozenset({"load_library", "import_module", "loaded_libraries"})



class Refused(ModelLoadError):
    """The archive holds something torch would evaluate, or a layout torch never writes."""


def _refuse(reason: str) -> NoReturn:
    raise Refused(f"refused: {reason}; mevreport loads only what torch.export.save writes for plain tensors "
                  f"(re-export the model, or name a callable that builds it)")


# --- symbolic expressions (sympy srepr) and guards (Python) -------------------------------------------------

def _depth_ok(tree: ast.AST, limit: int) -> None:
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            _refuse(f"an expression nests deeper than {limit}")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _parse(text: Any, what: str) -> ast.expr:
    if not isinstance(text, str):
        _refuse(f"{what} is {type(text).__name__}, not a string")
    if len(text) > MAX_EXPR_CHARS:
        _refuse(f"{what} is {len(text):,} characters long")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        _refuse(f"{what} {text[:60]!r} does not parse")
    _depth_ok(tree, MAX_EXPR_DEPTH)
    return tree.body


def _int_literal(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_literal(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Integer" and node.args:
        return _int_literal(node.args[0])
    return None


def _has_symbol(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Symbol"
               for n in ast.walk(node))


def _check_power(base: ast.expr, exponent: ast.expr, text: str) -> None:
    """Constant powers are what torch never writes (sympy folds them) and what hangs sympy (10**10**10)."""
    value = _int_literal(exponent)
    if not _has_symbol(base) and not _has_symbol(exponent):
        _refuse(f"symbolic expression {text[:60]!r} raises a constant to a constant power")
    if value is not None and abs(value) > MAX_CONST_EXPONENT:
        _refuse(f"symbolic expression {text[:60]!r} has the exponent {value}")


_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def check_sym_expr(text: Any, what: str = "symbolic expression") -> None:
    """Refuse unless ``text`` is in the grammar of torch's ``srepr`` expressions (and plain arithmetic)."""
    body = _parse(text, what)
    for node in ast.walk(body):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in SYMPY_CALLS:
                _refuse(f"{what} {text[:60]!r} calls something other than the sympy functions torch writes")
            name = node.func.id
            if name == "Symbol":
                if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant) \
                        or not isinstance(node.args[0].value, str) or not _SYMBOL_NAME.fullmatch(node.args[0].value):
                    _refuse(f"{what} {text[:60]!r} has a malformed Symbol")
                for k in node.keywords:
                    if k.arg not in ASSUMPTIONS or not isinstance(k.value, ast.Constant) \
                            or type(k.value.value) is not bool:
                        _refuse(f"{what} {text[:60]!r} has a Symbol assumption torch never writes")
                continue
            if name == "Float":
                ok = len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and (
                    type(node.args[0].value) in (int, float)
                    or (isinstance(node.args[0].value, str) and _FLOAT_TEXT.fullmatch(node.args[0].value)))
                ok = ok and all(k.arg == "precision" and isinstance(k.value, ast.Constant)
                                and type(k.value.value) is int and 1 <= k.value.value <= 1024 for k in node.keywords)
                if not ok:
                    _refuse(f"{what} {text[:60]!r} has a malformed Float")
                continue
            if node.keywords:
                _refuse(f"{what} {text[:60]!r} passes keyword arguments to {name}")
            if name in ("Integer", "Rational") and not all(_int_literal(a) is not None for a in node.args):
                _refuse(f"{what} {text[:60]!r} has a malformed {name}")
            if name in POWER_LIKE and len(node.args) == 2:
                _check_power(node.args[0], node.args[1], text)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITH):
                _refuse(f"{what} {text[:60]!r} uses an operator torch never writes")
            if isinstance(node.op, ast.Pow):
                _check_power(node.left, node.right, text)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                _refuse(f"{what} {text[:60]!r} uses an operator torch never writes")
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, _COMPARE) for op in node.ops):
                _refuse(f"{what} {text[:60]!r} uses a comparison torch never writes")
        elif isinstance(node, ast.Constant):
            if type(node.value) is int and abs(node.value) > MAX_LITERAL:
                _refuse(f"{what} {text[:60]!r} has an integer beyond int64")
            if type(node.value) not in (int, float, str, bool):
                _refuse(f"{what} {text[:60]!r} has a literal torch never writes")
        elif isinstance(node, ast.Name):
            if node.id not in SYMPY_NAMES and node.id not in SYMPY_CALLS:
                _refuse(f"{what} {text[:60]!r} names {node.id!r}, which torch never writes")
        elif not isinstance(node, (ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.keyword)):
            _refuse(f"{what} {text[:60]!r} has a {type(node).__name__}, which torch never writes")
    for node in ast.walk(body):  # strings only where checked above: Symbol names and Float digits
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and not (_SYMBOL_NAME.fullmatch(node.value) or _FLOAT_TEXT.fullmatch(node.value))):
            _refuse(f"{what} {text[:60]!r} has a string torch never writes")


def check_guard(text: Any) -> None:
    """Refuse unless ``text`` reads like torch's guard printer: ``L['x'].size()[0] <= 64`` and the like."""
    what = "guard"
    body = _parse(text, what)
    allowed_subscript_roots: set[int] = set()
    for node in ast.walk(body):
        if isinstance(node, ast.Subscript):
            key = node.slice
            if not (isinstance(key, ast.Constant) and (type(key.value) is int or
                                                       (isinstance(key.value, str) and key.value.isidentifier()))):
                _refuse(f"guard {text[:60]!r} indexes with something other than a name or a number")
            if isinstance(node.value, ast.Name):
                if node.value.id != "L":
                    _refuse(f"guard {text[:60]!r} indexes {node.value.id!r}")
                allowed_subscript_roots.add(id(node.value))
        elif isinstance(node, ast.Call):
            func = node.func
            if node.keywords:
                _refuse(f"guard {text[:60]!r} passes keyword arguments")
            if isinstance(func, ast.Name):
                if func.id not in GUARD_CALLS:
                    _refuse(f"guard {text[:60]!r} calls {func.id!r}")
            elif isinstance(func, ast.Attribute):
                if isinstance(func.value, ast.Name) and func.value.id == "math":
                    if func.attr not in GUARD_MATH:
                        _refuse(f"guard {text[:60]!r} calls math.{func.attr}")
                    allowed_subscript_roots.add(id(func.value))
                elif func.attr not in GUARD_METHODS or node.args:
                    _refuse(f"guard {text[:60]!r} calls .{func.attr}()")
            else:
                _refuse(f"guard {text[:60]!r} calls something computed")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                _refuse(f"guard {text[:60]!r} reads a private attribute")
        elif isinstance(node, ast.Name):
            if node.id not in GUARD_CALLS and node.id not in ("L", "math", "True", "False") \
                    and node.id not in SYMPY_NAMES:
                _refuse(f"guard {text[:60]!r} names {node.id!r}")
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, bool, str) or (type(node.value) is int and \
                    abs(node.value) > MAX_LITERAL):
                _refuse(f"guard {text[:60]!r} has a literal torch never writes")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITH) or (isinstance(node.op, ast.Pow) and _int_literal(node.right) is None):
                _refuse(f"guard {text[:60]!r} uses an operator torch never writes")
        elif not isinstance(node, (ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.Compare, ast.BoolOp,
                                   ast.boolop, ast.UnaryOp)):
            _refuse(f"guard {text[:60]!r} has a {type(node).__name__}")
    for node in ast.walk(body):  # `L` only ever as L[...]; math only as math.f(...)
        if isinstance(node, ast.Name) and node.id in ("L", "math") and id(node) not in allowed_subscript_roots:
            _refuse(f"guard {text[:60]!r} uses {node.id!r} on its own")


def check_target(target: Any) -> None:
    if not isinstance(target, str):
        _refuse(f"a graph node's target is {type(target).__name__}, not an operator name")
    if target in SYM_OP_TARGETS:
        return
    if _OP_TARGET.fullmatch(target) and target.split(".")[2] not in _NOT_OP_NAMESPACES and "__" not in target:
        return
    _refuse(f"graph node target {target[:80]!r} is not a registered operator")


__all__ = ["SYM_OP_TARGETS", "Refused", "check_guard", "check_sym_expr", "check_target"]
