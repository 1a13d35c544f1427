"""Layering rules that keep pages thin and core UI-free."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_core_never_imports_streamlit():
    modules = sorted(p.stem for p in (REPO / "core").glob("*.py") if p.stem not in ("__main__", "worker"))
    code = ("import sys\n" + "".join(f"import core.{m}\n" for m in modules if m != "__init__")
            + "bad = [m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')]\nprint(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_source_file_in_core_mentions_streamlit_import():
    for path in (REPO / "core").glob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_pages_have_no_sql_or_subprocess():
    for path in (REPO / "pages").glob("*.py"):
        text = path.read_text()
        for forbidden in ("SELECT ", "INSERT ", "subprocess", "import torch", "presidio"):
            assert forbidden not in text, f"{path.name} contains {forbidden!r}"


def _core_imports() -> dict[str, set[str]]:
    """Every core module's imports of other core modules, lazy (inside functions) ones included."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in (REPO / "core").glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "core":
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("core."))
        graph[path.stem] = found - {path.stem}
    return graph


def test_core_has_no_import_cycle():
    graph = _core_imports()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [module, dep]))
            if dep not in state:
                visit(dep, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_each_table_has_one_writing_module():
    import re

    patterns = [r"INSERT (?:OR \w+ )?INTO (\w+)", r"UPDATE (\w+) SET", r"DELETE FROM (\w+)",
                r"\.table\(\"(\w+)\"\)\.(?:insert|update|upsert|delete|insert_all|upsert_all)",
                r"insert_row\(db, \"(\w+)\""]
    writers: dict[str, set[str]] = {}
    for path in (REPO / "core").glob("*.py"):
        if path.stem in ("store", "erasure"):  # migrations; erasure rewrites every copy on purpose
            continue
        text = path.read_text()
        for pattern in patterns:
            for table in re.findall(pattern, text):
                writers.setdefault(table, set()).add(path.stem)
    shared = {t: sorted(m) for t, m in writers.items() if len(m) > 1}
    assert shared == {}
    assert writers["runs"] == {"training"} and writers["generation_jobs"] == {"answer_pairs"}


def test_no_core_module_is_crowded():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / "core").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}


def test_the_worker_launcher_starts_without_heavy_imports():
    code = "import sys, core.worker; print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
