"""The curated pools the mix draws from, read from the table store: the caption pool is one table,
the interleaved and text pools one file per indexed shard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from curation_assets import registry
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore


def pool_shards(store: TableStore, kind: SourceKind) -> list[str]:
    """The shards a kind's curated pool has a file for (every indexed shard)."""
    return store.read(registry.CHAINS[kind].index_shards, columns=["shard_id"])["shard_id"].to_list()


def read_pool(
    store: TableStore, kind: SourceKind, columns: Sequence[str] | None = None, shards: Iterable[str] | None = None
) -> pl.DataFrame:
    """A kind's curated pool (all of it, or only the rows of `shards`), with `shard_id` always."""
    spec = registry.CHAINS[kind].curated
    wanted = None if columns is None else list(dict.fromkeys(["sample_id", "shard_id", *columns]))
    if not spec.per_shard_files:
        pool = store.read(spec, columns=wanted)
        if shards is not None:
            pool = pool.filter(pl.col("shard_id").is_in(sorted(set(shards))))
        return pool
    listed = pool_shards(store, kind)
    chosen = listed if shards is None else [shard for shard in listed if shard in set(shards)]
    frames = [store.read(spec, shard, wanted) for shard in chosen]
    if frames:
        return pl.concat(frames, how="vertical_relaxed")
    return _empty(spec, wanted)


def _empty(spec, wanted: list[str] | None) -> pl.DataFrame:
    from curation_assets.tables import SCHEMAS

    frame = pl.DataFrame(schema=SCHEMAS[spec.kind])
    return frame.select(wanted) if wanted is not None else frame


def read_pools(store: TableStore, columns: dict[SourceKind, Sequence[str]]) -> dict[str, pl.DataFrame]:
    """kind name -> pool, for the kinds named in `columns`."""
    return {kind.value: read_pool(store, kind, kind_columns) for kind, kind_columns in columns.items()}
