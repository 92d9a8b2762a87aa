"""The data root: where raw shards are found and where every table is written.

The root is any fsspec URL (a local folder by default, `s3://bucket/prefix` on a cluster); all
paths go through universal-pathlib so the same code serves both.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from upath import UPath

from curation_assets.sources import SourceKind, is_shard_file

HASH_CHUNK = 8 << 20


@dataclass(frozen=True)
class ShardListing:
    shard_id: str
    path: UPath
    size: int
    mtime: float


class DataRoot:
    def __init__(self, url: str | os.PathLike):
        self.root = UPath(url)
        if self.is_local:
            self.root = UPath(os.path.abspath(str(url)))

    @property
    def is_local(self) -> bool:
        return self.root.protocol in ("", "file", "local")

    def raw_dir(self, kind: SourceKind) -> UPath:
        return self.root / "raw" / kind.value

    def stage_dir(self, stage: str, kind: SourceKind) -> UPath:
        """`<root>/<kind>/<stage>/`: mirrors the asset key `<kind>/<stage>`."""
        return self.root / kind.value / stage

    def table_path(self, stage: str, kind: SourceKind, shard_id: str) -> UPath:
        """One table file per kind, stage and shard: `<root>/<kind>/<stage>/<shard id>.parquet`."""
        return self.stage_dir(stage, kind) / f"{shard_id}.parquet"

    def list_shards(self, kind: SourceKind) -> Iterator[ShardListing]:
        """Shard files directly inside raw/<kind>/, in name order; sub-folders hold referenced images."""
        folder = self.raw_dir(kind)
        if not folder.exists():
            return
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if is_shard_file(kind, path.name) and path.is_file():
                info = path.stat()
                yield ShardListing(path.name, path, info.st_size, info.st_mtime)


def content_hash(path: UPath) -> str:
    """sha256 of a file's bytes, streamed: the shard's data version."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(data: bytes, path: UPath) -> None:
    """Write a file so that readers see the old one or the whole new one, never half of it.

    Locally: a temp file in the same folder, then an atomic rename. On object stores a single PUT
    is already all-or-nothing, so the finished bytes go up in one write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.protocol not in ("", "file", "local"):
        path.write_bytes(data)
        return
    # A write killed before its rename left a temp file; the next write of the same file clears it
    # (one writer per table file at a time: a shard's table is written by one step).
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent.path, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path.path)
    except BaseException:
        os.unlink(temp_name)
        raise


def write_parquet_atomic(frame: pl.DataFrame, path: UPath) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    write_bytes_atomic(buffer.getvalue(), path)


def read_parquet(path: UPath) -> pl.DataFrame:
    with path.open("rb") as handle:
        return pl.read_parquet(handle)
