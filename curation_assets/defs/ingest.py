"""Per-shard ingest: the canonical table and the quarantine table of each shard."""

from collections import Counter

import polars as pl
from dagster import AssetExecutionContext, AssetOut, MaterializeResult, MetadataValue, multi_asset

from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.names import NORMALIZED_STAGE, QUARANTINE_STAGE, normalized_key, quarantine_key, raw_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.normalize import normalize_shard
from curation_assets.sources import SourceKind
from curation_assets.storage import write_parquet_atomic

# Bump when the reading logic changes what lands in the tables: it re-stales every shard's ingest.
INGEST_CODE_VERSION = "1"


def build_ingest_asset(kind: SourceKind):
    @multi_asset(
        name=f"ingest_{kind.value}",
        outs={
            normalized_key(kind).to_python_identifier(): AssetOut(
                key=normalized_key(kind),
                group_name=f"{kind.value}_ingest",
                code_version=INGEST_CODE_VERSION,
                description=f"Validated {kind.value} rows of one shard, in the canonical {kind.value} schema.",
                kinds={"parquet", "polars"},
            ),
            quarantine_key(kind).to_python_identifier(): AssetOut(
                key=quarantine_key(kind),
                group_name=f"{kind.value}_ingest",
                code_version=INGEST_CODE_VERSION,
                description=f"Rows of one {kind.value} shard that could not be used, each with a reason and detail.",
                kinds={"parquet", "polars"},
            ),
        },
        deps=[raw_key(kind)],
        partitions_def=SHARD_PARTITIONS[kind],
        # No backfill policy: one shard per run, so each shard's tables get that shard's own data
        # version (a multi-shard run would give all of them one; dagster issue #18649).
    )
    def ingest(context: AssetExecutionContext, data_root: DataRootResource):
        root = data_root.data_root()
        valid_rows, reasons, previews = 0, Counter(), []
        for shard_id in context.partition_keys:  # one shard, or a backfill's range of them
            table = normalize_shard(
                data_root.shard_file(kind, shard_id),
                on_progress=lambda n: context.log.info(f"{shard_id}: {n} rows read"),
            )
            write_parquet_atomic(table.valid, root.table_path(NORMALIZED_STAGE, kind, shard_id))
            write_parquet_atomic(table.quarantine, root.table_path(QUARANTINE_STAGE, kind, shard_id))
            context.log.info(
                f"{shard_id}: {table.valid.height} valid, {table.quarantine.height} quarantined {table.reason_counts}"
            )
            valid_rows += table.valid.height
            reasons.update(table.reason_counts)
            previews.append((table.valid, table.quarantine))
        valid_preview, quarantine_preview = previews[0]
        yield MaterializeResult(
            asset_key=normalized_key(kind),
            metadata={
                "dagster/row_count": valid_rows,
                "path": MetadataValue.path(str(root.stage_dir(NORMALIZED_STAGE, kind))),
                "preview": MetadataValue.md(_preview(valid_preview)),
            },
        )
        yield MaterializeResult(
            asset_key=quarantine_key(kind),
            metadata={
                "dagster/row_count": sum(reasons.values()),
                "path": MetadataValue.path(str(root.stage_dir(QUARANTINE_STAGE, kind))),
                "reasons": MetadataValue.json(dict(sorted(reasons.items()))),
                "preview": MetadataValue.md(_preview(quarantine_preview.select("key", "reason", "detail"))),
            },
        )

    return ingest


def _preview(frame: pl.DataFrame) -> str:
    return markdown_table(
        frame.select([c for c in frame.columns if c not in ("source_meta", "texts", "images")]), rows=8
    )


INGEST_ASSETS = [build_ingest_asset(kind) for kind in SourceKind]
