"""The lines of a jsonl shard, streamed, with each line's size capped before it is held whole."""

from __future__ import annotations

from collections.abc import Iterator

from upath import UPath

from curation_assets.readers.sample_keys import UTF8_BOM, row_key

_CHUNK = 1 << 20


def iter_jsonl_lines(path: UPath, max_bytes: int) -> Iterator[tuple[str, bytes | None, int]]:
    """(key, line, size) for each line holding anything but ASCII whitespace. The key is the physical
    line index, so it is stable; `line` is None when its `size` is over `max_bytes` (such a line is
    measured, never held). A UTF-8 byte order mark opening the file is dropped."""
    index, parts, size, content = 0, [], 0, False
    with path.open("rb") as handle:
        chunk = handle.read(_CHUNK).removeprefix(UTF8_BOM)
        while chunk:
            start = 0
            while True:
                newline = chunk.find(b"\n", start)
                piece = chunk[start:] if newline < 0 else chunk[start:newline]
                size += len(piece)
                content = content or bool(piece.strip())
                if size <= max_bytes:
                    parts.append(piece)
                if newline < 0:
                    break
                if content:
                    yield row_key(index), (b"".join(parts) if size <= max_bytes else None), size
                index, parts, size, content = index + 1, [], 0, False
                start = newline + 1
            chunk = handle.read(_CHUNK)
    if content:
        yield row_key(index), (b"".join(parts) if size <= max_bytes else None), size
