"""One shard's rows of the text and interleaved sample indexes: every document with every score the
decisions read and, for interleaved documents, every image with its own scores.

The per-shard tables have already been checked to cover the shard (one row per document, image or
text element); these functions only put their columns side by side.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from curation_assets.scoring.interleaved import document_counts, document_images

IMAGE_ID = "image_id"


def _joined(rows: pl.DataFrame, tables: Mapping[str, pl.DataFrame], key: str) -> pl.DataFrame:
    for frame in tables.values():
        rows = rows.join(frame.select(key, *(c for c in frame.columns if c not in rows.columns)), on=key, how="left")
    return rows


def text_samples(normalized: pl.DataFrame, score_tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """sample_id, shard_id and every score column of `score_tables` (table -> sample_id + columns);
    `perplexity` is null when no table holds it (no text filter reads it)."""
    rows = _joined(normalized.select("sample_id", "shard_id"), score_tables, "sample_id")
    if "perplexity" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Float32).alias("perplexity"))
    return rows


def interleaved_samples(
    normalized: pl.DataFrame, score_tables: Mapping[str, pl.DataFrame]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(documents, images). `score_tables`: table -> its frame, per document (keyed by sample_id) or
    per image (keyed by image_id). Documents: sample_id, shard_id, num_images, num_sentences and the
    document tables' columns. Images: image_id, sample_id, shard_id, image_index, image_ref,
    image_sha256 and the image tables' columns."""
    per_image = {name: frame for name, frame in score_tables.items() if IMAGE_ID in frame.columns}
    per_document = {name: frame for name, frame in score_tables.items() if name not in per_image}
    documents = document_counts(normalized).with_columns(normalized["shard_id"])
    images = document_images(normalized).select(
        IMAGE_ID, "sample_id", "shard_id", "image_index", "image_ref", "image_sha256"
    )
    return _joined(documents, per_document, "sample_id"), _joined(images, per_image, IMAGE_ID)
