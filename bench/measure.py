"""Small helpers for the benchmarks: child processes with their CPU time and peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"


def run_child(code: str, *args: str, timeout: int = 1800) -> dict[str, Any]:
    """Run `python -c code args...` and return its JSON result with wall time and peak RSS (MB)."""
    started = time.time()
    # RUSAGE_CHILDREN's maxrss is the largest child so far, so each child reports its own peak.
    wrapped = code + "\nimport resource as _r, json as _j\nprint(_j.dumps({'_self_rss_kb': _r.getrusage(_r.RUSAGE_SELF).ru_maxrss, '_self_cpu_s': sum(_r.getrusage(_r.RUSAGE_SELF)[:2])}))\n"
    proc = subprocess.run([sys.executable, "-c", wrapped, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    lines = proc.stdout.strip().splitlines()
    own = json.loads(lines[-1])
    result = json.loads(lines[-2])
    result["wall_s"] = round(time.time() - started, 2)
    result["cpu_s"] = round(own["_self_cpu_s"], 2)
    result["peak_rss_mb"] = round(own["_self_rss_kb"] / 1024)
    return result


def machine() -> str:
    import torch

    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
            f"{gpu}; Python {platform.python_version()}, torch {torch.__version__}")
