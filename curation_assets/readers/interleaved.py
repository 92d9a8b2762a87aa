"""Interleaved documents: MMC4 jsonl and OBELICS-style rows, as one ordered list of text and images.

Canonical form (OBELICS's): `texts` and `images` are aligned lists; at each position exactly one
is set. A document with any unusable image is quarantined whole, with that image's reason, so a
kept document never silently loses a picture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import (
    Outcome,
    ShardFile,
    Valid,
    guarded,
    image_from_bytes,
    image_from_path,
    iter_jsonl_lines,
    parse_json_object,
    row_key,
)
from curation_assets.readers.caption_parquet import iter_parquet_rows

IMAGE_STRUCT_FIELDS = ("ref", "sha256", "num_bytes", "width", "height", "format", "mode")


def read_interleaved_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line in iter_jsonl_lines(shard.path):
        yield guarded(key, lambda: _document(key, parse_json_object(line), shard))  # noqa: B023 - guarded calls it at once


def read_interleaved_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        key = row_key(index)
        yield guarded(key, lambda: _document(key, row, shard))  # noqa: B023 - guarded calls it at once


def _document(key: str, row: dict[str, Any], shard: ShardFile) -> Valid:
    if "text_list" in row:
        positions = _mmc4_positions(row, shard)
        meta_skip = ("text_list",)  # image_info (urls, matched_sim) and similarity_matrix stay in source_meta
    elif "texts" in row and "images" in row:
        positions = _obelics_positions(row)
        meta_skip = ("texts", "images")
    else:
        raise Quarantined(
            Reason.missing_field, f"neither MMC4 `text_list` nor OBELICS `texts`/`images`; has {sorted(row)}"
        )

    texts: list[str | None] = []
    images: list[dict[str, Any] | None] = []
    image_bytes: list[bytes] = []
    for text, image in positions:
        if text is not None:
            texts.append(text)
            images.append(None)
            continue
        data, stats, ref = _load_image(image, shard, len(image_bytes))
        image_bytes.append(data)
        texts.append(None)
        images.append({"ref": ref, **{name: stats[f"image_{name}"] for name in IMAGE_STRUCT_FIELDS[1:]}})
    if not any(text and text.strip() for text in texts):
        raise Quarantined(Reason.empty_text, "document has no text")
    meta = {name: value for name, value in row.items() if name not in meta_skip and not isinstance(value, bytes)}
    columns = {
        "texts": texts,
        "images": images,
        "num_texts": sum(text is not None for text in texts),
        "num_images": len(image_bytes),
        "source_meta": json.dumps(meta, sort_keys=True, default=str),
    }
    return Valid(key, columns, image_bytes)


def _mmc4_positions(row: dict[str, Any], shard: ShardFile) -> list[tuple[str | None, Any]]:
    """Each image goes right before the sentence it was matched to (MMC4's `matched_text_index`);
    image files are looked up in `<shard stem>_images/` beside the shard."""
    sentences = row["text_list"]
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise Quarantined(Reason.missing_field, "`text_list` must be a list of strings")
    before: dict[int, list[str]] = {}
    for info in row.get("image_info") or []:
        if not isinstance(info, dict) or "image_name" not in info:
            raise Quarantined(Reason.missing_field, f"image_info entry without `image_name`: {info!r}")
        index = info.get("matched_text_index")
        if not isinstance(index, int) or not 0 <= index < len(sentences):
            raise Quarantined(Reason.missing_field, f"matched_text_index {index!r} is not a sentence index")
        before.setdefault(index, []).append(("path", f"{shard.stem}_images/{info['image_name']}"))
    positions: list[tuple[str | None, Any]] = []
    for index, sentence in enumerate(sentences):
        positions.extend((None, image) for image in before.get(index, []))
        positions.append((sentence, None))
    return positions


def _obelics_positions(row: dict[str, Any]) -> list[tuple[str | None, Any]]:
    texts, images = row["texts"], row["images"]
    if not isinstance(texts, list) or not isinstance(images, list) or len(texts) != len(images):
        raise Quarantined(Reason.missing_field, "`texts` and `images` must be lists of the same length")
    positions: list[tuple[str | None, Any]] = []
    for index, (text, image) in enumerate(zip(texts, images)):
        if (text is None) == (image is None):
            raise Quarantined(Reason.missing_field, f"position {index} must hold exactly one of text and image")
        if text is not None and not isinstance(text, str):
            raise Quarantined(Reason.missing_field, f"position {index}: text is a {type(text).__name__}")
        kind = "path" if isinstance(image, str) else "bytes"
        positions.append((text, None) if text is not None else (None, (kind, image)))
    return positions


def _load_image(image: tuple[str, Any], shard: ShardFile, ordinal: int) -> tuple[bytes, dict[str, Any], str]:
    kind, value = image
    try:
        if kind == "path":
            data, stats, relative = image_from_path(value, shard)
            return data, stats, f"file:{relative}"
        data, stats = image_from_bytes(value, shard)
        return data, stats, f"bytes:{ordinal}"
    except Quarantined as problem:
        raise Quarantined(problem.reason, f"image {ordinal} in reading order: {problem.detail}") from None
