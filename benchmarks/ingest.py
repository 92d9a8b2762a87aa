"""Ingest throughput per format, and peak memory for one shard vs ten shards of the same size."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from upath import UPath

from benchmarks.corpus import (
    CAPTION_FORMATS,
    photo_like_jpeg,
    shard_bytes,
    write_caption_shard,
    write_interleaved_shard,
    write_text_shard,
)
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind

CAPTION_ROWS = 400
INTERLEAVED_DOCS = 100
TEXT_DOCS = 4000
MEMORY_SHARD_ROWS = 400


def _time_ingest(root: Path, kind: SourceKind, path: Path, repeats: int = 2) -> tuple[float, int]:
    shard = ShardFile(kind, UPath(path), UPath(root))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        table = normalize_shard(shard)
        best = min(best, time.perf_counter() - started)
    assert table.quarantine.height == 0, table.quarantine.head()
    return best, table.valid.height


def throughput(work: Path, images: list[bytes]) -> dict[str, dict]:
    figures: dict[str, dict] = {}
    shards: list[tuple[str, SourceKind, Path]] = []
    for kind in SourceKind:
        (work / "raw" / kind.value).mkdir(parents=True, exist_ok=True)
    caption_dir = work / "raw" / "caption"
    for fmt in CAPTION_FORMATS:
        shards.append((fmt, SourceKind.caption, write_caption_shard(caption_dir, fmt, CAPTION_ROWS, images)))
    for fmt in ("mmc4_jsonl", "obelics_parquet"):
        shards.append(
            (
                fmt,
                SourceKind.interleaved,
                write_interleaved_shard(work / "raw" / "interleaved", fmt, INTERLEAVED_DOCS, images),
            )
        )
    for fmt in ("text_jsonl", "text_parquet"):
        shards.append((fmt, SourceKind.text, write_text_shard(work / "raw" / "text", fmt, TEXT_DOCS)))
    for fmt, kind, path in shards:
        seconds, rows = _time_ingest(work, kind, path)
        megabytes = shard_bytes(path) / 1e6
        figures[f"ingest_{fmt}_rows_per_s"] = {"value": round(rows / seconds, 1), "unit": "rows/s", "rows": rows}
        figures[f"ingest_{fmt}_mb_per_s"] = {
            "value": round(megabytes / seconds, 2),
            "unit": "MB/s",
            "shard_mb": round(megabytes, 2),
        }
    return figures


def _peak_rss_mib(root: Path, shard_names: list[str]) -> float:
    """Peak RSS of a fresh process that ingests these shards one after another, as a Dagster step would."""
    script = (
        "import sys, json\n"
        "from upath import UPath\n"
        "from curation_assets.normalize import normalize_shard\n"
        "from curation_assets.readers import ShardFile\n"
        "from curation_assets.sources import SourceKind\n"
        "root = UPath(sys.argv[1])\n"
        "for name in json.loads(sys.argv[2]):\n"
        "    normalize_shard(ShardFile(SourceKind.caption, root / 'raw' / 'caption' / name, root))\n"
        "from benchmarks.memory import peak_rss_mib\n"
        "print(peak_rss_mib())\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, str(root), json.dumps(shard_names)], capture_output=True, text=True, check=True
    )
    return float(output.stdout.strip().splitlines()[-1])


def memory(work: Path, images: list[bytes]) -> dict[str, dict]:
    caption_dir = work / "raw" / "caption"
    caption_dir.mkdir(parents=True, exist_ok=True)
    names = [
        write_caption_shard(
            caption_dir, "webdataset_tar", MEMORY_SHARD_ROWS, images, seed=i, name=f"mem-{i:02d}.tar"
        ).name
        for i in range(10)
    ]
    baseline, one, ten = _peak_rss_mib(work, []), _peak_rss_mib(work, names[:1]), _peak_rss_mib(work, names)
    shard_mb = round(shard_bytes(caption_dir / names[0]) / 1e6, 1)
    return {
        "ingest_peak_rss_after_imports_mib": {"value": round(baseline, 1), "unit": "MiB"},
        "ingest_peak_rss_1_shard_mib": {"value": round(one, 1), "unit": "MiB", "shard_mb": shard_mb},
        "ingest_peak_rss_10_shards_mib": {"value": round(ten, 1), "unit": "MiB", "shard_mb": shard_mb},
        "ingest_peak_rss_10_vs_1_ratio": {
            "value": round(ten / one, 3),
            "unit": "ratio",
            "target": "about 1.0: memory must not grow with shard count",
        },
    }


def run() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    # Every row gets its own image: parquet would dictionary-encode repeated bytes and flatter MB/s.
    images = [photo_like_jpeg(rng) for _ in range(CAPTION_ROWS)]
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        work = Path(folder)
        figures = throughput(work / "throughput", images)
        figures.update(memory(work / "memory", images))
    return figures
