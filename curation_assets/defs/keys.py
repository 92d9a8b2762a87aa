"""Asset keys: `<kind>/<table name>` (e.g. `caption/normalized`), so the UI groups each source kind's
assets in one folder and every key follows from a table's spec."""

from dagster import AssetKey

from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec


def asset_key(spec: TableSpec) -> AssetKey:
    return AssetKey([spec.kind.value, spec.name])


def raw_key(kind: SourceKind) -> AssetKey:
    """The raw shard files: external, not a table the pipeline writes."""
    return AssetKey([kind.value, "raw"])


def shard_set_key(kind: SourceKind) -> AssetKey:
    """The set of a kind's shards, versioned as a whole (an external asset the sensor records)."""
    return AssetKey([kind.value, "shards"])
