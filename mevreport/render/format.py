"""Number formatting with units, registered as Jinja filters.

``4.09 GMACs``, ``97.5 MiB``, ``1.23 ms``: three significant digits, SI
prefixes for counts, binary prefixes for bytes.
"""
from __future__ import annotations

_SI = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")]
_BIN = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
DASH = "\u2014"


def _three(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def count(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return DASH
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{_three(value / scale)} {prefix}{unit}".rstrip()
    return f"{value:,.0f} {unit}".rstrip() if float(value).is_integer() else f"{_three(value)} {unit}".rstrip()


def nbytes(value: int | None) -> str:
    if value is None:
        return DASH
    for scale, unit in _BIN:
        if abs(value) >= scale:
            return f"{_three(value / scale)} {unit}"
    return f"{value} B"


def ms(value: float | None) -> str:
    if value is None:
        return DASH
    if value >= 1000:
        return f"{_three(value / 1000)} s"
    if value < 0.01:
        return f"{value * 1000:.1f} \u00b5s"
    return f"{_three(value)} ms"


def num(value: float | None) -> str:
    if value is None:
        return DASH
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def shape(dims: tuple[int, ...] | list[int]) -> str:
    return "[" + "\u00d7".join(str(d) for d in dims) + "]" if dims else "[]"


FILTERS = {"count": count, "nbytes": nbytes, "ms": ms, "num": num, "pct": pct, "shape": shape}
