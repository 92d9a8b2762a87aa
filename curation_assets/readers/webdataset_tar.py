"""WebDataset tars in img2dataset layout: `key.jpg` + `key.txt` (+ `key.json`) per sample."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import Any

from curation_assets.quarantine import WHOLE_SHARD_KEY, Quarantined, Reason
from curation_assets.readers.base import (
    Outcome,
    Rejected,
    ShardFile,
    caption_row,
    guarded,
    image_from_bytes,
    parse_json_object,
)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
TEXT_EXTENSIONS = ("txt", "caption", "text")
_TRUNCATION_ERRORS = (tarfile.ReadError, EOFError, OSError)
# WebDataset's naming rule: the key is the member path up to the first dot of its file name, the
# rest is the extension (`dir/000001.seg.png` -> `dir/000001`, `seg.png`). Spelled out here rather
# than imported from webdataset, whose import pulls in torch (+1.5 s, +700 MB RSS per ingest process).
_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")


def split_member_name(name: str) -> tuple[str | None, str | None]:
    match = _KEY_AND_EXTENSION.match(name)
    return (match.group(1), match.group(2)) if match else (None, None)


def read_webdataset_tar(shard: ShardFile) -> Iterator[Outcome]:
    for key, members, broken in iter_tar_samples(shard):
        if broken is not None:
            reason = Reason.unreadable_shard if key == WHOLE_SHARD_KEY else Reason.truncated_tar
            yield Rejected(key, reason, broken)
        else:
            yield guarded(key, lambda: _caption_sample(key, members, shard))  # noqa: B023 - guarded calls it at once


def iter_tar_samples(shard: ShardFile) -> Iterator[tuple[str, dict[str, tuple[str, bytes]], str | None]]:
    """(key, {extension: (member name, bytes)}, problem) per sample, streaming the tar once.

    We read with tarfile directly, splitting names with webdataset's rule: webdataset's
    iterators drop or half-yield the sample in flight when a tar is cut short, and we must
    quarantine exactly that sample.
    """
    current_key: str | None = None
    members: dict[str, tuple[str, bytes]] = {}
    reading_key: str | None = None
    with shard.path.open("rb") as handle:
        try:
            with tarfile.open(fileobj=handle, mode="r|*") as stream:
                for info in stream:
                    key, extension = split_member_name(info.name)
                    if not info.isreg() or key is None:
                        continue
                    reading_key = key
                    if key != current_key:
                        if current_key is not None:
                            yield current_key, members, None
                        current_key, members = key, {}
                    data = stream.extractfile(info).read()
                    members[extension.lower()] = (info.name, data)
                    reading_key = None
        except _TRUNCATION_ERRORS as error:
            # A cut inside a member's data names that member's key; a cut inside a header can only
            # be pinned on the sample in flight, which may be missing members we never saw.
            key = reading_key or current_key
            if key is None:  # not even one member: the whole file is one unreadable row
                yield WHOLE_SHARD_KEY, {}, f"not a readable tar archive: {error}"
            else:
                yield key, members, f"archive ends inside this sample: {error}"
            return
    if current_key is not None:
        yield current_key, members, None


def count_tar_samples(shard: ShardFile) -> int:
    """Samples in a tar judged from member headers alone: a second, independent count for the checks."""
    keys: set[str] = set()
    with shard.path.open("rb") as handle:
        try:
            with tarfile.open(fileobj=handle, mode="r|*") as stream:
                for info in stream:
                    key, _ = split_member_name(info.name)
                    if info.isreg() and key is not None:
                        keys.add(key)
        except _TRUNCATION_ERRORS:
            return max(len(keys), 1)
    return len(keys)


def _caption_sample(key: str, members: dict[str, tuple[str, bytes]], shard: ShardFile):
    meta: dict[str, Any] = {}
    if "json" in members:
        meta = parse_json_object(members["json"][1])
    text_extension = next((ext for ext in TEXT_EXTENSIONS if ext in members), None)
    if text_extension is not None:
        raw_caption: object = members[text_extension][1]
    elif isinstance(meta.get("caption"), str):
        raw_caption = meta["caption"]
    else:
        raise Quarantined(Reason.missing_field, f"no caption: members are {sorted(members)}")
    image_extension = next((ext for ext in IMAGE_EXTENSIONS if ext in members), None)

    def load_image():
        if image_extension is None:
            raise Quarantined(Reason.missing_image, f"no image member: members are {sorted(members)}")
        name, data = members[image_extension]
        data, stats = image_from_bytes(data, shard)
        return data, stats, f"tar:{name}"

    return caption_row(key, raw_caption, load_image, meta)
