"""Data-Juicer jsonl: `text` with `<__dj__image>` / `<|__dj__eoc|>` tokens, `images` paths relative to the file."""

from __future__ import annotations

from collections.abc import Iterator

from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import (
    Outcome,
    ShardFile,
    caption_row,
    guarded,
    image_from_path,
    iter_jsonl_lines,
    parse_json_object,
)


def read_dj_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line in iter_jsonl_lines(shard.path):
        yield guarded(key, lambda: _caption_pair(key, line, shard))  # noqa: B023 - guarded calls it at once


def _caption_pair(key: str, line: bytes, shard: ShardFile):
    row = parse_json_object(line)
    images = row.get("images")
    if not isinstance(images, list) or not images:
        raise Quarantined(Reason.missing_image, f"`images` must be a non-empty list of paths, got {images!r}")
    if len(images) != 1:
        raise Quarantined(Reason.missing_field, f"a caption pair needs exactly one image, this row has {len(images)}")
    meta = {name: value for name, value in row.items() if name not in ("text", "images")}

    def load_image():
        data, stats, relative = image_from_path(images[0], shard)
        return data, stats, f"file:{relative}"

    return caption_row(key, row.get("text"), load_image, meta)
