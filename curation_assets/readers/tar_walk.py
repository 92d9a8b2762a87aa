"""Every member of a tar, with the damage between them made visible: the reader's view of a tar.

Python's tarfile reads members well but hides damage: in its default mode a corrupt header after
offset 0 reads as the end of the archive (every sample after it silently gone), and a tar cut at a
header boundary reads as complete. Here tarfile parses each header, and we keep the walk going
and report what it stepped over:

- a header that fails its checksum (or cannot be parsed) is stepped over one 512-byte block at a
  time, as `tar --ignore-zeros` does, and the stepped-over bytes are reported as a `Gap` when any
  of them is non-zero (zero blocks are end-of-archive markers of concatenated tars, not damage);
- the walk ends with `End`, saying whether the archive ended cleanly (a zero block where the next
  header would be), was cut (no end marker, a partial header, data running past the end of the
  file), or ended in garbage.

The row counter (`counting.py`) walks the same bytes with its own header parser, so a defect in
this walk shows up as a count mismatch instead of agreeing with itself.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
_SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    info: tarfile.TarInfo
    name: str  # the member name with bytes that are not UTF-8 written as \xNN escapes
    utf8_name: bool  # False when the stored name is not valid UTF-8
    tar: tarfile.TarFile

    def read(self) -> bytes:
        """The member's data (sparse holes filled); tarfile.ReadError when the file ends inside it."""
        return self.tar.extractfile(self.info).read()


@dataclass(frozen=True)
class Gap:
    start: int
    end: int  # bytes [start, end) held no readable header and are not all zero


@dataclass(frozen=True)
class End:
    problem: str | None  # None: a clean end-of-archive marker
    truncated: bool  # True: the file is cut short; False with a problem: garbage where the end should be
    found_member: bool  # whether any header at all was readable
    nonzero: bool  # whether any byte outside members is non-zero (for a file that is no tar at all)


def clean_member_name(name: str) -> tuple[str, bool]:
    """tarfile's name (bytes that are not UTF-8 kept as surrogates) as storable text, and whether it
    was UTF-8. Invalid bytes become `\\xNN`: readable, unique, and never a dot or a slash, so the
    key / extension split is the same before and after."""
    raw = name.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), False


def walk_tar(handle: BinaryIO, size: int) -> Iterator[Member | Gap | End]:
    """Members in archive order, a Gap before any member that follows damage, then one End.

    `handle` must be seekable; a consumer may read a member's data (`Member.read()`) before asking
    for the next one.
    """
    tar = _Tar(handle)
    end = 0  # where the last accepted member ended (its data padded to whole blocks)
    found = nonzero = False
    while True:
        before = tar.offset
        try:
            info = tar.next()
        except Exception as error:  # tarfile raises many types for damaged headers
            if tar.offset > size or tar.header_offset >= size:
                yield _end(handle, end, size, found, nonzero, cut=f"archive ends inside a member: {error}")
                return
            # Step over the damaged header's first block, as for a bad checksum.
            tar.offset = max(tar.header_offset, before) + BLOCK
            continue
        tar.members.clear()  # tarfile keeps every header it read; we never look back
        if info is None:
            break
        # Where this member's first header block is: tarfile's info.offset skips a global pax
        # header before it, which is part of the archive, not damage.
        start = tar.header_offset
        if info.size < 0 or tar.offset <= start:
            # A negative size (base-256 field) would send tarfile backwards: treat it as a bad header.
            tar.offset = start + BLOCK
            continue
        if start > end and _has_nonzero(handle, end, start):
            nonzero = True
            yield Gap(end, start)
        name, utf8 = clean_member_name(info.name)
        found = True
        yield Member(info, name, utf8, tar)
        end = tar.offset
    yield _end(handle, end, size, found, nonzero, cut=None)


def _end(handle: BinaryIO, end: int, size: int, found: bool, nonzero: bool, cut: str | None) -> End:
    if cut is not None:
        return End(cut, True, found, nonzero or _has_nonzero(handle, end, size))
    tail_nonzero = _has_nonzero(handle, end, size)
    nonzero = nonzero or tail_nonzero
    if end == size:
        return End("archive has no end-of-archive marker after its last member: cut short", True, found, nonzero)
    if size - end < BLOCK:
        return End(f"archive ends inside a header ({size - end} of {BLOCK} bytes)", True, found, nonzero)
    handle.seek(end)
    if handle.read(BLOCK).count(0) == BLOCK:
        return End(None, False, found, nonzero)  # what follows the end marker is not the archive's
    return End(f"bytes {end}-{size} after the last member are not a tar header", False, found, nonzero)


def _has_nonzero(handle: BinaryIO, start: int, end: int) -> bool:
    handle.seek(start)
    remaining = end - start
    while remaining > 0:
        chunk = handle.read(min(_SCAN_CHUNK, remaining))
        if not chunk:
            return False
        if chunk.count(0) != len(chunk):
            return True
        remaining -= len(chunk)
    return False


class _TarInfo(tarfile.TarInfo):
    """Records where tarfile starts reading each top-level header, so a failure anywhere inside
    (a pax record, a sparse map) steps over exactly that header's first block."""

    @classmethod
    def fromtarfile(cls, tar):
        if tar.depth == 0:
            tar.header_offset = tar.fileobj.tell()
        tar.depth += 1
        try:
            return super().fromtarfile(tar)
        finally:
            tar.depth -= 1


class _Tar(tarfile.TarFile):
    """tarfile in random-access mode, skipping zero and damaged blocks (ignore_zeros), with names
    decoded as UTF-8 whatever the locale, and without its read of the first member while opening,
    so a damaged first header is stepped over like any other instead of failing the open."""

    tarinfo = _TarInfo

    def __init__(self, handle: BinaryIO):
        self.opening, self.depth, self.header_offset = True, 0, 0
        handle.seek(0)
        super().__init__(fileobj=handle, mode="r", ignore_zeros=True, encoding="utf-8", errors="surrogateescape")
        self.opening = False

    def next(self):
        return None if self.opening else super().next()
