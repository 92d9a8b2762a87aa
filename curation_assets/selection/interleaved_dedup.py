"""Dedup of interleaved documents across all shards: their images (across documents, and against the
caption pool) and the documents themselves (MinHash over their text).

The pair finders and the grouping are selection/dedup.py's. Images are grouped with the caption
pool's images in one graph, and a caption image always represents its group: the pair data keeps
its copy, and the interleaved copy is the one dropped (`duplicate_of` then names `caption:<id>`).
Among interleaved images the one most similar to its best sentence is kept.
"""

from __future__ import annotations

import polars as pl

from curation_assets.selection.dedup import (
    Pairs,
    duplicate_groups,
    exact_duplicate_pairs,
    near_image_pairs,
    near_text_pairs,
)

CAPTION_PREFIX = "caption:"


def image_duplicate_groups(
    images: pl.DataFrame, max_distance: int, caption_images: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Duplicate groups of interleaved images: identical bytes ("exact") and pHash neighbours within
    `max_distance` bits ("phash"), across every document, and against `caption_images` when given.

    `images`: image_id, sample_id, shard_id, image_sha256, phash, clip_similarity (the image's
    similarity to its best sentence; null ranks last). `caption_images`: sample_id, image_sha256,
    phash of the caption pool. Returns one row per interleaved image in a group: image_id,
    sample_id, shard_id, group_id, representative, method, duplicate_of.
    """
    members = images.select(
        pl.col("image_id").alias("member"),
        "image_sha256",
        "phash",
        pl.col("clip_similarity").cast(pl.Float64).fill_null(float("nan")).alias("keep_score"),
    )
    if caption_images is not None and caption_images.height:
        captions = caption_images.select(
            (pl.lit(CAPTION_PREFIX) + pl.col("sample_id")).alias("member"),
            "image_sha256",
            "phash",
            pl.lit(float("inf")).alias("keep_score"),  # the caption pool's copy always survives
        )
        members = pl.concat([captions, members])
    pairs: dict[str, Pairs] = {
        "exact": exact_duplicate_pairs(members),
        "phash": near_image_pairs(members["phash"], max_distance),
    }
    groups = duplicate_groups(members.height, pairs, members["keep_score"].to_numpy(), members["member"])
    return (
        groups.rename({"sample_id": "image_id"})
        .join(images.select("image_id", "sample_id", "shard_id"), on="image_id", how="inner")
        .select("image_id", "sample_id", "shard_id", "group_id", "representative", "method", "duplicate_of")
    )


def document_duplicate_groups(documents: pl.DataFrame, jaccard_threshold: float) -> pl.DataFrame:
    """Duplicate groups of documents whose text MinHash signatures (`minhash`) estimate a Jaccard
    similarity >= the threshold. `documents`: sample_id, shard_id, minhash, and optionally
    num_images_kept: the copy that kept most images after the image rules represents its group, so
    dedup never keeps the copy the document rules will drop for want of images (ties, or without the
    column: the smallest sample_id)."""
    pairs = {"minhash": near_text_pairs(documents["minhash"].to_numpy(), jaccard_threshold)}
    keep = documents["num_images_kept"].to_numpy() if "num_images_kept" in documents.columns else None
    groups = duplicate_groups(documents.height, pairs, keep, documents["sample_id"])
    return groups.join(documents.select("sample_id", "shard_id"), on="sample_id", how="left")
