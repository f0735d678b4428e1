"""ONNX nodes, initializers and names to the frozen :class:`~mevreport.graph.Graph`.

The Graph built here is the one the PyTorch capture builds, so the analysis,
the cost registry and the page need nothing ONNX-specific:

* one :class:`Node` per ONNX node in file order (topological, by the ONNX
  spec), ``Constant`` nodes left out (their values are constants, like
  initializers); edges from value names;
* module paths from what the exporters write: the dynamo exporter's
  ``pkg.torch.onnx.name_scopes`` metadata (with the module classes in
  ``pkg.torch.onnx.class_hierarchy``), else the TorchScript exporter's node
  names (``/layer1/layer1.0/conv1/Conv`` is ``layer1.0.conv1``); a node with
  neither belongs to the root;
* parameters from initializers, each counted once however many nodes use it.
"""
from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass

import onnx
from onnx import helper

from ..graph import ModuleInfo, Node, ParamInfo, TensorMeta, frozen_map
from ..modpath import prefixes
from .reader import dtype_name

VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}  # aliases in torch terms: allocate nothing
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_ITEMSIZE = {"float64": 8, "int64": 8, "uint64": 8, "complex64": 8, "complex128": 16, "float32": 4, "int32": 4,
             "uint32": 4, "float16": 2, "bfloat16": 2, "int16": 2, "uint16": 2, "int8": 1, "uint8": 1, "bool": 1}


def op_name(node: onnx.NodeProto) -> str:
    """``onnx.Conv``; other domains with dots as underscores: ``com_microsoft.Attention``."""
    domain = node.domain if node.domain not in ("", "ai.onnx") else "onnx"
    return f"{domain.replace('.', '_')}.{node.op_type}"


def _meta(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


_LIST_TOKENS = frozenset({tokenize.STRING, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER})
_LIST_OPS = frozenset("[](),")


def _literal_list(text: str | None) -> list[str] | None:
    """The list of names torch's exporter writes as a Python literal (``"['', 'layer1']"``), or None.

    The text is file content: ``ast.literal_eval`` evaluates no code, but a
    long operator chain (``1+1+...``, ``----1``) makes its parser raise
    ``RecursionError`` or ``MemoryError``.  Only strings, brackets and commas
    are let through to it, so the one way left to nest is brackets, which the
    parser refuses past 200 levels with a ``SyntaxError``.
    """
    if not text:
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    if not all(t.type in _LIST_TOKENS or (t.type == tokenize.OP and t.string in _LIST_OPS) for t in tokens):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


def path_from_node_name(name: str) -> str:
    """TorchScript scope names: ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``.

    Each scope component is either the full path so far (``layer1.0`` under
    ``layer1``) or one attribute name to append (``conv1``); the last
    component is the op's own name.
    """
    if "/" not in name:
        return ""
    parts = [p for p in name.split("/")[:-1] if p]
    path = ""
    for part in parts:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path


def module_of(node: onnx.NodeProto) -> tuple[str, dict[str, str]]:
    """The node's module path and the class names of its scopes (when written)."""
    meta = _meta(node)
    scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes"))
    if scopes:
        classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy")) or []
        named = {s: c.rsplit(".", 1)[-1] for s, c in zip(scopes[:-1], classes)}
        return (scopes[-2] if len(scopes) >= 2 else ""), named
    return path_from_node_name(node.name), {}


def attribute_values(node: onnx.NodeProto) -> tuple[tuple[str, object], ...]:
    """Attributes as plain, hashable values (tensors and graphs by kind only)."""
    out = []
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out.append((a.name, "<graph>"))
            continue
        if a.type in (onnx.AttributeProto.TENSOR, onnx.AttributeProto.SPARSE_TENSOR):
            out.append((a.name, "<tensor>"))
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v)
        out.append((a.name, v))
    return tuple(sorted(out))


@dataclass(frozen=True)
class InitializerKinds:
    """Which initializers are parameters, buffers or mere constants."""

    params: Mapping[str, str]   # name -> "param" | "buffer" (read-only)
    constants: frozenset[str]


def classify_initializers(model: onnx.ModelProto) -> InitializerKinds:
    """Parameters are floating-point initializers with more than one element.

    Integer initializers (shapes, axes, indices) and single-element ones
    (scales, epsilons folded by the exporter) are constants.  BatchNormalization's
    mean and variance inputs, and names ending in ``running_mean`` /
    ``running_var`` / ``num_batches_tracked``, are buffers, as in torch.
    ONNX records no trainability: every parameter is reported trainable.
    """
    bn_stats = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization"
                for i in (3, 4) if len(n.input) > i}
    params: dict[str, str] = {}
    constants: set[str] = set()
    for init in model.graph.initializer:
        dtype = dtype_name(init.data_type)
        floating = dtype.startswith(("float", "bfloat", "complex"))
        if not floating or math.prod(init.dims) <= 1:
            constants.add(init.name)
        elif init.name in bn_stats or init.name.endswith(BUFFER_SUFFIXES):
            params[init.name] = "buffer"
        else:
            params[init.name] = "param"
    return InitializerKinds(frozen_map(params), frozenset(constants))


def param_records(model: onnx.ModelProto, kinds: InitializerKinds) -> tuple[ParamInfo, ...]:
    records = []
    for init in model.graph.initializer:
        kind = kinds.params.get(init.name)
        if kind is None:
            continue
        dtype = dtype_name(init.data_type)
        n = math.prod(init.dims)
        records.append(ParamInfo(name=init.name, shape=tuple(int(d) for d in init.dims), dtype=dtype, numel=n,
                                 nbytes=n * _ITEMSIZE.get(dtype, 4), trainable=kind == "param",
                                 is_buffer=kind == "buffer"))
    # parameters first, then buffers, as the torch capture lists them
    return tuple(sorted(records, key=lambda r: r.is_buffer))


@dataclass(frozen=True)
class BuiltNodes:
    nodes: tuple[Node, ...]
    onnx_index: tuple[int, ...]            # node id -> index in model.graph.node
    output_names: tuple[tuple[str, ...], ...]  # node id -> its output value names
    module_classes: Mapping[str, str]   # read-only
    output_node_ids: tuple[int, ...]


def build_nodes(model: onnx.ModelProto, types: dict[str, tuple[tuple[int, ...], str]],
                kinds: InitializerKinds, graph_inputs: set[str]) -> BuiltNodes:
    """One Node per non-Constant ONNX node; see the module docstring."""
    producer: dict[str, int] = {}
    owner: dict[str, int] = {}  # value -> node id owning its storage (-1: input/initializer/constant)
    nodes: list[Node] = []
    index: list[int] = []
    out_names: list[tuple[str, ...]] = []
    classes: dict[str, str] = {}

    def meta_of(name: str) -> TensorMeta:
        shape, dtype = types.get(name, ((-1,), "unknown"))
        return TensorMeta(shape, dtype)

    for i, onode in enumerate(model.graph.node):
        if onode.op_type == "Constant" and onode.domain in ("", "ai.onnx"):
            continue
        node_id = len(nodes)
        path, scope_classes = module_of(onode)
        for p, c in scope_classes.items():
            classes.setdefault(p, c)
        inputs: list[int] = []
        for name in onode.input:
            pid = producer.get(name)
            if pid is not None and pid not in inputs:
                inputs.append(pid)
        outs = [o for o in onode.output if o]
        metas = tuple(meta_of(o) for o in outs)
        alias_of = []
        new_bytes = 0
        for o, m in zip(outs, metas):
            if onode.op_type in VIEW_OPS and onode.domain in ("", "ai.onnx") and onode.input:
                src = owner.get(onode.input[0], -1)
                alias_of.append(src)
                owner[o] = src
            else:
                alias_of.append(-1)
                owner[o] = node_id
                if all(d >= 0 for d in m.shape):
                    new_bytes += m.numel * _ITEMSIZE.get(m.dtype, 4)
            producer[o] = node_id
        nodes.append(Node(
            id=node_id, op=op_name(onode), module_path=path, module_call=0, inputs=tuple(inputs), outputs=metas,
            output_bytes=new_bytes, alias_of=tuple(alias_of),
            args=tuple(meta_of(name) if name else None for name in onode.input),
            kwargs=attribute_values(onode),
            param_inputs=tuple(dict.fromkeys(n for n in onode.input if n in kinds.params)),
            input_names=tuple(dict.fromkeys(n for n in onode.input if n in graph_inputs)),
        ))
        index.append(i)
        out_names.append(tuple(outs))
    output_ids: list[int] = []
    for o in model.graph.output:
        pid = producer.get(o.name)
        if pid is not None and pid not in output_ids:
            output_ids.append(pid)
    return BuiltNodes(tuple(nodes), tuple(index), tuple(out_names), frozen_map(classes), tuple(output_ids))


_AUTO_NAME = re.compile(r"^(onnx::|val_|_v_|const)")


def module_infos(built: BuiltNodes, params: tuple[ParamInfo, ...], model_class: str) -> tuple[ModuleInfo, ...]:
    """The module tree from node paths, in first-use order, with parameters per module.

    A parameter belongs to the module its name says (``layer1.0.conv1.weight``)
    when that module ran; otherwise (names the exporter made up, like
    ``onnx::Conv_27``) to the module of the first node that reads it.
    Class names come from the dynamo exporter's metadata; without it they are
    empty (ONNX keeps no module classes), and the root's is ``model_class``.
    """
    order: list[str] = []
    seen: set[str] = set()
    for n in built.nodes:
        for p in prefixes(n.module_path):
            if p not in seen:
                seen.add(p)
                order.append(p)
    if "" not in seen:
        order.insert(0, "")
    first_reader: dict[str, str] = {}
    for n in built.nodes:
        for name in n.param_inputs:
            first_reader.setdefault(name, n.module_path)
    owner: dict[str, str] = {}
    for param in params:
        prefix = param.name.rsplit(".", 1)[0] if "." in param.name and not _AUTO_NAME.match(param.name) else None
        owner[param.name] = prefix if prefix in seen else first_reader.get(param.name, "")
    counts = {path: 0 for path in order}
    for param in params:
        if param.is_buffer:
            continue
        for anc in prefixes(owner[param.name]):
            if anc in counts:
                counts[anc] += param.numel
    return tuple(
        ModuleInfo(path=path, class_name=model_class if path == "" else built.module_classes.get(path, ""),
                   calls=1, params=counts[path], depth=0 if path == "" else path.count(".") + 1)
        for path in order
    )
