"""No import cycles among rflo's modules, imports inside functions counted.

A cycle hidden in a function (``import`` at call time) still ties two modules
together: neither can be read, tested or moved without the other.  This test
reads every module of ``src/rflo`` with ``ast`` (nothing is imported), draws
an edge for every ``import``/``from ... import`` anywhere in it (relative
imports resolved; ``from pkg import submodule`` to the submodule, else to the
module that defines the name) and fails naming each cycle it finds.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "rflo"


def modules(root: Path) -> dict:
    """``{dotted name: (path, is_package)}`` of every module under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _resolve(name: str, mods: dict):
    """The module ``name`` is in: itself, or its nearest enclosing package."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(root: Path) -> dict:
    """``{module: {modules it imports}}``, inside the package ``root`` only."""
    mods = modules(root)
    pkg = root.name
    edges = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        base = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [
                    _resolve(a.name, mods) for a in node.names if a.name.split(".")[0] == pkg
                ]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    b = base
                    for _ in range(node.level - 1):
                        b = b.rpartition(".")[0]
                    full = b + ("." + node.module if node.module else "")
                else:
                    full = node.module or ""
                if full.split(".")[0] != pkg:
                    continue
                for a in node.names:
                    sub = f"{full}.{a.name}"
                    targets.append(_resolve(sub if sub in mods else full, mods))
            edges[mod].update(t for t in targets if t and t != mod)
    return edges


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan),
    each a sorted list: the import cycles."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(old)
    return found


def describe(component, edges) -> str:
    members = set(component)
    return "\n".join(f"    {m} -> {', '.join(sorted(edges[m] & members))}" for m in component)


def test_rflo_has_no_import_cycles():
    edges = import_edges(ROOT)
    assert len(edges) > 50  # the walk found the package
    found = cycles(edges)
    assert not found, "import cycles (imports inside functions count):\n" + "\n\n".join(
        describe(c, edges) for c in found
    )


def test_the_checker_finds_cycles_in_functions_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "rflo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from rflo.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..b import x\n")
    (pkg / "b.py").write_text("import os\nx = 1\ndef g():\n    import rflo.a\n")
    (pkg / "d.py").write_text("from rflo import b\n")
    edges = import_edges(pkg)
    assert edges["rflo.a"] == {"rflo.sub.c"}  # `from pkg import submodule`, in a function
    assert edges["rflo.sub.c"] == {"rflo.b"}  # a relative import
    assert edges["rflo.d"] == {"rflo.b"}
    assert cycles(edges) == [["rflo.a", "rflo.b", "rflo.sub.c"]]
    assert "rflo.b -> rflo.a" in describe(cycles(edges)[0], edges)
    (pkg / "b.py").write_text("x = 1\n")
    assert cycles(import_edges(pkg)) == []
