"""What a row's key is, for every format: shared by the readers and the independent row counter.

Only the naming rules live here; how each side finds the rows is its own code.
"""

from __future__ import annotations

import re

from curation_assets.quarantine import WHOLE_SHARD_KEY

# WebDataset's naming rule: the key is the member path up to the first dot of its file name, the
# rest is the extension (`dir/000001.seg.png` -> `dir/000001`, `seg.png`). Spelled out here rather
# than imported from webdataset, whose import pulls in torch (+1.5 s, +700 MB RSS per ingest process).
_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")

# The row after a LLaVA json array's closing bracket, when anything but whitespace follows it.
AFTER_ARRAY_KEY = "__after_array__"
UTF8_BOM = b"\xef\xbb\xbf"
JSON_WHITESPACE = b" \t\n\r"

__all__ = ["AFTER_ARRAY_KEY", "JSON_WHITESPACE", "UTF8_BOM", "WHOLE_SHARD_KEY", "duplicate_key", "row_key"]


def row_key(index: int) -> str:
    """The key of a row in a line / row / array based format: its 0-based position, zero-padded."""
    return f"{index:06d}"


def split_member_name(name: str) -> tuple[str | None, str | None]:
    match = _KEY_AND_EXTENSION.match(name)
    return (match.group(1), match.group(2)) if match else (None, None)


def duplicate_key(key: str, occurrence: int) -> str:
    """The row key of the `occurrence`-th (2, 3, ...) separate run of tar members with one key. A
    real key never has a dot in its last path segment, so this never collides with one."""
    return f"{key}.dup{occurrence}"
