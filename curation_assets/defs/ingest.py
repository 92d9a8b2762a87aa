"""Per-shard ingest: the canonical table and the quarantine table of each shard."""

from collections import Counter

import polars as pl
from dagster import AssetExecutionContext, AssetOut, DataVersion, MaterializeResult, MetadataValue, multi_asset

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.keys import asset_key, raw_key
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import Recipe
from curation_assets.report.quarantine import quarantine_examples
from curation_assets.sources import SourceKind
from curation_assets.table_store import content_version


def build_ingest_asset(kind: SourceKind, recipe: Recipe):
    normalized, quarantine = registry.NORMALIZED[kind], registry.QUARANTINE[kind]

    def out(spec) -> AssetOut:
        return AssetOut(
            key=asset_key(spec),
            group_name=f"{kind.value}_{spec.group}",
            code_version=registry.code_version(spec, recipe),
            description=spec.description,
            kinds={"parquet", "polars"},
            # A new or changed raw shard (recorded by the new-shard sensor) makes ingest behind its input.
            automation_condition=on_new_data(),
        )

    @multi_asset(
        name=f"ingest_{kind.value}",
        outs={spec.name: out(spec) for spec in (normalized, quarantine)},
        deps=[raw_key(kind)],
        partitions_def=SHARD_PARTITIONS[kind],
        # No backfill policy: one shard per run, so each shard's tables get that shard's own data
        # version (a multi-shard run would give all of them one; dagster issue #18649).
    )
    def ingest(context: AssetExecutionContext, data_root: DataRootResource):
        store = data_root.store()
        valid, rejected, reasons = [], [], Counter()
        for shard_id in context.partition_keys:
            table = normalize_shard(
                data_root.shard_file(kind, shard_id),
                on_progress=lambda rows, shard_id=shard_id: context.log.info(f"{shard_id}: {rows} rows read"),
            )
            store.write(normalized, table.valid, shard_id)
            store.write(quarantine, table.quarantine, shard_id)
            context.log.info(f"{shard_id}: {table.valid.height} valid, {table.quarantine.height} quarantined")
            valid.append(table.valid)
            rejected.append(table.quarantine.with_columns(pl.lit(shard_id).alias("shard_id")))
            reasons.update(table.reason_counts)
        valid_rows, quarantined_rows = pl.concat(valid), pl.concat(rejected)
        # Versions from content: an edited shard whose rows come out the same re-runs nothing after it.
        yield MaterializeResult(
            asset_key=asset_key(normalized),
            data_version=DataVersion(content_version(valid_rows)),
            metadata={
                "dagster/row_count": valid_rows.height,
                "path": MetadataValue.path(str(store.folder(normalized))),
                "preview": MetadataValue.md(_preview(valid_rows)),
            },
        )
        yield MaterializeResult(
            asset_key=asset_key(quarantine),
            data_version=DataVersion(content_version(quarantined_rows.drop("shard_id"))),
            metadata={
                "dagster/row_count": quarantined_rows.height,
                "path": MetadataValue.path(str(store.folder(quarantine))),
                "reasons": MetadataValue.json(dict(sorted(reasons.items()))),
                # A sample with every reason shown before any shows twice (a rare reason is not crowded out).
                "examples": MetadataValue.md(quarantine_examples(quarantined_rows)),
            },
        )

    return ingest


def _preview(frame: pl.DataFrame) -> str:
    return markdown_table(
        frame.select([c for c in frame.columns if c not in ("source_meta", "texts", "images")]), rows=8
    )


def build_ingest_assets(recipe: Recipe) -> list:
    return [build_ingest_asset(kind, recipe) for kind in SourceKind]
