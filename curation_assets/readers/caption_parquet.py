"""Parquet caption shards with image bytes: img2dataset (`caption`, `jpg`) and Data-Juicer (`text`, `image_bytes`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curation_assets.image_ref import ImageRef, image_value
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import Outcome, Rejected, ShardFile, caption_row, guarded, image_from_bytes, row_key
from curation_assets.readers.parquet_rows import iter_parquet_rows

CAPTION_COLUMNS = ("caption", "text")
IMAGE_COLUMNS = ("jpg", "png", "webp", "image", "image_bytes")


def read_caption_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        if isinstance(row, Rejected):
            yield row
            continue
        key = row_key(index)
        yield guarded(key, _caption_pair, key, index, row, shard)


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
        data, stats = image_from_bytes(image_value(row[image_column]), shard)
        return data, stats, ImageRef.parquet(index, image_column).format()

    return caption_row(key, row[caption_column], load_image, meta, shard)
