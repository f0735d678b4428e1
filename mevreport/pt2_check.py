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

import io
import json
import pickletools
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from .errors import ModelLoadError
from .pt2_grammar import Refused, _refuse, check_guard, check_sym_expr, check_target

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 64 * 2**30          # uncompressed; beyond this no report is worth it
MAX_RATIO = 100                       # uncompressed / compressed beyond this (and 1 GiB) is a zip bomb
MAX_JSON_BYTES = 512 * 2**20

# Globals that torch.save writes for plain tensors in the example inputs.
_PICKLE_GLOBALS = frozenset({"torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
                             "collections OrderedDict", "torch Size", "torch device"})
_TORCH_STORAGE_OR_DTYPE = re.compile(r"torch ([A-Z][A-Za-z0-9]*Storage|u?int(8|16|32|64)|float(16|32|64)|bfloat16"
                                     r"|bool|complex(32|64|128)|float8_\w+|half|double|long)")

_ROOT_FILES = frozenset({"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"})
_MEMBER = re.compile(r"models/[A-Za-z0-9_.-]+\.json|data/weights/[A-Za-z0-9_.-]+|data/constants/[A-Za-z0-9_.-]+"
                     r"|data/sample_inputs/[A-Za-z0-9_.-]+\.pt|extra/[A-Za-z0-9_./-]+")


class NotAnArchive(ModelLoadError):
    """A zip file, but not one torch.export.save wrote (no ``archive_format`` record)."""


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
        if (rel.startswith("data/weights/") and rel.endswith(".pt")) or (rel.startswith("data/constants/") \
                and rel.endswith(".pt")):
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


# --- the program JSON ---------------------------------------------------------------------------------------

_TYPED: dict[str, type | tuple[type, ...]] = {"as_int": int, "as_float": (int, float), "as_bool": bool, "min_val": (int, type(None)),
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
    # keys are str() of expressions ("s78", "2*s78"), only ever looked up, never parsed
    if not isinstance(ranges, dict) or not all(isinstance(k, str) and len(k) <= 1000 for k in ranges):
        _refuse(f"{name!r} has range_constraints torch never writes")


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
        except Exception as exc:  # malformed pickle: refuse, never half-parse
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


__all__ = ["Refused", "check_archive", "check_guard", "check_members", "check_sym_expr", "check_target"]
