"""Shape-level cost formulas: one per operation, called by the aten and the ONNX rules alike.

Each formula is a function of named shape symbols (``m``, ``k``, ``n``; a shape
``x``; a 0/1 flag ``bias``) that returns a :class:`Cost`, and carries its own
documentation as two Python expressions over the same symbols (``macs`` and
``flops``, where ``flops`` may use ``macs``).  The docs' FLOP table prints
those expressions, and ``tests/test_costs_formulas.py`` evaluates them on
sample symbols against the function, so the text cannot drift from the code.

Where ``torch.utils.flop_counter`` has the formula in our convention (its
FLOPs are 2·MACs of matmul work: ``mm_flop``, ``bmm_flop``,
``conv_flop_count``) the function calls it; the extra elementwise FLOPs of
DESIGN §3 (bias adds, softmax, norms) are added here.
"""
from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.utils.flop_counter import bmm_flop, conv_flop_count, mm_flop

from .registry import Cost

SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide

Sampler = Callable[[random.Random], dict[str, Any]]


@dataclass(frozen=True)
class Formula:
    """A cost function and its documented expressions (checked against each other by a test)."""

    fn: Callable[..., Cost]
    macs: str
    flops: str
    sampler: Sampler | None = None

    def __call__(self, **symbols: Any) -> Cost:
        return self.fn(**symbols)

    @property
    def name(self) -> str:
        return self.fn.__name__

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """Sample symbols: the formula's own sampler, else 0/1 for flags and small ints for sizes."""
        if self.sampler is not None:
            return self.sampler(rng)
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: (rng.random() < 0.5) if p.annotation in (bool, "bool") else rng.randint(0, 9)
                for p in params}

    def text(self) -> str:
        """The expressions as the docs show them (``·`` for ``*``, ``²`` for ``**2``)."""
        def pretty(expr: str) -> str:
            return expr.replace("**2", "²").replace("*", "·").replace("macs", "MACs")

        flops = f"FLOPs {pretty(self.flops)}"
        return flops if self.macs == "0" else f"MACs {pretty(self.macs)}; {flops}"


def formula(macs: str, flops: str, sampler: Sampler | None = None) -> Callable[[Callable[..., Cost]], Formula]:
    def deco(fn: Callable[..., Cost]) -> Formula:
        return Formula(fn, macs, flops, sampler)

    return deco


# --- matmul-like ---------------------------------------------------------------------------------

@formula("m*k*n", "2*macs")
def mm(m: int, k: int, n: int) -> Cost:
    flops = int(mm_flop((m, k), (k, n)))
    return Cost(flops // 2, flops)


@formula("m*k*n", "2*macs + bias*m*n")
def addmm(m: int, k: int, n: int, bias: bool) -> Cost:
    c = mm.fn(m, k, n)
    return Cost(c.macs, c.flops + (m * n if bias else 0))


@formula("m*k*n", "2*macs + 2*m*n")
def addmm_activation(m: int, k: int, n: int) -> Cost:
    c = addmm.fn(m, k, n, True)
    return Cost(c.macs, c.flops + m * n)


@formula("m*n", "2*macs + bias*m")
def mv(m: int, n: int, bias: bool) -> Cost:
    c = mm.fn(m, n, 1)
    return Cost(c.macs, c.flops + (m if bias else 0))


@formula("b*m*k*n", "2*macs")
def bmm(b: int, m: int, k: int, n: int) -> Cost:
    flops = int(bmm_flop((b, m, k), (b, k, n)))
    return Cost(flops // 2, flops)


@formula("b*m*k*n", "2*macs + b*m*n")
def baddbmm(b: int, m: int, k: int, n: int) -> Cost:
    c = bmm.fn(b, m, k, n)
    return Cost(c.macs, c.flops + b * m * n)


@formula("g*m*k*n", "2*macs + bias*y")
def grouped_mm(g: int, m: int, k: int, n: int, y: int, bias: bool) -> Cost:
    c = bmm.fn(g, m, k, n)
    return Cost(c.macs, c.flops + (y if bias else 0))


@formula("y*k", "2*macs + bias*y")
def matmul(y: int, k: int, bias: bool) -> Cost:
    """Every output element of a (broadcast, batched) matrix product is one length-k dot product."""
    macs = y * k
    return Cost(macs, 2 * macs + (y if bias else 0))


def _conv_sample(rng: random.Random) -> dict[str, Any]:
    """Consistent convolution shapes: batch shared, weight (Cout, Cin/g, k…) or transposed (Cin, Cout/g, k…)."""
    transposed = rng.random() < 0.5
    dims = rng.randint(1, 3)
    b, cin, cout, groups = rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 2)
    cin, cout = cin * groups, cout * groups
    ks = tuple(rng.randint(1, 3) for _ in range(dims))
    x = (b, cin, *(rng.randint(1, 6) for _ in range(dims)))
    y = (b, cout, *(rng.randint(1, 6) for _ in range(dims)))
    w = (cin, cout // groups, *ks) if transposed else (cout, cin // groups, *ks)
    return {"x": x, "w": w, "y": y, "transposed": transposed, "bias": rng.random() < 0.5}


@formula("numel(x if transposed else y)*prod(w[1:])", "2*macs + bias*numel(y)", _conv_sample)
def conv(x: tuple[int, ...], w: tuple[int, ...], y: tuple[int, ...], transposed: bool, bias: bool) -> Cost:
    """Shapes batched (N, C, spatial…); weight (Cout, Cin/groups, k…), transposed (Cin, Cout/groups, k…)."""
    flops = conv_flop_count(list(x), list(w), list(y), transposed=transposed)
    return Cost(flops // 2, flops + (math.prod(y) if bias else 0))


# --- attention -----------------------------------------------------------------------------------

@formula("b*h*l*s*(e + ev)", "2*macs + 5*b*h*l*s")
def attention(b: int, h: int, l: int, s: int, e: int, ev: int) -> Cost:
    """Q·Kᵀ and A·V over the full L×S square, plus softmax.

    Ours, not ``flop_counter.sdpa_flop_count``: that takes 4-d (B, H, L, E) shapes only (not
    the packed varlen (ΣL, H, E) layout nor extra batch dims), raises when the query heads are not
    a multiple of the key heads (older torch asserted equal heads, so grouped-query attention
    failed), counts no softmax, and is registered for none of the CPU flash, math or MHA
    fast-path kernels (DESIGN §3): the two products are one line here.
    """
    macs = b * h * l * s * (e + ev)
    return Cost(macs, 2 * macs + softmax.fn(b * h * l * s).flops)


@formula("b*(l + 2*s)*e**2 + b*l*e**2 + 2*b*l*s*e",
         "2*macs + b*(l + 2*s)*e + b*l*e + 5*b*heads*l*s")
def native_mha(b: int, l: int, s: int, e: int, heads: int) -> Cost:
    """Packed in-projection, both attention products and the out-projection, with their bias adds."""
    proj = b * (l + 2 * s) * e * e + b * l * e * e
    macs = proj + 2 * b * l * s * e
    bias_adds = b * (l + 2 * s) * e + b * l * e
    return Cost(macs, 2 * macs + bias_adds + softmax.fn(b * heads * l * s).flops)


@formula("b*s*din*(dq + dk + dv) + b*s*total*(dq + dv)",
         "2*macs + bias*b*s*(dq + dk + dv) + 5*b*heads*s*total")
def qkv_attention(b: int, s: int, din: int, dq: int, dk: int, dv: int, total: int, heads: int, bias: bool) -> Cost:
    """A QKV projection then attention over ``total`` keys (com.microsoft Attention)."""
    macs = b * s * din * (dq + dk + dv) + b * s * total * (dq + dv)
    bias_adds = b * s * (dq + dk + dv) if bias else 0
    return Cost(macs, 2 * macs + bias_adds + softmax.fn(b * heads * s * total).flops)


@formula("b*l*(4*e**2 + 2*e*f) + 2*b*l*l*e",
         "2*macs + b*l*(5*e + f) + 5*b*heads*l*l + 2*7*b*l*e + b*l*f + 2*b*l*e")
def transformer_encoder_layer(b: int, l: int, e: int, f: int, heads: int) -> Cost:
    """In-projection, attention, out-projection, two layer norms (with weight and bias), the
    feed-forward block (F hidden units) with its activation, and two residual adds."""
    tokens = b * l
    macs = tokens * (4 * e * e + 2 * e * f) + 2 * b * l * l * e
    flops = (2 * macs + tokens * (5 * e + f) + softmax.fn(b * heads * l * l).flops
             + 2 * layer_norm.fn(tokens * e, True).flops + tokens * f + 2 * tokens * e)
    return Cost(macs, flops)


# --- recurrent -----------------------------------------------------------------------------------

@formula("steps*gates*(i + h)", "2*macs + bias*2*steps*gates + steps*gates + 3*steps*h")
def rnn_layer(steps: int, gates: int, i: int, h: int, bias: bool) -> Cost:
    """One layer: per step, G·H gate rows over input and hidden, two biases, gate activations, state update."""
    macs = steps * gates * (i + h)
    return Cost(macs, 2 * macs + (2 * steps * gates if bias else 0) + steps * gates + 3 * steps * h)


@formula("steps*weights", "2*macs + steps*biases + steps*gate_rows + 3*steps*hidden*groups")
def rnn_stack(steps: int, weights: int, biases: int, gate_rows: int, hidden: int, groups: int) -> Cost:
    """A whole stack (``groups`` = layers × directions): every weight matrix once per step."""
    macs = steps * weights
    return Cost(macs, 2 * macs + steps * biases + steps * gate_rows + 3 * steps * hidden * groups)


# --- no MACs -------------------------------------------------------------------------------------

@formula("0", "0")
def zero() -> Cost:
    return Cost(0, 0)


@formula("0", "y")
def elementwise(y: int) -> Cost:
    return Cost(0, y)


@formula("0", "x")
def reduction(x: int) -> Cost:
    return Cost(0, x)


@formula("0", "3*x")
def variance(x: int) -> Cost:
    return Cost(0, 3 * x)


@formula("0", "5*y")
def softmax(y: int) -> Cost:
    return Cost(0, SOFTMAX_FLOPS_PER_ELEMENT * y)


@formula("0", "5*x + affine*2*x")
def layer_norm(x: int, affine: bool) -> Cost:
    """Mean, subtract, variance, scale (5 per element); weight and bias 2 more."""
    return Cost(0, 5 * x + (2 * x if affine else 0))


@formula("0", "4*x + affine*x")
def rms_norm(x: int, affine: bool) -> Cost:
    """Square, mean, rsqrt-scale, multiply (4 per element); weight 1 more."""
    return Cost(0, 4 * x + (x if affine else 0))


@formula("0", "x + 5*x + 2*x")
def skip_layer_norm(x: int) -> Cost:
    """The skip add, then a layer norm with gamma and beta."""
    return Cost(0, x + layer_norm.fn(x, True).flops)


@formula("0", "4*x + training*4*x")
def batch_norm(x: int, training: bool) -> Cost:
    """Subtract mean, scale by 1/std, weight, bias; in training 4 more for the batch statistics."""
    return Cost(0, 4 * x + (4 * x if training else 0))


@formula("0", "y*window")
def pool(y: int, window: int) -> Cost:
    return Cost(0, y * window)


@formula("0", "y*per*dims")
def interpolate(y: int, per: int, dims: int) -> Cost:
    return Cost(0, y * per * dims)


@formula("0", "2*x")
def dropout(x: int) -> Cost:
    return Cost(0, 2 * x)


@formula("0", "g + weighted*g")
def embedding_bag(g: int, weighted: bool) -> Cost:
    return Cost(0, g * (2 if weighted else 1))
