"""The sample index assets, one per kind: every shard's rows and scores in one table, refreshed only
where a shard's tables changed (the logic is sample_index.py; this body finds which shards changed,
reads and writes)."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.checks import expected_ids
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
from curation_assets.selection.branch_samples import interleaved_samples, text_samples
from curation_assets.selection.caption_samples import caption_samples
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec

CAPTION = registry.CAPTION
SAMPLES, SAMPLE_SHARDS = registry.SAMPLES, registry.SAMPLE_SHARDS


def schema_of(spec: TableSpec) -> dict[str, pl.DataType]:
    """The concrete polars schema of an index table (its vector columns at their stored widths)."""
    schema = {} if spec.id_column in spec.column_names else {spec.id_column: pl.String}
    for column in spec.columns:
        schema[column.name] = pl.Array(pl.UInt32, MINHASH.num_perm) if column.name == "minhash" else column.dtype
    return schema


def samples_schema() -> dict[str, pl.DataType]:
    return schema_of(SAMPLES)


def _gather_rows(kind: SourceKind, normalized: pl.DataFrame, tables: dict, recaptioned, shard: str):
    if kind is SourceKind.caption:
        return caption_samples(shard, normalized, tables, recaptioned)
    if kind is SourceKind.text:
        return text_samples(normalized, tables)
    return interleaved_samples(normalized, tables)


def build_samples_asset(recipe: Recipe, kind: SourceKind = CAPTION):
    chain = registry.CHAINS[kind]
    index, index_shards, companion = chain.index, chain.index_shards, chain.indexed_images
    reads = index.reads_under(recipe)
    row_sources = (registry.NORMALIZED[kind].name, registry.QUARANTINE[kind].name, registry.RECAPTIONED.name)
    score_specs = [registry.table(kind, name) for name in reads if name not in row_sources]
    recaption_on = kind is CAPTION and registry.RECAPTIONED.name in reads
    code_version = registry.code_version(index, recipe)
    spec_kwargs = asset_spec_kwargs(index, recipe)
    spec_kwargs["deps"] = [*spec_kwargs["deps"], shard_set_key(kind)]

    @asset(**spec_kwargs, kinds={"polars", "parquet"})
    def samples(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        shards = shard_ids(context, kind)
        storage = context.instance.event_log_storage
        latest = {
            name: storage.get_latest_storage_id_by_partition(
                asset_key(registry.table(kind, name)), DagsterEventType.ASSET_MATERIALIZATION
            )
            for name in reads
        }
        # A shard's rows are re-gathered when any of its tables was materialized again, or when this
        # asset's own code changed (which changes how rows are gathered).
        inputs = {
            shard: f"{code_version}|" + fingerprint({name: latest[name].get(shard) for name in reads}, reads)
            for shard in shards
        }

        def gather(shard: str):
            missing = [name for name in reads if not store.exists(registry.table(kind, name), shard)]
            if missing:
                raise ShardNotReady(f"no {', '.join(missing)} table yet")
            normalized = store.read(registry.NORMALIZED[kind], shard)
            tables = {
                spec.name: store.read(spec, shard, list(dict.fromkeys(["sample_id", *spec.column_names])))
                for spec in score_specs
            }
            # The coverage checks cannot block a range run for one bad shard without blocking all of
            # its shards, so the index applies the same rule itself: a shard with a gap waits.
            for spec in score_specs:
                scores = [column.name for column in spec.columns if not column.nullable]
                expected = expected_ids(spec, normalized)
                problem = coverage_problems(shard, tables[spec.name], expected, scores, spec.id_column)
                if problem:
                    raise ShardNotReady(f"{spec.name}: {problem}")
            recaptioned = store.read(registry.RECAPTIONED, shard) if recaption_on else None
            return _gather_rows(kind, normalized, tables, recaptioned, shard)

        def previous(spec: TableSpec) -> pl.DataFrame | None:
            return store.read(spec) if store.exists(spec) else None

        def quarantined(shard: str) -> str:
            return quarantine_summary(store.read(registry.QUARANTINE[kind], shard, ["reason", "detail"]))

        refresh = refresh_index(
            previous(index),
            previous(index_shards),
            inputs,
            gather,
            schema_of(index),
            quarantined,
            companion=(previous(companion), schema_of(companion)) if companion else None,
        )
        store.write(index, refresh.samples)
        store.write(index_shards, refresh.shards)
        if companion:
            store.write(companion, refresh.companion)
        context.log.info(
            f"{len(refresh.refreshed)} shard(s) re-read, {len(refresh.removed)} removed, "
            f"{len(refresh.waiting)} waiting; {refresh.samples.height} rows over {refresh.shards.height} shards"
        )
        waiting = pl.DataFrame(
            {"shard": list(refresh.waiting), "why": list(refresh.waiting.values())},
            schema={"shard": pl.String, "why": pl.String},
        )
        metadata = {
            "dagster/row_count": refresh.samples.height,
            "shards": refresh.shards.height,
            "shards_reread": len(refresh.refreshed),
            "shards_removed": len(refresh.removed),
            "shards_waiting": len(refresh.waiting),
            "waiting": MetadataValue.md(markdown_table(waiting, rows=20)),
        }
        if kind is CAPTION:
            metadata["recaptioned_pairs"] = int((refresh.samples["caption_source"] == "recaptioned").sum())
        if companion:
            metadata["images"] = refresh.companion.height
        return MaterializeResult(data_version=DataVersion(refresh.version), metadata=metadata)

    return samples
