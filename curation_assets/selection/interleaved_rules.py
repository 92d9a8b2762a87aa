"""Interleaved documents decided at two levels, and the curated documents that result.

1. Image rules (recipe `interleaved.image_filters`, then image dedup) decide every image of every
   document: kept, or dropped with the first failing rule and its value.
2. Document rules (`interleaved.document_filters`, then document dedup) decide every document. They
   may read what the image level left: `num_images_kept` and `image_drop_ratio`.
3. A kept document enters the curated pool without its dropped images, its `texts` / `images` lists
   still aligned; with `reassign_images`, each kept image moves right before its assigned sentence.

Deciding reads stored scores only (the thresholds resolved from the recipe, the image-to-sentence
matches, the dedup groups): editing a threshold or the re-assignment option re-runs this, no model.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from curation_assets.selection.filters import ResolvedRule, decide

IMAGE_DECISION_COLUMNS = ("image_id", "sample_id", "image_index", "kept", "drop_rule", "drop_value")


def rule_similarity(matches: pl.DataFrame, reassign_images: bool) -> pl.DataFrame:
    """image_id, clip_similarity (what image_text_similarity_filter reads) and matched_text_index:
    the image's best sentence, or with `reassign_images` its assigned one (MMC4's linear assignment)."""
    prefix = "assigned" if reassign_images else "best"
    return matches.select(
        "image_id",
        pl.col(f"{prefix}_similarity").alias("clip_similarity"),
        pl.col(f"{prefix}_text_index").alias("matched_text_index"),
    )


def decide_images(
    images: pl.DataFrame,
    scores: pl.DataFrame,
    rules: Sequence[ResolvedRule],
    duplicates: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every image of `images` (image_id, sample_id, image_index), kept or dropped.

    `scores`: image_id and every column a rule reads; `duplicates`: image_id, duplicate_of, method for
    images that image dedup drops (rule "dedup", after every threshold). An image missing from
    `scores` has no score, so every rule on it fails: it is dropped, never silently kept.
    """
    frame = images.select("image_id").join(scores, on="image_id", how="left")
    decisions = decide(frame, rules, duplicates, id_column="image_id")
    return images.select("image_id", "sample_id", "image_index").join(decisions, on="image_id", how="left")


def images_left(documents: pl.DataFrame, image_decisions: pl.DataFrame) -> pl.DataFrame:
    """sample_id, num_images_kept, image_drop_ratio (0.0 for a document that had no images) for every
    document in `documents` (sample_id, num_images)."""
    kept = image_decisions.group_by("sample_id").agg(
        pl.col("kept").sum().cast(pl.Int32).alias("num_images_kept"), pl.len().alias("decided")
    )
    frame = documents.select("sample_id", "num_images").join(kept, on="sample_id", how="left")
    return frame.select(
        "sample_id",
        pl.col("num_images_kept").fill_null(0),
        pl.when(pl.col("num_images") > 0)
        .then(1.0 - pl.col("num_images_kept").fill_null(0) / pl.col("num_images"))
        .otherwise(0.0)
        .cast(pl.Float32)
        .alias("image_drop_ratio"),
    )


def decide_documents(
    scores: pl.DataFrame, rules: Sequence[ResolvedRule], duplicates: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every document of `scores` (sample_id and every column a rule reads, including images_left's),
    kept or dropped; `duplicates` (sample_id, duplicate_of, method) for document dedup's losers."""
    return decide(scores, rules, duplicates)


def curated_documents(
    documents: pl.DataFrame,
    image_decisions: pl.DataFrame,
    document_decisions: pl.DataFrame,
    matched: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The kept documents in the canonical interleaved layout, without their dropped images.

    `documents`: the shard's normalized rows; `matched`: image_id, matched_text_index (rule_similarity)
    to move each kept image right before its matched text element (reassign_images), or None to keep
    every image where the source put it. Besides the canonical columns: num_images_dropped. The
    `source_meta` stays the source's (MMC4's image_info still lists every source image).
    """
    kept_ids = document_decisions.filter(pl.col("kept"))["sample_id"]
    kept_docs = documents.filter(pl.col("sample_id").is_in(kept_ids.implode()))
    kept_images = image_decisions.filter(pl.col("kept"))
    if matched is None:
        kept_images = kept_images.with_columns(pl.lit(None, pl.Int32).alias("matched_text_index"))
    else:
        kept_images = kept_images.join(matched.select("image_id", "matched_text_index"), on="image_id", how="left")
    per_doc = kept_images.group_by("sample_id").agg("image_index", "matched_text_index")
    lookup = {sample: dict(zip(indices, targets)) for sample, indices, targets in per_doc.iter_rows()}

    texts_out, images_out, dropped = [], [], []
    for sample, texts, images in kept_docs.select("sample_id", "texts", "images").iter_rows():
        kept = lookup.get(sample, {})
        order = _reading_order(texts, kept, move=matched is not None)
        texts_out.append([texts[position] for position in order])
        images_out.append([images[position] for position in order])
        dropped.append(sum(image is not None for image in images) - len(kept))
    return kept_docs.with_columns(
        pl.Series("texts", texts_out, dtype=documents.schema["texts"]),
        pl.Series("images", images_out, dtype=documents.schema["images"]),
        pl.Series("num_images", [len(lookup.get(sample, {})) for sample in kept_docs["sample_id"]], dtype=pl.Int32),
        pl.Series("num_images_dropped", dropped, dtype=pl.Int32),
    )


def _reading_order(texts: list, kept: dict[int, int | None], move: bool) -> list[int]:
    """Positions of the curated document: every text element and every kept image (`kept`: image
    position -> its matched text position). With `move`, each image goes right before its matched
    text element (images on one text in source order); otherwise everything stays where it was."""
    if not move:
        return [position for position, text in enumerate(texts) if text is not None or position in kept]
    before: dict[int, list[int]] = {}
    for image in sorted(kept):
        if kept[image] is None:
            raise ValueError(f"kept image at position {image} has no matched text element to move before")
        before.setdefault(kept[image], []).append(image)
    order = []
    for position, text in enumerate(texts):
        if text is not None:
            order += before.get(position, []) + [position]
    return order
