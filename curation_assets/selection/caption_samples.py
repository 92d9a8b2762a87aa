"""One caption shard's rows of the sample index: each pair with its final caption and every score.

A pair whose new caption was kept by recaptioning is judged as what it now is: the new caption, its
CLIP similarity with the image (scored by recaptioning with the stored image embedding), and the new
caption's text statistics and MinHash, so new captions pass the same text filters and dedup as
original ones. Image scores do not depend on the caption and carry over. BLIP ITM is not re-run on
new captions: a recaptioned pair keeps its original pair's `itm_probability` (README: recaptioning).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from curation_assets import registry
from curation_assets.sample_index import ShardNotReady, require_same_rows

PAIR_COLUMNS = {
    "sample_id": pl.String,
    "shard_id": pl.String,
    "image_ref": pl.String,
    "image_sha256": pl.String,
    "caption": pl.String,  # the final caption
    "original_caption": pl.String,
    "caption_source": pl.String,  # original | recaptioned
}


def caption_samples(
    shard: str,
    normalized: pl.DataFrame,
    score_tables: Mapping[str, pl.DataFrame],
    recaptioned: pl.DataFrame | None,
) -> pl.DataFrame:
    """`score_tables`: table name -> its frame (sample_id + score columns), each covering the shard.
    `recaptioned`: the shard's recaption table, or None when recaptioning is off."""
    require_same_rows(shard, normalized["sample_id"], score_tables)
    rows = normalized.select(
        "sample_id",
        "shard_id",
        "image_ref",
        "image_sha256",
        "caption",
        pl.col("caption").alias("original_caption"),
        pl.lit("original").alias("caption_source"),
    )
    for frame in score_tables.values():
        rows = rows.join(frame, on="sample_id", how="left")
    if recaptioned is None or recaptioned.is_empty():
        return rows
    unknown = set(recaptioned["sample_id"].to_list()) - set(normalized["sample_id"].to_list())
    if unknown:
        raise ShardNotReady(f"recaptioned holds {len(unknown)} samples the shard no longer has")
    return _with_new_captions(rows, recaptioned.filter(pl.col("kept")))


def _with_new_captions(rows: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    if kept.is_empty():
        return rows
    from curation_assets.scoring.hashes import text_minhash
    from curation_assets.scoring.text_stats import text_stats

    captions = kept["new_caption"].to_list()
    stats = text_stats(captions).select([c for c in registry.CAPTION_TEXT_STATS.column_names if c in rows.columns])
    replacement = pl.concat(
        [
            kept.select(
                "sample_id",
                pl.col("new_caption").alias("caption"),
                pl.lit("recaptioned").alias("caption_source"),
                pl.col("score_after").alias("clip_similarity"),
            ),
            stats,
        ],
        how="horizontal",
    )
    if "minhash" in rows.columns:
        replacement = replacement.with_columns(pl.Series("minhash", text_minhash(captions)))
    columns = [c for c in replacement.columns if c != "sample_id" and c in rows.columns]
    updated = rows.join(replacement, on="sample_id", how="left", suffix="_new")
    return updated.with_columns([pl.coalesce(f"{c}_new", c).cast(rows.schema[c]).alias(c) for c in columns]).select(
        rows.columns
    )
