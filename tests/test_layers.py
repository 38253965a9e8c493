"""Imports point one way: errors, config -> data, model -> train, measure -> report -> experiments,
stream, integrations -> cli. Every import counts, at module level or inside a function: a function-level import
only hides a circle from the interpreter, not from a reader."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sinklab"

# rank of each top-level part of the package; an import may only point to the same rank or lower
LAYERS = {
    0: ("errors", "config", "files", "tokens"),
    1: ("data", "model", "kernels", "gguf_llama", "probes"),
    2: ("train", "measure", "load"),
    3: ("report",),
    4: ("experiments", "stream", "integrations"),
    5: ("cli", "commands"),
}
RANK = {part: rank for rank, parts in LAYERS.items() for part in parts}
ROOT_RANK = 5  # sinklab/__init__.py: the public facade (sinklab.measure(...)) sits on top


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("sinklab",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(name: str, path: Path, node: ast.AST, known: dict) -> set[str]:
    """The sinklab modules one import statement reaches (a name imported from a package counts as
    its submodule when there is one, else as the package)."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        if node.level:
            base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        wanted = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
    out = set()
    for target in wanted:
        if not target.startswith("sinklab"):
            continue
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != name:
            out.add(target)
    return out


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first import}, counting every import in the file."""
    known = modules()
    graph = {}
    for name, path in known.items():
        edges = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(name, path, node, known):
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT_RANK
    if parts[1] not in RANK:
        raise AssertionError(f"{module} is in no layer: add sinklab.{parts[1]} to LAYERS in tests/test_layers.py")
    return RANK[parts[1]]


def back_edges(graph) -> list[str]:
    return [f"{a} (layer {rank(a)}) imports {b} (layer {rank(b)}) at line {line}"
            for a, edges in sorted(graph.items()) for b, line in sorted(edges.items()) if rank(b) > rank(a)]


def find_cycle(graph) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_every_module_sits_in_a_layer():
    for name in modules():
        rank(name)


def test_no_import_points_up_a_layer():
    bad = back_edges(import_graph())
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_model_imports_nothing_from_measure():
    graph = import_graph()
    bad = [f"{a} -> {b}" for a, edges in graph.items() if a.startswith("sinklab.model")
           for b in edges if b.startswith("sinklab.measure")]
    assert not bad, bad


# the checker itself: it must see function-level imports and report a made-up back-edge and circle
def test_the_checker_counts_imports_inside_functions(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from ..report import plots\n")
    known = {"sinklab.model.mod": path, "sinklab.report.plots": path, "sinklab.report": path}
    node = next(n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom))
    assert _targets("sinklab.model.mod", path, node, known) == {"sinklab.report.plots"}


@pytest.mark.parametrize("graph,expected", [
    ({"sinklab.config": {"sinklab.model.decoder": 3}, "sinklab.model.decoder": {}}, True),
    ({"sinklab.model.decoder": {"sinklab.config": 3}, "sinklab.config": {}}, False),
])
def test_the_checker_finds_back_edges(graph, expected):
    assert bool(back_edges(graph)) is expected


def test_the_checker_finds_circles():
    graph = {"sinklab.load": {"sinklab.model.checkpoint": 1}, "sinklab.model.checkpoint": {"sinklab.load": 2}}
    assert find_cycle(graph) == ["sinklab.load", "sinklab.model.checkpoint", "sinklab.load"]
    assert find_cycle({"sinklab.load": {"sinklab.model.checkpoint": 1}, "sinklab.model.checkpoint": {}}) is None


# functions small enough to read at once, where the review found the longest ones
SHORT_FUNCTION_FILES = ("train/*.py", "model/attention.py")
MAX_FUNCTION_LINES = 60


def test_trainer_and_attention_functions_are_short():
    long = []
    for pattern in SHORT_FUNCTION_FILES:
        for path in sorted(PACKAGE.glob(pattern)):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} has {n} lines")
    assert not long, "\n".join(long)
