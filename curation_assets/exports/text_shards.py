"""Text-only documents as jsonl or parquet shards: {"id", "text", "sample_id", "repeat_index", "source_shard"}."""

from __future__ import annotations

import io
import json

import polars as pl
from upath import UPath

from curation_assets.exports.files import ExportResult, PlannedFile, StagedFile, write_export
from curation_assets.exports.layout import TEXT_DIR, numbered_file
from curation_assets.exports.rows import chunks, shuffled
from curation_assets.exports.spec import TextShards

EXPORT_NAME = "text"
STEM = "text"


def _records(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        pl.col("key").alias("id"), "text", "sample_id", "repeat_index", pl.col("shard_id").alias("source_shard")
    )


def _writer(chunk: pl.DataFrame, file_format: str):
    def write(out: StagedFile) -> None:
        records = _records(chunk)
        if file_format == "parquet":
            buffer = io.BytesIO()
            records.write_parquet(buffer, compression="zstd")
            out.write(buffer.getvalue())
            return
        for record in records.iter_rows(named=True):
            out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    return write


def export_text(root: UPath, rows: pl.DataFrame, spec: TextShards, seed: int) -> ExportResult:
    """`rows`: exports.rows.text_rows. Shards of `samples_per_shard` documents in the seeded order."""
    plans = [
        PlannedFile(numbered_file(TEXT_DIR, STEM, index, spec.format), chunk.height, _writer(chunk, spec.format))
        for index, chunk in enumerate(chunks(shuffled(rows, seed), spec.samples_per_shard))
    ]
    counts = {"samples": rows.height, "unique_samples": rows["sample_id"].n_unique()}
    details = {"format": f"text-{spec.format}", "samples_per_shard": spec.samples_per_shard}
    return write_export(root, EXPORT_NAME, plans, counts, details)
