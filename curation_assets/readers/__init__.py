"""Shard readers: each turns one shard file into a stream of kept or quarantined rows.

`read_shard` picks the reader from the source kind and file ending; `count_source_rows` counts the
rows a shard holds by a cheaper, separate route (file metadata, lines, tar headers), which the
accounting checks compare against what the reader produced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from curation_assets.quarantine import WHOLE_SHARD_KEY, Reason, UnreadableShard
from curation_assets.readers.base import Outcome, Rejected, ShardFile, Valid, iter_jsonl_lines
from curation_assets.readers.caption_parquet import count_parquet_rows, read_caption_parquet
from curation_assets.readers.dj_jsonl import read_dj_jsonl
from curation_assets.readers.interleaved import read_interleaved_jsonl, read_interleaved_parquet
from curation_assets.readers.llava_json import count_llava_rows, read_llava_json
from curation_assets.readers.text_docs import read_text_jsonl, read_text_parquet
from curation_assets.readers.webdataset_tar import count_tar_samples, read_webdataset_tar
from curation_assets.sources import SourceKind, shard_format

Reader = Callable[[ShardFile], Iterator[Outcome]]
Counter = Callable[[ShardFile], int]


def _count_jsonl_lines(shard: ShardFile) -> int:
    return sum(1 for _ in iter_jsonl_lines(shard.path))


READERS: dict[tuple[SourceKind, str], tuple[Reader, Counter]] = {
    (SourceKind.caption, "tar"): (read_webdataset_tar, count_tar_samples),
    (SourceKind.caption, "parquet"): (read_caption_parquet, count_parquet_rows),
    (SourceKind.caption, "jsonl"): (read_dj_jsonl, _count_jsonl_lines),
    (SourceKind.caption, "json"): (read_llava_json, count_llava_rows),
    (SourceKind.interleaved, "jsonl"): (read_interleaved_jsonl, _count_jsonl_lines),
    (SourceKind.interleaved, "parquet"): (read_interleaved_parquet, count_parquet_rows),
    (SourceKind.text, "jsonl"): (read_text_jsonl, _count_jsonl_lines),
    (SourceKind.text, "parquet"): (read_text_parquet, count_parquet_rows),
}


def read_shard(shard: ShardFile) -> Iterator[Outcome]:
    reader, _ = READERS[(shard.kind, shard_format(shard.kind, shard.shard_id))]
    try:
        yield from reader(shard)
    except UnreadableShard as problem:
        yield Rejected(WHOLE_SHARD_KEY, Reason.unreadable_shard, str(problem))


def count_source_rows(shard: ShardFile) -> int:
    _, counter = READERS[(shard.kind, shard_format(shard.kind, shard.shard_id))]
    return counter(shard)


__all__ = ["Outcome", "Rejected", "ShardFile", "Valid", "count_source_rows", "read_shard"]
