"""Layering rules that keep pages thin and core UI-free."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_core_never_imports_streamlit():
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts) for p in (REPO / "core").rglob("*.py")
                     if p.stem not in ("__main__", "__init__", "worker"))
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "bad = [m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')]\nprint(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_source_file_in_core_mentions_streamlit_import():
    for path in (REPO / "core").rglob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_pages_have_no_sql_or_subprocess():
    for path in (REPO / "pages").rglob("*.py"):
        text = path.read_text()
        for forbidden in ("SELECT ", "INSERT ", "subprocess", "import torch", "presidio"):
            assert forbidden not in text, f"{path.name} contains {forbidden!r}"


def test_import_contracts_hold():
    """The mission-stage layers and forbidden imports in pyproject.toml (import-linter) hold."""
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_a_planted_upward_import_breaks_the_layers(tmp_path):
    """The contract can fail: a curation module importing reports is caught."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "core", copy / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    with (copy / "core" / "curation" / "demo.py").open("a") as f:
        f.write("\nfrom core.reports import summary  # planted\n")
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=copy,
                         capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(copy)})
    assert out.returncode != 0 and "core.curation.demo -> core.reports.summary" in out.stdout, out.stdout[-2000:]


def test_each_table_has_one_writing_module():
    import re

    patterns = [r"INSERT (?:OR \w+ )?INTO (\w+)", r"UPDATE (\w+) SET", r"DELETE FROM (\w+)",
                r"\.table\(\"(\w+)\"\)\.(?:insert|update|upsert|delete|insert_all|upsert_all)",
                r"insert_row\(db, \"(\w+)\""]
    writers: dict[str, set[str]] = {}
    for path in (REPO / "core").rglob("*.py"):
        name = ".".join(path.relative_to(REPO / "core").with_suffix("").parts)
        if name in ("platform.store", "pii.erasure"):  # migrations; erasure rewrites every copy on purpose
            continue
        text = path.read_text()
        for pattern in patterns:
            for table in re.findall(pattern, text):
                writers.setdefault(table, set()).add(name)
    shared = {t: sorted(m) for t, m in writers.items() if len(m) > 1}
    assert shared == {}
    assert writers["runs"] == {"training.runs"} and writers["generation_jobs"] == {"rating.pairs"}
    # Stated per package: each table is written from inside the mission stage that owns it.
    owners = {t: {m.split(".")[0] for m in ms} for t, ms in writers.items()}
    assert owners["examples"] == {"curation"} and owners["pii_findings"] == {"pii"}
    assert owners["ratings"] == {"rating"} and owners["dataset_versions"] == {"training"}


def test_no_core_module_is_crowded():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in (REPO / "core").rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}


def test_the_worker_launcher_starts_without_heavy_imports():
    code = "import sys, core.jobs.worker; print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
