"""Interleaved documents as OBELICS-style parquet shards.

Why parquet rather than WebDataset samples: a document is an ordered list of texts and images, and
a parquet row holds exactly that (aligned `texts` / `images` lists, as OBELICS publishes it and as
our ingest reads it), with no member-naming convention or json sidecar to carry the order. It is
columnar and split in row groups, so Hugging Face `datasets`, polars or a trainer's loader stream
it shard by shard. Images are paths (relative to the parquet's folder) into the shared image store,
not bytes: the bytes were copied once per source shard, and rewriting a shard after a mix change
moves no image data. `image_sha256` (aligned too) lets a loader verify what it opens.
"""

from __future__ import annotations

import io
import posixpath

import polars as pl
from upath import UPath

from curation_assets.exports.files import ExportResult, PlannedFile, StagedFile, write_export
from curation_assets.exports.layout import INTERLEAVED_DIR, numbered_file
from curation_assets.exports.rows import chunks, shuffled
from curation_assets.exports.spec import Sharded

EXPORT_NAME = "interleaved"
STEM = "interleaved"


def obelics_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """The parquet's columns from exports.rows.interleaved_rows rows."""
    up = posixpath.relpath(".", INTERLEAVED_DIR) + "/"  # from interleaved/ back to the export root
    return rows.select(
        pl.col("key").alias("id"),
        "sample_id",
        "repeat_index",
        pl.col("shard_id").alias("source_shard"),
        "texts",
        pl.col("image_paths").list.eval(pl.lit(up) + pl.element()).alias("images"),
        "image_sha256",
    )


def _writer(chunk: pl.DataFrame):
    def write(out: StagedFile) -> None:
        buffer = io.BytesIO()
        obelics_frame(chunk).write_parquet(buffer, compression="zstd")
        out.write(buffer.getvalue())

    return write


def export_interleaved(root: UPath, rows: pl.DataFrame, spec: Sharded, seed: int) -> ExportResult:
    """`rows`: exports.rows.interleaved_rows. Parquet shards of `samples_per_shard` documents."""
    plans = [
        PlannedFile(numbered_file(INTERLEAVED_DIR, STEM, index, "parquet"), chunk.height, _writer(chunk))
        for index, chunk in enumerate(chunks(shuffled(rows, seed), spec.samples_per_shard))
    ]
    counts = {
        "samples": rows.height,
        "unique_samples": rows["sample_id"].n_unique(),
        "images": int(rows["image_paths"].list.drop_nulls().list.len().sum() or 0),
    }
    details = {
        "format": "obelics-parquet",
        "images": "paths relative to the parquet file",
        "samples_per_shard": spec.samples_per_shard,
    }
    return write_export(root, EXPORT_NAME, plans, counts, details)
