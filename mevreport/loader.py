"""The load stage: a MODEL spec from the command line to a module and inputs.

This is the only place that imports user code or reads model files (DESIGN
§1).  User code runs only when the user names a callable; pickles
(``.pt``/``.pth``) are refused, never unpickled.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelLoadError, UsageError

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


@dataclass(frozen=True)
class LoadedModel:
    module: nn.Module
    inputs: Any  # tensor, tuple of positional args, or dict of keyword args; None when none given
    name: str


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,224,224`` (or ``1x3x224x224``) to a shape tuple."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"malformed --input-shape {text!r}: expected integers separated by commas, like 1,3,224,224") from None
    if not shape or any(d < 0 for d in shape):
        raise UsageError(f"malformed --input-shape {text!r}: expected non-negative integers, like 1,3,224,224")
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


def random_inputs(shapes: list[tuple[int, ...]], dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Deterministic random inputs: normal floats, or integers in [0, 100) (token ids)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        if dtype.is_floating_point or dtype.is_complex:
            out.append(torch.randn(shape, generator=gen, dtype=dtype))
        elif dtype == torch.bool:
            out.append(torch.randint(0, 2, shape, generator=gen).bool())
        else:
            out.append(torch.randint(0, 100, shape, generator=gen, dtype=dtype))
    return tuple(out)


def _import_file(path: Path) -> Any:
    if not path.exists():
        raise ModelLoadError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a directory; give path/to/file.py:callable")
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
            raise ModelLoadError(f"{target!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    return obj, attr_path.split(".")[-1]


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


def load_exported(path: Path) -> LoadedModel:
    """A ``torch.export`` archive: its module and the example inputs saved in it.

    ``torch.export.load`` reads the archive's serialized graph and weights; no
    other file format is unpickled.
    """
    if not path.exists():
        raise ModelLoadError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a directory, not a torch.export archive (.pt2)")
    import logging
    import zipfile
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{str(path)!r} is not a valid torch.export archive (.pt2): not a zip archive; "
                             f"write one with torch.export.save(torch.export.export(model, inputs), path)")
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.ERROR)  # torch logs a traceback before its own fallback reader
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ModelLoadError(f"{str(path)!r} is not a valid torch.export archive (.pt2): {type(exc).__name__}: "
                             f"{first[:200]}") from None
    finally:
        log.setLevel(level)
    try:
        module = ep.module()
    except Exception as exc:
        raise ModelLoadError(f"cannot rebuild a module from {str(path)!r}: {type(exc).__name__}: {exc}") from None
    return LoadedModel(module, _example_inputs(getattr(ep, "example_inputs", None)), path.stem)


def load_model(spec: str) -> LoadedModel:
    """Import and call the named callable; accept a module or (module, inputs).

    A path ending in ``.pt2`` is read as a ``torch.export`` archive.
    """
    lower = spec.lower()
    if lower.endswith(".pt2") and ":" not in spec:
        return load_exported(Path(spec))
    if lower.endswith(PICKLE_SUFFIXES) and ":" not in spec:
        raise ModelLoadError(
            f"{spec!r} looks like a pickle; mevreport never unpickles model files. Write a function that builds "
            f"the model and loads the weights, e.g. def build(): m = MyNet(); m.load_state_dict(torch.load(path)); "
            f"return m, and run 'mevreport report file.py:build'"
        )
    obj, name = resolve_callable(spec)
    if isinstance(obj, nn.Module):
        return LoadedModel(obj, None, name)
    if not callable(obj):
        raise ModelLoadError(f"{spec!r} is a {type(obj).__name__}, not a callable that returns a torch.nn.Module")
    try:
        result = obj()
    except Exception as exc:
        raise ModelLoadError(f"calling {spec!r} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, nn.Module):
        return LoadedModel(result, None, name)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return LoadedModel(result[0], result[1], name)
    raise ModelLoadError(
        f"{spec!r} returned {type(result).__name__}; it must return a torch.nn.Module or (module, example_inputs)"
    )
