"""Raw shards: external files, one partition each, versioned by content hash by the sensor."""

from dagster import AssetSpec

from curation_assets.defs.keys import raw_key, shard_set_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.sources import SHARD_SUFFIXES, SourceKind


def raw_shard_spec(kind: SourceKind) -> AssetSpec:
    return AssetSpec(
        key=raw_key(kind),
        partitions_def=SHARD_PARTITIONS[kind],
        group_name="raw",
        description=(
            f"{kind.value} shard files under <data root>/raw/{kind.value}/ ({', '.join(SHARD_SUFFIXES[kind])}). "
            "Registered and versioned (sha256 of the bytes) by the new-shard sensor; never written by Dagster."
        ),
        kinds={"file"},
    )


RAW_SHARDS = [raw_shard_spec(kind) for kind in SourceKind]


def shard_set_spec(kind: SourceKind) -> AssetSpec:
    return AssetSpec(
        key=shard_set_key(kind),
        group_name="raw",
        description=(
            f"The set of {kind.value} shards and their sha256s, as one version recorded by the new-shard sensor. "
            "The global assets read it, so a new, edited or removed shard makes them stale at any shard count "
            "(Dagster's stale check ignores inputs with 100 or more partitions)."
        ),
        kinds={"file"},
    )


SHARD_SETS = [shard_set_spec(kind) for kind in SourceKind]
