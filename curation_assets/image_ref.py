"""`image_ref`: where a valid row's image bytes are. The one place that writes and parses it.

Image bytes stay in their shards; tables carry a reference instead:

- `tar:<member name>`: a member of the row's tar shard. When a name occurs twice, the first is meant
  (ingest keeps the first sample with a key and quarantines later ones, so they agree).
- `parquet:<row>:<column>`: the value in that 0-based row of the row's parquet shard, unwrapped
  from a one-element list or a `{"bytes": ...}` struct (`image_value` below).
- `parquet:<row>:<column>:<index>`: element `index` of a list column (OBELICS `images`).
- `file:<path>`: a file, by its path relative to the data root.

Column names are written with `%` and `:` percent-escaped, so any column name round-trips; every
other character, and every member name or path, is written as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from curation_assets.quarantine import Quarantined, Reason


class Scheme(str, Enum):
    tar = "tar"
    parquet = "parquet"
    file = "file"


_DIGITS = re.compile(r"[0-9]+")
_ESCAPED = re.compile(r"%(25|3[Aa])")


@dataclass(frozen=True)
class ImageRef:
    scheme: Scheme
    name: str = ""  # tar: the member name; file: the path under the data root
    row: int | None = None  # parquet only
    column: str | None = None  # parquet only
    index: int | None = None  # parquet list columns only

    @classmethod
    def tar(cls, member: str) -> ImageRef:
        return cls(Scheme.tar, name=_nonempty(member, "tar member name"))

    @classmethod
    def file(cls, path: str) -> ImageRef:
        return cls(Scheme.file, name=_nonempty(path, "file path"))

    @classmethod
    def parquet(cls, row: int, column: str, index: int | None = None) -> ImageRef:
        if row < 0 or (index is not None and index < 0):
            raise ValueError(f"parquet row and index must be >= 0, got row {row}, index {index}")
        return cls(Scheme.parquet, row=row, column=_nonempty(column, "parquet column"), index=index)

    def format(self) -> str:
        if self.scheme is Scheme.parquet:
            text = f"parquet:{self.row}:{_escape(self.column)}"
            return text if self.index is None else f"{text}:{self.index}"
        return f"{self.scheme.value}:{self.name}"

    __str__ = format

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """The reference `text` names; ValueError (saying what is wrong) for anything else."""
        scheme, colon, rest = text.partition(":")
        if not colon:
            raise ValueError(f"image_ref {text!r} has no scheme (tar:, parquet: or file:)")
        if scheme == "tar":
            return cls.tar(rest)
        if scheme == "file":
            return cls.file(rest)
        if scheme != "parquet":
            raise ValueError(f"image_ref {text!r}: unknown scheme {scheme!r} (tar, parquet or file)")
        parts = rest.split(":")
        if len(parts) not in (2, 3) or not all(_DIGITS.fullmatch(part) for part in parts[::2]):
            raise ValueError(f"image_ref {text!r}: expected parquet:<row>:<column>[:<index>]")
        index = int(parts[2]) if len(parts) == 3 else None
        return cls.parquet(int(parts[0]), _unescape(parts[1]), index)


def image_value(value: object, index: int | None = None) -> object:
    """The image inside a parquet cell: element `index` of a list, else the single element of a
    one-element list (Data-Juicer's `image_bytes`); then the `bytes` of a `{"bytes", "path"}` struct
    (Hugging Face datasets). Returns what is there (bytes, or None); raises Quarantined when the cell
    cannot hold the image asked for."""
    if index is not None:
        if not isinstance(value, list) or index >= len(value):
            raise Quarantined(Reason.missing_image, f"no list element {index} in this cell")
        value = value[index]
    elif isinstance(value, list):
        if len(value) != 1:
            raise Quarantined(
                Reason.missing_field, f"a caption pair needs exactly one image, this row has {len(value)}"
            )
        value = value[0]
    if isinstance(value, dict):
        value = value.get("bytes")
    return value


def _nonempty(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"an image_ref needs a non-empty {what}, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"an image_ref {what} cannot hold a NUL byte: {value!r}")
    return value


def _escape(column: str | None) -> str:
    return (column or "").replace("%", "%25").replace(":", "%3A")


def _unescape(column: str) -> str:
    # One pass, so an escaped "%" is never read again as the start of another escape.
    return _ESCAPED.sub(lambda match: "%" if match.group(1) == "25" else ":", column)
