"""The docs report what the stored results say: every results table marked in BENCHMARKS.md and EXPERIMENTS.md
equals its rebuild by scripts/tables.py, every path the docs cite exists, every GPU script names its machine
kind and the doc section it reproduces, and the docs read as reports: no host letters, no history of the code, no
machine kinds, no documents outside the repository."""
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("BENCHMARKS.md", "EXPERIMENTS.md")
KINDS = ("nvidia-h200", "nvidia-h200-x2", "nvidia-h200-x4", "nvidia-h200-x8")


def tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "scripts" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("doc", DOCS)
def test_marked_tables_equal_their_rebuild_from_the_results(doc):
    t = tables()
    marked = t.doc_tables(doc)
    assert marked, f"{doc} marks no table"
    for name, body in marked.items():
        _, folder, fn = t.TABLES[name]
        assert body == fn(folder)[0], f"{doc}: table {name} differs from `python scripts/tables.py {name}`"


def test_every_table_is_in_a_doc():
    t = tables()
    marked = {name for doc in DOCS for name in t.doc_tables(doc)}
    assert marked == set(t.TABLES)


def expand(path):
    """a/{b,c}_d -> a/b_d, a/c_d (each brace group in turn)."""
    m = re.search(r"\{([^{}]*)\}", path)
    return [path] if not m else [q for alt in m.group(1).split(",") for q in expand(path[:m.start()] + alt + path[m.end():])]


@pytest.mark.parametrize("doc", DOCS)
def test_cited_result_files_and_scripts_exist(doc):
    text = (ROOT / doc).read_text()
    cited = re.findall(r"`((?:benchmarks|experiments)/results/[^`\s]+|scripts/[\w/]+\.(?:sh|py))`", text)
    cited += re.findall(r"bash ((?:scripts|benchmarks)/[\w/]+\.sh)", text)
    missing = sorted(p for c in cited for p in expand(c) if not list(ROOT.glob(p)))
    assert not missing, f"{doc} cites paths that do not exist: {missing}"


# the lab's machinery, which a report of findings does not name: host letters ("host A", "hosts B and C", "A–C",
# "H1"; "H100" and "H200" are GPUs), the history of the code, machine kinds, and documents outside the repository
MACHINERY = (r"\bhosts? [A-Z]\b", r"\b[A-Z]–[A-Z]\b", r"\bH[1-9]\b", r"(?i)restructur", r"(?i)\.carry\b",
             r"(?i)design notes", r"DESIGN\.md", r"DATA\.md", r"(?i)machine kind", r"(?i)\bnvidia-h[12]00",
             r"\.\./shared")


@pytest.mark.parametrize("doc", DOCS + ("README.md",))
def test_docs_name_no_hosts_history_machine_kinds_or_outside_documents(doc):
    lines = enumerate((ROOT / doc).read_text().splitlines(), 1)
    found = [f"{doc}:{n}: {pattern} in {line.strip()[:100]!r}" for n, line in lines for pattern in MACHINERY
             if re.search(pattern, line)]
    assert not found, "the docs name the lab's machinery:\n" + "\n".join(found)


@pytest.mark.parametrize("script", sorted((ROOT / "scripts" / "gpu").glob("*.sh")), ids=lambda p: p.name)
def test_gpu_scripts_parse_and_say_where_they_run(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    if script.name == "lib.sh":
        return
    head = script.read_text().split("\nBUDGET=")[0]
    kind = re.search(r"Machine kind: ([\w-]+)", head)
    assert kind and kind.group(1) in KINDS, f"{script.name} names no machine kind"
    assert re.search(r"(BENCHMARKS|EXPERIMENTS)\.md §\d", head), f"{script.name} names no doc section"
    assert f"OUT=dir bash scripts/gpu/{script.name}" in head or f"bash scripts/gpu/{script.name}" in head


