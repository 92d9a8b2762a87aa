"""Interleaved documents: MMC4 jsonl and OBELICS-style rows, as one ordered list of text and images.

Canonical form (OBELICS's): `texts` and `images` are aligned lists; at each position exactly one
is set. A document with any unusable image is quarantined whole, with that image's reason, so a
kept document never silently loses a picture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curation_assets.image_ref import ImageRef, image_value
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import (
    Outcome,
    Rejected,
    ShardFile,
    Valid,
    guarded,
    image_from_bytes,
    image_from_path,
    row_key,
    source_meta,
)
from curation_assets.readers.json_records import parse_json_object
from curation_assets.readers.jsonl_lines import iter_jsonl_lines
from curation_assets.readers.parquet_rows import iter_parquet_rows
from curation_assets.text_checks import check_text, decode_text, has_visible_text

IMAGE_STRUCT_FIELDS = ("ref", "sha256", "num_bytes", "width", "height", "format", "mode")
OBELICS_IMAGE_COLUMN = "images"

# Where an image of a document comes from: a path relative to the shard, or bytes inline in the row
# (with the ref that reads them back).
_Path = tuple[str, object]
_Inline = tuple[str, object, ImageRef | None]


def read_interleaved_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line, size in iter_jsonl_lines(shard.path, shard.limits.max_record_bytes):
        yield guarded(key, _jsonl_document, key, line, size, shard)


def read_interleaved_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        if isinstance(row, Rejected):
            yield row
            continue
        key = row_key(index)
        yield guarded(key, _document, key, row, shard, index)


def _jsonl_document(key: str, line: bytes | None, size: int, shard: ShardFile) -> Valid:
    return _document(key, parse_json_object(line, shard.limits, size), shard, None)


def _document(key: str, row: dict[str, Any], shard: ShardFile, parquet_row: int | None) -> Valid:
    if "text_list" in row:
        positions = _mmc4_positions(row, shard)
        meta_skip = ("text_list",)  # image_info (urls, matched_sim) and similarity_matrix stay in source_meta
    elif "texts" in row and "images" in row:
        positions = _obelics_positions(row, parquet_row)
        meta_skip = ("texts", "images")
    else:
        raise Quarantined(
            Reason.missing_field, f"neither MMC4 `text_list` nor OBELICS `texts`/`images`; has {sorted(row)}"[:500]
        )
    image_count = sum(text is None for text, _ in positions)
    if image_count > shard.limits.max_document_images:
        raise Quarantined(
            Reason.over_limit,
            f"document has {image_count} images, over max_document_images ({shard.limits.max_document_images})",
        )

    texts: list[str | None] = []
    images: list[dict[str, Any] | None] = []
    image_bytes: list[bytes] = []
    for text, image in positions:
        if text is not None:
            texts.append(check_text(text, "text", shard.limits.max_text_chars))
            images.append(None)
            continue
        data, stats, ref = _load_image(image, shard, len(image_bytes))
        image_bytes.append(data)
        texts.append(None)
        images.append({"ref": ref, **{name: stats[f"image_{name}"] for name in IMAGE_STRUCT_FIELDS[1:]}})
    if not any(text is not None and has_visible_text(text) for text in texts):
        raise Quarantined(Reason.empty_text, "document has no visible text")
    meta = {name: value for name, value in row.items() if name not in meta_skip and not isinstance(value, bytes)}
    columns = {
        "texts": texts,
        "images": images,
        "num_texts": sum(text is not None for text in texts),
        "num_images": len(image_bytes),
        "source_meta": source_meta(meta),
    }
    return Valid(key, columns, image_bytes)


def _mmc4_positions(row: dict[str, Any], shard: ShardFile) -> list[tuple[str | None, Any]]:
    """Each image goes right before the sentence it was matched to (MMC4's `matched_text_index`);
    image files are looked up in `<shard stem>_images/` beside the shard."""
    sentences = row["text_list"]
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise Quarantined(Reason.missing_field, "`text_list` must be a list of strings")
    infos = row.get("image_info")
    if infos is None:
        infos = []
    if not isinstance(infos, list):
        raise Quarantined(Reason.missing_field, f"`image_info` must be a list, got {type(infos).__name__}")
    before: dict[int, list[_Path]] = {}
    for info in infos:
        if not isinstance(info, dict) or not isinstance(info.get("image_name"), str):
            raise Quarantined(Reason.missing_field, f"image_info entry without a string `image_name`: {info!r}"[:300])
        index = info.get("matched_text_index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(sentences):
            raise Quarantined(Reason.missing_field, f"matched_text_index {index!r} is not a sentence index"[:300])
        before.setdefault(index, []).append(("path", f"{shard.stem}_images/{info['image_name']}"))
    positions: list[tuple[str | None, Any]] = []
    for index, sentence in enumerate(sentences):
        positions.extend((None, image) for image in before.get(index, []))
        positions.append((sentence, None))
    return positions


def _obelics_positions(row: dict[str, Any], parquet_row: int | None) -> list[tuple[str | None, Any]]:
    texts, images = row["texts"], row["images"]
    if not isinstance(texts, list) or not isinstance(images, list) or len(texts) != len(images):
        raise Quarantined(Reason.missing_field, "`texts` and `images` must be lists of the same length")
    positions: list[tuple[str | None, Any]] = []
    for index, (text, image) in enumerate(zip(texts, images)):
        if (text is None) == (image is None):
            raise Quarantined(Reason.missing_field, f"position {index} must hold exactly one of text and image")
        if isinstance(text, bytes):
            text = decode_text(text)
        if text is not None and not isinstance(text, str):
            raise Quarantined(Reason.missing_field, f"position {index}: text is a {type(text).__name__}")
        if text is not None:
            positions.append((text, None))
        elif isinstance(image, str):
            positions.append((None, ("path", image)))
        else:
            # Bytes inline: only a parquet row can be pointed back to (JSON holds no bytes).
            ref = ImageRef.parquet(parquet_row, OBELICS_IMAGE_COLUMN, index) if parquet_row is not None else None
            positions.append((None, ("bytes", image, ref)))
    return positions


def _load_image(image: _Path | _Inline, shard: ShardFile, ordinal: int) -> tuple[bytes, dict[str, Any], str]:
    try:
        if image[0] == "path":
            return image_from_path(image[1], shard)
        _, value, ref = image
        data, stats = image_from_bytes(image_value(value), shard)
        if ref is None:
            raise Quarantined(Reason.missing_field, "inline image bytes in a JSON row cannot be referenced")
        return data, stats, ref.format()
    except Quarantined as problem:
        raise Quarantined(problem.reason, f"image {ordinal} in reading order: {problem.detail}") from None
