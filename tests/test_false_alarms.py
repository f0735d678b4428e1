"""Warnings worth reading: real dead, large and non-finite activations are reported; constants,
masks, index tables, bias slices, anchor grids and discarded ``log(0)`` are not (issue 12)."""
from __future__ import annotations

import re
import warnings

import pytest
import torch

import mevreport
from mevreport.analyze import _CREATION_OPS, op_short
from mevreport.flow import input_dependent, non_finite_origins, reaches_output
from mevreport.graph import Node, TensorMeta, TensorStats
from mevreport.render.html import render_html, summary_cards
from mevreport.report import WarningCount

from . import models_alarms as A


def report(model):
    torch.manual_seed(0)
    return mevreport.analyze(model, torch.randn(4, 64), runs=0)


def kinds(r, kind):
    return [w for w in r.warnings if w.kind == kind]


def test_true_dead_relu_fed_by_the_input_is_reported():
    r = report(A.DeadReLU())
    dead = kinds(r, "dead_activation")
    assert len(dead) == 1
    node = r.nodes[dead[0].node]
    assert node.op == "aten.relu.default" and node.module_path == "act" and node.stats.zero_fraction == 1.0


def test_true_nan_that_reaches_the_output_is_the_origin():
    r = report(A.NaNToOutput())
    origin = kinds(r, "nan_origin")
    assert len(origin) == 1 and not kinds(r, "nan_discarded")
    node = r.nodes[origin[0].node]
    assert node.op == "aten.log.default" and f"{4 * 64} NaN" in origin[0].message


def test_true_large_activation_is_reported():
    r = report(A.LargeActivation())
    large = kinds(r, "large_values")
    assert [r.nodes[w.node].op for w in large] == ["aten.mul.Tensor"]


def test_masked_log_is_a_note_not_an_origin():
    r = report(A.MaskedLog())
    assert not kinds(r, "nan_origin")
    note = kinds(r, "nan_discarded")
    assert len(note) == 1 and r.nodes[note[0].node].op == "aten.log.default"
    assert "none of which reaches an output" in note[0].message
    assert r.nodes[-1].stats.inf_count == 0 and r.nodes[-1].stats.nan_count == 0


def test_unused_log_is_a_note_not_an_origin():
    r = report(A.UnusedLog())
    assert not kinds(r, "nan_origin")
    assert [r.nodes[w.node].op for w in kinds(r, "nan_discarded")] == ["aten.log.default"]


def test_t5_position_buckets_are_not_a_nan_origin():
    r = report(A.T5Buckets())
    log = next(n for n in r.nodes if n.op == "aten.log.default")
    assert log.stats.inf_count == 64  # the diagonal: distance 0
    assert not kinds(r, "nan_origin")
    assert [w.node for w in kinds(r, "nan_discarded")] == [log.id]


def test_constants_masks_indices_bias_slices_and_anchors_raise_nothing():
    r = report(A.ConstantsAndMasks())
    by_op = {}
    for n in r.nodes:
        by_op.setdefault(n.op, []).append(n)
    # the look-alikes are there: mostly-zero mask and index, an all-zero bias cat and slice, huge anchors
    sub = by_op["aten.sub.Tensor"][0]
    assert sub.stats.zero_fraction >= 0.99 and sub.stats.numel == 256 * 256
    assert by_op["aten.scatter_.value"][0].stats.zero_fraction == 255 / 256
    assert by_op["aten.cat.default"][0].stats.zero_fraction == 1.0
    assert by_op["aten.repeat.default"][0].stats.abs_max == 63 * 1000.0 + 500.0
    assert not kinds(r, "dead_activation") and not kinds(r, "large_values")


def test_a_model_without_inputs_is_judged_on_everything():
    class NoInput(torch.nn.Module):
        def forward(self):
            return torch.zeros(64) * 1.0

    r = mevreport.analyze(NoInput(), None, runs=0)
    assert [r.nodes[w.node].op for w in kinds(r, "dead_activation")] == ["aten.mul.Tensor"]


def test_the_same_constants_are_flagged_when_they_depend_on_the_input():
    class FromInput(torch.nn.Module):
        def forward(self, x):
            zeros = x * 0.0                       # all zeros, but computed from the input
            return zeros, (x.abs() + 1.0) * 1e6   # and large values from the input

    r = report(FromInput())
    assert [r.nodes[w.node].op for w in kinds(r, "dead_activation")] == ["aten.mul.Tensor"]
    assert [r.nodes[w.node].op for w in kinds(r, "large_values")] == ["aten.mul.Tensor"]


def _node(i, op, inputs=(), input_names=(), dtype="float32"):
    return Node(id=i, op=op, module_path="", module_call=0, inputs=inputs, outputs=(TensorMeta((4,), dtype),),
                output_bytes=16, alias_of=(-1,), input_names=input_names)


def _stats(nan=0, inf=0):
    return TensorStats(mean=None, std=None, min=None, max=None, abs_max=None, zero_fraction=0.0,
                       nan_count=nan, inf_count=inf, histogram=None, numel=4)


def test_input_dependence_stops_at_value_free_ops():
    nodes = [_node(0, "aten.mul.Tensor", input_names=("x",)), _node(1, "aten.zeros_like.default", (0,)),
             _node(2, "aten.add.Tensor", (1,)), _node(3, "aten.add.Tensor", (0, 2)),
             _node(4, "aten.fill_.Scalar", (0,)), _node(5, "aten.fill_.Tensor", (2, 0)),
             _node(6, "aten.arange.default")]
    assert input_dependent(nodes) == {0, 3, 5}


def test_non_finite_flow_through_the_graph():
    # 0 log (-inf) -> 1 mul (-inf) -> 2 where (finite) -> output; 3 log (NaN) -> 4 to long -> 5 (output)
    nodes = [_node(0, "aten.log.default"), _node(1, "aten.mul.Tensor", (0,)), _node(2, "aten.where.self", (1,)),
             _node(3, "aten.log.default"), _node(4, "aten._to_copy.default", (3,), dtype="int64"),
             _node(5, "aten.add.Tensor", (4, 2)), _node(6, "aten.exp.default", (2,))]
    stats = {0: _stats(inf=1), 1: _stats(inf=1), 2: _stats(), 3: _stats(nan=2), 5: _stats(), 6: _stats(inf=4)}
    assert non_finite_origins(nodes, stats, deliberate=set()) == [0, 3, 6]
    assert not reaches_output(0, nodes, stats, (5, 2)) and not reaches_output(3, nodes, stats, (5,))
    assert reaches_output(6, nodes, stats, (5, 6)) and reaches_output(0, nodes, stats, (1,))
    # a floating node without statistics passes the values on: unknown never hides a NaN
    del stats[2]
    assert reaches_output(0, nodes, stats, (2,))


def test_warning_count_is_one_number_on_the_page():
    """The header link and the Warnings card once counted differently (capture notes in one, not the other)."""
    torch.manual_seed(0)
    r = mevreport.analyze(A.ManyWarnings(), torch.randn(4, 64), runs=0, capture="export")
    got = sorted(w.kind for w in r.warnings)
    assert got == ["capture_note", "dead_activation", "large_values", "nan_discarded", "nan_origin"]
    count = WarningCount.of(r.warnings)
    assert (count.warnings, count.notes) == (3, 2)
    card = next(c for c in summary_cards(r) if c["label"] == "Warnings")
    assert card["value"] == "3" and card["detail"] == "2 notes"
    page = render_html(r)
    assert re.findall(r'<a href="#warnings">Warnings \((\d+)\)</a>', page) == ["3"]
    assert re.search(r'<div class="k">Warnings</div><div class="v">3</div>', page)
    assert page.count('class="nan_discarded note"') == 1 and page.count('class="capture_note note"') == 1


def _mostly_zero_nodes(r):
    return [n for n in r.nodes if n.stats and n.stats.numel >= 16 and n.stats.zero_fraction >= 0.99
            and op_short(n.op) not in _CREATION_OPS]


def test_hf_swin_and_detr_masks_and_constants_raise_nothing():
    """Issue 12 measured 50 dead-activation warnings on swin_t and 38 on DETR, all on shifted-window
    masks, padding masks and position constants; tiny configs of both have the same structure."""
    transformers = pytest.importorskip("transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        swin = transformers.SwinModel(transformers.SwinConfig(
            image_size=64, patch_size=4, embed_dim=24, depths=[2, 2], num_heads=[2, 4], window_size=4)).eval()
        detr = transformers.DetrForObjectDetection(transformers.DetrConfig(
            use_timm_backbone=False, use_pretrained_backbone=False, num_queries=10, d_model=32,
            backbone_config=transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                                      depths=[1, 1, 1, 1], out_features=["stage4"]),
            encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64)).eval()
        for model, size in ((swin, 64), (detr, 128)):
            r = mevreport.analyze(model, torch.randn(1, 3, size, size), runs=0)
            assert _mostly_zero_nodes(r)  # the look-alikes are there
            assert not kinds(r, "dead_activation") and not kinds(r, "large_values") and not kinds(r, "nan_origin")


def test_hf_t5_position_buckets_are_notes_not_origins():
    """The real T5 (tiny config): the encoder's bidirectional buckets take log(0) on the 7 diagonal
    distances of a 7-token sequence, the decoder's causal ones on the 7·8/2 = 28 non-positive distances;
    both are cast to bucket ids, so they are notes, and nothing is reported as a NaN/Inf origin."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                                num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    ids = torch.randint(1, 64, (2, 7))
    r = mevreport.analyze(model, {"input_ids": ids, "decoder_input_ids": ids}, runs=0)
    assert not kinds(r, "nan_origin")
    notes = [r.nodes[w.node] for w in kinds(r, "nan_discarded")]
    assert [(n.op, n.module_path, n.stats.inf_count) for n in notes] == [
        ("aten.log.default", "encoder.block.0.layer.0.SelfAttention", 7),
        ("aten.log.default", "decoder.block.0.layer.0.SelfAttention", 28)]
