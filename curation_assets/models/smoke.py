"""Smoke models built from config into a folder once, then loaded like any local checkpoint."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from curation_assets.models.availability import cache_dir


def smoke_folder(name: str, build: Callable[[Path], object]) -> Path:
    """`<model cache>/smoke/<name>`, built on first use: written to a temp folder beside it and
    renamed into place, so concurrent processes never read a half-written model."""
    folder = cache_dir() / "smoke" / name
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
    build(staging)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first; its model is the same
        shutil.rmtree(staging, ignore_errors=True)
    return folder
