"""Count a shard's rows by a second route, independent of its reader: the accounting's other side.

Each counter finds the same rows a correct reader finds, by other means, and returns their keys:

- tar: its own walk over 512-byte headers (checksums, ustar prefixes, GNU long names and sparse
  headers, pax records), stepping over damaged blocks; the reader uses Python's tarfile;
- jsonl: non-blank lines, found by splitting bytes; no JSON is parsed;
- parquet: the file's metadata;
- LLaVA json: top-level array elements, found by deleting JSON strings and walking bracket depth
  with numpy; no JSON is parsed, so 200,000 `[` or a 5,000-digit number cost nothing special.

`read_shard` turns a row that a counter sees and the reader never yielded into a quarantine row
(`unread_row`), so valid + quarantined always covers what is counted; the asset check
`rows_accounted_for` compares the two again after the tables are written.
"""

from __future__ import annotations

import re
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow.parquet as pq

from curation_assets.readers.sample_keys import (
    AFTER_ARRAY_KEY,
    JSON_WHITESPACE,
    UTF8_BOM,
    WHOLE_SHARD_KEY,
    duplicate_key,
    row_key,
    split_member_name,
)
from curation_assets.readers.shard_bytes import file_size, whole_file


@dataclass(frozen=True)
class IndexKeys:
    """Row keys of positional formats (`000042`), without building a string per row up front."""

    indices: Sequence[int]

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[str]:
        return (row_key(index) for index in self.indices)


RowKeys = IndexKeys | list


# --- parquet ----------------------------------------------------------------------------------


def parquet_row_keys(path) -> RowKeys:
    """The footer's row count; a footer pyarrow cannot read, or whose row groups do not add up to
    that count (a damaged footer: which number is wrong cannot be known), is one unreadable row."""
    try:
        with path.open("rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
            groups = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    except Exception:
        return [WHOLE_SHARD_KEY]
    if sum(groups) != metadata.num_rows or min(groups, default=0) < 0:
        return [WHOLE_SHARD_KEY]
    return IndexKeys(range(metadata.num_rows))


# --- jsonl ------------------------------------------------------------------------------------

_CHUNK = 1 << 20


def jsonl_row_keys(path) -> RowKeys:
    """Physical indices of the lines holding anything but ASCII whitespace (a UTF-8 byte order mark
    opening the file is not content)."""
    indices = array("q")
    line, content, first = 0, False, True
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if first:
                chunk, first = chunk.removeprefix(UTF8_BOM), False
            pieces = chunk.split(b"\n")
            for piece in pieces[:-1]:
                if content or piece.strip():
                    indices.append(line)
                line, content = line + 1, False
            content = content or bool(pieces[-1].strip())
    if content:
        indices.append(line)
    return IndexKeys(indices)


# --- LLaVA json -------------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENERS, _CLOSERS, _COMMA = (ord("["), ord("{")), (ord("]"), ord("}")), ord(",")


def json_array_row_keys(path) -> RowKeys:
    """One row per top-level array element (empty ones included: `[1,,2]` has three), one row for
    the whole file when it is not an array at all, plus AFTER_ARRAY_KEY when anything but
    whitespace follows the closing bracket."""
    with whole_file(path) as data:
        start = len(UTF8_BOM) if data[: len(UTF8_BOM)] == UTF8_BOM else 0
        body = bytes(data[start:]).lstrip(JSON_WHITESPACE)
    if not body.startswith(b"["):
        return [WHOLE_SHARD_KEY]
    # Strings may hold any bracket or comma; replace each by a 0 first. An unterminated string runs
    # to the end of the file: cut there, keeping its quote so the element is not blank.
    structure = _JSON_STRING.sub(b"0", body[1:])
    quote = structure.find(b'"')
    if quote >= 0:
        structure = structure[: quote + 1]
    close, commas = _depth_walk(structure)
    inside = structure if close < 0 else structure[:close]
    blank = not inside.strip(JSON_WHITESPACE)
    if close < 0 and blank and commas == 0:
        return [WHOLE_SHARD_KEY]  # `[` and nothing more
    keys: RowKeys = IndexKeys(range(0 if blank and commas == 0 else commas + 1))
    if close >= 0 and structure[close + 1 :].strip(JSON_WHITESPACE):
        keys = [*keys, AFTER_ARRAY_KEY]
    return keys


def _depth_walk(structure: bytes) -> tuple[int, int]:
    """(offset of the bracket closing the top-level array or -1, commas directly inside it)."""
    depth, commas = 1, 0
    for offset in range(0, len(structure), _CHUNK):
        chunk = np.frombuffer(structure, dtype=np.uint8, count=min(_CHUNK, len(structure) - offset), offset=offset)
        step = np.isin(chunk, _OPENERS).astype(np.int64) - np.isin(chunk, _CLOSERS)
        running = depth + np.cumsum(step)
        closed = np.flatnonzero(running == 0)
        end = closed[0] if closed.size else len(chunk)
        commas += int(np.count_nonzero((chunk[:end] == _COMMA) & (running[:end] == 1)))
        if closed.size:
            return offset + int(end), commas
        depth = int(running[-1])
    return -1, commas


# --- tar --------------------------------------------------------------------------------------

BLOCK = 512
_REGULAR = (b"0", b"\x00", b"7", b"S")
# Types whose header is followed by no data; any type not known is skipped like a regular file.
_DATALESS = (b"1", b"2", b"3", b"4", b"5", b"6")
_LONG_NAME, _LONG_LINK, _SPARSE = b"L", b"K", b"S"
_PAX_LOCAL, _PAX_GLOBAL, _PAX_SOLARIS = b"x", b"g", b"X"
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")


class _BadHeader(Exception):
    pass


@dataclass
class _Header:
    name: bytes
    type: bytes
    size: int
    data_offset: int
    next_offset: int


def tar_row_keys(path) -> RowKeys:
    """Sample keys in archive order: consecutive regular members with one key form one sample; a
    key seen in an earlier sample gets duplicate_key(key, n). A file with no readable header that
    is not all zero bytes (or is under one block) is one unreadable row."""
    with path.open("rb") as handle:
        walk = _HeaderWalk(handle, file_size(handle))
        names = list(walk.regular_member_names())
    if not walk.found and (walk.size < BLOCK or walk.nonzero):
        return [WHOLE_SHARD_KEY]
    keys: list[str] = []
    seen: dict[str, int] = {}
    previous = None
    for name in names:
        key, _ = split_member_name(name.decode("utf-8", "backslashreplace"))
        if key is None or key == previous:
            continue
        previous = key
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else duplicate_key(key, seen[key]))
    return keys


class _HeaderWalk:
    def __init__(self, handle: BinaryIO, size: int):
        self.handle, self.size = handle, size
        self.global_pax: dict[bytes, bytes] = {}
        self.found = self.nonzero = False

    def regular_member_names(self) -> Iterator[bytes]:
        offset = 0
        while offset + BLOCK <= self.size:
            block = self._read(offset, BLOCK)
            if block.count(0) == BLOCK:
                offset += BLOCK
                continue
            try:
                header = self._member(offset, block)
                if header.size < 0 or header.next_offset <= offset:
                    raise _BadHeader("negative size")
            except Exception:  # any header we cannot make sense of: step over its first block
                self.nonzero = True
                offset += BLOCK
                continue
            self.found = True
            if header.type in _REGULAR:
                yield header.name
            offset = header.next_offset
        if offset < self.size and self._read(offset, self.size - offset).strip(b"\x00"):
            self.nonzero = True

    def _read(self, offset: int, length: int) -> bytes:
        self.handle.seek(offset)
        return self.handle.read(length)

    def _member(self, offset: int, block: bytes | None = None) -> _Header:
        """The member whose first header block is at `offset`, with long names, sparse maps and pax
        records applied; raises on anything malformed."""
        block = self._read(offset, BLOCK) if block is None else block
        if len(block) < BLOCK or block.count(0) == BLOCK:
            raise _BadHeader("no header here")
        header = _parse_block(block, offset)
        if header.type in (_LONG_NAME, _LONG_LINK):
            return self._long_name(header, offset)
        if header.type == _SPARSE:
            return self._old_sparse(header, block)
        if header.type in (_PAX_LOCAL, _PAX_GLOBAL, _PAX_SOLARIS):
            return self._pax(header, offset)
        header.next_offset = header.data_offset + (0 if header.type in _DATALESS else _padded(header.size))
        self._apply_pax(header, self.global_pax)
        if header.type == b"5":
            header.name = header.name.rstrip(b"/")
        return header

    def _extension_data(self, header: _Header) -> bytes:
        length = _padded(header.size)
        if length < 0:
            raise _BadHeader("negative extension size")
        data = self._read(header.data_offset, length)
        if len(data) < length:
            raise _BadHeader("extension data runs past the end")
        return data

    def _long_name(self, header: _Header, offset: int) -> _Header:
        data = self._extension_data(header)
        member = self._member(header.data_offset + len(data))
        if header.type == _LONG_NAME:
            member.name = _until_nul(data)
        if member.type == b"5" and member.name.endswith(b"/"):
            member.name = member.name[:-1]
        return member

    def _old_sparse(self, header: _Header, block: bytes) -> _Header:
        # tarfile parses every sparse entry (4 in the header, 21 per extension block) and gives up on
        # the header if any is not a number.
        _sparse_entries(block[386:482], 4)
        real_size = _number(block[483:495])
        position = header.data_offset
        extended = block[482]
        while extended:
            extension = self._read(position, BLOCK)
            if len(extension) <= 504:
                raise _BadHeader("sparse extension runs past the end")
            _sparse_entries(extension, 21)
            position += len(extension)
            extended = extension[504]
        header.data_offset = position
        header.next_offset = position + _padded(header.size)
        header.size = real_size
        return header

    def _pax(self, header: _Header, offset: int) -> _Header:
        data = self._extension_data(header)
        records = self.global_pax if header.type == _PAX_GLOBAL else dict(self.global_pax)
        position = 0
        while match := _PAX_RECORD.match(data, position):
            length = int(match.group(1))
            if length == 0:
                raise _BadHeader("zero-length pax record")
            records[match.group(2)] = data[match.end(2) + 1 : match.start(1) + length - 1]
            position += length
        member = self._member(header.data_offset + len(data))
        self._sparse_pax(member, records, data)
        if header.type == _PAX_GLOBAL:
            return member
        self._apply_pax(member, records)
        if b"size" in records:
            member.next_offset = member.data_offset + (0 if member.type in _DATALESS else _padded(member.size))
        return member

    def _sparse_pax(self, member: _Header, records: dict[bytes, bytes], data: bytes) -> None:
        """GNU sparse files stored with pax records: only their parsing can fail, and version 1.0
        moves where the member's data starts."""
        if b"GNU.sparse.map" in records:
            [int(number) for number in records[b"GNU.sparse.map"].split(b",")]
        elif b"GNU.sparse.size" in records:
            for pattern in (rb"\d+ GNU.sparse.offset=(\d+)\n", rb"\d+ GNU.sparse.numbytes=(\d+)\n"):
                [int(match.group(1)) for match in re.finditer(pattern, data)]
        elif records.get(b"GNU.sparse.major") == b"1" and records.get(b"GNU.sparse.minor") == b"0":
            position = member.data_offset
            buffer = self._read(position, BLOCK)
            position += len(buffer)
            fields, buffer = buffer.split(b"\n", 1)
            for _ in range(int(fields) * 2):
                if b"\n" not in buffer:
                    more = self._read(position, BLOCK)
                    position += len(more)
                    buffer += more
                number, buffer = buffer.split(b"\n", 1)
                int(number)
            member.data_offset = position

    @staticmethod
    def _apply_pax(member: _Header, records: dict[bytes, bytes]) -> None:
        for keyword, value in records.items():
            if keyword == b"GNU.sparse.name":
                member.name = value
            elif keyword in (b"GNU.sparse.size", b"GNU.sparse.realsize"):
                member.size = int(value.decode("utf-8", "surrogateescape"))
            elif keyword == b"path":
                member.name = value.rstrip(b"/")
            elif keyword == b"size":
                try:
                    member.size = int(value.decode("utf-8", "surrogateescape"))
                except ValueError:
                    member.size = 0


def _parse_block(block: bytes, offset: int) -> _Header:
    # The checksum field counts as eight spaces; some old tars summed signed bytes, so both count.
    checksum = _number(block[148:156])
    if checksum != 256 + sum(block[:148]) + sum(block[156:]) and checksum != 256 + sum(
        struct.unpack_from("148b8x356b", block)
    ):
        raise _BadHeader("bad checksum")
    for start, end in ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)):
        _number(block[start:end])  # mode, uid, gid, mtime, device numbers: must parse
    name, kind, prefix = _until_nul(block[0:100]), block[156:157], _until_nul(block[345:500])
    if kind == b"\x00" and name.endswith(b"/"):
        kind = b"5"  # an old-style directory
    if kind == b"5":
        name = name.rstrip(b"/")
    if prefix and kind not in (_LONG_NAME, _LONG_LINK, _SPARSE):
        name = prefix + b"/" + name
    size = _number(block[124:136])
    return _Header(name, kind, size, offset + BLOCK, offset + BLOCK)


def _sparse_entries(area: bytes, count: int) -> None:
    for start in range(0, count * 24, 12):
        _number(area[start : start + 12])


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 when the first byte is 0x80 / 0xff."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0o377 else value
    text = _until_nul(field)
    try:
        return int(text.decode("ascii").strip() or "0", 8)
    except (UnicodeDecodeError, ValueError):
        raise _BadHeader(f"not a number: {field!r}") from None


def _until_nul(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _padded(size: int) -> int:
    blocks, remainder = divmod(size, BLOCK)
    return (blocks + (1 if remainder else 0)) * BLOCK
