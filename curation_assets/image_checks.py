"""Decide whether image bytes are a usable image, and find and read referenced image files safely."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import posixpath
import stat
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from upath import UPath

from curation_assets.quarantine import Quarantined, Reason

# Pillow's own default (about 89.5 megapixels): above it Pillow warns of a decompression bomb. The
# ingest limit itself is IngestLimits.max_image_pixels, which defaults to this.
DEFAULT_MAX_PIXELS = 89_478_485

# The only decoders any image is opened with, at ingest and at scoring alike. Pillow otherwise tries
# every plugin it has: a ".jpg" holding PostScript made it start Ghostscript in the middle of ingest,
# and rarely used parsers (EPS, PSD, ICNS, FITS, ...) are where decoder bugs live. MPO (multi-picture
# JPEG from phones) is opened by the JPEG plugin, so it needs no entry of its own.
ALLOWED_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# Longest file name and path a POSIX file system accepts, in bytes.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
_LOCAL_PROTOCOLS = ("", "file", "local")


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    num_bytes: int
    width: int
    height: int
    format: str
    mode: str


def open_image(data: bytes) -> Image.Image:
    """Pillow's lazy open, restricted to ALLOWED_IMAGE_FORMATS: bytes of any other format raise
    UnidentifiedImageError, whatever their file name says."""
    return Image.open(io.BytesIO(data), formats=ALLOWED_IMAGE_FORMATS)


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Fully decode `data` once and describe it, or raise Quarantined saying why it is unusable.

    The size is checked from the header before any pixel is decoded, so a bomb costs nothing.
    """
    if not data:
        raise Quarantined(Reason.empty_file, "image is zero bytes")
    try:
        with warnings.catch_warnings():
            # We enforce our own limit below; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = open_image(data)
    except Image.DecompressionBombError as error:
        raise Quarantined(Reason.decompression_bomb, str(error)) from None
    except UnidentifiedImageError:
        raise Quarantined(
            Reason.undecodable_image, f"not an image in an allowed format {ALLOWED_IMAGE_FORMATS} ({len(data)} bytes)"
        ) from None
    except Exception as error:  # Pillow raises many types for garbage headers
        raise Quarantined(Reason.undecodable_image, f"{type(error).__name__}: {error}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise Quarantined(Reason.decompression_bomb, f"{width}x{height} = {width * height} pixels > limit {max_pixels}")
    try:
        image.load()
    except OSError as error:
        reason = Reason.truncated_image if "truncated" in str(error) else Reason.undecodable_image
        raise Quarantined(reason, str(error)) from None
    except Exception as error:
        raise Quarantined(Reason.undecodable_image, f"{type(error).__name__}: {error}") from None
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        num_bytes=len(data),
        width=width,
        height=height,
        format=(image.format or "").lower(),
        mode=image.mode,
    )


def resolve_image_path(reference: object, shard_dir: UPath, data_root: UPath) -> UPath:
    """The file that `reference` (relative to the shard's folder) names, kept inside the data root.

    Raises Quarantined for absolute paths and URLs, `..` that climbs out of the data root, symlinks
    whose target lies outside it, names no file can have (NUL, lone surrogates, too long), and files
    that do not exist.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise Quarantined(Reason.missing_field, f"image path is {reference!r}")
    _check_path_text(reference)
    if (
        reference.startswith(("/", "\\"))
        or "://" in reference
        or posixpath.isabs(reference)
        or (len(reference) > 1 and reference[1] == ":")
    ):
        raise Quarantined(Reason.path_escape, f"absolute image path {reference!r}: give it relative to the shard")
    root = posixpath.normpath(data_root.path)
    candidate = posixpath.normpath(posixpath.join(shard_dir.path, reference))
    if not _is_within(candidate, root):
        raise Quarantined(Reason.path_escape, f"image path {reference!r} leaves the data root")
    if len(candidate.encode("utf-8")) > MAX_PATH_BYTES:
        raise Quarantined(
            Reason.invalid_path, f"image path is longer than {MAX_PATH_BYTES} bytes: {reference[:80]!r}..."
        )
    path = data_root.with_segments(candidate)
    if data_root.protocol in _LOCAL_PROTOCOLS:
        # Only a local filesystem has symlinks; follow them and check where they really lead.
        real = os.path.realpath(candidate)
        if not _is_within(real, os.path.realpath(root)):
            raise Quarantined(
                Reason.path_escape, f"image path {reference!r} is a link to {real}, outside the data root"
            )
    try:
        exists = path.exists()
    except OSError as error:
        raise Quarantined(Reason.invalid_path, f"image path {reference[:80]!r}: {error.strerror or error}") from None
    if not exists:
        raise Quarantined(Reason.missing_file, f"image file {reference!r} does not exist")
    return path


def read_image_file(path: UPath, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or Quarantined saying why not.

    The type and size come from the opened file itself (fstat), before any byte is read: a
    directory, FIFO or device is refused (a FIFO would block a plain read forever), and a file
    over the limit is never read.
    """
    if path.protocol in _LOCAL_PROTOCOLS:
        return _read_local_file(path.path, max_bytes)
    try:
        info = path.fs.info(path.path)
    except FileNotFoundError:
        raise Quarantined(Reason.missing_file, f"image file {path.path!r} does not exist") from None
    if info.get("type") != "file":
        raise Quarantined(Reason.not_a_file, f"image path {path.path!r} is a {info.get('type')}, not a file")
    _check_size(info.get("size") or 0, max_bytes, path.path)
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    _check_size(len(data), max_bytes, path.path)
    return data


def _read_local_file(local: str, max_bytes: int) -> bytes:
    # O_NONBLOCK: opening a FIFO for reading must not wait for a writer; regular files ignore it.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(local, flags)
    except FileNotFoundError:
        raise Quarantined(Reason.missing_file, f"image file {local!r} does not exist") from None
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise Quarantined(Reason.invalid_path, f"image path too long: {local[:80]!r}...") from None
        if error.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise Quarantined(Reason.not_a_file, f"image path {local!r} is not a regular file") from None
        raise Quarantined(Reason.missing_file, f"cannot open image file {local!r}: {error.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = "directory" if stat.S_ISDIR(status.st_mode) else "FIFO, socket or device"
            raise Quarantined(Reason.not_a_file, f"image path {local!r} is a {kind}, not a regular file")
        _check_size(status.st_size, max_bytes, local)
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        chunks, remaining = [], max_bytes + 1
        while remaining > 0:  # an unbuffered read may return less than asked
            chunk = handle.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    data = b"".join(chunks)
    _check_size(len(data), max_bytes, local)  # the file grew after fstat
    return data


def _check_size(num_bytes: int, max_bytes: int, where: str) -> None:
    if num_bytes > max_bytes:
        raise Quarantined(Reason.over_limit, f"image file {where!r} is over max_image_bytes ({max_bytes})")


def _check_path_text(reference: str) -> None:
    """Refuse what no file name can hold before any system call sees it (os calls raise on NUL and
    on lone surrogates instead of answering "no such file")."""
    if "\x00" in reference:
        raise Quarantined(Reason.invalid_path, f"image path holds a NUL byte: {reference[:80]!r}")
    if any("\ud800" <= char <= "\udfff" for char in reference):
        raise Quarantined(Reason.invalid_path, f"image path holds a lone surrogate: {reference[:80]!r}")
    for part in reference.split("/"):
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise Quarantined(
                Reason.invalid_path, f"image path has a name over {MAX_NAME_BYTES} bytes: {part[:40]!r}..."
            )


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
