"""Capture through ``torch.export``: the static graph, as the same frozen Graph.

``--capture export`` is for users who want the graph torch.export sees
(DESIGN §1).  ``torch.export.export(strict=False)`` gives an fx graph of aten
ops (the training IR keeps composites such as ``aten.linear`` and
``aten.conv2d``, which the cost registry covers).  Each ``call_function`` op
that yields a tensor becomes a :class:`~mevreport.graph.Node`, exactly as the
dispatch recorder would build it: edges from fx arguments, module path from
``nn_module_stack`` (turned into ``named_modules()`` paths), outputs and
arguments from the fake values in ``meta["val"]``, aliasing from the op
schema.  Observations come from running the exported graph on the real
tensors through a small :class:`torch.fx.Interpreter`, feeding the same
:class:`~mevreport.capture.stats.StatsCollector`.

Export refuses data-dependent control flow and unknown output types (Hugging
Face cache objects); the caller then falls back to dispatch capture.
"""
from __future__ import annotations

import contextlib
import io
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.utils._pytree import tree_leaves

from ..errors import ModelRunError, one_line
from ..graph import Measurements, ModuleInfo, Node
from ..torchlogs import torch_logs_recorded
from .nodes import InputRef, NodeBuilder, ParamRef, Produced, Ref, module_infos, output_node_ids
from .parts import CaptureParts
from .stats import StatsCollector
from .timing import forward_latency, node_medians
from .weight_stats import model_weight_stats


class ExportFailed(Exception):
    """torch.export refused the model; ``reason`` is one line for the notes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def export_program(model: nn.Module, args: tuple, kwargs: dict) -> ExportedProgram:
    """``torch.export.export(strict=False)``, with torch's own logging muted.

    On a refusal torch logs whole tracebacks (fake tensor and symbolic shape
    loggers) and prints the partial graph before raising; the user gets one
    line from us instead.
    """
    try:
        # torch's loggers only (not logging.disable, which mutes every logger of the process);
        # torch also prints the partial graph to stderr when it hits a data-dependent branch
        with torch_logs_recorded(), warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return torch.export.export(model, args, kwargs, strict=False)
    except Exception as exc:  # any refusal: the caller falls back to dispatch
        raise ExportFailed(one_line(exc, None)) from exc  # whole: a cut line can end mid-URL


def _normalize_path(raw: str) -> str:
    """``L['self'].layers[0]`` / ``layers.0`` -> ``layers.0`` (``named_modules()`` style)."""
    s = re.sub(r"^(L\['self'\]|L__self__|self)\.?", "", raw)
    s = re.sub(r"\[(\d+)\]", r".\1", s)
    s = re.sub(r"\['([^']+)'\]", r".\1", s)
    return s.replace("._modules.", ".").strip(".")


class ModulePaths:
    """Turns ``nn_module_stack`` entries into (path, call index), counting calls.

    A module reachable under two names is reported under its first name, as
    ``named_modules()`` (and the dispatch tracker) do.  Each distinct stack key
    is one call of its module, so a module called twice gets calls 0 and 1.
    """

    def __init__(self, model: nn.Module) -> None:
        first: dict[int, str] = {}
        self.canonical: dict[str, str] = {}
        for name, mod in model.named_modules(remove_duplicate=False):
            self.canonical[name] = first.setdefault(id(mod), name)
        self.class_names = {name: type(mod).__name__ for name, mod in model.named_modules()}
        # A module rebuilt from an archive keeps only submodules that hold
        # tensors; its graph still knows the original paths, so take them.
        self.trust_stack = isinstance(model, fx.GraphModule)
        self.order: list[str] = [""]
        self.calls: dict[str, dict[str, int]] = {"": {"": 0}}

    def resolve(self, stack: dict[str, Any] | None) -> tuple[str, int]:
        path, call = "", 0
        for key, value in (stack or {}).items():
            raw = value[0] if isinstance(value, tuple) else str(value)
            normalized = _normalize_path(raw)
            found = self.canonical.get(normalized, normalized if self.trust_stack else None)
            if found == "" and isinstance(value, tuple) and len(value) > 1 and isinstance(value[1], str):
                self.class_names[""] = value[1].rsplit(".", 1)[-1]
            if not found:  # unknown or the root
                continue
            keys = self.calls.get(found)
            if keys is None:
                keys = self.calls[found] = {}
                self.order.append(found)
            path, call = found, keys.setdefault(key, len(keys))
            if isinstance(value, tuple) and len(value) > 1 and isinstance(value[1], str):
                # the class as it was exported: kept even when the module is an
                # unlifted torch.export module whose submodules are plain Modules
                self.class_names[found] = value[1].rsplit(".", 1)[-1]
        return path, call

    def modules(self, param_counts: dict[str, int]) -> tuple[ModuleInfo, ...]:
        return module_infos(self.order, self.class_names, {p: len(keys) for p, keys in self.calls.items()},
                            param_counts)


FxOut = tuple[fx.Node, int]  # an fx node and which of its tensor outputs


def _ref(a: fx.Node) -> FxOut:
    """Look through ``operator.getitem`` to the op output it picks."""
    if (a.op == "call_function" and getattr(a.target, "__name__", "") == "getitem" and isinstance(a.args[0], fx.Node)
            and isinstance(a.args[1], int)):
        return a.args[0], a.args[1]
    return a, 0


def nodes_from_program(ep: ExportedProgram, model: nn.Module, user_input_names: list[str | None]
                       ) -> tuple[list[Node], ModulePaths, tuple[int, ...], dict[fx.Node, int]]:
    """Graph nodes, module paths, output node ids and fx node -> node id.

    The nodes come from the same :class:`~mevreport.capture.nodes.NodeBuilder`
    as under dispatch capture; this function only says what each fx argument
    is (an earlier op's output, a parameter, an input) and what tensor value
    (``meta["val"]``, a fake tensor) stands for it.
    """
    first_param: dict[int, str] = {}
    canon: dict[str, str] = {}
    for name, t in list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False)):
        canon[name] = first_param.setdefault(id(t), name)
    sig = ep.graph_signature
    user_names = iter(user_input_names)
    named: dict[str, InputRef | ParamRef] = {}  # placeholder name -> what it is
    for spec in sig.input_specs:
        arg_name = getattr(spec.arg, "name", None)
        if spec.kind == InputKind.USER_INPUT:
            nm = next(user_names, None)
            if arg_name and nm:
                named[arg_name] = InputRef(nm)
        elif arg_name and spec.target:
            named[arg_name] = ParamRef(canon.get(spec.target, spec.target))

    paths = ModulePaths(model)
    builder = NodeBuilder()
    produced: dict[FxOut, Produced] = {}

    def ref(a: Any) -> Ref:
        if not isinstance(a, fx.Node):
            return None
        key = _ref(a)
        found = produced.get(key)
        if found is not None:
            return found
        return named.get(key[0].name) if key[0].op == "placeholder" else None

    def base_of(a: Any) -> tuple[Ref, Any]:
        return (ref(a), a.meta.get("val")) if isinstance(a, fx.Node) else (None, None)

    fx_ids: dict[fx.Node, int] = {}
    for n in ep.graph.nodes:
        if n.op != "call_function" or getattr(n.target, "__name__", "") == "getitem":
            continue
        outs = [t for t in tree_leaves(n.meta.get("val")) if isinstance(t, torch.Tensor)]
        if not outs:
            continue
        vals = fx.node.map_arg((n.args, n.kwargs), lambda a: a.meta.get("val"))
        made = builder.add(n.target, refs=[ref(a) for a in n.all_input_nodes], outs=outs, args=n.args,
                           kwargs=n.kwargs, base_of=base_of, module=paths.resolve(n.meta.get("nn_module_stack")),
                           record=vals)
        for i, p in enumerate(made):
            produced[(n, i)] = p
        fx_ids[n] = made[0].node

    out_args = tree_leaves(ep.graph.output_node().args[0])
    output_ids = output_node_ids(ref(a) for spec, a in zip(sig.output_specs, out_args)
                                 if spec.kind == OutputKind.USER_OUTPUT)
    return builder.nodes, paths, output_ids, fx_ids


class ObservingInterpreter(fx.Interpreter):
    """Runs the exported graph on real tensors; per node: statistics and/or time."""

    def __init__(self, gm: fx.GraphModule, node_ids: dict[fx.Node, int], collector: StatsCollector | None,
                 device: torch.device | None = None) -> None:
        super().__init__(gm, garbage_collect_values=True)
        self.node_ids = node_ids
        self.collector = collector
        self.timing = device is not None
        self.cuda = device is not None and device.type == "cuda"
        self.current: fx.Node | None = None
        self.cpu_ms: dict[int, float] = {}
        self.events: dict[int, tuple[Any, Any]] = {}

    def run_node(self, n: fx.Node) -> Any:
        node_id = self.node_ids.get(n)
        if node_id is None:
            return super().run_node(n)
        self.current = n
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = super().run_node(n)
            end.record()
            self.events[node_id] = (start, end)
        else:
            t0 = time.perf_counter()
            out = super().run_node(n)
            if self.timing:
                self.cpu_ms[node_id] = (time.perf_counter() - t0) * 1e3
        if self.collector is not None:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()):
                    self.collector(node_id, t)
                    break
        self.current = None
        return out

    def times_ms(self) -> dict[int, float]:
        if self.cuda:
            torch.cuda.synchronize()
            return {i: s.elapsed_time(e) for i, (s, e) in self.events.items()}
        return self.cpu_ms


def export_parts(model: nn.Module, args: tuple, kwargs: dict, dev: torch.device, *, names: Any,
                 fake: bool, stats: bool, runs: int, grad: bool, param_counts: dict[str, int],
                 say: Callable[[str], None], weights: bool) -> CaptureParts:
    """Export ``model`` and observe the exported graph; raises :class:`ExportFailed`.

    ``names`` maps each input leaf tensor to its :class:`~mevreport.capture.nodes.InputRef`.
    """
    say("exporting with torch.export")
    grad_ctx = torch.enable_grad() if grad else torch.no_grad()
    with grad_ctx:
        ep = export_program(model, args, kwargs)
    try:
        flat = list(ep._graph_module_flat_inputs(args, kwargs))
    except Exception as exc:
        raise ExportFailed(f"cannot feed the exported program: {one_line(exc)}") from exc
    n_user = sum(1 for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT)
    user_values = flat[len(flat) - n_user:] if n_user else []
    refs = [names.get(v) if isinstance(v, torch.Tensor) else None for v in user_values]
    user_names = [r.name if isinstance(r, InputRef) else None for r in refs]
    nodes, paths, output_ids, fx_ids = nodes_from_program(ep, model, user_names)
    modules = paths.modules(param_counts)
    unseen = sum(1 for p, c in paths.class_names.items() if p not in paths.calls and c != "GuardsFn")
    notes = (f"{unseen} module(s) with no aten op in the exported graph (e.g. Identity, Dropout in eval mode, "
             f"or modules not called) are not listed under export capture",) if unseen else ()
    if fake or (not stats and runs <= 0):  # nothing to observe
        return CaptureParts(tuple(nodes), modules, output_ids, Measurements(notes=notes), "export")

    gm = ep.graph_module
    collector = StatsCollector() if stats else None
    say("capturing (exported graph)")
    interp = ObservingInterpreter(gm, fx_ids, collector)
    with grad_ctx:
        try:
            interp.run(*flat)
        except Exception as exc:
            failed = interp.current
            op = str(failed.target) if failed is not None else None
            path = nodes[fx_ids[failed]].module_path if failed is not None else ""
            where = f" in {op}" if op else ""
            raise ModelRunError(
                f"the model failed{where} at module '{path or '<root>'}' "
                f"({paths.class_names.get(path, type(model).__name__)}): {one_line(exc)}",
                op=op, module_path=path,
            ) from exc
        node_stats = collector.finish() if collector else {}
        failures = dict(collector.failures) if collector else {}
        if runs <= 0:
            return CaptureParts(tuple(nodes), modules, output_ids, Measurements(
                node_stats=node_stats, notes=notes, stats_failures=failures), "export")
        say(f"timing {runs} runs")
        samples = []
        for _ in range(runs):
            timer = ObservingInterpreter(gm, fx_ids, None, dev)
            timer.run(*flat)
            samples.append(timer.times_ms())
        node_latency = node_medians(samples)
        fwd, spread, peak = forward_latency(lambda: gm(*flat), dev, runs)
    weight_rows = model_weight_stats(model) if weights else ()
    return CaptureParts(tuple(nodes), modules, output_ids, Measurements(
        node_stats=node_stats, node_latency_ms=node_latency, forward_latency_ms=fwd, forward_latency_spread_ms=spread,
        measured_peak_bytes=peak, weight_stats=weight_rows, latency_runs=runs, notes=notes,
        stats_failures=failures), "export")
