"""Image bytes for report thumbnails, read back from the shards by each sample's image_ref."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from curation_assets.image_source import iter_image_bytes
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot

# The most images one call reads: reports show tens of thumbnails, never a shard's worth.
MAX_IMAGES = 500


class ShardImages:
    """`image_bytes(sample_ids) -> {sample_id: bytes}` over `refs` (sample_id, shard_id, image_ref),
    reading each shard once per call (image_source plans one pass over a tar). Images that cannot be
    read (a shard since deleted or rewritten) are left out and show as placeholders: a report never
    fails the materialization it describes. `errors` keeps the last reason per shard."""

    def __init__(self, refs: pl.DataFrame, data_root: DataRoot | str, kind: SourceKind = SourceKind.caption):
        self.refs = refs.select("sample_id", "shard_id", "image_ref")
        self.root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
        self.kind = kind
        self.errors: dict[str, str] = {}

    def __call__(self, sample_ids: Sequence[str]) -> Mapping[str, bytes]:
        wanted = self.refs.filter(pl.col("sample_id").is_in(list(sample_ids)[:MAX_IMAGES]))
        found: dict[str, bytes] = {}
        for (shard_id,), rows in wanted.group_by("shard_id", maintain_order=True):
            ids = rows["sample_id"].to_list()
            shard = ShardFile(self.kind, self.root.raw_dir(self.kind) / shard_id, self.root.root)
            try:
                for position, data in iter_image_bytes(shard, rows["image_ref"].to_list()):
                    found[ids[position]] = data
            except Exception as error:  # a missing or changed shard costs its thumbnails, not the report
                self.errors[shard_id] = f"{type(error).__name__}: {error}"
        return found
