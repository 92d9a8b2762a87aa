"""The three source kinds and which shard files belong to each.

One concept, one name: a *source kind* is `caption`, `interleaved` or `text`; a *shard* is one file
directly inside `<data root>/raw/<kind>/`; its *shard id* (also its Dagster partition key) is the file
name. Images that a shard references by path live in sub-folders beside it and are not shards.
"""

from __future__ import annotations

from enum import Enum


class SourceKind(str, Enum):
    caption = "caption"
    interleaved = "interleaved"
    text = "text"


# File endings recognised as shards, per kind. Anything else in the folder is ignored by the sensor
# (and said so in its log), so a README or a stray .DS_Store never becomes a partition.
SHARD_SUFFIXES: dict[SourceKind, tuple[str, ...]] = {
    SourceKind.caption: (".tar", ".parquet", ".jsonl", ".json"),
    SourceKind.interleaved: (".jsonl", ".parquet"),
    SourceKind.text: (".jsonl", ".parquet"),
}


def shard_format(kind: SourceKind, shard_id: str) -> str:
    """The reader format for a shard, from its file ending; raises ValueError for unknown endings."""
    for suffix in SHARD_SUFFIXES[kind]:
        if shard_id.endswith(suffix):
            return suffix.lstrip(".")
    known = ", ".join(SHARD_SUFFIXES[kind])
    raise ValueError(f"{shard_id!r} is not a {kind.value} shard: expected a file ending in {known}")


def is_shard_file(kind: SourceKind, name: str) -> bool:
    return not name.startswith(".") and name.endswith(SHARD_SUFFIXES[kind])
