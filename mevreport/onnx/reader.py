"""Reading an ONNX file: validate it, bind its input shapes, infer the rest.

Everything that can be wrong with the file or the user's shapes is found here
and raised as one :class:`~mevreport.errors.ModelLoadError` /
:class:`~mevreport.errors.UsageError` line, before any report is built, so a
bad file never leaves a partial report behind.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper, shape_inference

from ..errors import ModelLoadError, UsageError, check_model_file, one_line

# ModelProto larger than this cannot be serialised in one piece (protobuf's 2 GiB limit).
_PROTO_LIMIT = 2 ** 31 - 1


@dataclass(frozen=True)
class GraphInput:
    """One real graph input (initializers listed as inputs are left out)."""

    name: str
    dtype: str
    dims: tuple[int | str | None, ...]  # int, symbolic name, or None for an unnamed unknown dim


@dataclass(frozen=True)
class LoadedOnnx:
    path: Path
    model: onnx.ModelProto          # as read, with external data loaded
    inputs: tuple[GraphInput, ...]
    checker_error: str | None       # onnx.checker's complaint, when it had one
    large: bool = False             # over protobuf's 2 GiB: cannot be serialised in one piece


def dtype_name(elem_type: int) -> str:
    """ONNX element type to the torch-style name used in reports (``float32``)."""
    try:
        np_dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    except (KeyError, ValueError, TypeError):
        return TensorProto.DataType.Name(elem_type).lower() if elem_type in TensorProto.DataType.values() else "unknown"
    name = str(np_dtype)
    return {"bool": "bool", "object": "string"}.get(name, name)


def _dims(vi: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def read_onnx(path: str | Path) -> LoadedOnnx:
    """Load and validate ``path``; errors name the file and what is wrong."""
    p = Path(path)
    check_model_file(p, "an ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=True)
    except Exception as exc:  # protobuf DecodeError, missing external data, ...
        raise ModelLoadError(f"{str(p)!r} is not a readable ONNX model ({one_line(exc, None)})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelLoadError(f"{str(p)!r} is not an ONNX model: it holds no graph (truncated, or not ONNX at all)")
    checker_error = None
    # the file, or its initializers when they came from external data, approximate ByteSize() cheaply
    large = max(p.stat().st_size, sum(len(i.raw_data) for i in model.graph.initializer)) >= _PROTO_LIMIT
    try:
        if not large:
            onnx.checker.check_model(model)
        else:
            onnx.checker.check_model(str(p))
    except onnx.checker.ValidationError as exc:
        checker_error = one_line(exc, None, typed=False)
        # A graph whose edges do not resolve cannot be analysed; a custom op's schema is fine.
        if not _edges_resolve(model):
            raise ModelLoadError(f"{str(p)!r} is not a valid ONNX model (onnx.checker: {checker_error})") from None
    init_names = {i.name for i in model.graph.initializer}
    inputs = []
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        dims = _dims(vi)
        inputs.append(GraphInput(vi.name, dtype_name(vi.type.tensor_type.elem_type), dims if dims is not None else ()))
    return LoadedOnnx(p, model, tuple(inputs), checker_error, large)


def _edges_resolve(model: onnx.ModelProto) -> bool:
    """Every node input is a graph input, an initializer or an earlier node's output."""
    known = {vi.name for vi in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    for node in model.graph.node:
        if any(name not in known for name in node.input):
            return False
        known.update(node.output)
    return all(o.name in known for o in model.graph.output)


def bind_shapes(loaded: LoadedOnnx, positional: list[tuple[int, ...]],
                named: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """A concrete shape for every graph input, or a UsageError naming each unknown one.

    ``named`` binds by graph input name; ``positional`` shapes bind to the
    graph inputs in order.  A symbolic dimension bound once (``batch``) is
    bound for every input that uses it.
    """
    names = [i.name for i in loaded.inputs]
    unknown_names = [n for n in named if n not in names]
    if unknown_names:
        raise UsageError(f"--input-shape names {', '.join(repr(n) for n in unknown_names)}, but the model's inputs are "
                         f"{', '.join(repr(n) for n in names) or 'none'}")
    if len(positional) > len(loaded.inputs):
        raise UsageError(f"{len(positional)} --input-shape values given, but the model has {len(loaded.inputs)} input(s)")
    given: dict[str, tuple[int, ...]] = {}
    for inp, shape in zip(loaded.inputs, positional):
        given[inp.name] = shape
    given.update(named)
    symbols: dict[str, int] = {}
    for inp in loaded.inputs:
        wanted = given.get(inp.name)
        if wanted is None:
            continue
        if inp.dims and len(inp.dims) != len(wanted):
            raise UsageError(f"input {inp.name!r} has rank {len(inp.dims)} ({_show(inp.dims)}), "
                             f"but --input-shape gives {len(wanted)} dims")
        for d, v in zip(inp.dims, wanted):
            if isinstance(d, int) and d != v:
                raise UsageError(f"input {inp.name!r} has the fixed shape {_show(inp.dims)}; --input-shape gives "
                                 f"{','.join(map(str, wanted))}")
            if isinstance(d, str) and symbols.setdefault(d, v) != v:
                raise UsageError(f"dimension {d!r} bound to both {symbols[d]} and {v} by --input-shape")
    shapes: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    for inp in loaded.inputs:
        if inp.name in given:
            shapes[inp.name] = given[inp.name]
            continue
        resolved = [d if isinstance(d, int) else symbols.get(d) if isinstance(d, str) else None for d in inp.dims]
        if not inp.dims and inp.dims is not None and _declared_scalar(loaded, inp.name):
            shapes[inp.name] = ()
        elif inp.dims and all(isinstance(d, int) for d in resolved):
            shapes[inp.name] = tuple(int(d) for d in resolved)  # type: ignore[arg-type]
        else:
            missing.append(f"{inp.name!r} ({_show(inp.dims) if inp.dims else 'no shape in the file'})")
    if missing:
        first = loaded.inputs[0].name
        raise UsageError(f"unknown input shape for {', '.join(missing)}: pass --input-shape NAME=D1,D2,... per input "
                         f"(e.g. --input-shape {first}=1,3,224,224)")
    return shapes


def _declared_scalar(loaded: LoadedOnnx, name: str) -> bool:
    vi = next(v for v in loaded.model.graph.input if v.name == name)
    return vi.type.tensor_type.HasField("shape") and len(vi.type.tensor_type.shape.dim) == 0


def _show(dims: tuple[int | str | None, ...]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"


def with_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy whose graph inputs have the bound concrete shapes."""
    m = copy.deepcopy(model)
    for vi in m.graph.input:
        if vi.name not in shapes:
            continue
        shape = vi.type.tensor_type.shape
        shape.ClearField("dim")
        for v in shapes[vi.name]:
            shape.dim.add().dim_value = int(v)
    return m


def infer_value_types(model: onnx.ModelProto,
                      large: bool = False) -> tuple[dict[str, tuple[tuple[int, ...], str]], str | None]:
    """Shape and dtype of every value ONNX shape inference can determine.

    Unknown dimensions are -1.  Returns the map and inference's error, if it
    stopped early (a custom op it has no schema for stops nothing: its outputs
    are simply unknown).
    """
    error = None
    try:
        if not large:
            inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        else:
            inferred = model  # too large to infer in memory: runtime shapes fill in
            error = "model over 2 GiB: shapes come from the onnxruntime run only"
    except Exception as exc:  # inference is best effort; the run fills gaps
        inferred = model
        error = f"ONNX shape inference failed: {one_line(exc, None, typed=False)}"
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            continue
        dims = _dims(vi)
        if dims is None:
            continue
        out[vi.name] = (tuple(d if isinstance(d, int) else -1 for d in dims), dtype_name(vi.type.tensor_type.elem_type))
    for init in g.initializer:
        out[init.name] = (tuple(int(d) for d in init.dims), dtype_name(init.data_type))
    return out, error
