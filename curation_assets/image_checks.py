"""Decide whether image bytes are a usable image, and find referenced image files safely."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from upath import UPath

from curation_assets.quarantine import Quarantined, Reason

# Pillow's own default (about 89.5 megapixels): above it Pillow warns of a decompression bomb.
DEFAULT_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    num_bytes: int
    width: int
    height: int
    format: str
    mode: str


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
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise Quarantined(Reason.decompression_bomb, str(error)) from None
    except UnidentifiedImageError:
        raise Quarantined(Reason.undecodable_image, f"not a recognised image ({len(data)} bytes)") from None
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
    whose target lies outside it, and files that do not exist.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise Quarantined(Reason.missing_field, f"image path is {reference!r}")
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
    path = data_root.with_segments(candidate)
    if data_root.protocol in ("", "file", "local"):
        # Only a local filesystem has symlinks; follow them and check where they really lead.
        real = os.path.realpath(candidate)
        if not _is_within(real, os.path.realpath(root)):
            raise Quarantined(
                Reason.path_escape, f"image path {reference!r} is a link to {real}, outside the data root"
            )
    if not path.exists():
        raise Quarantined(Reason.missing_file, f"image file {reference!r} does not exist")
    return path


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
