"""LLaVA / Mini-Gemini json: an array of `{id, image, conversations}`; the caption is the first gpt turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from curation_assets.quarantine import WHOLE_SHARD_KEY, Quarantined, Reason
from curation_assets.readers.base import Outcome, Rejected, ShardFile, caption_row, guarded, image_from_path, row_key


def _load_array(shard: ShardFile) -> list[Any] | str:
    """The array of rows, or the reason the file is not one. A LLaVA file is one JSON document, so
    it is read whole; a shard is bounded in size by design."""
    raw = shard.path.read_bytes()
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as error:
        return f"file is not UTF-8: {error}"
    except json.JSONDecodeError as error:
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if not isinstance(value, list):
        return f"expected a JSON array of samples, got {type(value).__name__}"
    return value


def count_llava_rows(shard: ShardFile) -> int:
    rows = _load_array(shard)
    return 1 if isinstance(rows, str) else len(rows)


def read_llava_json(shard: ShardFile) -> Iterator[Outcome]:
    rows = _load_array(shard)
    if isinstance(rows, str):
        yield Rejected(WHOLE_SHARD_KEY, Reason.malformed_json, rows)
        return
    for index, row in enumerate(rows):
        key = row_key(index)
        yield guarded(key, lambda: _caption_pair(key, row, shard))  # noqa: B023 - guarded calls it at once


def _caption_pair(key: str, row: object, shard: ShardFile):
    if not isinstance(row, dict):
        raise Quarantined(Reason.malformed_json, f"expected an object, got {type(row).__name__}")
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise Quarantined(Reason.missing_field, "no `conversations` list")
    answer = next((turn.get("value") for turn in turns if isinstance(turn, dict) and turn.get("from") == "gpt"), None)
    if answer is None:
        raise Quarantined(Reason.missing_field, "no gpt turn in `conversations`")
    meta = {
        "id": row.get("id"),
        "prompt": next((t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "human"), None),
    }

    def load_image():
        if "image" not in row:
            raise Quarantined(Reason.missing_image, "no `image` field")
        data, stats, relative = image_from_path(row["image"], shard)
        return data, stats, f"file:{relative}"

    return caption_row(key, answer, load_image, meta)
