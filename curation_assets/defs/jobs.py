"""One ingest job per source kind; the new-shard sensor launches it per changed shard."""

from dagster import AssetSelection, define_asset_job

from curation_assets.defs.names import normalized_key, quarantine_key
from curation_assets.sources import SourceKind


def ingest_selection(kind: SourceKind) -> AssetSelection:
    # Everything per-shard downstream of the raw shard; later stages join this selection.
    return AssetSelection.assets(normalized_key(kind), quarantine_key(kind))


INGEST_JOBS = {
    kind: define_asset_job(
        name=f"ingest_{kind.value}_shards",
        selection=ingest_selection(kind),
        description=f"Read, validate and quarantine one {kind.value} shard.",
    )
    for kind in SourceKind
}



# Every per-shard table after ingest, for one kind: what `make demo` runs over shard ranges and what a
# UI backfill of new shards selects. Interleaved documents have no score tables yet.
SCORE_JOBS = {
    kind: define_asset_job(
        name=f"score_{kind.value}_shards",
        selection=AssetSelection.groups(f"{kind.value}_scores"),
        description=f"Compute every score table of a range of {kind.value} shards (models load once per run).",
    )
    for kind in (SourceKind.caption, SourceKind.text)
}


# Global assets over all shards, refreshed after the per-shard tables.
GLOBAL_JOB = define_asset_job(
    name="analyze_all_shards",
    selection=AssetSelection.groups("caption_analysis"),
    description="Recompute the global assets (score analysis) over every shard.",
)
