"""Score analysis over all shards: quantiles, counts and histograms, shown in the Dagster UI.

This is what users look at before choosing thresholds. It reads only the small score tables.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.keys import asset_key
from curation_assets.defs.metadata import SMOKE_WARNING
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.scoring.analysis import histograms_markdown, score_summary, summary_markdown

ANALYSIS = registry.SCORE_ANALYSIS


def build_analysis_asset(recipe: Recipe):
    analysed = registry.analysed_columns(ANALYSIS.kind)
    columns = [column for columns in analysed.values() for column in columns]

    @asset(**asset_spec_kwargs(ANALYSIS, recipe), kinds={"polars", "matplotlib"})
    def score_analysis(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        scores = store.read(registry.SAMPLES, columns=["sample_id", "shard_id", *columns])
        summary = score_summary(scores, columns)
        store.write(ANALYSIS, summary)
        shards = scores["shard_id"].n_unique()
        context.log.info(f"analysed {scores.height} samples over {shards} shards")
        metadata = {
            "pairs": scores.height,
            "shards": shards,
            "quantiles": MetadataValue.md(summary_markdown(summary)),
            "histograms": MetadataValue.md(histograms_markdown(scores, columns)),
        }
        meaningless = [spec.name for spec in analysed if not _latest_meaningful(context, spec)]
        if meaningless:
            metadata["warning"] = f"{SMOKE_WARNING}: {', '.join(meaningless)}"
        return MaterializeResult(metadata=metadata)

    return score_analysis


def _latest_meaningful(context: AssetExecutionContext, spec) -> bool:
    """Whether the score table's latest run had meaningful (not random) weights, as it recorded."""
    event = context.instance.get_latest_materialization_event(asset_key(spec))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    value = metadata.get("scores_meaningful")
    return bool(value.value) if value is not None else True
