"""What flows where in a captured graph: input dependence and non-finite values.

Warnings about activations are only worth a reader's time when they are
about the model's computation on its input.  A zero-initialised constant, a
mask, an index table or a bias slice is "dead" by construction, and anchor
boxes are "large" by design: none of them depends on the input.  A ``log(0)``
whose ``-inf`` is masked away (T5's relative position buckets,
``torch.where(mask, log(x), 0)``) or never used is not where a model's NaN
comes from.  These pure functions over the node graph (DESIGN §1: analysis
runs no torch) tell the two apart.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .graph import Node, TensorStats

# Ops whose output values do not depend on their tensor arguments' values, only on
# their shapes (and dtypes): input dependence stops there.
_VALUE_FREE_OPS = {"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
                   "new_zeros", "new_ones", "new_empty", "new_full", "new_empty_strided", "zero_", "empty_strided",
                   "scalar_tensor"}
_SCALAR_FILLS = {"fill", "fill_"}  # with a Scalar value; ``fill_.Tensor`` copies its value tensor


def _value_free(op: str) -> bool:
    parts = op.split(".")
    name = parts[1] if len(parts) >= 2 else op
    return name in _VALUE_FREE_OPS or (name in _SCALAR_FILLS and op.endswith(".Scalar"))


def input_dependent(nodes: Sequence[Node]) -> set[int]:
    """Ids of the nodes whose output values depend on the model's inputs.

    A node depends on the inputs when it reads one (``input_names``) or reads
    the output of a node that does; ops that use only their arguments' shapes
    (``zeros_like``, ``new_full``, a scalar ``fill_``) break the chain.
    Parameters and buffers are not inputs, so a bias slice, a constant table
    and everything computed from them alone do not depend on the input.
    Nodes come in execution order, so one pass suffices.
    """
    dependent: set[int] = set()
    for n in nodes:
        if _value_free(n.op):
            continue
        if n.input_names or any(i in dependent for i in n.inputs):
            dependent.add(n.id)
    return dependent


_FINITE_DTYPES = ("int", "uint", "bool")  # dtypes that cannot hold NaN or Inf (prefixes of their names)


def _non_finite(node: Node, stats: TensorStats | None) -> bool | None:
    """True/False from the statistics or the dtype; None when unknown (a floating output without statistics)."""
    if stats is not None:
        return bool(stats.nan_count or stats.inf_count)
    if node.outputs and all(o.dtype.startswith(_FINITE_DTYPES) for o in node.outputs):
        return False  # an integer or boolean result: a cast of -inf to long is finite (if meaningless)
    return None


def reaching_output(nodes: Sequence[Node], stats: Mapping[int, TensorStats], output_ids: Iterable[int]) -> set[int]:
    """Ids of the nodes whose non-finite values, if any, flow on to a model output.

    They flow along edges through nodes whose own output is non-finite; a
    node whose output is finite again (a ``where`` or ``masked_fill`` that
    replaces them, a cast to an integer) stops them.  A floating node without
    statistics is assumed to pass them on, so an unknown never hides a real
    NaN.  Consumers come after their producers in execution order, so one
    backward pass decides every node at once (linear in the graph, however
    many origins are asked about).
    """
    reached = set(output_ids)
    passes = {n.id for n in nodes if _non_finite(n, stats.get(n.id)) is not False}
    for n in reversed(nodes):
        if n.id in reached and n.id in passes:
            reached.update(n.inputs)
    return reached


def reaches_output(origin: int, nodes: Sequence[Node], stats: Mapping[int, TensorStats],
                   output_ids: Iterable[int]) -> bool:
    """Whether ``origin``'s non-finite values flow on to a model output (see :func:`reaching_output`)."""
    return origin in reaching_output(nodes, stats, output_ids)


def non_finite_origins(nodes: Sequence[Node], stats: Mapping[int, TensorStats],
                       deliberate: set[int]) -> list[int]:
    """Nodes, in execution order, that produce NaN/Inf from finite inputs.

    ``deliberate`` are nodes whose infinities are intended (a causal mask
    filled with ``-inf``): they are not origins and taint nothing, so a NaN
    that a consumer makes of them (``softmax`` of a fully masked row) is.
    """
    tainted: set[int] = set()
    origins: list[int] = []
    for n in nodes:
        if n.id in deliberate or not _non_finite(n, stats.get(n.id)):
            continue
        if not any(i in tainted for i in n.inputs):
            origins.append(n.id)
        tainted.add(n.id)
    return origins
