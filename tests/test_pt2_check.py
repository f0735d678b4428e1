"""A ``.pt2`` archive runs no code from the file (issue 11).

Each hostile archive is a real ``torch.export.save`` archive of a model with a
dynamic dimension, rewritten the way an attacker would.  Where torch itself
would run the payload, the test first proves that with plain
``torch.export.load`` (a marker file appears), then that mevreport refuses it
with one line, exit 2, no marker and no output file.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mevreport.errors import ModelLoadError
from mevreport.loader import load_pt2
from mevreport.pt2_grammar import MAX_LITERAL, check_guard, check_sym_expr, check_target
from tests.conftest import run_cli

SYMBOL = "Symbol('s77', positive=True, integer=True)"


class Dynamic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y.reshape(-1) * x.shape[0] + y.sum()


@pytest.fixture(scope="module")
def dynamic_pt2(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "dynamic.pt2"
    torch.manual_seed(0)
    ep = torch.export.export(Dynamic(), (torch.randn(5, 4),),
                             dynamic_shapes=({0: torch.export.Dim("batch", min=2, max=64)},))
    torch.export.save(ep, str(path))
    assert SYMBOL.encode() in zipfile.ZipFile(path).read("dynamic/models/model.json")
    return path


def rewrite(src: Path, dst: Path, edit_model=None, extra: dict[str, bytes] | None = None, drop=()) -> Path:
    """Copy an archive, passing the program JSON through ``edit_model(dict) -> dict``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = zin.read(info.filename)
            if any(info.filename.endswith(d) for d in drop):
                continue
            if info.filename.endswith("models/model.json") and edit_model is not None:
                data = json.dumps(edit_model(json.loads(data))).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name.replace("{root}", root), data)
    return dst


def _replace_strings(doc, old: str, new: str):
    text = json.dumps(doc)
    assert json.dumps(old)[1:-1] in text
    return json.loads(text.replace(json.dumps(old), json.dumps(new)))


def sympify_payload(marker: Path):
    payload = f"(__import__('os').system('touch {marker}'), {SYMBOL})[1]"
    return lambda doc: _replace_strings(doc, SYMBOL, payload)


def guard_payload(marker: Path):
    def edit(doc):
        doc["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]
        return doc
    return edit


def target_payload(marker: Path):
    """A graph node whose target resolves to os.system (torch.os is the os module) with the shell line as input."""
    def edit(doc):
        nodes = doc["graph_module"]["graph"]["nodes"]
        node = next(n for n in nodes if n["target"] == "torch.ops.aten.sum.default")
        node["target"] = "torch.os.system"
        node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]
        return doc
    return edit


def _torch_runs_it(path: Path, marker: Path) -> bool:
    """Plain torch (no mevreport) on the same archive, in a child process: does the payload run?"""
    code = ("import torch,sys\nep=torch.export.load(sys.argv[1])\nm=ep.module()\n"
            "try:\n  m(*ep.example_inputs[0])\nexcept Exception:\n  pass\n")
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=300)
    ran = marker.exists()
    if ran:
        marker.unlink()
    return ran


@pytest.mark.parametrize("payload", [sympify_payload, guard_payload],
                         ids=["sympify-expr_str", "exec-guards_code"])
def test_hostile_pt2_runs_nothing_through_the_cli(payload, dynamic_pt2: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    bad = rewrite(dynamic_pt2, tmp_path / "hostile.pt2", payload(marker))
    assert _torch_runs_it(bad, marker), "the crafted archive must really run its payload under plain torch"
    r = run_cli("report", str(bad), "-o", str(tmp_path / "out.html"), "--json", str(tmp_path / "out.json"),
                "--runs", "1", cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mevreport: error: ") and "refused" in lines[0], r.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.pt2"]


def test_target_resolving_to_os_system_is_refused(dynamic_pt2: Path, tmp_path: Path) -> None:
    """torch's own verifier refuses it too (after resolving it); mevreport refuses it before torch reads it."""
    marker = tmp_path / "PWNED"
    bad = rewrite(dynamic_pt2, tmp_path / "t.pt2", lambda d: {**target_payload(marker)(d), "verifiers": []})
    with pytest.raises(ModelLoadError, match=re.escape("'torch.os.system' is not a registered operator")):
        load_pt2(bad)
    assert not marker.exists()


def test_legit_dynamic_archive_still_reports(dynamic_pt2: Path, tmp_path: Path) -> None:
    js = tmp_path / "d.json"
    r = run_cli("report", str(dynamic_pt2), "-o", str(tmp_path / "d.html"), "--json", str(js), "--runs", "1",
                cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(js.read_text())
    assert doc["inputs"][0]["shape"] == [5, 4]
    assert doc["totals"]["params"] == 4 * 3 + 3
    assert doc["totals"]["macs"] == 5 * 4 * 3


class Guarded(torch.nn.Module):
    """Exports with a derived dim (range key '2*s..'), a dozen guards_code lines, and FloorDiv expressions."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        torch._check(x.shape[0] <= 60)
        return x.reshape(x.shape[0] // 2, -1).sum() + y[: x.shape[0] // 2].sum()


def test_legit_archive_with_guards_and_derived_dims_loads(tmp_path: Path) -> None:
    path = tmp_path / "guarded.pt2"
    ep = torch.export.export(Guarded(), (torch.randn(8, 3), torch.randn(10)),
                             dynamic_shapes=({0: 2 * torch.export.Dim("half", max=30)}, {0: torch.export.Dim("b")}))
    torch.export.save(ep, str(path))
    doc = json.loads(zipfile.ZipFile(path).read("guarded/models/model.json"))
    assert len(doc["guards_code"]) >= 5 and any("*" in k for k in doc["range_constraints"])
    loaded = load_pt2(path)
    x, y = loaded.inputs
    assert float(loaded.module(x, y)) == pytest.approx(float(x.sum() + y[:4].sum()), rel=1e-5)


def _central_size(data: bytes, new_size: int) -> bytes:
    """Patch every central-directory entry's uncompressed size (what zipfile reports) to ``new_size``."""
    out, start = bytearray(data), 0
    while (i := out.find(b"PK\x01\x02", start)) >= 0:
        struct.pack_into("<I", out, i + 24, new_size)
        start = i + 4
    return bytes(out)


def _zip_with(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(zipfile.ZipInfo(n), b"x")
    return buf.getvalue()


@pytest.mark.parametrize("case,names,expect", [
    ("absolute", ["m/archive_format", "/etc/model/archive_format"], "absolute name"),
    ("windows-absolute", ["m/archive_format", "C:/model/x"], "absolute name"),
    ("dotdot", ["m/archive_format", "m/extra/../../evil"], "'..' component"),
    ("duplicate", ["m/archive_format", "m/archive_format"], "appears twice"),
    ("outside-root", ["m/archive_format", "other/archive_format"], "outside the archive folder"),
    ("aotinductor", ["m/archive_format", "m/data/aotinductor/model/lib.so"], "AOTInductor"),
    ("legacy-weights", ["m/archive_format", "m/data/weights/model.pt"], "legacy pickled"),
    ("unexpected", ["m/archive_format", "m/serialized_state_dict.pt"], "unexpected zip member"),
])
def test_unsafe_zip_members_are_refused(case, names, expect, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.pt2"
    with pytest.warns(UserWarning) if case == "duplicate" else _nothing():
        path.write_bytes(_zip_with(names))
    with pytest.raises(ModelLoadError, match=expect):
        load_pt2(path)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_zip_bomb_is_refused_before_reading(dynamic_pt2: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.pt2"
    path.write_bytes(_central_size(dynamic_pt2.read_bytes(), 0xFFFF0000))
    with pytest.raises(ModelLoadError, match="zip bomb"):
        load_pt2(path)


class _RunShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_sample_inputs_naming_other_globals_are_refused(dynamic_pt2: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    saved, inner = io.BytesIO(), io.BytesIO()
    torch.save((torch.zeros(2),), saved)
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as z, zipfile.ZipFile(inner, "w") as out:
        for n in z.namelist():
            out.writestr(n, pickle.dumps(_RunShell(marker), protocol=2) if n.endswith("data.pkl") else z.read(n))
    bad = rewrite(dynamic_pt2, tmp_path / "inputs.pt2", drop=("sample_inputs/model.pt",),
                  extra={"{root}/data/sample_inputs/model.pt": inner.getvalue()})
    with pytest.raises(ModelLoadError, match=r"posix system|not a plain tensor"):
        load_pt2(bad)
    assert not marker.exists()


def test_refusal_happens_before_torch_reads_and_patches_nothing(dynamic_pt2: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    from torch.export.pt2_archive import _package
    state = (dict(os.environ), _package.pickle, torch._C._pickle_load_obj, sympy.sympify)
    bad = rewrite(dynamic_pt2, tmp_path / "x.pt2", sympify_payload(tmp_path / "PWNED"))

    def never(*_a, **_k):
        raise AssertionError("torch.export.load must not see a refused archive")
    with monkeypatch.context() as m:
        m.setattr(torch.export, "load", never)
        with pytest.raises(ModelLoadError, match="refused"):
            load_pt2(bad)
    loaded = load_pt2(dynamic_pt2)  # and a good one loads without any patch
    assert loaded.inputs[0].shape == (5, 4)
    assert (dict(os.environ), _package.pickle, torch._C._pickle_load_obj, sympy.sympify) == state


# --- the grammars ----------------------------------------------------------------------------------------

_S = [sympy.Symbol(n, positive=True, integer=True) for n in ("s0", "s77")] + [sympy.Symbol("u0", integer=True)]


def _exprs():
    from torch.utils._sympy.functions import CeilToInt, FloorDiv, FloorToInt, ModularIndexing, PythonMod
    leaf = st.one_of(st.sampled_from(_S), st.integers(-2**40, 2**40).map(sympy.Integer))

    def grow(children):
        pair = st.tuples(children, children)
        return st.one_of(
            pair.map(lambda p: p[0] + p[1]), pair.map(lambda p: p[0] * p[1]),
            pair.map(lambda p: sympy.Max(*p)), pair.map(lambda p: sympy.Min(*p)),
            st.tuples(children, st.sampled_from(_S)).map(lambda p: FloorDiv(p[0], p[1])),
            st.tuples(children, st.sampled_from(_S)).map(lambda p: PythonMod(p[0], p[1])),
            st.tuples(st.sampled_from(_S), st.integers(1, 3)).map(lambda p: p[0] ** p[1]),
            st.tuples(children, st.sampled_from(_S)).map(lambda p: ModularIndexing(p[0], p[1], 7)),
            children.map(lambda c: CeilToInt(c / 2)), children.map(lambda c: FloorToInt(c / 3)),
        )
    # Sizes are int64 in torch: sympy folds products of large leaves into one literal, which
    # torch could not have written (the grammar refuses those, tested below), so they are not drawn.
    arith = st.recursive(leaf, grow, max_leaves=8).filter(
        lambda e: all(abs(int(i)) <= MAX_LITERAL for i in e.atoms(sympy.Integer)))
    pair = st.tuples(arith, arith)
    return st.one_of(arith, pair.map(lambda p: sympy.Eq(*p)), pair.map(lambda p: sympy.Lt(*p)),
                     pair.map(lambda p: sympy.Ge(*p)), pair.map(lambda p: sympy.Ne(*p)))


@settings(max_examples=150, deadline=None)
@given(_exprs())
def test_every_expression_torch_writes_passes(expr) -> None:
    check_sym_expr(sympy.srepr(expr))  # what torch's serializer writes: _print_sympy is srepr


@pytest.mark.parametrize("text", [
    f"(__import__('os').system('true'), {SYMBOL})[1]",
    "Symbol('s0').__class__",
    "Symbol('__import__')",
    "Symbol('s0', positive=__import__('os'))",
    "lambda: 0",
    "exec('1')", "eval('1')", "getattr(Symbol('s0'), 'x')", "open('/etc/passwd')",
    "Integer(10) ** Integer(10) ** Integer(10)",
    "Pow(Integer(10), Pow(Integer(10), Integer(10)))",
    "Pow(Symbol('s0', integer=True), Integer(10000000000))",
    "Float('1e5', precision=__import__('os'))",
    "Integer('1' * 10)", "Integer(1 if True else 2)", "[Symbol('s0')]", "{1: 2}",
    "Symbol('s0') ^ Integer(2)", "x" * 30_000, "Max(" * 200 + "1" + ")" * 200, "Symbol('s0'); 1",
    "Function('f')(Symbol('s0'))", "Symbol('s0').subs", "S.true", "Integer(99999999999999999999999)",
])
def test_expressions_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ModelLoadError, match="refused"):
        check_sym_expr(text)


@pytest.mark.parametrize("text", ["L['x'].size()[0] <= 64", "2 <= L['x'].size()[0]",
                                  "L['x'].size()[0] % 2 == 0 and L['y'].stride()[1] == 1",
                                  "math.floor(L['x'].size()[0] / 2) == 3"])
def test_guards_torch_prints_pass(text: str) -> None:
    check_guard(text)


@pytest.mark.parametrize("text", ["__import__('os').system('x') == 0", "L['x'].__class__", "L.clear()",
                                  "L['x'].size()[0].bit_length()", "L['x'].tolist()", "math.__dict__",
                                  "L[__import__('os')]", "(lambda: 1)()", "L", "math.factorial(10**9)",
                                  "torch.load('x')"])
def test_guards_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ModelLoadError, match="refused"):
        check_guard(text)


@pytest.mark.parametrize("target,ok", [("torch.ops.aten.linear.default", True), ("_operator.getitem", True),
                                       ("torch.sym_max", True), ("torch.os.system", False),
                                       ("torch.ops.load_library.x", False), ("builtins.exec", False),
                                       ("math.factorial", False), ("torch.load", False),
                                       ("torch.ops.aten.__class__", False), ("torch.ops.aten._softmax.default", True)])
def test_targets(target: str, ok: bool) -> None:
    if ok:
        check_target(target)
    else:
        with pytest.raises(ModelLoadError, match="not a registered operator"):
            check_target(target)


@pytest.mark.parametrize("text", [f"Integer({2**63 + 1})", f"Mul(Integer({-(2**64)}), Symbol('s0'))"])
def test_integers_beyond_int64_are_refused(text: str) -> None:
    """A size torch cannot hold is not something torch wrote."""
    with pytest.raises(ModelLoadError, match="beyond int64"):
        check_sym_expr(text)
