"""The curated caption pool (every selected pair with its final caption) and its manifest."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.selection.curated_pool import curated_pool
from curation_assets.table_store import content_version

CURATED = registry.CURATED


def build_curated_assets(recipe: Recipe) -> list:
    @asset(**asset_spec_kwargs(CURATED, recipe), kinds={"polars", "parquet"})
    def curated(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        selected = store.read(registry.SELECTED, columns=["sample_id", "selected"])
        pool = curated_pool(store.read(registry.SAMPLES, columns=["sample_id", *CURATED.column_names]), selected)
        store.write(CURATED, pool)
        by_shard = pool.group_by("shard_id").len().sort("shard_id")
        return MaterializeResult(
            data_version=DataVersion(content_version(pool, ["sample_id", "caption"])),
            metadata={
                "dagster/row_count": pool.height,
                "by_source": MetadataValue.md(markdown_table(pool.group_by("caption_source").len())),
                "by_shard": MetadataValue.md(markdown_table(by_shard, rows=50)),
            },
        )

    return [curated]
