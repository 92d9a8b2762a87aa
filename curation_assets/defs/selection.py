"""Selection: thresholds resolved over all shards, per-shard keep/drop decisions, global dedup.

Deciding is cheap and versioned by content: each asset returns a data version derived from what it
decided, so a re-run that decides the same leaves everything downstream fresh.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.names import NORMALIZED_STAGE, stage_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import PROVENANCE_COLUMNS, SHARD_BACKFILL_POLICY
from curation_assets.recipe import Recipe
from curation_assets.selection.filters import COLUMN_TABLES, ResolvedRule, decide, is_percentile, resolve, rules_of
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot, read_parquet, write_bytes_atomic, write_parquet_atomic

CAPTION = SourceKind.caption
THRESHOLDS = "selection_thresholds"
FILTERED = "filtered"
DEDUP = "dedup"
LOGIC_VERSION = "1"


def content_version(frame: pl.DataFrame, columns: list[str]) -> DataVersion:
    """A data version from what was decided, independent of row order.

    A run over several shards records one data version for all of them (dagster issues #18649,
    #34013), so deciding assets that run shard ranges hash the whole range: a shard re-run alone
    (new or edited) gets its own version; a range shares one, and its per-shard consumers re-run
    together. Nothing expensive reads these per shard, and ranges keep the run count low."""
    rows = frame.select(columns).sort(columns[0]).write_csv()
    return DataVersion(hashlib.sha256(rows.encode()).hexdigest()[:24])


def thresholds_path(root: DataRoot):
    return root.stage_dir(THRESHOLDS, CAPTION) / "thresholds.json"


def load_resolved_rules(root: DataRoot) -> list[ResolvedRule]:
    return [ResolvedRule(**rule) for rule in json.loads(thresholds_path(root).read_text())["rules"]]


def score_columns(root: DataRoot, shard_ids: list[str], columns: set[str]) -> pl.DataFrame:
    """The named score columns of these shards, one row per sample, read from their score tables."""
    tables: dict[str, list[str]] = {}
    for column in sorted(columns):
        tables.setdefault(COLUMN_TABLES[column], []).append(column)
    frames = [
        pl.concat(
            [read_parquet(root.table_path(table, CAPTION, shard)).select("sample_id", *cols) for shard in shard_ids]
        )
        for table, cols in tables.items()
    ]
    wide = frames[0]
    for frame in frames[1:]:
        wide = wide.join(frame, on="sample_id", how="full", coalesce=True)
    return wide


def build_selection_assets(recipe: Recipe) -> list:
    rules = rules_of(recipe.filters)
    columns = {rule.column for rule in rules}
    percentile_columns = {rule.column for rule in rules if is_percentile(rule.lower) or is_percentile(rule.upper)}
    score_tables = sorted({COLUMN_TABLES[column] for column in columns})
    filter_version = f"{LOGIC_VERSION}-{recipe.fingerprint('filters')}"
    dedup_enabled = recipe.dedup.enabled

    @asset(
        key=stage_key(CAPTION, THRESHOLDS),
        deps=[stage_key(CAPTION, table) for table in sorted({COLUMN_TABLES[c] for c in percentile_columns})],
        group_name="caption_selection",
        code_version=filter_version,
        description="The recipe's filter bounds as numbers: percentile bounds ('p10') resolved over all shards.",
        automation_condition=on_new_data(),
        kinds={"polars"},
    )
    def selection_thresholds(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        root = data_root.data_root()
        shard_ids = sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[CAPTION].name))
        scores = score_columns(root, shard_ids, percentile_columns) if percentile_columns else pl.DataFrame()
        resolved = resolve(rules, lambda column, q: float(scores[column].drop_nans().quantile(q, "linear")))
        payload = {"rules": [rule.__dict__ for rule in resolved], "recipe": recipe.source}
        path = thresholds_path(root)
        write_bytes_atomic(json.dumps(payload, indent=2).encode(), path)
        table = pl.DataFrame([rule.__dict__ for rule in resolved]) if resolved else pl.DataFrame({"op": []})
        return MaterializeResult(
            data_version=DataVersion(
                hashlib.sha256(json.dumps(payload["rules"], sort_keys=True).encode()).hexdigest()[:24]
            ),
            metadata={"rules": MetadataValue.md(markdown_table(table, rows=50)), "path": MetadataValue.path(str(path))},
        )

    @asset(
        key=stage_key(CAPTION, FILTERED),
        deps=[
            stage_key(CAPTION, NORMALIZED_STAGE),
            stage_key(CAPTION, THRESHOLDS),
            *(stage_key(CAPTION, table) for table in score_tables),
            *([stage_key(CAPTION, DEDUP)] if dedup_enabled else []),
        ],
        partitions_def=SHARD_PARTITIONS[CAPTION],
        backfill_policy=SHARD_BACKFILL_POLICY,
        group_name="caption_selection",
        code_version=filter_version,
        description="Every valid sample of a shard, kept or dropped; a drop names the first failing rule and its value.",
        automation_condition=on_new_data(),
        kinds={"polars", "parquet"},
    )
    def filtered(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        root = data_root.data_root()
        rules = load_resolved_rules(root)
        duplicates = read_parquet(root.stage_dir(DEDUP, CAPTION) / "duplicates.parquet") if dedup_enabled else None
        decided = []
        for shard_id in context.partition_keys:  # one shard, or a run's range of them
            base = read_parquet(root.table_path(NORMALIZED_STAGE, CAPTION, shard_id)).select("sample_id")
            scores = (
                base.join(score_columns(root, [shard_id], columns), on="sample_id", how="left") if columns else base
            )
            shard_duplicates = duplicates.filter(pl.col("shard_id") == shard_id) if duplicates is not None else None
            decisions = decide(scores, rules, shard_duplicates)
            write_parquet_atomic(decisions, root.table_path(FILTERED, CAPTION, shard_id))
            context.log.info(f"{shard_id}: kept {int(decisions['kept'].sum())}/{decisions.height}")
            decided.append(decisions)
        decisions = pl.concat(decided)
        kept = int(decisions["kept"].sum())
        drops = decisions.filter(~pl.col("kept")).group_by("drop_rule").len().sort("len", descending=True)
        return MaterializeResult(
            data_version=content_version(decisions, ["sample_id", "kept", "drop_rule"]),
            metadata={
                "dagster/row_count": kept,
                "input_rows": decisions.height,
                "shards_in_run": len(decided),
                "kept_fraction": round(kept / decisions.height, 4) if decisions.height else 0.0,
                "drops_by_rule": MetadataValue.md(markdown_table(drops, rows=30)),
            },
        )

    return [selection_thresholds, filtered]


def build_selection_checks(recipe: Recipe) -> list:
    bounds = recipe.checks.kept_fraction

    @asset_check(
        name="every_row_decided",
        asset=stage_key(CAPTION, FILTERED),
        additional_deps=[stage_key(CAPTION, NORMALIZED_STAGE)],
        partitions_def=SHARD_PARTITIONS[CAPTION],
        description="kept + dropped = valid input rows, each once, and every drop has a rule and a value.",
        blocking=True,
    )
    def every_row_decided(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        problems = []
        root = data_root.data_root()
        for shard_id in context.partition_keys:
            decisions = read_parquet(root.table_path(FILTERED, CAPTION, shard_id))
            valid = read_parquet(root.table_path(NORMALIZED_STAGE, CAPTION, shard_id))["sample_id"]
            dropped = decisions.filter(~pl.col("kept"))
            unexplained = dropped.filter(pl.col("drop_rule").is_null() | pl.col("drop_value").is_null()).height
            same_rows = decisions.height == valid.len() and decisions["sample_id"].sort().equals(valid.sort())
            if not same_rows or unexplained:
                problems.append(
                    f"{shard_id}: {decisions.height} decisions for {valid.len()} rows, {unexplained} drops without a reason"
                )
        return AssetCheckResult(
            passed=not problems, description="; ".join(problems) or "every row decided and explained"
        )

    @asset_check(
        name="kept_fraction_within_bounds",
        asset=stage_key(CAPTION, FILTERED),
        partitions_def=SHARD_PARTITIONS[CAPTION],
        description=f"The share of rows kept lies in [{bounds.min}, {bounds.max}] (recipe checks.kept_fraction).",
        blocking=bounds.severity == "error",
    )
    def kept_fraction_within_bounds(
        context: AssetCheckExecutionContext, data_root: DataRootResource
    ) -> AssetCheckResult:
        root = data_root.data_root()
        outside = []
        for shard_id in context.partition_keys:
            decisions = read_parquet(root.table_path(FILTERED, CAPTION, shard_id))
            fraction = float(decisions["kept"].mean()) if decisions.height else 0.0
            if not bounds.min <= fraction <= bounds.max:
                outside.append(f"{shard_id}: {fraction:.3f}")
        return AssetCheckResult(
            passed=not outside,
            severity=AssetCheckSeverity.ERROR if bounds.severity == "error" else AssetCheckSeverity.WARN,
            description=("kept fraction outside the recipe's bounds: " + ", ".join(outside))
            if outside
            else "within bounds",
        )

    return [every_row_decided, kept_fraction_within_bounds]


def build_dedup_asset(recipe: Recipe):
    spec = recipe.dedup
    upstream = [NORMALIZED_STAGE, "clip_similarity"]
    if spec.image_deduplicator:
        upstream.append("image_phash")
    if spec.document_minhash_deduplicator:
        upstream.append("caption_minhash")
    if spec.semantic_deduplicator:
        upstream.append("clip_embeddings")
    # Representatives are chosen by CLIP similarity, so the CLIP model is part of the decision.
    version = f"{LOGIC_VERSION}-{recipe.fingerprint('dedup', 'models.profile', 'models.clip')}"

    @asset(
        key=stage_key(CAPTION, DEDUP),
        deps=[stage_key(CAPTION, stage) for stage in upstream],
        group_name="caption_selection",
        code_version=version,
        description=(
            "Duplicate groups across all shards (identical bytes, pHash neighbours, caption MinHash-LSH, "
            "SemDeDup clusters); one representative per group: the highest CLIP similarity, then the smallest sample_id."
        ),
        automation_condition=on_new_data(),
        kinds={"polars", "parquet"},
    )
    def dedup(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        from curation_assets.selection import dedup as logic

        root = data_root.data_root()
        shard_ids = sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[CAPTION].name))
        frame = pl.concat(
            [
                read_parquet(root.table_path(NORMALIZED_STAGE, CAPTION, s)).select(
                    "sample_id", "shard_id", "image_sha256"
                )
                for s in shard_ids
            ]
        )
        for stage in upstream[1:]:
            table = pl.concat([read_parquet(root.table_path(stage, CAPTION, s)) for s in shard_ids])
            frame = frame.join(
                table.drop(PROVENANCE_COLUMNS, "text_embedding", strict=False), on="sample_id", how="left"
            )
        pairs = {"exact": logic.exact_duplicate_pairs(frame)} if spec.image_deduplicator else {}
        if spec.image_deduplicator:
            pairs["phash"] = logic.near_image_pairs(frame["phash"].to_list(), spec.image_deduplicator.max_distance)
        if spec.document_minhash_deduplicator:
            signatures = frame["minhash"].to_numpy()
            pairs["minhash"] = logic.near_caption_pairs(
                signatures, spec.document_minhash_deduplicator.jaccard_threshold, signatures.shape[1]
            )
        if spec.semantic_deduplicator:
            semantic = spec.semantic_deduplicator
            embeddings = frame["image_embedding"].to_numpy().astype("float32")
            pairs["semantic"] = logic.semantic_duplicate_pairs(
                embeddings, semantic.epsilon, min(semantic.num_clusters, max(1, frame.height // 2))
            )
        groups = logic.duplicate_groups(
            frame.height, pairs, frame["clip_similarity"].to_numpy(), frame["sample_id"].to_list()
        )
        groups = groups.join(frame.select("sample_id", "shard_id"), on="sample_id", how="left")
        write_parquet_atomic(groups, root.stage_dir(DEDUP, CAPTION) / "duplicates.parquet")
        dropped = groups.filter(pl.col("duplicate_of").is_not_null())
        by_method = dropped.group_by("method").len().sort("len", descending=True)
        context.log.info(
            f"{groups['group_id'].n_unique() if groups.height else 0} duplicate groups, {dropped.height} samples dropped"
        )
        return MaterializeResult(
            data_version=content_version(groups, ["sample_id", "duplicate_of"])
            if groups.height
            else DataVersion("no-duplicates"),
            metadata={
                "samples": frame.height,
                "duplicate_groups": groups["group_id"].n_unique() if groups.height else 0,
                "dropped_as_duplicates": dropped.height,
                "dropped_by_method": MetadataValue.md(markdown_table(by_method)),
                "examples": MetadataValue.md(
                    markdown_table(dropped.select("sample_id", "duplicate_of", "method", "shard_id"), rows=10)
                ),
            },
        )

    return dedup


SELECTED = "selected"


def build_selected_asset(recipe: Recipe):
    spec = recipe.selectors
    upstream = [FILTERED, NORMALIZED_STAGE]
    if spec.topk_specified_field_selector:
        field_key = spec.topk_specified_field_selector.field_key
        if field_key not in COLUMN_TABLES:
            raise ValueError(
                f"selectors.topk_specified_field_selector.field_key {field_key!r} is not a score; known: {sorted(COLUMN_TABLES)}"
            )
        upstream.append(COLUMN_TABLES[field_key])
    if spec.coreset_selector:
        upstream.append("clip_embeddings")
    sections = ["selectors"] + (["models.profile", "models.clip"] if spec.coreset_selector else [])
    recipe_dir = Path(recipe.source).parent if recipe.source != "<defaults>" else Path.cwd()

    @asset(
        key=stage_key(CAPTION, SELECTED),
        deps=[stage_key(CAPTION, stage) for stage in dict.fromkeys(upstream)],
        group_name="caption_selection",
        code_version=f"{LOGIC_VERSION}-{recipe.fingerprint(*sections)}",
        description="The recipe's optional global selectors (top-k by a score, coreset, DSIR) over every kept row; "
        "without selectors, every kept row is selected.",
        automation_condition=on_new_data(),
        kinds={"polars", "parquet"},
    )
    def selected(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        from curation_assets.selection.selectors import load_target_texts, select

        root = data_root.data_root()
        shard_ids = sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[CAPTION].name))
        kept = pl.concat([
            read_parquet(root.table_path(FILTERED, CAPTION, s)).filter(pl.col("kept")).select("sample_id")
            .join(read_parquet(root.table_path(NORMALIZED_STAGE, CAPTION, s)).select("sample_id", "shard_id", "caption"), on="sample_id")
            for s in shard_ids
        ])  # fmt: skip

        def table_column(name: str) -> np.ndarray:
            values = score_columns(root, shard_ids, {name})
            return kept.select("sample_id").join(values, on="sample_id", how="left")[name].to_numpy().astype("float64")

        def embeddings() -> np.ndarray:
            stored = pl.concat(
                [
                    read_parquet(root.table_path("clip_embeddings", CAPTION, s)).select("sample_id", "image_embedding")
                    for s in shard_ids
                ]
            )
            return (
                kept.select("sample_id")
                .join(stored, on="sample_id", how="left")["image_embedding"]
                .to_numpy()
                .astype("float32")
            )

        report = select(kept, spec, table_column, embeddings, lambda: load_target_texts(spec.dsir_selector, recipe_dir))
        write_parquet_atomic(report.frame, root.stage_dir(SELECTED, CAPTION) / "selected.parquet")
        chosen = int(report.frame["selected"].sum())
        by_selector = report.frame.filter(~pl.col("selected")).group_by("dropped_by").len()
        return MaterializeResult(
            data_version=content_version(report.frame, ["sample_id", "selected"]),
            metadata={
                "dagster/row_count": chosen,
                "kept_by_filters": report.frame.height,
                "dropped_by_selector": MetadataValue.md(markdown_table(by_selector)),
                **{name: round(value, 6) for name, value in report.notes.items()},
            },
        )

    return selected
