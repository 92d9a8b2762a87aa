"""Recaptioned subsets per shard, and the curated caption pool that combines them with the kept pairs."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets.defs.automation import on_new_data
from curation_assets.defs.caption_scores import CLIP_SECTIONS
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.names import NORMALIZED_STAGE, stage_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.selection import DEDUP, FILTERED, SELECTED, content_version, score_columns
from curation_assets.defs.shard_assets import SHARD_BACKFILL_POLICY, ShardTable, ShardWork, TableOutput
from curation_assets.recipe import Recipe
from curation_assets.selection.filters import COLUMN_TABLES, resolve, rules_of
from curation_assets.sources import SourceKind
from curation_assets.storage import read_parquet, write_parquet_atomic

CAPTION = SourceKind.caption
RECAPTIONED = "recaptioned"
CURATED = "curated"
CURATED_MANIFEST = "curated_manifest"


def recaption_table_spec(recipe: Recipe) -> ShardTable:
    spec = recipe.recaption
    image_rules = resolve(rules_of(spec.image_conditions), quantile=_no_percentiles)
    columns = {spec.band.field_key, *(rule.column for rule in image_rules)}
    if spec.band.field_key not in COLUMN_TABLES:
        raise ValueError(
            f"recaption.band.field_key {spec.band.field_key!r} is not a score; known: {sorted(COLUMN_TABLES)}"
        )
    upstream = [
        "clip_embeddings",
        *sorted({COLUMN_TABLES[c] for c in columns}),
        *([DEDUP] if recipe.dedup.enabled else []),
    ]

    def compute(work: ShardWork) -> TableOutput:
        from curation_assets.recaption.decisions import entrants, recaption_table
        from curation_assets.recaption.generate import candidate_similarities, generate_candidates

        normalized = work.normalized.select("sample_id", "caption", "image_ref")
        scores = normalized.join(score_columns(work.root, [work.shard_id], columns), on="sample_id", how="left")
        if recipe.dedup.enabled:
            duplicates = read_parquet(work.root.stage_dir(DEDUP, CAPTION) / "duplicates.parquet").select(
                "sample_id", "duplicate_of"
            )
            scores = scores.join(duplicates, on="sample_id", how="left")
        entered = entrants(scores, spec, image_rules)
        if spec.band.field_key != "clip_similarity":
            entered = entered.join(
                score_columns(work.root, [work.shard_id], {"clip_similarity"}), on="sample_id", how="left"
            )
        captioner, clip = work.resources.captioner, work.resources.clip
        work.log.info(f"{work.shard_id}: {entered.height} of {normalized.height} pairs enter recaptioning")
        candidates = generate_candidates(
            work.shard, entered, captioner.model, captioner.generation(), captioner.batch_settings(), work.progress
        )
        stored = work.table("clip_embeddings").select("sample_id", "image_embedding")
        image_embeddings = (
            entered.select("sample_id").join(stored, on="sample_id", how="left")["image_embedding"].to_numpy()
        )
        similarities = candidate_similarities(clip.model, image_embeddings, candidates, clip.batch_size)
        frame = recaption_table(entered, candidates, similarities, spec.keep_min_score, captioner.identity)
        return TableOutput(frame, f"{captioner.identity} + {clip.identity}", captioner.meaningful and clip.meaningful)

    return ShardTable(
        CAPTION,
        RECAPTIONED,
        "Pairs in the recipe's weak band with acceptable images, recaptioned: candidates, their CLIP scores, the chosen "
        "caption, scores before and after, the captioner, and whether the new caption is kept.",
        compute,
        upstream=upstream,
        resources=frozenset({"captioner", "clip"}),
        recipe_sections=("recaption", "models.captioner", *CLIP_SECTIONS),
        gpu=True,
        group="recaption",
    )


def _no_percentiles(column: str, quantile: float) -> float:
    raise ValueError(f"recaption.image_conditions bounds must be numbers, not percentiles ({column})")


def build_curated_assets(recipe: Recipe) -> list:
    recaption_on = recipe.recaption.enabled

    @asset(
        key=stage_key(CAPTION, CURATED),
        deps=[
            stage_key(CAPTION, s)
            for s in (NORMALIZED_STAGE, FILTERED, SELECTED, *([RECAPTIONED] if recaption_on else []))
        ],
        partitions_def=SHARD_PARTITIONS[CAPTION],
        backfill_policy=SHARD_BACKFILL_POLICY,
        group_name="caption_curated",
        code_version="1",
        description="The shard's curated caption pool: selected kept pairs with their caption, plus recaptioned pairs "
        "whose new caption was kept, each with its final caption and where it came from.",
        automation_condition=on_new_data(),
        kinds={"polars", "parquet"},
    )
    def curated(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        root = data_root.data_root()
        selected = read_parquet(root.stage_dir(SELECTED, CAPTION) / "selected.parquet").filter(pl.col("selected"))
        pools = [_curated_pool(root, shard_id, selected, recaption_on) for shard_id in context.partition_keys]
        for shard_id, pool in zip(context.partition_keys, pools):
            write_parquet_atomic(pool, root.table_path(CURATED, CAPTION, shard_id))
        pool = pl.concat(pools)
        return MaterializeResult(
            data_version=content_version(pool, ["sample_id", "caption"]),
            metadata={
                "dagster/row_count": pool.height,
                "shards_in_run": len(pools),
                "by_source": MetadataValue.md(markdown_table(pool.group_by("caption_source").len())),
            },
        )

    @asset(
        key=stage_key(CAPTION, CURATED_MANIFEST),
        deps=[stage_key(CAPTION, CURATED)],
        group_name="caption_curated",
        code_version=f"1-{recipe.fingerprint('curated')}",
        description="Every curated caption pair over all shards with its mix weight: the recipe's curated.repeat, "
        "the number of times the pair enters the pretraining mix.",
        automation_condition=on_new_data(),
        kinds={"polars", "parquet"},
    )
    def curated_manifest(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        root = data_root.data_root()
        shard_ids = sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[CAPTION].name))
        pool = pl.concat([read_parquet(root.table_path(CURATED, CAPTION, s)) for s in shard_ids])
        manifest = pool.select("sample_id", "shard_id", "caption_source").with_columns(
            pl.lit(recipe.curated.repeat, dtype=pl.Int32).alias("repeat")
        )
        write_parquet_atomic(manifest, root.stage_dir(CURATED_MANIFEST, CAPTION) / "manifest.parquet")
        return MaterializeResult(
            data_version=DataVersion(content_version(manifest, ["sample_id", "repeat"]).value),
            metadata={
                "pairs": manifest.height,
                "pairs_in_mix": int(manifest["repeat"].sum()),
                "recaptioned": int((manifest["caption_source"] == "recaptioned").sum()),
            },
        )

    return [curated, curated_manifest]


def _curated_pool(root, shard_id: str, selected: pl.DataFrame, recaption_on: bool) -> pl.DataFrame:
    """Selected kept pairs with their caption, plus recaptioned pairs whose new caption was kept."""
    normalized = read_parquet(root.table_path(NORMALIZED_STAGE, CAPTION, shard_id)).select(
        "sample_id", "shard_id", "caption", "image_ref"
    )
    rewritten = pl.DataFrame(schema={"sample_id": pl.String, "new_caption": pl.String})
    if recaption_on:
        rewritten = (
            read_parquet(root.table_path(RECAPTIONED, CAPTION, shard_id))
            .filter(pl.col("kept"))
            .select("sample_id", "new_caption")
        )
    in_selection = selected.filter(pl.col("shard_id") == shard_id)["sample_id"].implode()
    return (
        normalized.join(rewritten, on="sample_id", how="left")
        .filter(pl.col("sample_id").is_in(in_selection) | pl.col("new_caption").is_not_null())
        .select(
            "sample_id", "shard_id", "image_ref",
            pl.coalesce("new_caption", "caption").alias("caption"),
            pl.when(pl.col("new_caption").is_not_null()).then(pl.lit("recaptioned")).otherwise(pl.lit("original")).alias("caption_source"),
            pl.col("caption").alias("original_caption"),
        )
    )  # fmt: skip
