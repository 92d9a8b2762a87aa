"""What every reader yields: for each source row, either a kept row or a quarantined one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from upath import UPath

from curation_assets.image_checks import DEFAULT_MAX_PIXELS, inspect_image, resolve_image_path
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.sources import SourceKind
from curation_assets.text_checks import clean_caption


@dataclass(frozen=True)
class ShardFile:
    """One shard to read: where it is, what it is called, and the root that images must stay under."""

    kind: SourceKind
    path: UPath
    data_root: UPath
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def shard_id(self) -> str:
        return self.path.name

    @property
    def directory(self) -> UPath:
        return self.path.parent

    @property
    def stem(self) -> str:
        return self.shard_id.rsplit(".", 1)[0]


@dataclass
class Valid:
    key: str
    columns: dict[str, Any]
    # Decoded image bytes travel with the row for whoever reads the shard next (an embedding
    # step, say) but are never stored: image bytes stay in their shards.
    image_bytes: list[bytes] = field(default_factory=list, repr=False)


@dataclass
class Rejected:
    key: str
    reason: Reason
    detail: str


Outcome = Valid | Rejected


def row_key(index: int) -> str:
    """The key of a row in a line / row / array based format: its 0-based position, zero-padded."""
    return f"{index:06d}"


def guarded(key: str, build: Callable[[], Valid]) -> Outcome:
    """Run `build` for one row; a Quarantined it raises becomes that row's rejection."""
    try:
        return build()
    except Quarantined as problem:
        return Rejected(key, problem.reason, problem.detail)


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Quarantined(Reason.non_utf8_text, f"line is not UTF-8 at byte {error.start}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise Quarantined(Reason.malformed_json, f"{error.msg} at column {error.colno}") from None
    if not isinstance(value, dict):
        raise Quarantined(Reason.malformed_json, f"expected a JSON object, got {type(value).__name__}")
    return value


def iter_jsonl_lines(path: UPath) -> Iterator[tuple[str, bytes]]:
    """(key, raw line) for each non-blank line; the key is the physical line index, so it is stable."""
    with path.open("rb") as handle:
        for index, line in enumerate(handle):
            if line.strip():
                yield row_key(index), line


def image_from_bytes(data: object, shard: ShardFile) -> tuple[bytes, dict[str, Any]]:
    if data is None:
        raise Quarantined(Reason.missing_image, "no image bytes in this row")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Quarantined(Reason.missing_field, f"image is a {type(data).__name__}, not bytes")
    data = bytes(data)
    return data, image_columns(data, shard)


def image_from_path(reference: object, shard: ShardFile) -> tuple[bytes, dict[str, Any], str]:
    """Read a referenced image file; returns its bytes, stats and its path relative to the data root."""
    path = resolve_image_path(reference, shard.directory, shard.data_root)
    data = path.read_bytes()
    relative = path.path[len(shard.data_root.path.rstrip("/")) + 1 :]
    return data, image_columns(data, shard), relative


def image_columns(data: bytes, shard: ShardFile) -> dict[str, Any]:
    info = inspect_image(data, shard.max_pixels)
    return {
        "image_sha256": info.sha256,
        "image_num_bytes": info.num_bytes,
        "image_width": info.width,
        "image_height": info.height,
        "image_format": info.format,
        "image_mode": info.mode,
    }


def caption_row(
    key: str, raw_caption: object, load_image: Callable[[], tuple[bytes, dict[str, Any], str]], meta: dict[str, Any]
) -> Valid:
    """A caption pair, checked text first then image, as the canonical caption columns."""
    caption = clean_caption(raw_caption)
    data, stats, image_ref = load_image()
    columns = {
        "caption": caption,
        "image_ref": image_ref,
        **stats,
        "source_meta": json.dumps(meta, sort_keys=True, default=str),
    }
    return Valid(key, columns, [data])
