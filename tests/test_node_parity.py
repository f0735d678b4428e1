"""One node builder: dispatch and export capture agree on bytes, aliasing and edges.

Both methods build their nodes through ``mevreport.capture.nodes.NodeBuilder``;
these tests pin what it records on models made of views (tests/models_views.py),
with every byte count worked out by hand from the (3, 10) float32 input
(F32 bytes an element), and check that the two methods record the same thing.
Where export keeps a composite op that dispatch sees decomposed (``chunk`` /
``split``, ``reshape`` / ``view``, ``contiguous`` / ``clone``), the op names
differ and everything else must not.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevreport
from mevreport.capture import capture
from mevreport.capture.dispatch import TensorNames
from mevreport.capture.nodes import InputRef, ParamRef, Produced, alias_sources, shares_storage

from . import models_views as V

F32 = 4
ELEMS = 3 * 10  # the input's elements; every full-size op output is ELEMS * F32 bytes


def x():
    return torch.randn(3, 10)


def record(graph):
    """Everything about a node except its op name."""
    return [(n.output_bytes, n.alias_of, n.inputs, n.input_names, n.param_inputs, n.module_path, n.outputs)
            for n in graph.nodes]


# (model, dispatch ops, bytes per node, alias_of per node, edges per node)
CASES = {
    "split": (V.SplitViews, ["aten.mul.Tensor", "aten.split.Tensor"],
              [ELEMS * F32, 0], [(-1,), (0, 0, 0)], [(), (0,)]),
    "chunk": (V.ChunkViews, ["aten.add.Tensor", "aten.split.Tensor", "aten.mul.Tensor"],
              [ELEMS * F32, 0, 2 * 10 * F32], [(-1,), (0, 0), (-1,)], [(), (0,), (1,)]),
    "view_reshape": (V.ViewReshape, ["aten.mul.Tensor", "aten.view.default", "aten.view.default", "aten.sum.default"],
                     [ELEMS * F32, 0, 0, 1 * F32], [(-1,), (0,), (0,), (-1,)], [(), (0,), (1,), (2,)]),
    "transpose": (V.TransposeContiguous, ["aten.mul.Tensor", "aten.transpose.int", "aten.clone.default",
                                          "aten.add.Tensor"],
                  [ELEMS * F32, 0, ELEMS * F32, ELEMS * F32], [(-1,), (0,), (-1,), (-1,)], [(), (0,), (1,), (2,)]),
    "inplace": (V.InPlaceChain, ["aten.mul.Tensor", "aten.add_.Tensor", "aten.relu_.default", "aten.mul.Tensor"],
                [ELEMS * F32, 0, 0, ELEMS * F32], [(-1,), (0,), (0,), (-1,)], [(), (0,), (1,), (2,)]),
    "slicing": (V.Slicing, ["aten.mul.Tensor", "aten.slice.Tensor", "aten.select.int", "aten.slice.Tensor",
                            "aten.add.Tensor"],
                [ELEMS * F32, 0, 0, 0, 3 * 2 * F32], [(-1,), (0,), (0,), (0,), (-1,)],
                [(), (0,), (0,), (2,), (1, 3)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dispatch_bytes_aliases_and_edges_by_hand(case):
    model, ops, nbytes, aliases, edges = CASES[case]
    g = capture(model(), x(), runs=0, stats=False, method="dispatch")
    assert [n.op for n in g.nodes] == ops
    assert [n.output_bytes for n in g.nodes] == nbytes
    assert [n.alias_of for n in g.nodes] == aliases
    assert [n.inputs for n in g.nodes] == edges
    assert g.nodes[0].input_names == ("x",)


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_records_what_dispatch_records(case):
    model = CASES[case][0]
    d = capture(model(), x(), runs=0, stats=False, method="dispatch")
    e = capture(model(), x(), runs=0, stats=False, method="export")
    assert e.capture.method == "export"
    assert record(e) == record(d)
    assert e.output_node_ids == d.output_node_ids
    rd = mevreport.analyze(model(), x(), runs=0, stats=False, capture="dispatch")
    re_ = mevreport.analyze(model(), x(), runs=0, stats=False, capture="export")
    assert re_.totals.activation_bytes == rd.totals.activation_bytes == sum(CASES[case][2])
    assert re_.memory_timeline == rd.memory_timeline


def test_split_views_allocate_nothing_under_either_method():
    """The issue's numbers: export once recorded the split's second and third views as new storage."""
    for method in ("dispatch", "export"):
        r = mevreport.analyze(V.SplitViews(), x(), runs=0, stats=False, capture=method)
        assert r.capture.method == method
        split = r.nodes[1]
        assert split.op == "aten.split.Tensor" and split.output_bytes == 0
        assert [o.shape for o in split.outputs] == [(3, 4), (3, 4), (3, 2)]
        assert r.totals.activation_bytes == r.totals.peak_activation_bytes == ELEMS * F32


def test_transpose_peak_by_hand():
    # mul (120) is read by clone through the transpose: both alive at clone (240);
    # then mul is freed and add (120) joins clone (240 again, never 360)
    for method in ("dispatch", "export"):
        r = mevreport.analyze(V.TransposeContiguous(), x(), runs=0, stats=False, capture=method)
        assert r.totals.activation_bytes == 3 * ELEMS * F32
        assert r.totals.peak_activation_bytes == 2 * ELEMS * F32
        assert list(r.memory_timeline) == [ELEMS * F32, ELEMS * F32, 2 * ELEMS * F32, 2 * ELEMS * F32]


def test_parameter_views_are_not_storage_and_names_are_typed():
    d = capture(V.WeightView(), x(), runs=0, stats=False, method="dispatch")
    assert [(n.op, n.output_bytes, n.alias_of, n.inputs) for n in d.nodes] == [
        ("aten.t.default", 0, (-1,), ()),                # the weight's transpose: a parameter's view
        ("aten.addmm.default", 3 * 4 * F32, (-1,), (0,)),
        ("aten.t.default", 0, (1,), (1,)),
    ]
    assert d.nodes[0].param_inputs == ("fc.weight",)
    assert d.nodes[1].param_inputs == ("fc.bias",) and d.nodes[1].input_names == ("x",)
    e = capture(V.WeightView(), x(), runs=0, stats=False, method="export")
    assert [(n.op, n.output_bytes, n.alias_of, n.inputs) for n in e.nodes] == [
        ("aten.linear.default", 3 * 4 * F32, (-1,), ()),
        ("aten.t.default", 0, (0,), (0,)),
    ]
    assert e.nodes[0].param_inputs == ("fc.weight", "fc.bias") and e.nodes[0].input_names == ("x",)


def test_composites_that_copy_are_counted_as_copies():
    """``reshape``/``flatten`` of a transposed tensor and ``to`` another dtype declare an
    alias in their schema yet allocate; the builder looks at the storage, not only the schema."""
    e = capture(V.CopyingComposites(), x(), runs=0, stats=False, method="export")
    assert [(n.op, n.output_bytes) for n in e.nodes] == [
        ("aten.mul.Tensor", ELEMS * F32), ("aten.t.default", 0), ("aten.reshape.default", ELEMS * F32),
        ("aten.mul.Tensor", ELEMS * F32), ("aten.reshape.default", 0), ("aten.to.dtype", ELEMS * 8),
        ("aten.to.dtype", 0), ("aten.flatten.using_ints", ELEMS * F32),
    ]
    assert e.nodes[4].alias_of == (3,) and e.nodes[6].alias_of == (3,)
    total = 4 * ELEMS * F32 + ELEMS * 8
    for method in ("dispatch", "export"):
        r = mevreport.analyze(V.CopyingComposites(), x(), runs=0, stats=False, capture=method)
        assert r.capture.method == method
        assert r.totals.activation_bytes == total
        assert r.totals.peak_activation_bytes == total  # all outputs, or read by the last op


def test_json_node_inputs_are_node_ids_only():
    doc = mevreport.analyze(V.WeightView(), x(), runs=0, stats=False).to_dict()
    for node in doc["nodes"]:
        assert all(type(i) is int and 0 <= i < node["id"] for i in node["inputs"])


def test_typed_refs():
    names = TensorNames()
    t, w = torch.zeros(2), torch.zeros(3)
    names[t] = InputRef("x")
    names[w] = ParamRef("fc.weight")
    assert names.get(t) == InputRef("x") and names.get(w) == ParamRef("fc.weight")
    assert names.get(torch.zeros(2)) is None
    assert InputRef("x") != ParamRef("x")  # an input named like a parameter is still an input
    assert Produced(1, 0) == Produced(1, 0)


def test_alias_sources_from_schemas():
    aten = torch.ops.aten
    assert alias_sources(aten.split.Tensor) == [0]       # one list return, aliasing self
    assert alias_sources(aten.mul.Tensor) == [None]
    assert alias_sources(aten.add_.Tensor) == [0]
    assert alias_sources(aten._unsafe_view.default) == [0]
    base = torch.randn(4, 4)
    assert shares_storage(base.t(), base) and not shares_storage(base.t().contiguous(), base)
    assert shares_storage(base, None)  # nothing to compare: trust the schema


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(sorted(V.STEPS)), min_size=1, max_size=5))
def test_random_view_chains_cost_the_same_memory_under_both_methods(steps):
    """Op names and counts may differ (export keeps composites); activation bytes, the peak
    and the bytes of every copy may not."""
    d = mevreport.analyze(V.Chain(steps), torch.randn(4, 6), runs=0, stats=False, capture="dispatch")
    e = mevreport.analyze(V.Chain(steps), torch.randn(4, 6), runs=0, stats=False, capture="export")
    assert e.capture.method == "export"
    assert e.totals.activation_bytes == d.totals.activation_bytes
    assert e.totals.peak_activation_bytes == d.totals.peak_activation_bytes
    assert sorted(n.output_bytes for n in e.nodes if n.output_bytes) == \
        sorted(n.output_bytes for n in d.nodes if n.output_bytes)
    # every allocating step is one (4, 6) float32 tensor: the first ``x * 1.0`` plus one per copying step
    copies = sum(1 for s in steps if s not in ("view_reshape", "inplace"))
    assert d.totals.activation_bytes == (1 + copies) * 24 * F32
