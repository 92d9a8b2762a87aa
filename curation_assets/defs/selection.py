"""Selection: thresholds resolved over all shards, per-shard keep/drop decisions, global dedup, selectors.

Deciding is cheap and versioned by content: each asset returns a data version derived from what it
decided, so a re-run that decides the same leaves everything downstream fresh. The decisions
themselves are pure functions (selection/); these bodies read, call, write and report.
"""

import hashlib
import json

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import SHARD_PARTITIONS, shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import SHARD_BACKFILL_POLICY, asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.scores import read_score_columns
from curation_assets.selection.filters import decide, rules_of
from curation_assets.selection.thresholds import from_payload, percentile_columns, resolve_thresholds, to_payload
from curation_assets.table_store import content_version

CAPTION = registry.CAPTION
THRESHOLDS, FILTERED, DEDUP, SELECTED = (
    registry.SELECTION_THRESHOLDS,
    registry.FILTERED,
    registry.DEDUP,
    registry.SELECTED,
)
NORMALIZED = registry.NORMALIZED[CAPTION]


def build_thresholds_asset(recipe: Recipe):
    steps = recipe.filters
    columns = percentile_columns(steps)

    @asset(**asset_spec_kwargs(THRESHOLDS, recipe), kinds={"polars"}, automation_condition=on_new_data())
    def selection_thresholds(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        scores = read_score_columns(store, CAPTION, shard_ids(context, CAPTION), columns) if columns else None
        rules = to_payload(resolve_thresholds(steps, scores))
        path = store.write_json(THRESHOLDS, {"rules": rules, "recipe": recipe.source})
        table = pl.DataFrame(rules) if rules else pl.DataFrame({"op": []})
        return MaterializeResult(
            data_version=DataVersion(hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:24]),
            metadata={"rules": MetadataValue.md(markdown_table(table, rows=50)), "path": MetadataValue.path(str(path))},
        )

    return selection_thresholds


def build_filtered_asset(recipe: Recipe):
    columns = {rule.column for rule in rules_of(recipe.filters)}
    dedup_on = recipe.dedup.enabled

    @asset(
        **asset_spec_kwargs(FILTERED, recipe),
        partitions_def=SHARD_PARTITIONS[CAPTION],
        backfill_policy=SHARD_BACKFILL_POLICY,
        kinds={"polars", "parquet"},
        automation_condition=on_new_data(),
    )
    def filtered(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        rules = from_payload(store.read_json(THRESHOLDS)["rules"])
        duplicates = store.read(DEDUP) if dedup_on else None
        decided = []
        for shard_id in context.partition_keys:  # one shard, or a run's range of them
            scores = store.read(NORMALIZED, shard_id, ["sample_id"])
            if columns:
                scores = scores.join(
                    read_score_columns(store, CAPTION, [shard_id], columns), on="sample_id", how="left"
                )
            shard_duplicates = duplicates.filter(pl.col("shard_id") == shard_id) if duplicates is not None else None
            decisions = decide(scores, rules, shard_duplicates)
            store.write(FILTERED, decisions, shard_id)
            context.log.info(f"{shard_id}: kept {int(decisions['kept'].sum())}/{decisions.height}")
            decided.append(decisions)
        decisions = pl.concat(decided)
        kept = int(decisions["kept"].sum())
        drops = decisions.filter(~pl.col("kept")).group_by("drop_rule").len().sort("len", descending=True)
        return MaterializeResult(
            data_version=DataVersion(content_version(decisions, ["sample_id", "kept", "drop_rule"])),
            metadata={
                "dagster/row_count": kept,
                "input_rows": decisions.height,
                "shards_in_run": len(decided),
                "kept_fraction": round(kept / decisions.height, 4) if decisions.height else 0.0,
                "drops_by_rule": MetadataValue.md(markdown_table(drops, rows=30)),
            },
        )

    return filtered


def build_dedup_asset(recipe: Recipe):
    from curation_assets.selection.dedup import find_duplicates

    spec = recipe.dedup
    inputs = [name for name in DEDUP.reads_under(recipe) if name != NORMALIZED.name]

    @asset(**asset_spec_kwargs(DEDUP, recipe), kinds={"polars", "parquet"}, automation_condition=on_new_data())
    def dedup(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store, shards = data_root.store(), shard_ids(context, CAPTION)
        samples = store.read_shards(NORMALIZED, shards, ["sample_id", "shard_id", "image_sha256"])
        for name in inputs:
            table = registry.table(CAPTION, name)
            samples = samples.join(
                store.read_shards(table, shards, ["sample_id", *table.column_names]), on="sample_id", how="left"
            )
        groups = find_duplicates(samples, spec)
        store.write(DEDUP, groups)
        dropped = groups.filter(pl.col("duplicate_of").is_not_null())
        group_count = groups["group_id"].n_unique() if groups.height else 0
        context.log.info(f"{group_count} duplicate groups, {dropped.height} samples dropped")
        by_method = dropped.group_by("method").len().sort("len", descending=True)
        examples = dropped.select("sample_id", "duplicate_of", "method", "shard_id")
        return MaterializeResult(
            data_version=DataVersion(content_version(groups, ["sample_id", "duplicate_of"])),
            metadata={
                "samples": samples.height,
                "duplicate_groups": group_count,
                "dropped_as_duplicates": dropped.height,
                "dropped_by_method": MetadataValue.md(markdown_table(by_method)),
                "examples": MetadataValue.md(markdown_table(examples, rows=10)),
            },
        )

    return dedup


def build_selected_asset(recipe: Recipe):
    from curation_assets.selection.selectors import load_target_texts, select

    spec = recipe.selectors

    @asset(**asset_spec_kwargs(SELECTED, recipe), kinds={"polars", "parquet"}, automation_condition=on_new_data())
    def selected(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store, shards = data_root.store(), shard_ids(context, CAPTION)
        kept = (
            store.read_shards(FILTERED, shards, ["sample_id", "kept"])
            .filter(pl.col("kept"))
            .select("sample_id")
            .join(store.read_shards(NORMALIZED, shards, ["sample_id", "shard_id", "caption"]), on="sample_id")
        )

        def score(name: str) -> np.ndarray:
            values = read_score_columns(store, CAPTION, shards, {name})
            return kept.select("sample_id").join(values, on="sample_id", how="left")[name].to_numpy().astype("float64")

        def embeddings() -> np.ndarray:
            stored = store.read_shards(registry.CLIP_EMBEDDINGS, shards, ["sample_id", "image_embedding"])
            joined = kept.select("sample_id").join(stored, on="sample_id", how="left")
            return joined["image_embedding"].to_numpy().astype("float32")

        report = select(kept, spec, score, embeddings, lambda: load_target_texts(spec.dsir_selector, recipe.directory))
        store.write(SELECTED, report.frame)
        chosen = int(report.frame["selected"].sum())
        by_selector = report.frame.filter(~pl.col("selected")).group_by("dropped_by").len()
        return MaterializeResult(
            data_version=DataVersion(content_version(report.frame, ["sample_id", "selected"])),
            metadata={
                "dagster/row_count": chosen,
                "kept_by_filters": report.frame.height,
                "dropped_by_selector": MetadataValue.md(markdown_table(by_selector)),
                **{name: round(value, 6) for name, value in report.notes.items()},
            },
        )

    return selected


def build_selection_assets(recipe: Recipe) -> list:
    dedup = [build_dedup_asset(recipe)] if recipe.dedup.enabled else []
    return [build_thresholds_asset(recipe), build_filtered_asset(recipe), *dedup, build_selected_asset(recipe)]
