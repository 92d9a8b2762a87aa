"""A factory for per-shard table assets: one parquet file per shard, several shards per step.

Every per-shard stage after ingest has the same shape: for each shard in the run's partition range,
read upstream tables, compute, write one table atomically. Runs may cover many shards (a backfill
groups up to SHARDS_PER_RUN per run), so a model resource is loaded once per run, not per shard.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import SMOKE_WARNING, markdown_table
from curation_assets.defs.names import NORMALIZED_STAGE, stage_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.readers import ShardFile
from curation_assets.recipe import Recipe
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot, read_parquet, write_parquet_atomic

SHARDS_PER_RUN = 32
SHARD_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SHARDS_PER_RUN)
# Read only by the k8s executor: one GPU per step of a GPU asset.
GPU_OP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}
GPU_POOL = "gpu"
PROVENANCE_COLUMNS = ("produced_by", "model_profile", "scores_meaningful")


@dataclass
class ShardWork:
    """What a table's compute function gets for one shard."""

    kind: SourceKind
    shard_id: str
    shard: ShardFile
    root: DataRoot
    resources: Any
    log: Any

    def table(self, stage: str) -> pl.DataFrame:
        return read_parquet(self.root.table_path(stage, self.kind, self.shard_id))

    @property
    def normalized(self) -> pl.DataFrame:
        return self.table(NORMALIZED_STAGE)

    def progress(self, done: int, total: int) -> None:
        self.log.info(f"{self.shard_id}: {done}/{total} rows")


@dataclass
class TableOutput:
    frame: pl.DataFrame  # sample_id + the table's columns, one row per upstream row
    producer: str  # the model (and weights) that made it, or the logic for model-free tables
    meaningful: bool = True  # False for smoke models: recorded in the table and the UI


@dataclass(frozen=True)
class ShardTable:
    kind: SourceKind
    name: str
    description: str
    compute: Callable[[ShardWork], TableOutput]
    upstream: Sequence[str] = (NORMALIZED_STAGE,)
    resources: frozenset[str] = frozenset()
    recipe_sections: Sequence[str] = ()
    logic_version: str = "1"
    gpu: bool = False
    group: str = "scores"  # the UI group, prefixed with the kind: caption_scores

    @property
    def key(self):
        return stage_key(self.kind, self.name)

    def code_version(self, recipe: Recipe) -> str:
        """Logic version plus a hash of exactly the recipe sections this table reads."""
        sections = f"-{recipe.fingerprint(*self.recipe_sections)}" if self.recipe_sections else ""
        return f"{self.logic_version}{sections}"


def with_provenance(output: TableOutput, profile: str) -> pl.DataFrame:
    """Every table says what made it: the model (and weights), the recipe's model profile, and
    whether its scores mean anything (false for smoke models)."""
    return output.frame.with_columns(
        pl.lit(output.producer).alias("produced_by"),
        pl.lit(profile).alias("model_profile"),
        pl.lit(output.meaningful).alias("scores_meaningful"),
    )


def build_shard_table_asset(table: ShardTable, recipe: Recipe):
    @asset(
        key=table.key,
        deps=[stage_key(table.kind, upstream) for upstream in table.upstream],
        partitions_def=SHARD_PARTITIONS[table.kind],
        backfill_policy=SHARD_BACKFILL_POLICY,
        code_version=table.code_version(recipe),
        group_name=f"{table.kind.value}_{table.group}",
        description=table.description,
        required_resource_keys={"data_root", *table.resources},
        pool=GPU_POOL if table.gpu else None,
        op_tags=GPU_OP_TAGS if table.gpu else None,
        kinds={"pytorch" if table.gpu else "polars", "parquet"},
        automation_condition=on_new_data(),
    )
    def shard_table_asset(context: AssetExecutionContext) -> MaterializeResult:
        data_root = context.resources.data_root
        root = data_root.data_root()
        shards = context.partition_keys
        rows, producers, meaningful, per_shard = 0, set(), True, []
        for index, shard_id in enumerate(shards, start=1):
            started = time.monotonic()
            work = ShardWork(
                table.kind, shard_id, data_root.shard_file(table.kind, shard_id), root, context.resources, context.log
            )
            output = table.compute(work)
            write_parquet_atomic(
                with_provenance(output, recipe.models.profile), root.table_path(table.name, table.kind, shard_id)
            )
            rows += output.frame.height
            producers.add(output.producer)
            meaningful &= output.meaningful
            seconds = time.monotonic() - started
            per_shard.append({"shard": shard_id, "rows": output.frame.height, "seconds": round(seconds, 2)})
            context.log.info(f"[{index}/{len(shards)}] {shard_id}: {output.frame.height} rows in {seconds:.1f}s")
        metadata: dict[str, Any] = {
            "dagster/row_count": rows,
            "shards_in_run": len(shards),
            "produced_by": ", ".join(sorted(producers)),
            "scores_meaningful": meaningful,
            "per_shard": MetadataValue.md(markdown_table(pl.DataFrame(per_shard), rows=50)),
            "path": MetadataValue.path(str(root.stage_dir(table.name, table.kind))),
        }
        if not meaningful:
            metadata["warning"] = SMOKE_WARNING
        return MaterializeResult(metadata=metadata)

    return shard_table_asset
