"""New-shard sensors: register shard files as partitions, version them by content, request runs."""

import json

from dagster import (
    AssetMaterialization,
    AssetObservation,
    DataVersion,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from curation_assets.defs.dagster_compat import DATA_VERSION_TAG
from curation_assets.defs.jobs import INGEST_JOBS
from curation_assets.defs.keys import raw_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.shard_scan import ShardChange, scan_shards
from curation_assets.sources import SourceKind
from curation_assets.storage import content_hash

SCAN_INTERVAL_SECONDS = 30


def recorded_data_version(context: SensorEvaluationContext, kind: SourceKind, shard_id: str) -> str | None:
    record = context.instance.get_latest_data_version_record(raw_key(kind), is_source=False, partition_key=shard_id)
    if record is None or record.asset_materialization is None:
        return None
    return record.asset_materialization.tags.get(DATA_VERSION_TAG)


def raw_shard_events(kind: SourceKind, change: ShardChange) -> list[AssetMaterialization | AssetObservation]:
    """The events that record a shard's new content hash as its data version.

    Both kinds, observation first: automation only counts an external asset's partition as present
    once it has a materialization, while the stale-status resolver reads an external asset's
    versions from observations only (dagster issue #26162). The observation goes first so the
    materialization, which the next ingest records as its input, is the newer event.
    """
    tags = {DATA_VERSION_TAG: DataVersion(change.content_hash).value}
    metadata = {"sha256": change.content_hash, "previous_sha256": change.previous_hash or ""}
    return [
        AssetObservation(asset_key=raw_key(kind), partition=change.shard_id, tags=tags, metadata=metadata),
        AssetMaterialization(asset_key=raw_key(kind), partition=change.shard_id, tags=tags, metadata=metadata),
    ]


def build_new_shard_sensor(kind: SourceKind):
    job = INGEST_JOBS[kind]
    partitions = SHARD_PARTITIONS[kind]

    @sensor(
        name=f"new_{kind.value}_shards",
        job=job,
        minimum_interval_seconds=SCAN_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Scans <data root>/raw/{kind.value}/: registers new shard files as partitions, records each new or "
            "changed file's sha256 as the raw shard's data version, and ingests exactly those shards."
        ),
    )
    def new_shards(context: SensorEvaluationContext, data_root: DataRootResource):
        root = data_root.data_root()
        stat_cache = json.loads(context.cursor) if context.cursor else {}
        scan = scan_shards(
            root.list_shards(kind),
            stat_cache,
            recorded_version=lambda shard_id: recorded_data_version(context, kind, shard_id),
            hash_file=lambda listing: content_hash(listing.path),
        )
        context.update_cursor(json.dumps(scan.stat_cache, sort_keys=True))
        if not scan.changes:
            return SkipReason(
                f"no new or changed {kind.value} shards in {root.raw_dir(kind)} "
                f"({len(scan.stat_cache)} known, {scan.rehashed} re-hashed)"
            )
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new_ids = [change.shard_id for change in scan.changes if change.shard_id not in known]
        context.log.info(
            f"{len(new_ids)} new and {len(scan.changes) - len(new_ids)} changed {kind.value} shards: "
            + ", ".join(change.shard_id for change in scan.changes[:20])
        )
        return SensorResult(
            dynamic_partitions_requests=[partitions.build_add_request(new_ids)] if new_ids else [],
            asset_events=[event for change in scan.changes for event in raw_shard_events(kind, change)],
            run_requests=[
                RunRequest(partition_key=change.shard_id, tags={"curation/shard_sha256": change.content_hash})
                for change in scan.changes
            ],
        )

    return new_shards


NEW_SHARD_SENSORS = [build_new_shard_sensor(kind) for kind in SourceKind]
