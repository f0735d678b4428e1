"""Check a ``torch.export`` archive before torch reads it, so loading it runs no code from the file.

``torch.export.load`` (torch 2.13) hands parts of the archive to evaluators:

* ``sympy.sympify`` on every symbolic-shape expression (``expr_str``), which
  runs Python (``__import__('os').system(...)`` inside an expression runs);
* ``exec`` of the ``guards_code`` strings when ``ExportedProgram.module()``
  builds its input guards;
* ``torch.load(weights_only=False)`` for weights and constants flagged
  ``use_pickle``, for the legacy ``data/weights/<model>.pt`` files, and as a
  fallback for the saved example inputs; ``pickle.loads`` for opaque
  constants; the TorchScript unpickler for custom objects;
* compiled AOTInductor libraries (``data/aotinductor/``) loaded with ``dlopen``;
* operator names resolved by attribute lookup under ``torch``, ``operator``
  and ``math`` (``torch.os.system`` resolves), called when the module runs.

So every such input is checked here against what torch itself writes, and
anything else is refused: expressions must parse (with :mod:`ast`, which
evaluates nothing) into the sympy ``srepr`` grammar that torch's serializer
emits; guards into the small Python grammar of torch's guard printer; the
pickled example inputs may name only the globals ``torch.save`` writes for
plain tensors; the zip members must be the layout torch writes, with safe
names and sizes.  What passes is exactly what a plain ``torch.export.save``
produces, so no process-wide patch is needed while torch loads it.
"""
from __future__ import annotations

import ast
import io
import json
import pickletools
import re
import zipfile
from typing import Any, Iterator

from .errors import ModelLoadError

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 64 * 2**30          # uncompressed; beyond this no report is worth it
MAX_RATIO = 100                       # uncompressed / compressed beyond this (and 1 GiB) is a zip bomb
MAX_JSON_BYTES = 512 * 2**20
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

# Globals that torch.save writes for plain tensors in the example inputs.
_PICKLE_GLOBALS = frozenset({"torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
                             "collections OrderedDict", "torch Size", "torch device"})
_TORCH_STORAGE_OR_DTYPE = re.compile(r"torch ([A-Z][A-Za-z0-9]*Storage|u?int(8|16|32|64)|float(16|32|64)|bfloat16"
                                     r"|bool|complex(32|64|128)|float8_\w+|half|double|long)")

_ROOT_FILES = frozenset({"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"})
_MEMBER = re.compile(r"models/[A-Za-z0-9_.-]+\.json|data/weights/[A-Za-z0-9_.-]+|data/constants/[A-Za-z0-9_.-]+"
                     r"|data/sample_inputs/[A-Za-z0-9_.-]+\.pt|extra/[A-Za-z0-9_./-]+")


class Refused(ModelLoadError):
    """The archive holds something torch would evaluate, or a layout torch never writes."""


class NotAnArchive(ModelLoadError):
    """A zip file, but not one torch.export.save wrote (no ``archive_format`` record)."""


def _refuse(reason: str) -> None:
    raise Refused(f"refused: {reason}; mevreport loads only what torch.export.save writes for plain tensors "
                  f"(re-export the model, or name a callable that builds it)")


# --- zip layout ---------------------------------------------------------------------------------------------

def check_members(archive: zipfile.ZipFile, archive_bytes: int) -> dict[str, str]:
    """Map of relative record name -> member name, after refusing unsafe or unexpected members."""
    infos = archive.infolist()
    if not infos:
        _refuse("the zip file is empty")
    if len(infos) > MAX_MEMBERS:
        _refuse(f"{len(infos)} zip members")
    names = [i.filename for i in infos]
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            _refuse(f"zip member {name!r} has an absolute name")
        if ".." in parts:
            _refuse(f"zip member {name!r} has a '..' component")
        if "\x00" in name:
            _refuse(f"zip member {name!r} has a NUL in its name")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            _refuse(f"zip member {name!r} appears twice")
        seen.add(name)
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES or (total > 2**30 and total > MAX_RATIO * max(archive_bytes, 1)):
        _refuse(f"the zip members expand to {total:,} bytes from {archive_bytes:,} (a zip bomb?)")
    if not any(n.split("/", 1)[-1] == "archive_format" for n in names):
        raise NotAnArchive("no archive_format member")
    root = names[0].split("/")[0]
    records: dict[str, str] = {}
    for name in names:
        if name.endswith("/"):
            continue
        if not name.startswith(root + "/"):
            _refuse(f"zip member {name!r} lies outside the archive folder {root!r}")
        rel = name[len(root) + 1:]
        if rel.startswith("data/aotinductor/"):
            _refuse(f"{rel!r} is a compiled AOTInductor library, which mevreport never loads")
        if rel not in _ROOT_FILES and not _MEMBER.fullmatch(rel):
            _refuse(f"unexpected zip member {rel!r}")
        if rel.startswith("data/weights/") and rel.endswith(".pt") or rel.startswith("data/constants/") \
                and rel.endswith(".pt"):
            _refuse(f"{rel!r} is a legacy pickled payload, which mevreport never unpickles")
        records[rel] = name
    return records


def read_json(archive: zipfile.ZipFile, name: str) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        _refuse(f"{name!r} is {info.file_size:,} bytes of JSON")

    def no_constant(text: str) -> None:
        _refuse(f"{name!r} holds the non-JSON number {text}")
    try:
        return json.loads(archive.read(name), parse_constant=no_constant)
    except Refused:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        _refuse(f"{name!r} is not valid JSON ({str(exc)[:80]})")


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
                    or isinstance(node.args[0].value, str) and _FLOAT_TEXT.fullmatch(node.args[0].value))
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
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if not (_SYMBOL_NAME.fullmatch(node.value) or _FLOAT_TEXT.fullmatch(node.value)):
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
                                                       isinstance(key.value, str) and key.value.isidentifier())):
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
            if type(node.value) not in (int, float, bool, str) or type(node.value) is int and \
                    abs(node.value) > MAX_LITERAL:
                _refuse(f"guard {text[:60]!r} has a literal torch never writes")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITH) or isinstance(node.op, ast.Pow) and _int_literal(node.right) is None:
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
    if _OP_TARGET.fullmatch(target) and target.split(".")[2] not in _NOT_OP_NAMESPACES:
        return
    _refuse(f"graph node target {target[:80]!r} is not a registered operator")


# --- the program JSON ---------------------------------------------------------------------------------------

_TYPED = {"as_int": int, "as_float": (int, float), "as_bool": bool, "min_val": (int, type(None)),
          "max_val": (int, type(None))}


def _walk(data: Any) -> Iterator[tuple[str | None, Any, Any]]:
    """(key, value, parent) for every value in the JSON document, iteratively (no recursion limit)."""
    stack: list[tuple[str | None, Any, Any]] = [(None, data, None)]
    while stack:
        key, value, parent = stack.pop()
        yield key, value, parent
        if isinstance(value, dict):
            stack.extend((str(k), v, value) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key if key in ("as_ints", "as_floats", "as_bools") else None, v, value) for v in value)


def check_program(data: Any, name: str) -> None:
    """Every expression, guard, operator name and typed number in one ``models/<name>.json``."""
    if not isinstance(data, dict):
        _refuse(f"{name!r} is not a JSON object")
    guards = data.get("guards_code", [])
    if not isinstance(guards, list):
        _refuse(f"{name!r} guards_code is not a list")
    for g in guards:
        check_guard(g)
    for key, value, parent in _walk(data):
        if key == "expr_str":
            check_sym_expr(value)
        elif key == "target" and isinstance(parent, dict) and "inputs" in parent:
            check_target(value)
        elif key == "nodes" and isinstance(value, list):
            for node in value:
                if not isinstance(node, dict):
                    _refuse(f"{name!r} has a graph node that is not an object")
                check_target(node.get("target"))
        elif key in ("as_ints", "as_floats", "as_bools") and not isinstance(value, list):
            singular = key[:-1]
            kinds = _TYPED[singular]
            if not isinstance(value, kinds) or (type(value) is bool and singular != "as_bool"):
                _refuse(f"{name!r} has {key} of type {type(value).__name__}")
        elif key in _TYPED:
            kinds = _TYPED[key]
            if not isinstance(value, kinds) or (type(value) is bool and key != "as_bool"):
                _refuse(f"{name!r} has {key} of type {type(value).__name__}")
            if type(value) is int and abs(value) > 2**64:
                _refuse(f"{name!r} has {key} {str(value)[:30]}... beyond int64")
    ranges = data.get("range_constraints", {})
    if not isinstance(ranges, dict) or not all(isinstance(k, str) and _SYMBOL_NAME.fullmatch(k) for k in ranges):
        _refuse(f"{name!r} has range_constraints with names torch never writes")


def check_payload_config(data: Any, name: str, constants: bool) -> None:
    """Weights and constants: raw tensor bytes only; pickled tensors, custom and opaque objects are refused."""
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        _refuse(f"{name!r} is not a payload config")
    for fqn, meta in config.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            _refuse(f"{name!r} entry {str(fqn)[:60]!r} is malformed")
        if meta.get("use_pickle") is not False:
            _refuse(f"{str(fqn)[:60]!r} is a pickled object; mevreport never unpickles")
        if constants and not meta["path_name"].startswith("tensor_"):
            _refuse(f"constant {str(fqn)[:60]!r} is a custom or opaque object, which mevreport never unpickles")


def check_pickle_globals(payload: bytes, name: str) -> None:
    """The example inputs (a ``torch.save`` zip): its pickle may name only the globals of plain tensors.

    With only these, whichever unpickler torch picks (its restricted one, or
    the full one it falls back to) can call nothing else.
    """
    try:
        inner = zipfile.ZipFile(io.BytesIO(payload))
        pickles = [n for n in inner.namelist() if n.endswith(".pkl")]
        if sum(i.file_size for i in inner.infolist()) > MAX_TOTAL_BYTES:
            _refuse(f"{name!r} expands to too many bytes")
        streams = [inner.read(n) for n in pickles]
    except zipfile.BadZipFile:
        _refuse(f"{name!r} is a bare pickle, not a torch.save archive of tensors; mevreport never unpickles it")
    if not pickles:
        _refuse(f"{name!r} holds no pickle")
    for stream in streams:
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):
                    if arg not in _PICKLE_GLOBALS and not _TORCH_STORAGE_OR_DTYPE.fullmatch(str(arg)):
                        _refuse(f"{name!r} pickles {str(arg)[:60]!r}, not a plain tensor; mevreport never unpickles it")
                elif opcode.name in ("STACK_GLOBAL", "OBJ", "EXT1", "EXT2", "EXT4"):
                    _refuse(f"{name!r} holds a {opcode.name} pickle opcode, which torch.save never writes for tensors")
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001  (malformed pickle: refuse, never half-parse)
            _refuse(f"{name!r} is a malformed pickle ({type(exc).__name__})")


def check_archive(data: bytes) -> None:
    """Refuse (:class:`Refused`) anything in the archive bytes that torch would evaluate."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        _refuse(f"not a readable zip file ({exc})")
    records = check_members(archive, len(data))
    models = [r for r in records if r.startswith("models/")]
    if not models:
        _refuse("the archive holds no models/<name>.json")
    for rel in models:
        model = rel[len("models/"):-len(".json")]
        check_program(read_json(archive, records[rel]), rel)
        for config, constants in ((f"data/weights/{model}_weights_config.json", False),
                                  (f"data/constants/{model}_constants_config.json", True)):
            if config in records:
                check_payload_config(read_json(archive, records[config]), config, constants)
        sample = f"data/sample_inputs/{model}.pt"
        if sample in records and archive.getinfo(records[sample]).file_size:
            check_pickle_globals(archive.read(records[sample]), sample)


__all__ = ["check_archive", "check_sym_expr", "check_guard", "check_target", "check_members", "Refused"]
