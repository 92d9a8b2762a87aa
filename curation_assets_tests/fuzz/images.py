"""Image bytes the fuzzer puts in shards: good ones in every allowed format and every kind of bad one."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from PIL import Image


def _encode(size: tuple[int, int], fmt: str, color: int | tuple[int, int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt)
    return buffer.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds almost no data: a decompression bomb
    only if someone decodes it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\x00" * 64)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + b"\x00\x00\x00\x00IEND\xaeB`\x82"


@cache
def good_images() -> tuple[bytes, ...]:
    return (
        _encode((16, 12), "JPEG", (200, 30, 30)),
        _encode((9, 20), "PNG", (10, 200, 30)),
        _encode((8, 8), "WEBP", (10, 20, 230)),
        _encode((5, 7), "GIF", 3, "P"),
        _encode((6, 6), "BMP", (1, 2, 3)),
        _encode((12, 12), "PNG", 128, "L"),
    )


@cache
def bad_images() -> tuple[bytes, ...]:
    jpeg = good_images()[0]
    return (
        b"",
        jpeg[: len(jpeg) // 2],  # truncated
        b"\x00\x01garbage" * 20,
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",  # PostScript named .jpg
        _png_header_claiming(100_000, 100_000),  # a bomb by its header
        b"\xff\xd8\xff",  # a JPEG that stops after its marker
    )
