"""Score columns by name, gathered from whichever per-shard tables hold them (the registry knows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from curation_assets import registry
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore


def read_score_columns(
    store: TableStore, kind: SourceKind, shard_ids: Sequence[str], columns: Iterable[str]
) -> pl.DataFrame:
    """One row per sample of these shards: `sample_id` and each named score column."""
    by_table: dict[registry.TableSpec, list[str]] = {}
    for column in sorted(set(columns)):
        by_table.setdefault(registry.table_of_column(kind, column), []).append(column)
    wide: pl.DataFrame | None = None
    for spec, names in by_table.items():
        frame = store.read_shards(spec, shard_ids, ["sample_id", *names])
        wide = frame if wide is None else wide.join(frame, on="sample_id", how="full", coalesce=True)
    if wide is None:
        raise ValueError("no score columns asked for")
    return wide
