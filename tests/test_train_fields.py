"""The training-step fields of the JSON document (DESIGN §6): absent from forward-only
documents (so they stay byte for byte as before), round-tripped and schema-valid when present."""
from __future__ import annotations

import dataclasses
import json

import jsonschema
import torch

import mevreport
from mevreport.report import GradStats, LossInfo, OptimizerInfo, Report, TrainingInfo
from mevreport.schema import json_schema

from . import models as M

TRAIN_TOTALS = {"backward_macs", "backward_flops", "optimizer_flops", "grad_bytes", "optimizer_state_bytes",
                "saved_activation_bytes", "train_peak_bytes", "measured_train_peak_bytes"}
TRAIN_MODULE = {"saved_activation_bytes", "grad_bytes", "backward_macs", "backward_latency_ms"}


def _forward_report() -> Report:
    torch.manual_seed(0)
    return mevreport.analyze(M.Nested(), torch.randn(2, 4), runs=0)


def test_forward_only_document_has_no_training_keys() -> None:
    d = _forward_report().to_dict()
    assert "training" not in d and "grads" not in d
    assert not TRAIN_TOTALS & set(d["totals"])
    assert all(not TRAIN_MODULE & set(row) for row in d["modules"])
    assert all("phase" not in n for n in d["nodes"])


def test_training_fields_round_trip_and_validate() -> None:
    r = _forward_report()
    nodes = tuple(dataclasses.replace(n, phase="backward") if i == 0 else n for i, n in enumerate(r.nodes))
    totals = dataclasses.replace(r.totals, backward_macs=64, backward_flops=130, optimizer_flops=0, grad_bytes=200,
                                 optimizer_state_bytes=0, saved_activation_bytes=96, train_peak_bytes=1000,
                                 measured_train_peak_bytes=None)
    modules = tuple(dataclasses.replace(m, saved_activation_bytes=8, grad_bytes=4, backward_macs=2,
                                        backward_latency_ms=0.5) for m in r.modules)
    grads = (GradStats("body.0.fc.weight", (4, 4), "float32", 1.5, 3.0, 0.5, None),)
    training = TrainingInfo(LossInfo("synthetic", "mean of float outputs"), OptimizerInfo("SGD"))
    r2 = dataclasses.replace(r, nodes=nodes, totals=totals, modules=modules, grads=grads, training=training)
    d = r2.to_dict()
    assert d["nodes"][0]["phase"] == "backward" and "phase" not in d["nodes"][1]
    assert d["totals"]["train_peak_bytes"] == 1000 and "measured_train_peak_bytes" not in d["totals"]
    assert d["training"] == {"loss": {"source": "synthetic", "name": "mean of float outputs"},
                             "optimizer": {"class_name": "SGD"}}
    assert d["grads"][0]["ratio"] == 0.5 and d["grads"][0]["shape"] == [4, 4]
    jsonschema.Draft202012Validator(json_schema()).validate(d)
    assert Report.from_dict(json.loads(r2.to_json())) == r2
