"""Asset keys: `<kind>/<stage>` (e.g. `caption/normalized`), so every module spells them one way and
the UI groups each source kind's assets in one folder."""

from dagster import AssetKey

from curation_assets.sources import SourceKind

RAW_STAGE = "raw"
NORMALIZED_STAGE = "normalized"
QUARANTINE_STAGE = "quarantine"


def stage_key(kind: SourceKind, stage: str) -> AssetKey:
    return AssetKey([kind.value, stage])


def raw_key(kind: SourceKind) -> AssetKey:
    return stage_key(kind, RAW_STAGE)


def normalized_key(kind: SourceKind) -> AssetKey:
    return stage_key(kind, NORMALIZED_STAGE)


def quarantine_key(kind: SourceKind) -> AssetKey:
    return stage_key(kind, QUARANTINE_STAGE)
