"""The load stage: a MODEL spec from the command line to a module and inputs.

This is the only place that imports user code or reads model files (DESIGN
§1).  User code runs only when the user names a callable; pickles
(``.pt``/``.pth``) are refused, never unpickled.
"""
from __future__ import annotations

import importlib
import importlib.util
import io
import math
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import NO_CUDA_HINT, ModelLoadError, UsageError, check_model_file, no_cuda, one_line
from .torchlogs import torch_logs_recorded

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    inputs: Any  # tensor, tuple of positional args, or dict of keyword args; None when none given
    name: str  # the model class, or the archive file's stem: the default output name and title
    # a .pt2 archive's input shapes as exported, a dimension None where it is dynamic; () for a callable's model
    exported_shapes: tuple[tuple[int | None, ...], ...] = ()


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,224,224`` (or ``1x3x224x224``) to a shape tuple."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"malformed --input-shape {text!r}: expected integers separated by commas, like 1,3,224,224") from None
    if not shape or any(d < 0 for d in shape):
        raise UsageError(f"malformed --input-shape {text!r}: expected non-negative integers, like 1,3,224,224")
    if any(d >= 2**62 for d in shape):
        raise UsageError(f"--input-shape {text!r} has a dimension too large for a tensor; check the numbers")
    return shape


def parse_named_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """``name=1,3,224,224`` to ``("name", shape)``; a plain shape has no name (positional)."""
    name, sep, rest = text.rpartition("=")
    if not sep:
        return None, parse_shape(text)
    if not name.strip():
        raise UsageError(f"malformed --input-shape {text!r}: expected NAME=1,3,224,224 or 1,3,224,224")
    return name.strip(), parse_shape(rest)


def parse_dtype(text: str) -> torch.dtype:
    dtype = getattr(torch, text.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise UsageError(f"unknown --input-dtype {text!r}: use e.g. float32, float16, bfloat16, int64")
    return dtype


def random_inputs(shapes: list[tuple[int, ...]], dtype: torch.dtype, seed: int = 0,
                  device: str | None = None) -> tuple[torch.Tensor, ...]:
    """Deterministic random inputs: normal floats, or integers in [0, 100) (token ids).

    For ``device="meta"`` the inputs are meta tensors: a shape too big for
    memory costs nothing there.  A shape that cannot be allocated is a
    :class:`UsageError`, not a crash.
    """
    if device == "meta":
        return tuple(torch.empty(shape, dtype=dtype, device="meta") for shape in shapes)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        try:
            if dtype.is_floating_point or dtype.is_complex:
                out.append(torch.randn(shape, generator=gen, dtype=dtype))
            elif dtype == torch.bool:
                out.append(torch.randint(0, 2, shape, generator=gen).bool())
            else:
                out.append(torch.randint(0, 100, shape, generator=gen, dtype=dtype))
        except (RuntimeError, MemoryError) as exc:
            size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            reason = one_line(exc, None, typed=False)
            reason = "not enough memory" if isinstance(exc, MemoryError) or "alloc" in reason.lower() else reason
            raise UsageError(
                f"cannot create a random input of shape {list(shape)} ({size / 1e9:,.1f} GB of {dtype_name(dtype)}): "
                f"{reason}; use a smaller --input-shape, or --device meta to analyse without data"
            ) from None
    return tuple(out)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _import_file(path: Path) -> Any:
    if not path.exists():
        raise ModelLoadError(f"no such file: {str(path)!r}; check the path in MODEL (path/to/file.py:callable)")
    if path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a directory; give path/to/file.py:callable")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{str(path)!r} is empty; it must define the callable that builds the model, "
                             f"e.g. def build(): return MyNet()")
    name = f"_mevreport_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing {str(path)!r} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def _import_module(dotted: str) -> Any:
    """``pkg.module`` resolved from the current directory too, as ``python -m mevreport`` does.

    A console script's ``sys.path`` starts at the script's directory, not the
    current one, so ``mevreport report mymodels:build`` would not find
    ``./mymodels.py`` that ``python -m mevreport`` finds; the current
    directory is put first for the import only.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return _import_module_here(dotted)
    finally:
        if added:
            sys.path.remove(cwd)


def _import_module_here(dotted: str) -> Any:
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name and dotted.startswith(exc.name):
            raise ModelLoadError(f"no module named {exc.name!r} (from MODEL spec {dotted!r}); "
                                 f"check the name, or give path/to/file.py:callable") from exc
        raise ModelLoadError(f"importing {dotted!r} failed: {exc}") from exc
    except Exception as exc:
        raise ModelLoadError(f"importing {dotted!r} raised {type(exc).__name__}: {exc}") from exc


def resolve_callable(spec: str) -> tuple[Any, str]:
    """``pkg.module:attr`` or ``path/file.py:attr`` to the named object."""
    if ":" not in spec:
        raise ModelLoadError(f"MODEL {spec!r} is not pkg.module:callable, path/to/file.py:callable or a .onnx/.pt2 file")
    target, _, attr_path = spec.rpartition(":")
    if not target or not attr_path:
        raise ModelLoadError(f"MODEL {spec!r} needs both a module and a callable, like pkg.models:build")
    module = _import_file(Path(target)) if target.endswith(".py") or "/" in target else _import_module(target)
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ModelLoadError(f"{target!r} has no attribute {attr_path!r}; name a function or nn.Module "
                                 f"defined there, like {target}:build")
        obj = getattr(obj, part)
    return obj, attr_path.split(".")[-1]


def resolve_named(option: str, spec: str) -> Any:
    """A function named on the command line other than MODEL (``--loss``, ``--optimizer``): ``pkg.mod:fn``
    or ``path/to/file.py:fn``; anything else is one line naming the option."""
    if ":" not in spec or spec.startswith(":") or spec.endswith(":"):
        raise UsageError(f"malformed {option} {spec!r}: expected pkg.module:function or path/to/file.py:function")
    try:
        obj, _ = resolve_callable(spec)
    except ModelLoadError as exc:
        raise UsageError(f"bad {option} {spec!r}: {str(exc).replace('MODEL spec', 'spec')}") from None
    if not callable(obj):
        raise UsageError(f"{option} {spec!r} names a {type(obj).__name__}, not a function")
    return obj


def _check_loaded(program: Any, path: Path) -> None:
    """After torch has read the checked archive, before ``module()`` builds (and ``exec``s) anything from it.

    Every call in every graph must resolve to a registered operator or one of
    torch's symbolic-shape functions, and the example inputs' keyword names
    (spliced into the guard code torch generates) must be identifiers.
    """
    import math
    import operator

    from .pt2_grammar import SYM_OP_TARGETS, Refused
    modules = {"_operator": operator, "math": math, "torch": torch}
    allowed = set()
    for t in SYM_OP_TARGETS:
        head, *names = t.split(".")
        obj: Any = modules[head]
        for n in names:
            obj = getattr(obj, n, None)
        if obj is not None:
            allowed.add(obj)
    operators = (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator)
    for gm in program.graph_module.modules():
        graph = getattr(gm, "graph", None)
        for node in graph.nodes if graph is not None else ():
            if node.op == "call_function" and not (isinstance(node.target, operators) or node.target in allowed):
                raise Refused(f"refused: graph node {node.name!r} calls {str(node.target)[:80]!r}, not a registered "
                              f"operator; mevreport loads only what torch.export.save writes")
    example = getattr(program, "example_inputs", None)
    kwargs = example[1] if isinstance(example, tuple) and len(example) == 2 else {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
        raise Refused("refused: the example inputs have keyword names that are not identifiers")


def _example_inputs(example: Any) -> Any:
    """``ep.example_inputs`` ``(args, kwargs)`` as the inputs ``analyze`` takes."""
    if not example:
        return None
    args, kwargs = example if isinstance(example, tuple) and len(example) == 2 else (example, {})
    args, kwargs = tuple(args or ()), dict(kwargs or {})
    if not kwargs:
        return args or None
    if not args:
        return kwargs
    from .capture.inputs import CallArgs
    return CallArgs(args, kwargs)


def load_pt2(path: str | Path) -> LoadedModel:
    """A ``torch.export`` archive through ``torch.export.load``, after :mod:`mevreport.pt2_check` has
    refused everything in it that torch would evaluate (sympy, ``exec``, pickle, compiled libraries).

    The module is the exported program's ``module()``; its saved example
    inputs, when present, become the report's inputs.
    """
    p = Path(path)
    how = "create one with torch.export.save(torch.export.export(model, inputs), 'model.pt2')"
    check_model_file(p, "a torch.export archive", how)
    if not zipfile.is_zipfile(p):
        raise ModelLoadError(f"{str(p)!r} is not a torch.export archive (not a zip file); {how}")
    from .pt2_check import NotAnArchive, Refused, check_archive
    try:
        data = p.read_bytes()  # read once: torch reads these checked bytes, not a file that may change meanwhile
    except OSError as exc:
        raise ModelLoadError(f"cannot read {str(p)!r}: {exc.strerror or type(exc).__name__}") from None
    try:
        check_archive(data)
        with torch_logs_recorded("torch.export") as logs, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
        _check_loaded(program, p)
    except NotAnArchive as exc:
        raise ModelLoadError(f"{str(p)!r} is not a readable torch.export archive ({exc}); {how}") from exc
    except Refused as exc:
        raise ModelLoadError(f"{str(p)!r}: {exc}") from exc
    except ModelLoadError as exc:
        raise ModelLoadError(f"{str(p)!r}: {exc}") from exc
    except Exception as exc:
        if no_cuda(exc):
            raise ModelLoadError(f"{str(p)!r} holds CUDA tensors ({one_line(exc, None, typed=False)}); "
                                 f"export it from a model on the CPU and pass --device cuda where there is a GPU"
                                 ) from exc
        reason = logs.reasons[0] if logs.reasons else one_line(exc, None, typed=False)  # torch's own message only says "see the warnings above"
        raise ModelLoadError(f"{str(p)!r} is not a readable torch.export archive ({reason}); {how}") from exc
    try:
        module = program.module()
    except Exception as exc:
        raise ModelLoadError(f"cannot rebuild a module from {str(p)!r}: {type(exc).__name__}: {exc}") from None
    return LoadedModel(module, _example_inputs(getattr(program, "example_inputs", None)), p.stem,
                       _exported_shapes(program))


def _exported_shapes(program: Any) -> tuple[tuple[int | None, ...], ...]:
    """The user inputs' shapes as the program was traced: an ``int`` where torch.export fixed the size."""
    vals = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    shapes = []
    for name in program.graph_signature.user_inputs:
        val = vals.get(name)
        if isinstance(val, torch.Tensor):
            shapes.append(tuple(d if isinstance(d, int) else None for d in val.shape))
    return tuple(shapes)


def check_input_shapes(loaded: LoadedModel, spec: str, shapes: list[tuple[int, ...]]) -> None:
    """``--input-shape`` values the model cannot take, refused before it runs (one line naming why).

    As many values as ``forward`` takes positional inputs (torch would name its
    own ``forward_call``), and, for a ``.pt2`` archive, the sizes it was
    exported with wherever export fixed them (torch would fail an assertion in
    the program's generated guard function).
    """
    import inspect
    try:
        params = list(inspect.signature(loaded.module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    kinds = [p.kind for p in params]
    if params and inspect.Parameter.VAR_POSITIONAL not in kinds:
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        if not len(required) <= len(shapes) <= len(positional):
            takes = (f"{len(required)} to {len(positional)}" if len(required) != len(positional)
                     else str(len(positional)))
            names = ", ".join(p.name for p in positional)
            who = repr(spec) if loaded.exported_shapes else f"{type(loaded.module).__name__}.forward"
            raise UsageError(f"{who} takes {takes} input"
                             f"{'' if takes == '1' else 's'} ({names}), but {len(shapes)} --input-shape values "
                             f"were given: pass one --input-shape per input")
    for i, (given, fixed) in enumerate(zip(shapes, loaded.exported_shapes)):
        if len(given) != len(fixed) or any(f is not None and f != g for g, f in zip(given, fixed)):
            shown = ",".join("*" if d is None else str(d) for d in fixed)
            raise UsageError(f"{spec!r} was exported with fixed shapes (input {i}: {shown}), so --input-shape "
                             f"{','.join(map(str, given))} cannot run it: drop --input-shape, or export with "
                             f"dynamic_shapes for the sizes that vary")


def load_model(spec: str) -> LoadedModel:
    """Import and call the named callable; accept a module or (module, inputs)."""
    lower = spec.lower()
    if lower.endswith(".pt2") and ":" not in spec:
        return load_pt2(spec)
    if lower.endswith(PICKLE_SUFFIXES) and ":" not in spec:
        raise ModelLoadError(
            f"{spec!r} looks like a pickle; mevreport never unpickles model files. Write a function that builds "
            f"the model and loads the weights, e.g. def build(): m = MyNet(); m.load_state_dict(torch.load(path)); "
            f"return m, and run 'mevreport report file.py:build'"
        )
    kinds = "give path/to/file.py:callable, a .onnx file or a .pt2 archive"
    if ":" not in spec and Path(spec).is_dir():
        raise ModelLoadError(f"MODEL {spec!r} is a directory; {kinds}")
    if ":" not in spec and Path(spec).is_file() and Path(spec).stat().st_size == 0:
        raise ModelLoadError(f"MODEL {spec!r} is an empty file; {kinds}")
    obj, _attr = resolve_callable(spec)
    if isinstance(obj, nn.Module):
        return LoadedModel(obj, None, type(obj).__name__)
    if not callable(obj):
        raise ModelLoadError(f"{spec!r} names an object of type {type(obj).__name__}, not a callable; name the "
                             f"function that returns the torch.nn.Module")
    try:
        result = obj()
    except Exception as exc:
        if no_cuda(exc):
            raise ModelLoadError(f"calling {spec!r} puts the model on CUDA ({one_line(exc, None, typed=False)}); "
                                 f"{NO_CUDA_HINT}") from exc
        raise ModelLoadError(f"calling {spec!r} raised {one_line(exc, None)} "
                             f"(fix the callable; --debug shows the traceback)") from exc
    if isinstance(result, nn.Module):
        return LoadedModel(result, None, type(result).__name__)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return LoadedModel(result[0], result[1], type(result[0]).__name__)
    raise ModelLoadError(
        f"{spec!r} returned {type(result).__name__}; it must return a torch.nn.Module or (module, example_inputs)"
    )
