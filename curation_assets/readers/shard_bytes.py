"""Opening a shard's bytes: the size of an open file, and a whole file without copying it into memory."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")


def file_size(handle: BinaryIO) -> int:
    position = handle.tell()
    size = handle.seek(0, 2)
    handle.seek(position)
    return size


@contextmanager
def whole_file(path: UPath) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes: memory-mapped when local (the page cache holds them, not this process),
    read whole from an object store."""
    if path.protocol not in LOCAL_PROTOCOLS:
        yield path.read_bytes()
        return
    with open(path.path, "rb") as handle:
        if file_size(handle) == 0:  # mmap refuses empty files
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped
