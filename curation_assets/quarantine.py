"""Why a row was set aside. Every bad input row becomes one quarantine row with one of these."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    undecodable_image = "undecodable_image"  # bytes that no allowed decoder recognises as an image
    truncated_image = "truncated_image"  # the image stream ends early
    decompression_bomb = "decompression_bomb"  # more pixels than the configured limit
    empty_file = "empty_file"  # zero-byte image file or empty image bytes
    missing_file = "missing_file"  # a referenced image path that does not exist
    path_escape = "path_escape"  # ../, absolute path or symlink leading outside the data root
    malformed_json = "malformed_json"  # unparseable JSON line, sidecar or file
    missing_field = "missing_field"  # a required field or column is absent or of the wrong type
    empty_text = "empty_text"  # no visible character left after removing special tokens
    non_utf8_text = "non_utf8_text"  # text bytes that are not valid UTF-8, or a lone surrogate (\ud800) in JSON
    truncated_tar = "truncated_tar"  # the tar archive ends inside or right after this sample, with no end marker
    missing_image = "missing_image"  # a sample with text but no image
    unreadable_shard = "unreadable_shard"  # the shard file itself cannot be opened (corrupt parquet footer, ...)
    # A tar sample key that already appeared earlier in the shard (the first run of members with a
    # key is the sample; later runs get the key `<key>.dup<n>`), or one member name twice in a sample.
    duplicate_key = "duplicate_key"
    non_utf8_name = "non_utf8_name"  # a tar member name that is not valid UTF-8
    invalid_path = "invalid_path"  # a path or tar member name no file can have: NUL, lone surrogate, too long
    not_a_file = "not_a_file"  # an image path naming a directory, FIFO, socket or device
    over_limit = "over_limit"  # a member, field, file, record, text or nesting over the `ingest` limits
    # The shard's own bytes around this row are damaged: a parquet page that fails to decompress or
    # parse (the rest of its row group with it), a tar header block that fails its checksum beside
    # this sample (a member of it may be lost).
    corrupt_data = "corrupt_data"
    unread_row = "unread_row"  # the independent row count sees this row, but the reader never reached it
    reader_error = "reader_error"  # the reader failed on this row with an unexpected error: a bug to report


class Quarantined(Exception):
    """Raised by validation helpers; readers turn it into a quarantine row for the current sample."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class UnreadableShard(Exception):
    """The shard file as a whole cannot be read; it becomes one quarantine row for the file."""


WHOLE_SHARD_KEY = "__shard__"
