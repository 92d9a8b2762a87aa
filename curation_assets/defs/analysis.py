"""Score analysis over all shards: quantiles, counts and histograms, shown in the Dagster UI.

This is what users look at before choosing thresholds. It reads only the small score tables.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets.defs.automation import on_new_data
from curation_assets.defs.metadata import SMOKE_WARNING
from curation_assets.defs.names import stage_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.scoring.analysis import histograms_markdown, score_summary, summary_markdown
from curation_assets.sources import SourceKind
from curation_assets.storage import read_parquet, write_parquet_atomic

CAPTION = SourceKind.caption
# Score table -> the columns of it worth a distribution.
ANALYSED_SCORES = {
    "clip_similarity": ["clip_similarity"],
    "itm": ["itm_probability"],
    "aesthetics": ["aesthetics"],
    "watermark": ["watermark_probability"],
    "nsfw": ["nsfw_probability"],
    "image_stats": ["width", "height", "aspect_ratio", "num_bytes"],
    "text_stats": [
        "num_words",
        "num_chars",
        "special_char_ratio",
        "alnum_ratio",
        "word_repetition_ratio",
        "char_repetition_ratio",
    ],
}
ANALYSIS_STAGE = "score_analysis"


def load_scores(data_root: DataRootResource, shard_ids: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """One row per sample with every analysed score, and the tables whose model was a smoke model."""
    root = data_root.data_root()
    wide: pl.DataFrame | None = None
    meaningless = []
    for table, columns in ANALYSED_SCORES.items():
        missing = [s for s in shard_ids if not root.table_path(table, CAPTION, s).exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} shard(s) have no {table} table yet (e.g. {missing[0]}): materialize caption/{table} "
                "for them first (job score_caption_shards)"
            )
        frame = pl.concat([read_parquet(root.table_path(table, CAPTION, s)) for s in shard_ids], how="vertical_relaxed")
        if "scores_meaningful" in frame.columns and not frame["scores_meaningful"].all():
            meaningless.append(table)
        frame = frame.select("sample_id", *columns)
        wide = frame if wide is None else wide.join(frame, on="sample_id", how="full", coalesce=True)
    return wide, meaningless


@asset(
    key=stage_key(CAPTION, ANALYSIS_STAGE),
    deps=[stage_key(CAPTION, table) for table in ANALYSED_SCORES],
    group_name="caption_analysis",
    code_version="1",
    description="Per-score quantiles (5/25/50/75/95%), counts and histograms over every caption shard.",
    kinds={"polars", "matplotlib"},
    automation_condition=on_new_data(),
)
def caption_score_analysis(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
    shard_ids = sorted(context.instance.get_dynamic_partitions(SHARD_PARTITIONS[CAPTION].name))
    scores, meaningless = load_scores(data_root, shard_ids)
    columns = [column for columns in ANALYSED_SCORES.values() for column in columns]
    summary = score_summary(scores, columns)
    write_parquet_atomic(summary, data_root.data_root().stage_dir(ANALYSIS_STAGE, CAPTION) / "summary.parquet")
    context.log.info(f"analysed {scores.height} samples over {len(shard_ids)} shards")
    metadata = {
        "samples": scores.height,
        "shards": len(shard_ids),
        "quantiles": MetadataValue.md(summary_markdown(summary)),
        "histograms": MetadataValue.md(histograms_markdown(scores, columns)),
    }
    if meaningless:
        metadata["warning"] = f"{SMOKE_WARNING}: {', '.join(meaningless)}"
    return MaterializeResult(metadata=metadata)
