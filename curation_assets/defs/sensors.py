"""New-shard sensors: register shard files as partitions, version them by content, request runs."""

import json
import os

from dagster import (
    AssetMaterialization,
    AssetObservation,
    DataVersion,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from curation_assets.defs.dagster_compat import DATA_VERSION_TAG
from curation_assets.defs.keys import raw_key, shard_set_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.shard_scan import ShardChange, scan_shards, shard_set_version
from curation_assets.sources import SourceKind
from curation_assets.storage import content_hash

INTERVAL_ENV = "CURATION_SENSOR_INTERVAL_SECONDS"


def sensor_interval_seconds(environ=os.environ) -> int:
    """How often the new-shard sensors scan and the automation sensor ticks: 30 s, or INTERVAL_ENV.
    Shorter turns a dropped shard around sooner (each step of a pipeline waits for a tick); each
    automation tick evaluates every asset and partition, so a large instance wants it no shorter
    than a tick takes (the tick's duration is on the sensor's page in the UI)."""
    value = environ.get(INTERVAL_ENV, "").strip()
    if not value:
        return 30
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{INTERVAL_ENV}={value!r}: give a whole number of seconds, at least 1")
    return int(value)


SCAN_INTERVAL_SECONDS = sensor_interval_seconds()


def recorded_data_version(context: SensorEvaluationContext, key, shard_id: str | None = None) -> str | None:
    record = context.instance.get_latest_data_version_record(key, is_source=False, partition_key=shard_id)
    if record is None or record.asset_materialization is None:
        return None
    return record.asset_materialization.tags.get(DATA_VERSION_TAG)


def versioned_events(key, version: str, partition: str | None, metadata: dict) -> list:
    """The events that record an external asset's version.

    Both kinds, observation first: automation only counts an external asset (partition) as present
    once it has a materialization, while the stale-status resolver reads an external asset's
    versions from observations only (dagster issue #26162). The observation goes first so the
    materialization, which the next run records as its input, is the newer event.
    """
    tags = {DATA_VERSION_TAG: DataVersion(version).value}
    return [
        AssetObservation(asset_key=key, partition=partition, tags=tags, metadata=metadata),
        AssetMaterialization(asset_key=key, partition=partition, tags=tags, metadata=metadata),
    ]


def raw_shard_events(kind: SourceKind, change: ShardChange) -> list[AssetMaterialization | AssetObservation]:
    """The events that record a shard's new content hash as its data version."""
    metadata = {"sha256": change.content_hash, "previous_sha256": change.previous_hash or ""}
    return versioned_events(raw_key(kind), change.content_hash, change.shard_id, metadata)


def build_new_shard_sensor(kind: SourceKind):
    partitions = SHARD_PARTITIONS[kind]

    @sensor(
        name=f"new_{kind.value}_shards",
        minimum_interval_seconds=SCAN_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Scans <data root>/raw/{kind.value}/: registers new shard files as partitions, records each new or "
            "changed file's sha256 as the raw shard's data version, removes the partitions of deleted files. "
            "Automation then ingests and scores exactly the new and changed shards."
        ),
    )
    def new_shards(context: SensorEvaluationContext, data_root: DataRootResource):
        root = data_root.data_root()
        stat_cache = json.loads(context.cursor) if context.cursor else {}
        scan = scan_shards(
            root.list_shards(kind),
            stat_cache,
            recorded_version=lambda shard_id: recorded_data_version(context, raw_key(kind), shard_id),
            hash_file=lambda listing: content_hash(listing.path),
        )
        context.update_cursor(json.dumps(scan.stat_cache, sort_keys=True))
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new_ids = [change.shard_id for change in scan.changes if change.shard_id not in known]
        # A registered shard whose file is gone: its partition goes too, so nothing waits for it and the
        # global tables drop its rows (its tables stay on disk until `make clean-demo` or by hand).
        removed = sorted(known - set(scan.stat_cache))
        set_version = shard_set_version(scan.stat_cache)
        set_events = []
        if recorded_data_version(context, shard_set_key(kind)) != set_version:
            set_events = versioned_events(shard_set_key(kind), set_version, None, {"shards": len(scan.stat_cache)})
        if not scan.changes and not removed and not set_events:
            return SkipReason(
                f"no new, changed or removed {kind.value} shards in {root.raw_dir(kind)} "
                f"({len(scan.stat_cache)} known, {scan.rehashed} re-hashed)"
            )
        saw = (
            f"{len(new_ids)} new, {len(scan.changes) - len(new_ids)} changed, {len(removed)} removed {kind.value} "
            "shards: " + ", ".join([change.shard_id for change in scan.changes[:20]] + removed[:20])
        )
        context.log.info(saw)
        requests = [partitions.build_add_request(new_ids)] if new_ids else []
        if removed:
            requests.append(partitions.build_delete_request(removed))
        # This sensor launches nothing (curation_automation does), so its tick reads "skipped": the
        # message says what it saw and recorded, instead of Dagster's "returned an empty result".
        return SensorResult(
            skip_reason=f"recorded {saw}; curation_automation runs what they need",
            dynamic_partitions_requests=requests,
            asset_events=[*(event for change in scan.changes for event in raw_shard_events(kind, change)), *set_events],
        )

    return new_shards


NEW_SHARD_SENSORS = [build_new_shard_sensor(kind) for kind in SourceKind]
