"""How much of any one input ingest will read: the recipe's `ingest` section.

Every limit guards memory or time against a hostile or broken shard. A row over a limit is
quarantined as `over_limit` (the detail names the limit) without its oversized part ever being read
into memory, so a shard's cost is bounded by these numbers, not by what the shard claims.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from curation_assets.image_checks import DEFAULT_MAX_PIXELS

MIB = 1024 * 1024


class IngestLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_image_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS,
        gt=0,
        description="Images with more pixels (width x height, read from the header before decoding) are "
        "quarantined as decompression_bomb. The default is Pillow's own warning threshold.",
    )
    max_image_bytes: int = Field(
        default=64 * MIB,
        gt=0,
        description="Largest encoded image accepted, in bytes: a tar member, a parquet field or a referenced "
        "file. Larger ones are quarantined without being read.",
    )
    max_record_bytes: int = Field(
        default=32 * MIB,
        gt=0,
        description="Largest text record, in bytes: a jsonl line, one element of a LLaVA json array, a tar "
        ".txt or .json member. Larger ones are quarantined without being parsed.",
    )
    max_text_chars: int = Field(
        default=4_000_000,
        gt=0,
        description="Longest caption or document text, in characters, after decoding.",
    )
    max_json_depth: int = Field(
        default=64,
        gt=0,
        description="Deepest JSON nesting (arrays and objects inside each other) accepted in one record. "
        "Real rows nest 3 to 5 deep; Python's parser gives up near 1,000.",
    )
    max_document_images: int = Field(
        default=1024,
        gt=0,
        description="Most images one interleaved document may hold; each one is read and decoded.",
    )
    parquet_batch_rows: int = Field(
        default=256,
        gt=0,
        description="Rows of a parquet shard decoded at a time: memory holds one batch of images, not the "
        "shard. A damaged page loses its batch and the rest of its row group, never rows before it.",
    )
    max_rows_per_shard: int = Field(
        default=5_000_000,
        gt=0,
        description="Most rows one shard may hold, as counted from the file (parquet metadata can claim any "
        "number). A larger shard is one over_limit row: split it.",
    )
