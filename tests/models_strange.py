"""Strange but legal models that must still get a report (issue 7).

Small on purpose: each isolates one oddity, and the tests derive their
expected numbers by hand from the shapes written here.
"""
from __future__ import annotations

import torch
from torch import nn


class NoParams(nn.Module):
    """x * 2 + 1, then ReLU: nothing to count but ops."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * 2 + 1)


class IntegerOnly(nn.Module):
    """Token-id arithmetic in int64: no floating tensor anywhere."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(ids * 3 + 1, dim=-1) // 2


class ZeroSize(nn.Module):
    """A batch of zero rows through Linear(4, 3) and a softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(x), dim=-1)


class ComplexSpectrum(nn.Module):
    """FFT, a complex product, and the magnitude back in float."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.fft(x)
        return (spec * spec.conj()).abs()


class HalfPrecision(nn.Module):
    """Linear(8, 4) and GELU in the dtype the parameters were cast to (float16 or bfloat16)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Broken(nn.Module):
    """sqrt of a strongly negative number: NaN from its first op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x - 100.0)


class NanFromStart(nn.Module):
    """The first op of ``bad`` makes every element NaN; ``after`` only carries it on."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = Broken()
        self.after = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.bad(x)) / 0.0


class Reshape(nn.Module):
    """A view of the input: the only output is the 100M-element tensor itself, allocated by nobody."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, 1000)


class Nest(nn.Module):
    """``depth`` levels of ``inner``, a Linear(4, 4) at the bottom."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.inner: nn.Module = Nest(depth - 1) if depth > 1 else nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Holder(nn.Module):
    """Calls the Linear it was given (shared with another Holder), then doubles."""

    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.shared = shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x) * 2


class SharedChild(nn.Module):
    """One Linear(4, 4) reached from two parents, ``a`` and ``b``."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Linear(4, 4)
        self.a = Holder(shared)
        self.b = Holder(shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class ReturnsNone(nn.Module):
    """Computes, keeps the result in a buffer-like attribute, returns nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> None:
        self.last = self.fc(x)
        return None
