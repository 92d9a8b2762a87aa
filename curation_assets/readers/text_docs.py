"""Text-only documents: jsonl or parquet rows with a `text` field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curation_assets.readers.base import Outcome, Rejected, ShardFile, Valid, guarded, row_key, source_meta
from curation_assets.readers.json_records import parse_json_object
from curation_assets.readers.jsonl_lines import iter_jsonl_lines
from curation_assets.readers.parquet_rows import iter_parquet_rows
from curation_assets.text_checks import clean_document_text


def read_text_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line, size in iter_jsonl_lines(shard.path, shard.limits.max_record_bytes):
        yield guarded(key, _jsonl_document, key, line, size, shard)


def read_text_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        if isinstance(row, Rejected):
            yield row
            continue
        key = row_key(index)
        yield guarded(key, _document, key, row, shard)


def _jsonl_document(key: str, line: bytes | None, size: int, shard: ShardFile) -> Valid:
    return _document(key, parse_json_object(line, shard.limits, size), shard)


def _document(key: str, row: dict[str, Any], shard: ShardFile) -> Valid:
    text = clean_document_text(row.get("text"), shard.limits.max_text_chars)
    meta = {name: value for name, value in row.items() if name != "text"}
    return Valid(key, {"text": text, "num_chars": len(text), "source_meta": source_meta(meta)})
