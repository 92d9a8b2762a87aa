"""Canonical table schemas, one per source kind, plus the quarantine table every stage shares."""

from __future__ import annotations

import polars as pl

from curation_assets.sources import SourceKind

_ROW_ID = {"sample_id": pl.String, "shard_id": pl.String, "key": pl.String}

IMAGE_STRUCT = pl.Struct(
    {
        "ref": pl.String,
        "sha256": pl.String,
        "num_bytes": pl.Int64,
        "width": pl.Int32,
        "height": pl.Int32,
        "format": pl.String,
        "mode": pl.String,
    }
)

SCHEMAS: dict[SourceKind, pl.Schema] = {
    SourceKind.caption: pl.Schema(
        {
            **_ROW_ID,
            "caption": pl.String,
            # Where the image bytes are, written and read only by curation_assets.image_ref.ImageRef:
            # `tar:<member>`, `parquet:<row>:<column>` (both inside the shard) or `file:<path under
            # the data root>`; interleaved images[i].ref may also be `parquet:<row>:<column>:<index>`
            # (an element of a list column). Bytes stay in their shards.
            "image_ref": pl.String,
            "image_sha256": pl.String,
            "image_num_bytes": pl.Int64,
            "image_width": pl.Int32,
            "image_height": pl.Int32,
            "image_format": pl.String,
            "image_mode": pl.String,
            "source_meta": pl.String,  # the row's other source fields, as JSON
        }
    ),
    SourceKind.interleaved: pl.Schema(
        {
            **_ROW_ID,
            # Aligned lists: at each position exactly one of texts / images is non-null.
            "texts": pl.List(pl.String),
            "images": pl.List(IMAGE_STRUCT),
            "num_texts": pl.Int32,
            "num_images": pl.Int32,
            "source_meta": pl.String,
        }
    ),
    SourceKind.text: pl.Schema({**_ROW_ID, "text": pl.String, "num_chars": pl.Int64, "source_meta": pl.String}),
}

QUARANTINE_SCHEMA = pl.Schema({**_ROW_ID, "stage": pl.String, "reason": pl.String, "detail": pl.String})
