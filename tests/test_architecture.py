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
