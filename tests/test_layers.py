"""Imports point one way: errors, config -> data, model -> train, measure -> report -> experiments,
stream, integrations -> cli. Every import counts, at module level or inside a function: a function-level import
only hides a circle from the interpreter, not from a reader.

Three more rules keep the parts apart:
- a private name (one leading underscore) stays in its package. A package is a subpackage of sinklab
  (sinklab/report, sinklab/measure, sinklab/cli, ...), a top-level module on its own (sinklab/files.py),
  or, outside the package, tests/, benchmarks/ and scripts/. `from x import _name` from another package fails, and
  tests, benchmarks and scripts read no `obj._name` of sinklab (`self._x` and the private attributes of
  other libraries named in FOREIGN_PRIVATE aside): a helper used elsewhere gets a public name.
- the report is pure: it reads results and tables and never trains or measures, so sinklab/report
  imports nothing of sinklab.train and no submodule of sinklab.measure. The names sinklab.measure itself
  exports (`from ..measure import X`, its public top level) are allowed; `sinklab.measure.<module>` is not.
- one name, one thing: a public function or class name is defined at module level in one module of sinklab
  only (re-exports and imports do not count), so `load_model` or `plan` names one thing wherever it is read.
"""
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
    5: ("cli",),
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


def _source(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads (relative imports resolved from module `name`)."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(name: str, path: Path, node: ast.AST, known: dict) -> set[str]:
    """The sinklab modules one import statement reaches (a name imported from a package counts as
    its submodule when there is one, else as the package)."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        mod = _source(name, path, node)
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
# and every function of the package: def line to last line, nested functions and methods each counted
MAX_PACKAGE_FUNCTION_LINES = 40


def long_functions(path: Path, tree: ast.AST, limit: int) -> list[str]:
    """`file:line:function has n lines` for each function (nested ones too) longer than `limit` lines."""
    long = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                long.append(f"{path.relative_to(PACKAGE.parent).as_posix()}:{node.lineno}:{node.name} has {n} lines")
    return long


def test_trainer_and_attention_functions_are_short():
    long = [line for pattern in SHORT_FUNCTION_FILES for path in sorted(PACKAGE.glob(pattern))
            for line in long_functions(path, ast.parse(path.read_text(encoding="utf-8")), MAX_FUNCTION_LINES)]
    assert not long, "\n".join(long)


def test_no_function_in_the_package_is_longer_than_40_lines():
    long = [line for path in sorted(PACKAGE.rglob("*.py"))
            for line in long_functions(path, ast.parse(path.read_text(encoding="utf-8")), MAX_PACKAGE_FUNCTION_LINES)]
    assert not long, (f"functions over {MAX_PACKAGE_FUNCTION_LINES} lines (split out well-named helpers):\n"
                      + "\n".join(long))


def test_the_checker_finds_long_functions():
    lines = "".join(f"        x{i} = {i}\n" for i in range(39))  # 39 lines of a body
    text = ("def short():\n    pass\n"                                     # lines 1-2
            f"class C:\n    def method(self):\n{lines}        return 1\n"  # 3-44: method 41 lines
            f"def outer():\n    def inner():\n{lines}    return inner\n")  # 45-86: inner 40 (at the limit), outer 42
    found = long_functions(PACKAGE / "m.py", ast.parse(text), 40)  # only read for its name: the text is given
    assert sorted(found) == sorted(["sinklab/m.py:4:method has 41 lines", "sinklab/m.py:45:outer has 42 lines"])


# -- private names stay in their package ------------------------------------------------------------
REPO = PACKAGE.parent
OUTSIDE = ("tests", "benchmarks", "scripts")  # each a package of its own, outside sinklab
# private attributes of other libraries that tests read on those libraries' objects
FOREIGN_PRIVATE = {"_attn_implementation": "transformers: the attention a config selects",
                   "_actions": "argparse: a parser's actions, to list the subcommands"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def package_of(module: str) -> str:
    """sinklab.report.plots -> sinklab.report; sinklab.cli -> sinklab.cli; sinklab -> sinklab."""
    return ".".join(module.split(".")[:2])


def source_files() -> dict[str, Path]:
    """module name -> path for sinklab/, and 'tests/x.py'-style names for the folders outside it."""
    out = dict(modules())
    for folder in OUTSIDE:
        for path in sorted((REPO / folder).rglob("*.py")):
            out[path.relative_to(REPO).as_posix()] = path
    return out


def private_imports(name: str, path: Path, tree: ast.AST, known: dict) -> list[str]:
    """`from x import _y` where _y belongs to a package other than the importing file's."""
    mine = package_of(name) if name.startswith("sinklab") else name.split("/")[0]
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        mod = _source(name, path, node) if name.startswith("sinklab") else node.module or ""
        for alias in node.names:
            owner = f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in known else mod
            if mod.startswith("sinklab") and _private(alias.name) and package_of(owner) != mine:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name} from {mod}")
    return bad


def test_no_private_name_is_imported_across_packages():
    known = modules()
    bad = [line for name, path in sorted(source_files().items())
           for line in private_imports(name, path, ast.parse(path.read_text(encoding="utf-8")), known)]
    assert not bad, "private names imported from another package (give them a public name):\n" + "\n".join(bad)


def _foreign_names(tree: ast.AST) -> set[str]:
    """Names a file binds by importing from anything but sinklab (torch, argparse, ...)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("sinklab")}
        elif isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("sinklab"):
            out |= {a.asname or a.name for a in node.names}
    return out


def _root(node: ast.AST) -> str | None:
    """The name an expression chain starts from: `a` in a.b().c[0].d."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _by_name(call: ast.Call) -> str | None:
    """The attribute name of setattr(obj, "name", ...), getattr, hasattr, delattr, monkeypatch.setattr."""
    f = call.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    if name not in ("setattr", "getattr", "hasattr", "delattr") or len(call.args) < 2:
        return None
    arg = call.args[1]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def private_attributes(path: Path, tree: ast.AST) -> list[str]:
    """`obj._x` and `setattr(obj, "_x", ...)` (monkeypatch.setattr too) on anything but self, cls and
    the objects of other libraries."""
    allowed = _foreign_names(tree) | {"self", "cls"}
    bad = []
    for node in ast.walk(tree):
        owner, attr = None, None
        if isinstance(node, ast.Attribute):
            owner, attr = node.value, node.attr
        elif isinstance(node, ast.Call) and _by_name(node) is not None:
            owner, attr = node.args[0], _by_name(node)
        if attr and _private(attr) and attr not in FOREIGN_PRIVATE and _root(owner) not in allowed:
            bad.append(f"{path.relative_to(REPO)}:{node.lineno} reads {attr} of {ast.unparse(owner)}")
    return bad


def test_tests_benchmarks_and_scripts_read_no_private_attribute_of_sinklab():
    bad = [line for name, path in sorted(source_files().items()) if not name.startswith("sinklab")
           for line in private_attributes(path, ast.parse(path.read_text(encoding="utf-8")))]
    assert not bad, "private attributes read from outside sinklab (use or add a public name):\n" + "\n".join(bad)


def report_reaching_in(graph: dict[str, dict[str, int]], paths: dict[str, Path]) -> list[str]:
    """The report's imports of sinklab.train (anything) and of sinklab.measure's submodules."""
    return [f"{paths[a].relative_to(REPO)}:{line} imports {b}" for a, edges in sorted(graph.items())
            if package_of(a) == "sinklab.report" for b, line in sorted(edges.items(), key=lambda e: e[1])
            if package_of(b) == "sinklab.train" or b.startswith("sinklab.measure.")]


def test_the_report_imports_neither_train_nor_measure_internals():
    bad = report_reaching_in(import_graph(), modules())
    assert not bad, "the report reads results; measuring and training happen before it:\n" + "\n".join(bad)


# the private-name checkers themselves, on made-up files
def test_the_checker_finds_private_imports_across_packages():
    text = "from ..report import _img, write_csv\nfrom . import _star\nfrom .plots import _save\n"
    path = PACKAGE / "experiments" / "scorecard.py"  # only read for its name: the text is given
    known = {"sinklab.experiments.scorecard": path, "sinklab.report": path}
    found = private_imports("sinklab.experiments.scorecard", path, ast.parse(text), known)
    assert found == ["sinklab/experiments/scorecard.py:1 imports _img from sinklab.report"]
    path, known = REPO / "tests" / "t.py", {"sinklab.report.plots": path}
    found = private_imports("tests/t.py", path, ast.parse("from sinklab.report.plots import _save"), known)
    assert found == ["tests/t.py:1 imports _save from sinklab.report.plots"]


def test_the_checker_finds_private_attributes():
    text = ("import torch\nfrom sinklab.measure import load\n"
            "load._VERIFIED\nmodel._context(3)\nself._x\ntorch._dynamo\nparser()._actions\n"
            "monkeypatch.setattr(attention, '_flex', None)\nlayer.attn.forward\nmonkeypatch.setenv('X', '_y')\n")
    found = private_attributes(REPO / "tests" / "t.py", ast.parse(text))
    assert sorted(x.split(":", 1)[1] for x in found) == ["3 reads _VERIFIED of load", "4 reads _context of model",
                                                         "8 reads _flex of attention"]


def test_the_checker_finds_the_report_reaching_into_measure():
    graph = {"sinklab.report.training": {"sinklab.measure.run": 4, "sinklab.measure": 5, "sinklab.files": 6},
             "sinklab.report": {"sinklab.train.runs": 7}, "sinklab.experiments.runs": {"sinklab.train.runs": 8}}
    paths = {name: PACKAGE / "report" / "x.py" for name in graph}
    assert report_reaching_in(graph, paths) == ["sinklab/report/x.py:7 imports sinklab.train.runs",
                                                "sinklab/report/x.py:4 imports sinklab.measure.run"]


# -- one public name, one definition ------------------------------------------------------------------
# public names that stay defined in more than one module: the files, and why in a comment (an entry a rename
# has left stale fails)
SAME_NAME_ALLOWED = {
    # one per framework, with the same role and arguments: the module path names the framework
    # (sinklab.integrations.transformers / .lightning, as the README imports them), and a training
    # script imports only the one for its trainer
    "SinkCallback": ("sinklab/integrations/lightning.py", "sinklab/integrations/transformers.py"),
}


def public_definitions(tree: ast.AST) -> dict[str, int]:
    """Public function and class names a module defines at its top level (under a top-level `if` or
    `try` too), each with its first line; imports and `__all__` re-exports define nothing."""
    out: dict[str, int] = {}

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not node.name.startswith("_"):
                    out.setdefault(node.name, node.lineno)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return out


def same_name_definitions(trees: dict[str, ast.AST]) -> dict[str, list[str]]:
    """name -> ["file:line", ...] for each public name defined in two or more of the files."""
    where: dict[str, list[str]] = {}
    for file, tree in sorted(trees.items()):
        for name, line in public_definitions(tree).items():
            where.setdefault(name, []).append(f"{file}:{line}")
    return {name: files for name, files in sorted(where.items()) if len(files) > 1}


def test_no_public_name_is_defined_in_two_modules():
    trees = {path.relative_to(REPO).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(PACKAGE.rglob("*.py"))}
    found = same_name_definitions(trees)
    bad = [f"{name}: {', '.join(files)}" for name, files in found.items()
           if tuple(f.split(":")[0] for f in files) != SAME_NAME_ALLOWED.get(name)]
    assert not bad, ("public names defined in more than one module (give each a name of its own, or allow it in "
                     "SAME_NAME_ALLOWED with why):\n" + "\n".join(bad))
    stale = sorted(set(SAME_NAME_ALLOWED) - set(found))
    assert not stale, f"SAME_NAME_ALLOWED names no longer defined twice (remove them): {stale}"


def test_the_checker_finds_public_names_defined_twice():
    a = ("from .b import plan\n"                       # 1: an import defines nothing
         "def plan():\n    pass\n"                     # 2
         "class Run:\n    pass\n"                      # 4
         "def _helper():\n    pass\n"                  # 6: private
         "def outer():\n    def nested():\n        pass\n")  # 8: `nested` is not at module level
    b = ("__all__ = ['plan', 'outer']\n"               # 1: a re-export defines nothing
         "try:\n    import numpy\nexcept ImportError:\n"
         "    def plan():\n        pass\n"             # 5: under a top-level try
         "class Run:\n    pass\n"                      # 7
         "def _helper():\n    pass\n"
         "def nested():\n    pass\n")                  # 11: at module level here only
    c = "from .a import Run, outer\n"
    trees = {f"sinklab/{name}.py": ast.parse(text) for name, text in (("a", a), ("b", b), ("c", c))}
    assert same_name_definitions(trees) == {"Run": ["sinklab/a.py:4", "sinklab/b.py:7"],
                                            "plan": ["sinklab/a.py:2", "sinklab/b.py:5"]}
