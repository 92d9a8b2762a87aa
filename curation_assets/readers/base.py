"""What every reader yields: for each source row, either a kept row or a quarantined one."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from upath import UPath

from curation_assets.image_checks import inspect_image, read_image_file, resolve_image_path
from curation_assets.image_ref import ImageRef
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.limits import IngestLimits
from curation_assets.readers.sample_keys import row_key
from curation_assets.sources import SourceKind
from curation_assets.text_checks import clean_caption

__all__ = ["Outcome", "Rejected", "ShardFile", "Valid", "guarded", "row_key"]


@dataclass(frozen=True)
class ShardFile:
    """One shard to read: where it is, what it is called, the root that images must stay under, and
    how much of any one input ingest will read."""

    kind: SourceKind
    path: UPath
    data_root: UPath
    limits: IngestLimits = IngestLimits()

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


def guarded(key: str, build: Callable[..., Valid], *args: Any) -> Outcome:
    """`build(*args)` for one row; a Quarantined it raises becomes that row's rejection, and so does
    any other error (as reader_error: a bug, but one row's bug must not stop the shard)."""
    try:
        return build(*args)
    except Quarantined as problem:
        return Rejected(key, problem.reason, problem.detail)
    except Exception as error:
        return Rejected(key, Reason.reader_error, f"{type(error).__name__}: {error}"[:2000])


def image_from_bytes(data: object, shard: ShardFile) -> tuple[bytes, dict[str, Any]]:
    if data is None:
        raise Quarantined(Reason.missing_image, "no image bytes in this row")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Quarantined(Reason.missing_field, f"image is a {type(data).__name__}, not bytes")
    if len(data) > shard.limits.max_image_bytes:
        raise Quarantined(
            Reason.over_limit, f"image is {len(data)} bytes, over max_image_bytes ({shard.limits.max_image_bytes})"
        )
    data = bytes(data)
    return data, image_columns(data, shard)


def image_from_path(reference: object, shard: ShardFile) -> tuple[bytes, dict[str, Any], str]:
    """Read a referenced image file; returns its bytes, stats and its image_ref (a `file:` path
    relative to the data root)."""
    path = resolve_image_path(reference, shard.directory, shard.data_root)
    data = read_image_file(path, shard.limits.max_image_bytes)
    relative = path.path[len(shard.data_root.path.rstrip("/")) + 1 :]
    return data, image_columns(data, shard), ImageRef.file(relative).format()


def image_columns(data: bytes, shard: ShardFile) -> dict[str, Any]:
    info = inspect_image(data, shard.limits.max_image_pixels)
    return {
        "image_sha256": info.sha256,
        "image_num_bytes": info.num_bytes,
        "image_width": info.width,
        "image_height": info.height,
        "image_format": info.format,
        "image_mode": info.mode,
    }


def caption_row(
    key: str,
    raw_caption: object,
    load_image: Callable[[], tuple[bytes, dict[str, Any], str]],
    meta: dict[str, Any],
    shard: ShardFile,
) -> Valid:
    """A caption pair, checked text first then image, as the canonical caption columns."""
    caption = clean_caption(raw_caption, shard.limits.max_text_chars)
    data, stats, image_ref = load_image()
    columns = {
        "caption": caption,
        "image_ref": image_ref,
        **stats,
        "source_meta": source_meta(meta),
    }
    return Valid(key, columns, [data])


def source_meta(meta: dict[str, Any]) -> str:
    """The row's other fields as JSON text. Non-ASCII is escaped, so any string (even one JSON gave
    us with a lone surrogate) is storable; values JSON cannot hold are written as text."""
    return json.dumps(meta, sort_keys=True, default=_as_text)


def _as_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"  # binary meta (an image column we did not use) is not copied
    return str(value)
