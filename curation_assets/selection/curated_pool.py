"""The curated caption pool of one shard: what survives selection, with its final caption."""

from __future__ import annotations

import polars as pl


def curated_pool(normalized: pl.DataFrame, selected_ids: pl.Series, recaptioned: pl.DataFrame | None) -> pl.DataFrame:
    """Selected pairs with their caption, plus recaptioned pairs whose new caption was kept.

    `normalized`: the shard's caption rows; `selected_ids`: sample ids the filters and selectors
    kept; `recaptioned`: the shard's recaption table, or None when recaptioning is off. A kept new
    caption replaces the original, and brings its pair in even when the filters dropped the original
    (that is what recaptioning is for: rescuing weak pairs with good images).
    """
    rewritten = (
        recaptioned.filter(pl.col("kept")).select("sample_id", "new_caption")
        if recaptioned is not None
        else pl.DataFrame(schema={"sample_id": pl.String, "new_caption": pl.String})
    )
    return (
        normalized.select("sample_id", "shard_id", "caption", "image_ref")
        .join(rewritten, on="sample_id", how="left")
        .filter(pl.col("sample_id").is_in(selected_ids.implode()) | pl.col("new_caption").is_not_null())
        .select(
            "sample_id",
            "shard_id",
            "image_ref",
            pl.coalesce("new_caption", "caption").alias("caption"),
            pl.when(pl.col("new_caption").is_not_null())
            .then(pl.lit("recaptioned"))
            .otherwise(pl.lit("original"))
            .alias("caption_source"),
            pl.col("caption").alias("original_caption"),
        )
    )
