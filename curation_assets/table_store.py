"""Reads and writes every table by its spec: no other module builds a table path.

Per-shard tables live at `<root>/<kind>/<name>/<shard id>.parquet`, whole-scope tables at
`<root>/<kind>/<name>/<file name>`. Writes are atomic on any fsspec root (storage.py) and check the
frame against the declared columns, so a table never drifts from its spec unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import polars as pl
from upath import UPath

from curation_assets.storage import DataRoot, read_parquet, write_bytes_atomic, write_parquet_atomic
from curation_assets.table_spec import TableSpec


class TableStore:
    def __init__(self, root: DataRoot | str | os.PathLike):
        self.root = root if isinstance(root, DataRoot) else DataRoot(root)

    def folder(self, spec: TableSpec) -> UPath:
        return self.root.root / spec.kind.value / spec.name

    def path(self, spec: TableSpec, shard_id: str | None = None) -> UPath:
        if spec.per_shard_files:
            if shard_id is None:
                raise ValueError(f"{spec.qualified_name} is stored per shard: name the shard")
            return self.folder(spec) / f"{shard_id}.parquet"
        if shard_id is not None:
            raise ValueError(f"{spec.qualified_name} is one table over every shard: it has no per-shard file")
        return self.folder(spec) / spec.file_name

    def exists(self, spec: TableSpec, shard_id: str | None = None) -> bool:
        return self.path(spec, shard_id).exists()

    def write(self, spec: TableSpec, frame: pl.DataFrame, shard_id: str | None = None) -> UPath:
        spec.check_frame(frame)
        path = self.path(spec, shard_id)
        write_parquet_atomic(frame, path)
        return path

    def delete(self, spec: TableSpec, shard_id: str | None = None) -> None:
        path = self.path(spec, shard_id)
        if path.exists():
            path.unlink()

    def read(self, spec: TableSpec, shard_id: str | None = None, columns: Sequence[str] | None = None) -> pl.DataFrame:
        path = self.path(spec, shard_id)
        if not path.exists():
            where = f" for shard {shard_id}" if shard_id else ""
            raise FileNotFoundError(
                f"{spec.qualified_name} has no table{where} yet ({path}): materialize {spec.qualified_name} first"
            )
        frame = read_parquet(path)
        return frame.select(columns) if columns is not None else frame

    def read_shards(
        self, spec: TableSpec, shard_ids: Sequence[str], columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """One frame of these shards' tables, in shard order. Raises naming the shards still missing."""
        missing = [shard for shard in shard_ids if not self.exists(spec, shard)]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} shard(s) have no {spec.qualified_name} table yet (e.g. {missing[0]}): "
                f"materialize {spec.qualified_name} for them first"
            )
        frames = [self.read(spec, shard, columns) for shard in shard_ids]
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="vertical_relaxed")

    def write_json(self, spec: TableSpec, payload: Any) -> UPath:
        if spec.file_name is None or not spec.file_name.endswith(".json"):
            raise ValueError(f"{spec.qualified_name} is not stored as json")
        path = self.path(spec)
        data = json.dumps(payload, indent=2, sort_keys=True).encode()
        if not (path.exists() and path.read_bytes() == data):  # the same payload leaves the file alone
            write_bytes_atomic(data, path)
        return path

    def read_json(self, spec: TableSpec) -> Any:
        path = self.path(spec)
        if not path.exists():
            raise FileNotFoundError(f"{spec.qualified_name} is not materialized yet ({path})")
        return json.loads(path.read_text())


def content_version(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A version of what a table holds, independent of row order: equal content, equal version.

    Deciding tables return it as their Dagster data version, so a re-run that decides the same
    leaves everything downstream fresh. Serialised as JSON lines, which covers nested columns."""
    columns = list(columns) if columns is not None else list(frame.columns)
    if not columns:
        return hashlib.sha256(b"").hexdigest()[:24]
    rows = sorted(frame.select(columns).write_ndjson().splitlines())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:24]


def payload_version(payload: Any) -> str:
    """A version of a JSON-able payload (resolved thresholds, a list of versions): equal content, equal version."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
