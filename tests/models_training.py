"""Training-step reports with known figures, for the page, diff, gate and index tests.

The forward pass of :class:`tests.models_report.SmallNet` is captured for real;
the training fields (DESIGN §6) are then filled in by formula, so each test
knows every number on the page without running a backward here: backward
nodes mirror the forward ones in reverse, one gradient is NaN, one
parameter got none.
"""
from __future__ import annotations

import dataclasses
import math

import mevreport
from mevreport.graph import TensorStats
from mevreport.report import GradStats, LossInfo, OptimizerInfo, Report, ReportWarning, TrainingInfo

from . import models_report as M

# totals of the crafted step; tests derive their expectations from these
TOTALS = {"backward_macs": 6_000, "backward_flops": 12_500, "optimizer_flops": 4_000, "grad_bytes": 4_000,
          "optimizer_state_bytes": 8_000, "saved_activation_bytes": 3_000, "train_peak_bytes": 20_000,
          "measured_train_peak_bytes": None}
NAN_PARAM = "blocks.1.fc.weight"
NO_GRAD_PARAM = "head.bias"


def _grad(i: int, name: str, shape: tuple[int, ...], dtype: str) -> GradStats:
    numel = math.prod(shape)
    if name == NO_GRAD_PARAM:
        return GradStats(name, shape, dtype, None, 1.0, None, None)
    norm = 10.0 ** (-i / 2)  # falls tenfold every two parameters: a vanishing slope on the plot
    nan = 2 if name == NAN_PARAM else 0
    stats = TensorStats(mean=norm / 10, std=norm, min=-norm, max=norm, abs_max=norm, zero_fraction=0.125,
                        nan_count=nan, inf_count=0, histogram=None, numel=numel)
    return GradStats(name, shape, dtype, norm, 2.0, norm / 2.0, stats)


def training_report(totals: dict[str, int | None] | None = None, optimizer: str = "AdamW",
                    label: str | None = None) -> Report:
    model, inputs = M.small_net()
    r = mevreport.analyze(model, inputs, runs=0, stats=False, name="SmallNet", label=label)
    n = len(r.nodes)
    backward = tuple(dataclasses.replace(node, id=n + k, inputs=(), phase="backward", latency_ms=None, stats=None)
                     for k, node in enumerate(reversed(r.nodes)))
    weights = [p for p in r.params if not p.is_buffer]
    grads = tuple(_grad(i, p.name, p.shape, p.dtype) for i, p in enumerate(weights))
    modules = tuple(dataclasses.replace(m, saved_activation_bytes=100 * (i + 1), grad_bytes=4 * m.params,
                                        optimizer_state_bytes=8 * m.params, backward_macs=2 * (m.macs or 0),
                                        backward_latency_ms=None)
                    for i, m in enumerate(r.modules))
    nan_node = backward[3].id
    warnings = r.warnings + (
        ReportWarning("nan_backward", nan_node, f"first NaN/Inf in backward: node {nan_node} (addmm), the gradient "
                                                f"of node {n - 4} (addmm) in 'blocks.2.fc': 2 NaN, 0 Inf"),
        ReportWarning("no_gradient", None, f"trainable parameter '{NO_GRAD_PARAM}' received no gradient"),
        ReportWarning("vanishing_gradient", None, "parameter 'head.weight': ‖g‖/‖w‖ = 1.58e-05, under 0.001× the "
                                                  "median 0.005"),
    )
    return dataclasses.replace(
        r, nodes=r.nodes + backward, grads=grads, modules=modules, warnings=warnings,
        totals=dataclasses.replace(r.totals, **(TOTALS if totals is None else totals)),
        training=TrainingInfo(LossInfo("callable", "cross_entropy"), OptimizerInfo(optimizer)))
