"""Why a row was set aside. Every bad input row becomes one quarantine row with one of these."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    undecodable_image = "undecodable_image"  # bytes that no decoder recognises as an image
    truncated_image = "truncated_image"  # the image stream ends early
    decompression_bomb = "decompression_bomb"  # more pixels than the configured limit
    empty_file = "empty_file"  # zero-byte image file or empty image bytes
    missing_file = "missing_file"  # a referenced image path that does not exist
    path_escape = "path_escape"  # ../, absolute path or symlink leading outside the data root
    malformed_json = "malformed_json"  # unparseable JSON line, sidecar or file
    missing_field = "missing_field"  # a required field or column is absent or of the wrong type
    empty_text = "empty_text"  # empty or whitespace-only text after removing special tokens
    non_utf8_text = "non_utf8_text"  # text bytes that are not valid UTF-8
    truncated_tar = "truncated_tar"  # the tar archive ends inside this sample
    missing_image = "missing_image"  # a sample with text but no image
    unreadable_shard = "unreadable_shard"  # the shard file itself cannot be opened (corrupt parquet footer, ...)


class Quarantined(Exception):
    """Raised by validation helpers; readers turn it into a quarantine row for the current sample."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class UnreadableShard(Exception):
    """The shard file as a whole cannot be read; it becomes one quarantine row for the file."""


WHOLE_SHARD_KEY = "__shard__"
