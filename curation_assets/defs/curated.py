"""The curated caption pool per shard (selected pairs with their final captions) and its manifest."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import SHARD_PARTITIONS, shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import SHARD_BACKFILL_POLICY, asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.selection.curated_pool import curated_pool
from curation_assets.table_store import content_version

CAPTION = registry.CAPTION
CURATED, MANIFEST = registry.CURATED, registry.CURATED_MANIFEST


def build_curated_assets(recipe: Recipe) -> list:
    recaption_on = recipe.recaption.enabled
    repeat = recipe.curated.repeat

    @asset(
        **asset_spec_kwargs(CURATED, recipe),
        partitions_def=SHARD_PARTITIONS[CAPTION],
        backfill_policy=SHARD_BACKFILL_POLICY,
        kinds={"polars", "parquet"},
        automation_condition=on_new_data(),
    )
    def curated(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        selected = store.read(registry.SELECTED).filter(pl.col("selected"))
        pools = []
        for shard_id in context.partition_keys:
            recaptioned = store.read(registry.RECAPTIONED, shard_id) if recaption_on else None
            in_shard = selected.filter(pl.col("shard_id") == shard_id)["sample_id"]
            pool = curated_pool(store.read(registry.NORMALIZED[CAPTION], shard_id), in_shard, recaptioned)
            store.write(CURATED, pool, shard_id)
            pools.append(pool)
        pool = pl.concat(pools)
        return MaterializeResult(
            data_version=DataVersion(content_version(pool, ["sample_id", "caption"])),
            metadata={
                "dagster/row_count": pool.height,
                "shards_in_run": len(pools),
                "by_source": MetadataValue.md(markdown_table(pool.group_by("caption_source").len())),
            },
        )

    @asset(**asset_spec_kwargs(MANIFEST, recipe), kinds={"polars", "parquet"}, automation_condition=on_new_data())
    def curated_manifest(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        pool = store.read_shards(CURATED, shard_ids(context, CAPTION), ["sample_id", "shard_id", "caption_source"])
        manifest = pool.with_columns(pl.lit(repeat, dtype=pl.Int32).alias("repeat"))
        store.write(MANIFEST, manifest)
        return MaterializeResult(
            data_version=DataVersion(content_version(manifest, ["sample_id", "repeat"])),
            metadata={
                "pairs": manifest.height,
                "pairs_in_mix": int(manifest["repeat"].sum()),
                "recaptioned": int((manifest["caption_source"] == "recaptioned").sum()),
            },
        )

    return [curated, curated_manifest]
