"""benchmarks/results.json: every figure under its own key, stamped with machine, date and commit."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

RESULTS_PATH = Path(__file__).with_name("results.json")


def machine() -> dict:
    import psutil

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(figures: dict[str, dict]) -> Path:
    stamp = {
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
    }
    # Figures not measured this time keep their own stamps: a partial run updates only what it measured.
    kept = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    kept.update({key: {**figure, **stamp} for key, figure in figures.items()})
    RESULTS_PATH.write_text(json.dumps(kept, indent=2) + "\n")
    return RESULTS_PATH
