"""Asset keys, one per stage and source kind, so every module spells them the same way."""

from dagster import AssetKey

from curation_assets.sources import SourceKind

NORMALIZED_STAGE = "normalized"
QUARANTINE_STAGE = "quarantine"


def raw_key(kind: SourceKind) -> AssetKey:
    return AssetKey(f"raw_{kind.value}")


def normalized_key(kind: SourceKind) -> AssetKey:
    return AssetKey(f"{NORMALIZED_STAGE}_{kind.value}")


def quarantine_key(kind: SourceKind) -> AssetKey:
    return AssetKey(f"{QUARANTINE_STAGE}_{kind.value}")
