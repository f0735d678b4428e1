"""The package's import graph: no cycle, and no stage imports a later one (issue 13).

Every module under ``mevreport/`` is parsed with :mod:`ast`; every ``import``
and ``from ... import`` counts, at module level and inside functions alike
(``TYPE_CHECKING`` blocks excepted: they never run), with relative imports
resolved against the importing module's package.  An edge ``a -> b`` means
module ``a`` imports module ``b`` (or a name from package ``b``'s
``__init__``, or submodule ``b.c`` when ``from b import c`` names one).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mevreport"

# The stages in order (DESIGN §1); a module may import its own stage and earlier ones only.
# Data: the frozen records and the helpers every stage shares.  Anything not listed is a later stage.
DATA = frozenset({
    "mevreport._version", "mevreport.errors", "mevreport.graph", "mevreport.report",
    "mevreport.reportfile", "mevreport.schema", "mevreport.fileio", "mevreport.torchlogs", "mevreport.jsontext",
    "mevreport.gcpause",
})
LATER = ("mevreport.capture", "mevreport.costs", "mevreport.render", "mevreport.api", "mevreport.cli",
         "mevreport.analyze", "mevreport.onnx", "mevreport.loader", "mevreport.diff", "mevreport.archive")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level, in functions, in classes; not under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: {mevreport modules it imports}}`` for every module of the package."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    root = ".".join(base + ([node.module] if node.module else []))
                else:
                    root = node.module or ""
                # "from a.b import c": the submodule a.b.c when there is one, else a name from a.b itself
                subs = [f"{root}.{a.name}" for a in node.names if f"{root}.{a.name}" in files]
                targets = subs if len(subs) == len(node.names) else subs + [root]
            for target in targets:
                # "import a.b.c" reaches the longest known module name (a namespace package has no file)
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target.startswith("mevreport") and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def simple_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle, each starting at its smallest module (the package is small enough)."""
    found: list[list[str]] = []
    for start in sorted(graph):
        path = [start]
        todo = [iter(sorted(w for w in graph[start] if w > start or w == start))]
        while todo:
            w = next(todo[-1], None)
            if w is None:
                todo.pop()
                path.pop()
            elif w == start:
                found.append(list(path))
            elif w > start and w not in path:
                path.append(w)
                todo.append(iter(sorted(graph[w])))
    return found


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    """The parser itself: an edge known to be there is found (a test of an empty graph could not fail)."""
    graph = import_graph()
    assert "mevreport.errors" in graph["mevreport"]                    # from .errors import MevreportError
    assert "mevreport.graph" in graph["mevreport.report"]              # from .graph import ... (relative)
    assert len(graph) == len(list(PACKAGE.rglob("*.py")))
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(toy) == [["a", "b", "c"]] and simple_cycles(toy) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_data_modules_import_no_later_stage() -> None:
    graph = import_graph()
    bad = sorted((m, t) for m in DATA if m in graph for t in graph[m]
                 if any(t == s or t.startswith(s + ".") for s in LATER))
    assert not bad, "data modules importing a later stage:\n" + "\n".join(f"{m} -> {t}" for m, t in bad)
