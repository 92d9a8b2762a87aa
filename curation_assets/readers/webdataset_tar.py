"""WebDataset tars in img2dataset layout: `key.jpg` + `key.txt` (+ `key.json`) per sample.

A sample is a run of consecutive members with one key (webdataset's rule). Rules for what a tar
can do wrong, each ending in one quarantine row and never in a lost or doubled row:

- a key that comes back later in the archive: the first run is the sample, each later run is a
  `duplicate_key` row keyed `<key>.dup<n>`; one member name (or extension) twice within a run makes
  the run `duplicate_key` too, since ingest and scoring could otherwise read different copies;
- damage between members (see tar_walk): the samples on both sides are `corrupt_data`;
- an archive cut short (inside data, inside a header, or exactly at a member boundary with no end
  marker): the last sample is `truncated_tar`;
- a member name that is not UTF-8: `non_utf8_name`; a member over the size limits: `over_limit`,
  without its data ever being read. Members of other types (`.npy`, `.mp4`) are never read at all.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from curation_assets.image_ref import ImageRef
from curation_assets.quarantine import WHOLE_SHARD_KEY, Quarantined, Reason
from curation_assets.readers.base import Outcome, Rejected, ShardFile, Valid, caption_row, guarded, image_from_bytes
from curation_assets.readers.json_records import parse_json_object
from curation_assets.readers.limits import IngestLimits
from curation_assets.readers.sample_keys import duplicate_key, split_member_name
from curation_assets.readers.shard_bytes import file_size
from curation_assets.readers.tar_walk import End, Gap, Member, walk_tar

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
TEXT_EXTENSIONS = ("txt", "caption", "text")
JSON_EXTENSION = "json"

# When a sample has several problems, the row carries the first of these it has.
_PRIORITY = (
    Reason.duplicate_key,
    Reason.non_utf8_name,
    Reason.invalid_path,
    Reason.truncated_tar,
    Reason.corrupt_data,
    Reason.over_limit,
)

__all__ = ["IMAGE_EXTENSIONS", "TEXT_EXTENSIONS", "read_webdataset_tar", "split_member_name"]


@dataclass
class _Sample:
    base_key: str
    key: str
    members: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # extension -> (name, data)
    extensions: set[str] = field(default_factory=set)
    problems: dict[Reason, str] = field(default_factory=dict)

    def problem(self, reason: Reason, detail: str) -> None:
        self.problems.setdefault(reason, detail)

    def rejection(self) -> Rejected | None:
        for reason in _PRIORITY:
            if reason in self.problems:
                return Rejected(self.key, reason, self.problems[reason])
        return None


def read_webdataset_tar(shard: ShardFile) -> Iterator[Outcome]:
    with shard.path.open("rb") as handle:
        for sample in _samples(walk_tar(handle, file_size(handle)), shard.limits):
            if isinstance(sample, Rejected):
                yield sample
                continue
            rejection = sample.rejection()
            yield rejection or guarded(sample.key, _caption_sample, sample.key, sample.members, shard)


def _samples(walk: Iterator[Member | Gap | End], limits: IngestLimits) -> Iterator[_Sample | Rejected]:
    occurrences: dict[str, int] = {}
    current: _Sample | None = None
    damage_before_next: str | None = None  # damage seen since the current sample's last member
    for event in walk:
        if isinstance(event, Gap):
            detail = f"bytes {event.start}-{event.end} of the tar hold no readable header"
            if current is not None:
                current.problem(Reason.corrupt_data, detail + ", right after this sample")
            damage_before_next = detail + ", right before this sample"
            continue
        if isinstance(event, End):
            if current is None:
                if not event.found_member and (event.nonzero or event.problem is not None):
                    yield Rejected(
                        WHOLE_SHARD_KEY, Reason.unreadable_shard, f"not a readable tar archive: {event.problem}"
                    )
                return
            if event.problem is not None:
                current.problem(Reason.truncated_tar if event.truncated else Reason.corrupt_data, event.problem)
            yield current
            return
        if not event.info.isreg():
            continue
        key, extension = split_member_name(event.name)
        if key is None:
            continue
        if current is None or key != current.base_key:
            if current is not None:
                yield current
            occurrences[key] = occurrences.get(key, 0) + 1
            seen = occurrences[key]
            current = _Sample(key, key if seen == 1 else duplicate_key(key, seen))
            if seen > 1:
                current.problem(Reason.duplicate_key, f"key {key!r} already had its sample earlier in the tar")
        if damage_before_next is not None:
            current.problem(Reason.corrupt_data, damage_before_next)
            damage_before_next = None
        _add_member(current, event, extension.lower(), limits)


def _add_member(sample: _Sample, member: Member, extension: str, limits: IngestLimits) -> None:
    if not member.utf8_name:
        sample.problem(Reason.non_utf8_name, f"member name {member.name!r} is not UTF-8")
    if "\x00" in member.name:  # only a pax record can hold one; no file, and no image_ref, can
        sample.problem(Reason.invalid_path, f"member name {member.name!r} holds a NUL byte")
    if extension in sample.extensions:
        sample.problem(Reason.duplicate_key, f"member {member.name!r}: a second .{extension} in one sample")
    sample.extensions.add(extension)
    if extension in IMAGE_EXTENSIONS:
        limit, what = limits.max_image_bytes, "max_image_bytes"
    elif extension in TEXT_EXTENSIONS or extension == JSON_EXTENSION:
        limit, what = limits.max_record_bytes, "max_record_bytes"
    else:
        return  # not part of a caption sample: never read
    if member.info.size > limit:
        sample.problem(Reason.over_limit, f"member {member.name!r} is {member.info.size} bytes, over {what} ({limit})")
    if sample.problems:
        return  # the sample is quarantined already: reading more of it is wasted
    try:
        sample.members[extension] = (member.name, member.read())
    except (tarfile.TarError, OSError, EOFError) as error:
        sample.problem(Reason.truncated_tar, f"archive ends inside member {member.name!r}: {error}")


def _caption_sample(key: str, members: dict[str, tuple[str, bytes]], shard: ShardFile) -> Valid:
    meta: dict[str, Any] = {}
    if JSON_EXTENSION in members:
        meta = parse_json_object(members[JSON_EXTENSION][1], shard.limits)
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
        return data, stats, ImageRef.tar(name).format()

    return caption_row(key, raw_caption, load_image, meta, shard)
