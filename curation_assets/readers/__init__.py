"""Shard readers: each turns one shard file into a stream of kept or quarantined rows.

`read_shard` picks the reader from the source kind and file ending. `source_row_keys` (and
`count_source_rows`) find the rows a shard holds by a second, independent route (counting.py);
`read_shard` ends by quarantining every row that route sees and the reader never yielded, so no
row is ever lost silently, and the accounting checks compare the two again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from curation_assets.quarantine import WHOLE_SHARD_KEY, Reason, UnreadableShard
from curation_assets.readers.base import Outcome, Rejected, ShardFile, Valid
from curation_assets.readers.caption_parquet import read_caption_parquet
from curation_assets.readers.counting import (
    RowKeys,
    json_array_row_keys,
    jsonl_row_keys,
    parquet_row_keys,
    tar_row_keys,
)
from curation_assets.readers.dj_jsonl import read_dj_jsonl
from curation_assets.readers.interleaved import read_interleaved_jsonl, read_interleaved_parquet
from curation_assets.readers.limits import IngestLimits
from curation_assets.readers.llava_json import read_llava_json
from curation_assets.readers.text_docs import read_text_jsonl, read_text_parquet
from curation_assets.readers.webdataset_tar import read_webdataset_tar
from curation_assets.sources import SourceKind, shard_format

Reader = Callable[[ShardFile], Iterator[Outcome]]
Counter = Callable[..., RowKeys]

READERS: dict[tuple[SourceKind, str], tuple[Reader, Counter]] = {
    (SourceKind.caption, "tar"): (read_webdataset_tar, tar_row_keys),
    (SourceKind.caption, "parquet"): (read_caption_parquet, parquet_row_keys),
    (SourceKind.caption, "jsonl"): (read_dj_jsonl, jsonl_row_keys),
    (SourceKind.caption, "json"): (read_llava_json, json_array_row_keys),
    (SourceKind.interleaved, "jsonl"): (read_interleaved_jsonl, jsonl_row_keys),
    (SourceKind.interleaved, "parquet"): (read_interleaved_parquet, parquet_row_keys),
    (SourceKind.text, "jsonl"): (read_text_jsonl, jsonl_row_keys),
    (SourceKind.text, "parquet"): (read_text_parquet, parquet_row_keys),
}


def source_row_keys(shard: ShardFile) -> RowKeys:
    """The keys of the rows in `shard`, found without its reader. A shard with more rows than
    `max_rows_per_shard` (or one the counter cannot open at all) is one row for the whole file."""
    return _count(shard)[0]


def count_source_rows(shard: ShardFile) -> int:
    return len(source_row_keys(shard))


def read_shard(shard: ShardFile) -> Iterator[Outcome]:
    """Every row of the shard, valid or quarantined: what the reader yields, then one `unread_row`
    for each row the independent count sees that the reader never reached."""
    reader, _ = READERS[(shard.kind, shard_format(shard.kind, shard.shard_id))]
    expected, too_many = _count(shard)
    if too_many:
        limit = shard.limits.max_rows_per_shard
        yield Rejected(WHOLE_SHARD_KEY, Reason.over_limit, f"more rows than max_rows_per_shard ({limit}): split it")
        return
    seen: set[str] = set()
    stopped = None
    try:
        for outcome in reader(shard):
            seen.add(outcome.key)
            yield outcome
    except UnreadableShard as problem:
        if WHOLE_SHARD_KEY not in seen:
            seen.add(WHOLE_SHARD_KEY)
            yield Rejected(WHOLE_SHARD_KEY, Reason.unreadable_shard, str(problem))
    except Exception as error:  # a reader bug: the rows it did not reach are reported, not lost
        stopped = f"the reader stopped with {type(error).__name__}: {error}"[:2000]
    for key in expected:
        if key not in seen:
            if stopped is not None:
                yield Rejected(key, Reason.reader_error, stopped)
            else:
                yield Rejected(key, Reason.unread_row, "counted in the shard but never reached by its reader")


def _count(shard: ShardFile) -> tuple[RowKeys, bool]:
    """(row keys, whether there were more than max_rows_per_shard)."""
    _, counter = READERS[(shard.kind, shard_format(shard.kind, shard.shard_id))]
    try:
        keys = counter(shard.path)
    except Exception:  # the file cannot even be opened: it is one row, like an unreadable shard
        return [WHOLE_SHARD_KEY], False
    if len(keys) > shard.limits.max_rows_per_shard:
        return [WHOLE_SHARD_KEY], True
    return keys, False


__all__ = [
    "IngestLimits",
    "Outcome",
    "Rejected",
    "ShardFile",
    "Valid",
    "count_source_rows",
    "read_shard",
    "source_row_keys",
]
