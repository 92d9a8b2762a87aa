"""Read one shard into its canonical table and its quarantine table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from curation_assets.ids import sample_id
from curation_assets.readers import Rejected, ShardFile, read_shard
from curation_assets.tables import QUARANTINE_SCHEMA, SCHEMAS

INGEST_STAGE = "ingest"


@dataclass
class NormalizedShard:
    valid: pl.DataFrame
    quarantine: pl.DataFrame

    @property
    def reason_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.quarantine["reason"].to_list()).items()))


def normalize_shard(shard: ShardFile, on_progress: Callable[[int], None] | None = None) -> NormalizedShard:
    """Every source row ends up in exactly one of the two tables. Memory holds one shard's rows
    without image bytes (those are dropped as soon as each row is checked)."""
    kind, shard_id = shard.kind.value, shard.shard_id
    valid_rows: list[dict] = []
    rejected_rows: list[dict] = []
    for count, outcome in enumerate(read_shard(shard), start=1):
        ids = {"sample_id": sample_id(kind, shard_id, outcome.key), "shard_id": shard_id, "key": outcome.key}
        if isinstance(outcome, Rejected):
            rejected_rows.append(
                {**ids, "stage": INGEST_STAGE, "reason": outcome.reason.value, "detail": outcome.detail}
            )
        else:
            valid_rows.append({**ids, **outcome.columns})
        if on_progress is not None and count % 1000 == 0:
            on_progress(count)
    return NormalizedShard(
        valid=pl.DataFrame(valid_rows, schema=SCHEMAS[shard.kind]),
        quarantine=pl.DataFrame(rejected_rows, schema=QUARANTINE_SCHEMA),
    )
