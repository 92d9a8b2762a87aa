"""Asset checks: every row of every shard is accounted for."""


from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from curation_assets.defs.names import NORMALIZED_STAGE, QUARANTINE_STAGE, normalized_key, quarantine_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
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
        shard_id = context.partition_key
        root = data_root.data_root()
        valid = read_parquet(root.table_path(NORMALIZED_STAGE, kind, shard_id))
        quarantined = read_parquet(root.table_path(QUARANTINE_STAGE, kind, shard_id))
        rows_in = count_source_rows(data_root.shard_file(kind, shard_id))
        ids = valid["sample_id"].append(quarantined["sample_id"])
        duplicate_ids = ids.len() - ids.n_unique()
        accounted = valid.height + quarantined.height
        return AssetCheckResult(
            passed=accounted == rows_in and duplicate_ids == 0,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{rows_in} rows in, {valid.height} valid + {quarantined.height} quarantined = {accounted}"
                + (f"; {duplicate_ids} duplicate sample ids" if duplicate_ids else "")
            ),
            metadata={
                "rows_in": rows_in,
                "valid": valid.height,
                "quarantined": quarantined.height,
                "unaccounted": rows_in - accounted,
                "duplicate_sample_ids": duplicate_ids,
            },
        )

    return rows_accounted_for


INGEST_CHECKS = [build_rows_accounted_check(kind) for kind in SourceKind]
