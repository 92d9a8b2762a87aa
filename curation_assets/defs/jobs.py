"""Jobs people launch by name: ingest (the new-shard sensor runs it per changed shard), scoring
over shard ranges, and the score analysis. Everything else is driven by staleness and automation."""

from dagster import AssetSelection, define_asset_job

from curation_assets import registry
from curation_assets.defs.keys import asset_key
from curation_assets.sources import SourceKind


def ingest_selection(kind: SourceKind) -> AssetSelection:
    return AssetSelection.assets(asset_key(registry.NORMALIZED[kind]), asset_key(registry.QUARANTINE[kind]))


INGEST_JOBS = {
    kind: define_asset_job(
        name=f"ingest_{kind.value}_shards",
        selection=ingest_selection(kind),
        description=f"Read, validate and quarantine one {kind.value} shard.",
    )
    for kind in SourceKind
}


# Every score table of one kind, for a UI backfill over a range of shards.
SCORE_JOBS = {
    kind: define_asset_job(
        name=f"score_{kind.value}_shards",
        selection=AssetSelection.groups(f"{kind.value}_scores"),
        description=f"Compute every score table of a range of {kind.value} shards (models load once per run).",
    )
    for kind in SourceKind
    if registry.score_tables(kind)
}


GLOBAL_JOB = define_asset_job(
    name="analyze_all_shards",
    selection=AssetSelection.groups(*(f"{kind.value}_analysis" for kind in SourceKind)),
    description="Recompute the score analysis (quantiles and histograms) of every kind over every shard.",
)
