"""Asset checks: every row of every shard is accounted for."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from curation_assets.defs.names import NORMALIZED_STAGE, QUARANTINE_STAGE, normalized_key, quarantine_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import ShardTable
from curation_assets.readers import count_source_rows
from curation_assets.sources import SourceKind
from curation_assets.storage import read_parquet


def build_rows_accounted_check(kind: SourceKind):
    @asset_check(
        name="rows_accounted_for",
        asset=normalized_key(kind),
        additional_deps=[quarantine_key(kind)],
        partitions_def=SHARD_PARTITIONS[kind],
        description=(
            "Rows in the shard (counted from file metadata, lines or tar headers, not by the reader) "
            "equal valid rows plus quarantined rows, with no sample id twice."
        ),
        blocking=True,
    )
    def rows_accounted_for(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        root = data_root.data_root()
        per_shard = [_account(root, data_root, kind, shard_id) for shard_id in context.partition_keys]
        failures = [row for row in per_shard if row["unaccounted"] or row["duplicate_sample_ids"]]
        totals = {
            name: sum(row[name] for row in per_shard)
            for name in ("rows_in", "valid", "quarantined", "unaccounted", "duplicate_sample_ids")
        }
        description = (
            f"{totals['rows_in']} rows in, {totals['valid']} valid + {totals['quarantined']} quarantined = "
            f"{totals['valid'] + totals['quarantined']}"
        )
        if failures:
            description += "; mismatched shards: " + ", ".join(
                f"{row['shard']} ({row['unaccounted']:+d} rows, {row['duplicate_sample_ids']} duplicate ids)"
                for row in failures
            )
        return AssetCheckResult(
            passed=not failures,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata={**totals, "shards": len(per_shard)},
        )

    return rows_accounted_for


INGEST_CHECKS = [build_rows_accounted_check(kind) for kind in SourceKind]


def _account(root, data_root: DataRootResource, kind: SourceKind, shard_id: str) -> dict:
    valid = read_parquet(root.table_path(NORMALIZED_STAGE, kind, shard_id))
    quarantined = read_parquet(root.table_path(QUARANTINE_STAGE, kind, shard_id))
    rows_in = count_source_rows(data_root.shard_file(kind, shard_id))
    ids = valid["sample_id"].append(quarantined["sample_id"])
    return {
        "shard": shard_id,
        "rows_in": rows_in,
        "valid": valid.height,
        "quarantined": quarantined.height,
        "unaccounted": rows_in - valid.height - quarantined.height,
        "duplicate_sample_ids": ids.len() - ids.n_unique(),
    }


def build_coverage_check(table: ShardTable):
    """A score table must hold exactly one row per valid row of its shard, with every score set."""

    @asset_check(
        name="covers_every_valid_row",
        asset=table.key,
        additional_deps=[normalized_key(table.kind)],
        partitions_def=SHARD_PARTITIONS[table.kind],
        description="Same sample ids as the shard's normalized table, no missing or NaN values.",
        blocking=True,
    )
    def covers_every_valid_row(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        root = data_root.data_root()
        problems = []
        for shard_id in context.partition_keys:
            scores = read_parquet(root.table_path(table.name, table.kind, shard_id))
            expected = read_parquet(root.table_path(NORMALIZED_STAGE, table.kind, shard_id))["sample_id"]
            missing = expected.len() - expected.is_in(scores["sample_id"].implode()).sum()
            extra = scores.height - expected.len() + missing
            nulls = sum(scores[column].null_count() for column in scores.columns)
            nans = sum(
                int(scores[column].is_nan().sum()) for column, dtype in scores.schema.items() if dtype.is_float()
            )
            if missing or extra or nulls or nans:
                problems.append(f"{shard_id}: {missing} missing, {extra} extra, {nulls} null, {nans} NaN")
        return AssetCheckResult(
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(problems) or f"{len(context.partition_keys)} shard(s) fully covered",
        )

    return covers_every_valid_row
