"""Selection over every shard: thresholds, dedup, keep/drop decisions and selectors, all read from the
sample index (one table), all global. No global asset feeds a per-shard one, so a new shard or a
threshold edit re-runs these cheap decisions and never a model.

Deciding is versioned by content: each asset returns a data version derived from what it decided, so
a re-run that decides the same leaves everything downstream fresh. The decisions are pure functions
(selection/); these bodies read, call, write and report.
"""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.report import ShardImages, bound_examples, duplicate_groups_panel, filter_funnel
from curation_assets.selection.decisions import CAPTION_RANK_BY, decide_samples, filter_columns
from curation_assets.selection.thresholds import from_payload, percentile_columns, resolve_thresholds, to_payload
from curation_assets.table_spec import TableSpec
from curation_assets.table_store import TableStore, content_version, payload_version

CAPTION = registry.CAPTION
SAMPLES, THRESHOLDS, DEDUP = registry.SAMPLES, registry.SELECTION_THRESHOLDS, registry.DEDUP
FILTERED, SELECTED = registry.FILTERED, registry.SELECTED


def embeddings_of(
    store: TableStore,
    shards: list[str],
    sample_ids: pl.Series,
    spec: TableSpec = registry.CLIP_EMBEDDINGS,
    column: str = "image_embedding",
) -> np.ndarray:
    """The stored embeddings of these samples, in their order (semantic dedup, coreset): CLIP image
    embeddings unless another per-shard table and column are named."""
    stored = store.read_shards(spec, shards, ["sample_id", column])
    joined = pl.DataFrame({"sample_id": sample_ids}).join(stored, on="sample_id", how="left")
    return joined[column].to_numpy().astype(np.float32)


def build_thresholds_asset(recipe: Recipe):
    steps = recipe.filters
    columns = sorted(percentile_columns(steps))

    @asset(**asset_spec_kwargs(THRESHOLDS, recipe), kinds={"polars"})
    def selection_thresholds(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        scores = store.read(SAMPLES, columns=columns) if columns else None
        rules = to_payload(resolve_thresholds(steps, scores))
        path = store.write_json(THRESHOLDS, {"rules": rules, "recipe": recipe.source})
        table = pl.DataFrame(rules) if rules else pl.DataFrame({"op": []})
        return MaterializeResult(
            data_version=DataVersion(payload_version(rules)),
            metadata={"rules": MetadataValue.md(markdown_table(table, rows=50)), "path": MetadataValue.path(str(path))},
        )

    return selection_thresholds


def build_dedup_asset(recipe: Recipe):
    from curation_assets.selection.dedup import find_duplicates

    spec = recipe.dedup

    @asset(**asset_spec_kwargs(DEDUP, recipe), kinds={"polars", "parquet"})
    def dedup(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        samples = store.read(SAMPLES, columns=["sample_id", "shard_id", "image_sha256", "phash", "minhash", "caption"])
        if spec.semantic_deduplicator:
            vectors = embeddings_of(store, shard_ids(context, CAPTION), samples["sample_id"])
            samples = samples.with_columns(pl.Series("image_embedding", vectors))
        groups = find_duplicates(samples, spec)
        store.write(DEDUP, groups)
        group_count = groups["group_id"].n_unique() if groups.height else 0
        by_method = groups.group_by("method").len().sort("len", descending=True)
        context.log.info(f"{group_count} duplicate groups holding {groups.height} pairs")
        return MaterializeResult(
            data_version=DataVersion(content_version(groups, ["sample_id", "group_id"])),
            metadata={
                "pairs": samples.height,
                "duplicate_groups": group_count,
                "pairs_in_groups": groups.height,
                "pairs_by_method": MetadataValue.md(markdown_table(by_method)),
                # Which member survives is decided by caption/filtered (its "duplicate groups" shows it).
                "groups": MetadataValue.md(markdown_table(largest_groups(groups, samples), rows=20)),
            },
        )

    return dedup


def largest_groups(groups: pl.DataFrame, samples: pl.DataFrame, captions_shown: int = 3) -> pl.DataFrame:
    """One row per duplicate group, largest first: its size, how it was linked, where its members
    are and what their captions say (readable, where sample ids are not)."""
    if groups.is_empty():
        return pl.DataFrame({"group": [], "members": [], "linked_by": [], "shards": [], "captions": []})
    members = groups.join(samples.select("sample_id", "caption"), on="sample_id", how="left")
    return (
        members.group_by("group_id")
        .agg(
            pl.len().alias("members"),
            pl.col("method").str.split(",").explode().unique().sort().str.join(", ").alias("linked_by"),
            pl.col("shard_id").unique().sort().str.join(", ").alias("shards"),
            pl.col("caption").head(captions_shown).str.slice(0, 60).str.join(" / ").alias("captions"),
        )
        .sort(["members", "group_id"], descending=[True, False])
        .with_columns(pl.col("group_id").str.slice(0, 8).alias("group"))
        .select("group", "members", "linked_by", "shards", "captions")
    )


def build_filtered_asset(recipe: Recipe):
    columns = filter_columns(recipe.filters)
    dedup_on = recipe.dedup.enabled

    @asset(**asset_spec_kwargs(FILTERED, recipe), kinds={"polars", "parquet"})
    def filtered(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        rules = from_payload(store.read_json(THRESHOLDS)["rules"])
        # One read: the decisions' columns, and what the pictures below show.
        wanted = dict.fromkeys(["sample_id", "shard_id", "image_ref", "caption", *columns])
        samples = store.read(SAMPLES, columns=list(wanted))
        groups = store.read(DEDUP) if dedup_on else None
        decisions = decide_samples(samples, rules, groups, rank_by=CAPTION_RANK_BY)
        store.write(FILTERED, decisions)
        kept = int(decisions["kept"].sum())
        funnel, per_shard = filter_funnel(decisions, rules)
        metadata = {
            "dagster/row_count": decisions.height,  # every pair is decided here, kept or not
            "kept": kept,
            "kept_fraction": round(kept / decisions.height, 4) if decisions.height else 0.0,
            "funnel": MetadataValue.md(funnel),
            "per_shard": MetadataValue.md(markdown_table(per_shard, rows=50)),
        }
        # Pictures: what sits on either side of each bound, and each duplicate group with the member kept.
        images = ShardImages(samples, data_root.data_root(), CAPTION)
        metadata["near the bounds"] = MetadataValue.md(bound_examples(samples, rules, images))
        if groups is not None:
            metadata["duplicate groups"] = MetadataValue.md(duplicate_groups_panel(groups, decisions, samples, images))
        if images.errors:
            metadata["thumbnails_missing"] = MetadataValue.json(images.errors)
        return MaterializeResult(
            data_version=DataVersion(content_version(decisions, ["sample_id", "kept", "drop_rule", "duplicate_of"])),
            metadata=metadata,
        )

    return filtered


def build_selected_asset(recipe: Recipe):
    from curation_assets.selection.selectors import load_target_texts, select

    spec = recipe.selectors
    topk = spec.topk_specified_field_selector

    @asset(**asset_spec_kwargs(SELECTED, recipe), kinds={"polars", "parquet"})
    def selected(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        score_columns = [topk.field_key] if topk else []
        kept = (
            store.read(FILTERED, columns=["sample_id", "kept"])
            .filter(pl.col("kept"))
            .select("sample_id")
            .join(store.read(SAMPLES, columns=["sample_id", "shard_id", "caption", *score_columns]), on="sample_id")
        )

        def score(name: str) -> np.ndarray:
            return kept[name].to_numpy().astype("float64")

        def embeddings() -> np.ndarray:
            return embeddings_of(store, shard_ids(context, CAPTION), kept["sample_id"])

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
    return [build_thresholds_asset(recipe), *dedup, build_filtered_asset(recipe), build_selected_asset(recipe)]
