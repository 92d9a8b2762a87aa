"""LLaVA / Mini-Gemini json: an array of `{id, image, conversations}`; the caption is the first gpt turn.

A LLaVA file is one JSON document, but its rows are read one element at a time: the array is split
into elements by a scan that skips strings and follows bracket depth, then each element is parsed
on its own. One bad element (truncated, 200,000 `[` deep, a 5,000-digit number, a lone surrogate)
is one quarantine row; the file is mapped, not loaded, so its size costs no memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers.base import Outcome, Rejected, ShardFile, caption_row, guarded, image_from_path
from curation_assets.readers.json_records import parse_json
from curation_assets.readers.sample_keys import AFTER_ARRAY_KEY, JSON_WHITESPACE, UTF8_BOM, WHOLE_SHARD_KEY, row_key
from curation_assets.readers.shard_bytes import whole_file

# A JSON string (running to the end of the file when it is never closed), a run of opening or of
# closing brackets (one token however deep: 200,000 `[` cost one step), or a comma.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[{]+|[\]}]+|,', re.DOTALL)
_CONTENT = re.compile(b"[^" + re.escape(JSON_WHITESPACE) + b"]")
_QUOTE, _OPENERS, _CLOSERS = ord('"'), (ord("["), ord("{")), (ord("]"), ord("}"))


def read_llava_json(shard: ShardFile) -> Iterator[Outcome]:
    with whole_file(shard.path) as data:
        for key, span, problem in array_elements(data):
            if problem is not None:
                yield Rejected(key, Reason.malformed_json, problem)
                continue
            start, end = span
            if end - start > shard.limits.max_record_bytes:
                yield Rejected(
                    key,
                    Reason.over_limit,
                    f"element is {end - start} bytes, over max_record_bytes ({shard.limits.max_record_bytes})",
                )
                continue
            yield guarded(key, _caption_pair, key, bytes(data[start:end]), shard)


def array_elements(data) -> Iterator[tuple[str, tuple[int, int], str | None]]:
    """(key, (start, end) of the element's bytes, problem) per top-level array element; `problem`
    is set when the element cannot be a record (empty, or cut off by the end of the file). The
    whole file is one row (WHOLE_SHARD_KEY) when it is not an array, and anything but whitespace
    after the array is one more row (AFTER_ARRAY_KEY)."""
    first = _CONTENT.search(data, len(UTF8_BOM) if data[: len(UTF8_BOM)] == UTF8_BOM else 0)
    position = len(data) if first is None else first.start()
    if position == len(data):
        yield WHOLE_SHARD_KEY, (0, 0), "the file holds no JSON"
        return
    if data[position] != ord("["):
        yield WHOLE_SHARD_KEY, (0, 0), "expected a JSON array of samples"
        return
    depth, start, index, close = 1, position + 1, 0, None
    for token in _TOKEN.finditer(data, position + 1):
        char = data[token.start()]
        if char == _QUOTE:
            continue
        if char in _OPENERS:
            depth += token.end() - token.start()
        elif char in _CLOSERS:
            if token.end() - token.start() >= depth:  # this run closes the top-level array
                close = token.start() + depth - 1
                break
            depth -= token.end() - token.start()
        elif depth == 1:  # a comma between two elements
            yield _element(data, index, start, token.start())
            index, start = index + 1, token.end()
    end = len(data) if close is None else close
    blank = _blank(data, start, end)
    if close is None:
        if index == 0 and blank:
            yield WHOLE_SHARD_KEY, (0, 0), "the file ends before the array closes"
        else:
            yield row_key(index), (start, end), "the file ends inside this element, before the array closes"
        return
    if index > 0 or not blank:
        yield _element(data, index, start, end)
    if not _blank(data, close + 1, len(data)):
        yield AFTER_ARRAY_KEY, (close + 1, len(data)), "data after the array's closing bracket"


def _element(data, index: int, start: int, end: int) -> tuple[str, tuple[int, int], str | None]:
    return row_key(index), (start, end), ("empty array element" if _blank(data, start, end) else None)


def _blank(data, start: int, end: int) -> bool:
    return _CONTENT.search(data, start, end) is None


def _caption_pair(key: str, raw: bytes, shard: ShardFile):
    row = parse_json(raw, shard.limits)
    if not isinstance(row, dict):
        raise Quarantined(Reason.malformed_json, f"expected an object, got {type(row).__name__}")
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise Quarantined(Reason.missing_field, "no `conversations` list")
    answer = next((turn.get("value") for turn in turns if isinstance(turn, dict) and turn.get("from") == "gpt"), None)
    if answer is None:
        raise Quarantined(Reason.missing_field, "no gpt turn in `conversations`")
    meta: dict[str, Any] = {
        "id": row.get("id"),
        "prompt": next((t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "human"), None),
    }

    def load_image():
        if "image" not in row:
            raise Quarantined(Reason.missing_image, "no `image` field")
        return image_from_path(row["image"], shard)

    return caption_row(key, answer, load_image, meta, shard)
