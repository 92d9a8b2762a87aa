"""One dynamic partition per shard file, per source kind; the new-shard sensor adds them."""

from dagster import DynamicPartitionsDefinition

from curation_assets.sources import SourceKind

SHARD_PARTITIONS: dict[SourceKind, DynamicPartitionsDefinition] = {
    kind: DynamicPartitionsDefinition(name=f"{kind.value}_shards") for kind in SourceKind
}


def shard_ids(context, kind: SourceKind) -> list[str]:
    """Every registered shard of a kind, in name order (what a global asset reads)."""
    return sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[kind].name))
