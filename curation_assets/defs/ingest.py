"""Per-shard ingest: the canonical table and the quarantine table of each shard."""


import polars as pl
from dagster import AssetExecutionContext, AssetOut, MaterializeResult, MetadataValue, multi_asset

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
                group_name="ingest",
                code_version=INGEST_CODE_VERSION,
                description=f"Validated {kind.value} rows of one shard, in the canonical {kind.value} schema.",
                kinds={"parquet", "polars"},
            ),
            quarantine_key(kind).to_python_identifier(): AssetOut(
                key=quarantine_key(kind),
                group_name="ingest",
                code_version=INGEST_CODE_VERSION,
                description=f"Rows of one {kind.value} shard that could not be used, each with a reason and detail.",
                kinds={"parquet", "polars"},
            ),
        },
        deps=[raw_key(kind)],
        partitions_def=SHARD_PARTITIONS[kind],
    )
    def ingest(context: AssetExecutionContext, data_root: DataRootResource):
        shard_id = context.partition_key
        shard = data_root.shard_file(kind, shard_id)
        root = data_root.data_root()
        table = normalize_shard(shard, on_progress=lambda n: context.log.info(f"{shard_id}: {n} rows read"))
        valid_path = root.table_path(NORMALIZED_STAGE, kind, shard_id)
        quarantine_path = root.table_path(QUARANTINE_STAGE, kind, shard_id)
        write_parquet_atomic(table.valid, valid_path)
        write_parquet_atomic(table.quarantine, quarantine_path)
        context.log.info(
            f"{shard_id}: {table.valid.height} valid, {table.quarantine.height} quarantined {table.reason_counts}"
        )
        yield MaterializeResult(
            asset_key=normalized_key(kind),
            metadata={
                "dagster/row_count": table.valid.height,
                "path": MetadataValue.path(str(valid_path)),
                "preview": MetadataValue.md(_preview(table.valid)),
            },
        )
        yield MaterializeResult(
            asset_key=quarantine_key(kind),
            metadata={
                "dagster/row_count": table.quarantine.height,
                "path": MetadataValue.path(str(quarantine_path)),
                "reasons": MetadataValue.json(table.reason_counts),
                "preview": MetadataValue.md(_preview(table.quarantine.select("key", "reason", "detail"))),
            },
        )

    return ingest


def _preview(frame: pl.DataFrame, rows: int = 8) -> str:
    """The first rows as a markdown table for the UI (polars renders it)."""
    shown = frame.select([c for c in frame.columns if c not in ("source_meta", "texts", "images")]).head(rows)
    if shown.is_empty():
        return "_no rows_"
    with pl.Config(
        tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True, fmt_str_lengths=60
    ):
        return str(shown)


INGEST_ASSETS = [build_ingest_asset(kind) for kind in SourceKind]
