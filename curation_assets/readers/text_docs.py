"""Text-only documents: jsonl or parquet rows with a `text` field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from curation_assets.readers.base import (
    Outcome,
    ShardFile,
    Valid,
    guarded,
    iter_jsonl_lines,
    parse_json_object,
    row_key,
)
from curation_assets.readers.caption_parquet import iter_parquet_rows
from curation_assets.text_checks import clean_document_text


def read_text_jsonl(shard: ShardFile) -> Iterator[Outcome]:
    for key, line in iter_jsonl_lines(shard.path):
        yield guarded(key, lambda: _document(key, parse_json_object(line)))  # noqa: B023 - guarded calls it at once


def read_text_parquet(shard: ShardFile) -> Iterator[Outcome]:
    for index, row in iter_parquet_rows(shard):
        key = row_key(index)
        yield guarded(key, lambda: _document(key, row))  # noqa: B023 - guarded calls it at once


def _document(key: str, row: dict[str, Any]) -> Valid:
    text = clean_document_text(row.get("text"))
    meta = {name: value for name, value in row.items() if name != "text"}
    return Valid(
        key, {"text": text, "num_chars": len(text), "source_meta": json.dumps(meta, sort_keys=True, default=str)}
    )
