"""Parquet caption shards with image bytes: img2dataset (`caption`, `jpg`) and Data-Juicer (`text`, `image_bytes`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation_assets.quarantine import Quarantined, Reason, UnreadableShard
from curation_assets.readers.base import Outcome, ShardFile, caption_row, guarded, image_from_bytes, row_key

CAPTION_COLUMNS = ("caption", "text")
IMAGE_COLUMNS = ("jpg", "png", "webp", "image", "image_bytes")
BATCH_ROWS = 256  # rows decoded at a time: keeps memory at one batch of images, not one shard


def iter_parquet_rows(shard: ShardFile) -> Iterator[tuple[int, dict[str, Any]]]:
    with shard.path.open("rb") as handle:
        index = 0
        for batch in _open_parquet(handle, shard).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield index, row
                index += 1


def count_parquet_rows(shard: ShardFile) -> int:
    with shard.path.open("rb") as handle:
        try:
            return _open_parquet(handle, shard).metadata.num_rows
        except UnreadableShard:
            return 1


def _open_parquet(handle, shard: ShardFile) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError) as error:
        raise UnreadableShard(f"{shard.shard_id} is not a readable parquet file: {error}") from None


def read_caption_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        key = row_key(index)
        yield guarded(key, lambda: _caption_pair(key, index, row, shard))  # noqa: B023 - guarded calls it at once


def _caption_pair(key: str, index: int, row: dict[str, Any], shard: ShardFile):
    caption_column = next((name for name in CAPTION_COLUMNS if name in row), None)
    image_column = next((name for name in IMAGE_COLUMNS if name in row), None)
    if caption_column is None or image_column is None:
        raise Quarantined(
            Reason.missing_field,
            f"needs a caption column {CAPTION_COLUMNS} and an image column {IMAGE_COLUMNS}; has {sorted(row)}",
        )
    meta = {name: value for name, value in row.items() if name not in (caption_column, image_column)}

    def load_image():
        data, stats = image_from_bytes(_single_image(row[image_column]), shard)
        return data, stats, f"parquet:{index}:{image_column}"

    return caption_row(key, row[caption_column], load_image, meta)


def _single_image(value: object) -> object:
    """Unwrap the containers image bytes come in: a one-element list (Data-Juicer), or a
    `{"bytes": ..., "path": ...}` struct (Hugging Face datasets)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise Quarantined(
                Reason.missing_field, f"a caption pair needs exactly one image, this row has {len(value)}"
            )
        value = value[0]
    if isinstance(value, dict):
        value = value.get("bytes")
    return value
