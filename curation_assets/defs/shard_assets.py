"""One factory for every per-shard table computed by a registered computation (scores, recaptions).

For each shard in the run's partition range: build the shard's `ShardWork`, call the table's
computation, write its table. Runs may cover many shards (a backfill groups up to SHARDS_PER_RUN per
run), so a model resource is loaded once per run, not per shard.
"""

import time
import traceback
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, BackfillPolicy, Failure, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.keys import asset_key
from curation_assets.defs.metadata import SMOKE_WARNING, markdown_table
from curation_assets.defs.models import ResourceModels
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.recipe import Recipe
from curation_assets.shard_work import PROGRESS_SECONDS, ShardWork, computation
from curation_assets.sources import SourceKind
from curation_assets.table_spec import Scope, TableOutput, TableSpec

SHARDS_PER_RUN = 32
SHARD_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SHARDS_PER_RUN)
# Read only by the k8s executor: one GPU per step of a GPU asset.
GPU_OP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}
GPU_POOL = "gpu"


def asset_spec_kwargs(spec: TableSpec, recipe: Recipe) -> dict[str, Any]:
    """What every asset built from a table spec shares: key, deps, group, description, code version,
    and when automation runs it."""
    reads = [registry.read_spec(spec, name) for name in spec.reads_under(recipe)]
    reads_every_shard = spec.scope is not Scope.shard and any(read.scope is Scope.shard for read in reads)
    return {
        "key": asset_key(spec),
        "deps": [asset_key(read) for read in reads],
        # Per kind (caption_scores, text_selection, ...); the mix and its exports have a group each.
        "group_name": f"{spec.kind.value}_{spec.group}" if isinstance(spec.kind, SourceKind) else spec.group,
        "description": spec.description,
        "code_version": registry.code_version(spec, recipe),
        "automation_condition": on_new_data(reads_every_shard=reads_every_shard),
    }


def error_tail(error: BaseException, lines: int = 8) -> str:
    """The error and the last lines of its traceback: enough to see which call failed."""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)).strip().splitlines()
    return "\n".join(trace[-lines:])


def with_provenance(output: TableOutput, profile: str) -> pl.DataFrame:
    """Every score table says what made it: the model (and weights), the recipe's model profile, and
    whether its scores mean anything (false for random weights)."""
    return output.frame.with_columns(
        pl.lit(output.produced_by).alias("produced_by"),
        pl.lit(profile).alias("model_profile"),
        pl.lit(output.meaningful).alias("scores_meaningful"),
    )


def build_shard_table_asset(spec: TableSpec, recipe: Recipe):
    compute = computation(spec)
    reads = spec.reads_under(recipe)
    view = recipe.view(registry.recipe_sections(spec, recipe))

    @asset(
        **asset_spec_kwargs(spec, recipe),
        partitions_def=SHARD_PARTITIONS[spec.kind],
        backfill_policy=SHARD_BACKFILL_POLICY,
        required_resource_keys={"data_root", *spec.resources},
        pool=GPU_POOL if spec.gpu else None,
        op_tags=GPU_OP_TAGS if spec.gpu else None,
        kinds={"pytorch" if spec.gpu else "polars", "parquet"},
    )
    def shard_table_asset(context: AssetExecutionContext) -> MaterializeResult:
        data_root = context.resources.data_root
        store, models = data_root.store(), ResourceModels(context.resources)
        shards = context.partition_keys
        rows, producers, meaningful, per_shard, failed = 0, set(), True, [], {}
        last_log = time.monotonic()
        for index, shard_id in enumerate(shards, start=1):
            started = time.monotonic()
            try:
                shard = data_root.shard_file(spec.kind, shard_id)
                work = ShardWork(spec, shard_id, shard, store, view, reads, models, context.log.info)
                output = compute(work)
                store.write(spec, with_provenance(output, recipe.models.profile), shard_id)
            except Exception as error:  # one bad shard must not take the run's other shards with it
                failed[shard_id] = error_tail(error)
                store.delete(spec, shard_id)  # no stale table left to look current
                context.log.error(f"[{index}/{len(shards)}] {shard_id}: FAILED\n{failed[shard_id]}")
                context.add_asset_metadata({"shard_failed": failed[shard_id]}, partition_key=shard_id)
                continue
            rows += output.frame.height
            producers.add(output.produced_by)
            meaningful &= output.meaningful
            seconds = time.monotonic() - started
            per_shard.append({"shard": shard_id, "rows": output.frame.height, "seconds": round(seconds, 2)})
            # Each shard's own numbers on its partition (the run's totals go on every partition below).
            context.add_asset_metadata(
                {
                    "dagster/row_count": output.frame.height,
                    "shard_seconds": round(seconds, 2),
                    **output.notes,
                    **{name: MetadataValue.md(panel) for name, panel in output.panels.items()},
                },
                partition_key=shard_id,
            )
            if time.monotonic() - last_log >= PROGRESS_SECONDS or index == len(shards):
                last_log = time.monotonic()  # one line per shard would be an event write per shard
                context.log.info(f"[{index}/{len(shards)}] {shard_id}: {output.frame.height} rows in {seconds:.1f}s")
        if len(failed) == len(shards):
            raise Failure(
                f"{spec.qualified_name} failed on every shard of the run ({len(shards)})",
                metadata={"first_error": MetadataValue.text(next(iter(failed.values())))},
            )
        # The run's totals, on every shard of the run, named as such (each shard's own rows are above).
        metadata: dict[str, Any] = {
            "run_rows": rows,
            "shards_in_run": len(shards),
            "produced_by": ", ".join(sorted(producers)),
            "scores_meaningful": meaningful,
            "per_shard": MetadataValue.md(markdown_table(pl.DataFrame(per_shard), rows=50)),
            "path": MetadataValue.path(str(store.folder(spec))),
        }
        if failed:
            # The shard's check reports it failed; its rows stay out of the global tables until it is fixed.
            metadata["failed_shards"] = MetadataValue.json(failed)
        if not meaningful:
            metadata["warning"] = SMOKE_WARNING
        return MaterializeResult(metadata=metadata)

    return shard_table_asset
