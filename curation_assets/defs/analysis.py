"""The curator's first page per kind: score histograms with the recipe's bounds and what each drops,
the filter funnel and the quarantine funnel, as metadata laid out to show without a click.

The pictures and tables are pure functions (report/); this body reads the tables and attaches them.
The funnel is decided here exactly as caption/filtered decides (the same function over the same
inputs), so the page reads right even before caption/filtered has run.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.keys import asset_key
from curation_assets.defs.metadata import SMOKE_WARNING, markdown_table
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.report import filter_funnel, quarantine_funnel, score_panels
from curation_assets.sample_index import quarantine_rows
from curation_assets.scoring.analysis import score_summary, summary_markdown
from curation_assets.selection.decisions import CAPTION_RANK_BY, decide_samples
from curation_assets.selection.thresholds import from_payload

ANALYSIS = registry.SCORE_ANALYSIS


def build_analysis_asset(recipe: Recipe):
    analysed = registry.analysed_columns(ANALYSIS.kind)
    columns = [column for columns in analysed.values() for column in columns]
    dedup_on = recipe.dedup.enabled

    @asset(**asset_spec_kwargs(ANALYSIS, recipe), kinds={"polars", "svg"})
    def score_analysis(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        scores = store.read(registry.SAMPLES, columns=["sample_id", "shard_id", *columns])
        summary = score_summary(scores, columns)
        store.write(ANALYSIS, summary)
        rules = from_payload(store.read_json(registry.SELECTION_THRESHOLDS)["rules"])
        groups = store.read(registry.DEDUP) if dedup_on else None
        decisions = decide_samples(scores, rules, groups, rank_by=CAPTION_RANK_BY)
        funnel, per_shard = filter_funnel(decisions, rules)
        indexed = store.read(registry.SAMPLE_SHARDS)
        quarantined, quarantined_per_shard = quarantine_funnel(
            quarantine_rows(indexed), dict(indexed.select("shard_id", "rows").iter_rows())
        )
        shards = scores["shard_id"].n_unique()
        context.log.info(f"analysed {scores.height} samples over {shards} shards")
        metadata = {
            "pairs": scores.height,
            "shards": shards,
            # One entry per score: Dagster shows short markdown entries on the page, longer ones behind a click.
            **{column: MetadataValue.md(panel) for column, panel in score_panels(scores, columns, rules).items()},
            "funnel": MetadataValue.md(funnel),
            "funnel_per_shard": MetadataValue.md(markdown_table(per_shard, rows=50)),
            "quarantined": MetadataValue.md(quarantined),
            "quarantined_per_shard": MetadataValue.md(markdown_table(quarantined_per_shard, rows=50)),
            "quantiles": MetadataValue.md(summary_markdown(summary)),
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
