"""Data-Juicer jsonl: `text` with `<__dj__image>` / `<|__dj__eoc|>` tokens, `images` paths relative to the file."""

from __future__ import annotations

from collections.abc import Iterator

from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import Outcome, ShardFile, caption_row, guarded, image_from_path
from curation_assets.readers.json_records import parse_json_object
from curation_assets.readers.jsonl_lines import iter_jsonl_lines


def read_dj_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line, size in iter_jsonl_lines(shard.path, shard.limits.max_record_bytes):
        yield guarded(key, _caption_pair, key, line, size, shard)


def _caption_pair(key: str, line: bytes | None, size: int, shard: ShardFile):
    row = parse_json_object(line, shard.limits, size)
    images = row.get("images")
    if not isinstance(images, list) or not images:
        raise Quarantined(Reason.missing_image, f"`images` must be a non-empty list of paths, got {images!r}"[:300])
    if len(images) != 1:
        raise Quarantined(Reason.missing_field, f"a caption pair needs exactly one image, this row has {len(images)}")
    meta = {name: value for name, value in row.items() if name not in ("text", "images")}
    return caption_row(key, row.get("text"), lambda: image_from_path(images[0], shard), meta, shard)
