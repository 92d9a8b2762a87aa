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

