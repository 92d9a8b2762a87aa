"""The sample index asset: every shard's pairs and scores in one table, refreshed only where a shard's
tables changed (the logic is sample_index.py; this body finds which shards changed and writes)."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.dagster_compat import DagsterEventType
from curation_assets.defs.keys import asset_key, shard_set_key
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.invariants import coverage_problems
from curation_assets.recipe import Recipe
from curation_assets.sample_index import ShardNotReady, fingerprint, quarantine_summary, refresh_index
from curation_assets.scoring.hashes import MINHASH
from curation_assets.selection.caption_samples import caption_samples

SAMPLES, SAMPLE_SHARDS = registry.SAMPLES, registry.SAMPLE_SHARDS
CAPTION = registry.CAPTION


def samples_schema() -> dict[str, pl.DataType]:
    schema = {"sample_id": pl.String}
    for column in SAMPLES.columns:
        schema[column.name] = pl.Array(pl.UInt32, MINHASH.num_perm) if column.name == "minhash" else column.dtype
    return schema


def build_samples_asset(recipe: Recipe):
    reads = SAMPLES.reads_under(recipe)
    row_sources = (registry.NORMALIZED[CAPTION].name, registry.QUARANTINE[CAPTION].name, registry.RECAPTIONED.name)
    score_specs = [registry.table(CAPTION, name) for name in reads if name not in row_sources]
    recaption_on = registry.RECAPTIONED.name in reads
    code_version = registry.code_version(SAMPLES, recipe)
    spec_kwargs = asset_spec_kwargs(SAMPLES, recipe)
    spec_kwargs["deps"] = [*spec_kwargs["deps"], shard_set_key(CAPTION)]

    @asset(**spec_kwargs, kinds={"polars", "parquet"})
    def samples(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        shards = shard_ids(context, CAPTION)
        storage = context.instance.event_log_storage
        latest = {
            name: storage.get_latest_storage_id_by_partition(
                asset_key(registry.table(CAPTION, name)), DagsterEventType.ASSET_MATERIALIZATION
            )
            for name in reads
        }
        # A shard's rows are re-gathered when any of its tables was materialized again, or when this
        # asset's own code changed (which changes how rows are gathered).
        inputs = {
            shard: f"{code_version}|" + fingerprint({name: latest[name].get(shard) for name in reads}, reads)
            for shard in shards
        }

        def gather(shard: str) -> pl.DataFrame:
            missing = [name for name in reads if not store.exists(registry.table(CAPTION, name), shard)]
            if missing:
                raise ShardNotReady(f"no {', '.join(missing)} table yet")
            normalized = store.read(registry.NORMALIZED[CAPTION], shard)
            tables = {spec.name: store.read(spec, shard, ["sample_id", *spec.column_names]) for spec in score_specs}
            # The coverage checks cannot block a range run for one bad shard without blocking all of
            # its shards, so the index applies the same rule itself: a shard with a gap waits.
            for name, frame in tables.items():
                problem = coverage_problems(shard, frame, normalized["sample_id"], frame.columns[1:])
                if problem:
                    raise ShardNotReady(f"{name}: {problem}")
            recaptioned = store.read(registry.RECAPTIONED, shard) if recaption_on else None
            return caption_samples(shard, normalized, tables, recaptioned)

        previous = store.read(SAMPLES) if store.exists(SAMPLES) else None
        previous_shards = store.read(SAMPLE_SHARDS) if store.exists(SAMPLE_SHARDS) else None

        def quarantined(shard: str) -> str:
            return quarantine_summary(store.read(registry.QUARANTINE[CAPTION], shard, ["reason", "detail"]))

        refresh = refresh_index(previous, previous_shards, inputs, gather, samples_schema(), quarantined)
        store.write(SAMPLES, refresh.samples)
        store.write(SAMPLE_SHARDS, refresh.shards)
        context.log.info(
            f"{len(refresh.refreshed)} shard(s) re-read, {len(refresh.removed)} removed, "
            f"{len(refresh.waiting)} waiting; {refresh.samples.height} pairs over {refresh.shards.height} shards"
        )
        waiting = pl.DataFrame(
            {"shard": list(refresh.waiting), "why": list(refresh.waiting.values())},
            schema={"shard": pl.String, "why": pl.String},
        )
        return MaterializeResult(
            data_version=DataVersion(refresh.version),
            metadata={
                "dagster/row_count": refresh.samples.height,
                "shards": refresh.shards.height,
                "shards_reread": len(refresh.refreshed),
                "shards_removed": len(refresh.removed),
                "shards_waiting": len(refresh.waiting),
                "waiting": MetadataValue.md(markdown_table(waiting, rows=20)),
                "recaptioned_pairs": int((refresh.samples["caption_source"] == "recaptioned").sum()),
            },
        )

    return samples
