"""One factory for every per-shard table computed by a registered computation (scores, recaptions),
alone or with the tables computed together with it (the image pass).

For each shard in the run's partition range: build the shard's `ShardWork`, call the computation,
write its table(s). Runs may cover many shards (a backfill groups up to SHARDS_PER_RUN per
run), so a model resource is loaded once per run, not per shard.
"""

import time
import traceback
from collections.abc import Callable
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.keys import asset_key
from curation_assets.defs.metadata import SMOKE_WARNING, markdown_table
from curation_assets.defs.models import ResourceModels
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.recipe import Recipe
from curation_assets.shard_work import PROGRESS_SECONDS, ShardWork, computation, computation_together
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


def build_shard_tables_asset(specs: tuple[TableSpec, ...], recipe: Recipe):
    """The asset of one per-shard table, or for tables computed together (registry.COMPUTED_TOGETHER)
    one step holding an asset each: Dagster runs it with the tables selected (a changed model selects
    only its table) and the computation computes just those."""
    first = specs[0]
    step = {
        "partitions_def": SHARD_PARTITIONS[first.kind],
        "backfill_policy": SHARD_BACKFILL_POLICY,
        "required_resource_keys": {"data_root", *(name for spec in specs for name in spec.resources)},
        "pool": GPU_POOL if any(spec.gpu for spec in specs) else None,
        "op_tags": GPU_OP_TAGS if any(spec.gpu for spec in specs) else None,
    }
    kinds = {"pytorch" if first.gpu else "polars", "parquet"}
    if len(specs) == 1:
        compute = computation(first)

        @asset(**asset_spec_kwargs(first, recipe), **step, kinds=kinds)
        def shard_table_asset(context: AssetExecutionContext) -> MaterializeResult:
            [result] = materialize_shards(context, specs, lambda work: {first: compute(work)}, recipe)
            return result

        return shard_table_asset

    compute_together = computation_together(specs)
    asset_specs = [
        AssetSpec(**asset_spec_kwargs(spec, recipe), kinds={"pytorch" if spec.gpu else "polars", "parquet"})
        for spec in specs
    ]
    by_key = {asset_key(spec): spec for spec in specs}

    @multi_asset(name=f"{first.kind.value}_image_pass", specs=asset_specs, can_subset=True, **step)
    def shard_tables_asset(context: AssetExecutionContext):
        due = tuple(spec for key, spec in by_key.items() if key in context.selected_asset_keys)
        yield from materialize_shards(context, due, lambda work: compute_together(work, due), recipe)

    return shard_tables_asset


def materialize_shards(
    context: AssetExecutionContext,
    due: tuple[TableSpec, ...],
    compute: Callable[[ShardWork], dict[TableSpec, TableOutput]],
    recipe: Recipe,
) -> list[MaterializeResult]:
    """Compute and write the due tables for each shard of the run's partitions; one result per table.
    A shard that fails is reported on its partition and the run goes on with the others."""
    data_root = context.resources.data_root
    store, models = data_root.store(), ResourceModels(context.resources)
    reads = tuple(dict.fromkeys(name for spec in due for name in spec.reads_under(recipe)))
    view = recipe.view(tuple(sorted({section for spec in due for section in registry.recipe_sections(spec, recipe)})))
    shards = context.partition_keys
    totals = {spec: {"rows": 0, "producers": set(), "meaningful": True, "per_shard": []} for spec in due}
    failed: dict[str, str] = {}
    names = ", ".join(spec.name for spec in due)
    last_log = time.monotonic()
    for index, shard_id in enumerate(shards, start=1):
        started = time.monotonic()
        try:
            shard = data_root.shard_file(due[0].kind, shard_id)
            work = ShardWork(due[0], shard_id, shard, store, view, reads, models, context.log.info, together=due)
            outputs = compute(work)
            for spec in due:
                store.write(spec, with_provenance(outputs[spec], recipe.models.profile), shard_id)
        except Exception as error:  # one bad shard must not take the run's other shards with it
            failed[shard_id] = error_tail(error)
            context.log.error(f"[{index}/{len(shards)}] {shard_id}: {names} FAILED\n{failed[shard_id]}")
            for spec in due:
                store.delete(spec, shard_id)  # no stale table left to look current
                context.add_asset_metadata(
                    {"shard_failed": failed[shard_id]}, asset_key=asset_key(spec), partition_key=shard_id
                )
            continue
        seconds = time.monotonic() - started
        for spec in due:
            output, total = outputs[spec], totals[spec]
            total["rows"] += output.frame.height
            total["producers"].add(output.produced_by)
            total["meaningful"] &= output.meaningful
            total["per_shard"].append({"shard": shard_id, "rows": output.frame.height, "seconds": round(seconds, 2)})
            # Each shard's own numbers on its partition (the run's totals go on every partition below).
            context.add_asset_metadata(
                {
                    "dagster/row_count": output.frame.height,
                    "shard_seconds": round(seconds, 2),
                    **output.notes,
                    **{name: MetadataValue.md(panel) for name, panel in output.panels.items()},
                },
                asset_key=asset_key(spec),
                partition_key=shard_id,
            )
        if time.monotonic() - last_log >= PROGRESS_SECONDS or index == len(shards):
            last_log = time.monotonic()  # one line per shard would be an event write per shard
            rows = outputs[due[0]].frame.height
            context.log.info(f"[{index}/{len(shards)}] {shard_id}: {names}, {rows} rows in {seconds:.1f}s")
    if len(failed) == len(shards):
        raise Failure(
            f"{names} failed on every shard of the run ({len(shards)})",
            metadata={"first_error": MetadataValue.text(next(iter(failed.values())))},
        )
    return [_run_result(spec, totals[spec], len(shards), failed, store) for spec in due]


def _run_result(spec: TableSpec, total: dict, shard_count: int, failed: dict[str, str], store) -> MaterializeResult:
    """The run's totals, on every shard of the run, named as such (each shard's own rows are above)."""
    metadata: dict[str, Any] = {
        "run_rows": total["rows"],
        "shards_in_run": shard_count,
        "produced_by": ", ".join(sorted(total["producers"])),
        "scores_meaningful": total["meaningful"],
        "per_shard": MetadataValue.md(markdown_table(pl.DataFrame(total["per_shard"]), rows=50)),
        "path": MetadataValue.path(str(store.folder(spec))),
    }
    if failed:
        # The shard's check reports it failed; its rows stay out of the global tables until it is fixed.
        metadata["failed_shards"] = MetadataValue.json(failed)
    if not total["meaningful"]:
        metadata["warning"] = SMOKE_WARNING
    return MaterializeResult(asset_key=asset_key(spec), metadata=metadata)
