"""One dynamic partition per shard file, per source kind; the new-shard sensor adds them."""

from dagster import DynamicPartitionsDefinition

from curation_assets.sources import SourceKind

SHARD_PARTITIONS: dict[SourceKind, DynamicPartitionsDefinition] = {
    kind: DynamicPartitionsDefinition(name=f"{kind.value}_shards") for kind in SourceKind
}
