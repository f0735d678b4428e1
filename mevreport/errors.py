"""Errors that the CLI turns into one line on stderr and exit code 2.

Everything the user can fix (a bad spec, a missing file, inputs the model
rejects) is raised as a :class:`MevreportError` subclass with a message that
names the problem and what to do; anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

from pathlib import Path


class MevreportError(Exception):
    """Base for user-facing errors: the message is what the user sees."""


class UsageError(MevreportError):
    """Bad command-line usage or a bad argument to the API."""


class ModelLoadError(MevreportError):
    """The MODEL spec could not be turned into a module and inputs."""


class ModelRunError(MevreportError):
    """The model raised while running: names the op and module path."""

    def __init__(self, message: str, op: str | None = None, module_path: str | None = None):
        super().__init__(message)
        self.op = op
        self.module_path = module_path


class ReportReadError(MevreportError):
    """A report file (JSON or HTML) could not be read."""


def one_line(exc: BaseException, limit: int | None = 200, typed: bool = True) -> str:
    """``Type: first non-empty line of the message`` (cut to ``limit`` characters; None: whole line),
    how an exception from torch or a model is named in a one-line message.  ``typed=False``: the
    line alone (the type's name when the message is empty), where the sentence names the kind."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    name = type(exc).__name__
    text = (f"{name}: {first}" if first else name) if typed else (first or name)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


# what torch raises when a tensor is put on CUDA where there is none (a CPU build; no driver; no GPU)
NO_CUDA = ("Torch not compiled with CUDA enabled", "Found no NVIDIA driver", "No CUDA GPUs are available",
           "no CUDA-capable device")
NO_CUDA_HINT = ("this machine has no CUDA: build the model on the CPU (no .cuda() or .to('cuda') where it is made) "
                "and pass --device cuda where there is a GPU")


def no_cuda(exc: BaseException) -> bool:
    """Whether ``exc`` is torch saying that CUDA is not there (the fix is the user's: build on CPU, --device)."""
    return any(text in str(exc) for text in NO_CUDA)


def check_model_file(path: Path, kind: str, how: str = "") -> None:
    """Raise :class:`ModelLoadError` unless ``path`` is a non-empty file, naming what it should be.

    ``kind`` has its article ("a torch.export archive"), ``how`` says how to make one.
    """
    hint = f"; {how}" if how else ""
    if not path.exists():
        raise ModelLoadError(f"no such file: {str(path)!r}; check the path to the {kind.split(' ', 1)[-1]}")
    if path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a directory, not {kind}{hint}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{str(path)!r} is empty, not {kind}{hint}")
