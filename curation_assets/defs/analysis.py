"""Score analysis over all shards: quantiles, counts and histograms, shown in the Dagster UI.

This is what users look at before choosing thresholds. It reads only the small score tables.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import SMOKE_WARNING
from curation_assets.defs.partitions import shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.scoring.analysis import histograms_markdown, score_summary, summary_markdown

ANALYSIS = registry.SCORE_ANALYSIS


def build_analysis_asset(recipe: Recipe):
    analysed = registry.analysed_columns(ANALYSIS.kind)

    @asset(**asset_spec_kwargs(ANALYSIS, recipe), kinds={"polars", "matplotlib"}, automation_condition=on_new_data())
    def score_analysis(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store, shards = data_root.store(), shard_ids(context, ANALYSIS.kind)
        frames = [store.read_shards(spec, shards, ["sample_id", *columns]) for spec, columns in analysed.items()]
        scores = frames[0]
        for frame in frames[1:]:
            scores = scores.join(frame, on="sample_id", how="full", coalesce=True)
        meaningless = [
            spec.name
            for spec in analysed
            if not store.read_shards(spec, shards, ["scores_meaningful"])["scores_meaningful"].all()
        ]
        columns = [column for columns in analysed.values() for column in columns]
        summary = score_summary(scores, columns)
        store.write(ANALYSIS, summary)
        context.log.info(f"analysed {scores.height} samples over {len(shards)} shards")
        metadata = {
            "samples": scores.height,
            "shards": len(shards),
            "quantiles": MetadataValue.md(summary_markdown(summary)),
            "histograms": MetadataValue.md(histograms_markdown(scores, columns)),
        }
        if meaningless:
            metadata["warning"] = f"{SMOKE_WARNING}: {', '.join(meaningless)}"
        return MaterializeResult(metadata=metadata)

    return score_analysis
