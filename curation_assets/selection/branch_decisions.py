"""Dedup and keep/drop decisions of the text and interleaved branches over their sample indexes.

Both follow the caption branch's rule (selection/decisions.py): the recipe's rules in order, then
dedup, which keeps the best member of each duplicate group that passes every rule. What "best"
means per kind: a text document's language_score; an interleaved image's similarity to its
sentence; an interleaved document's number of images left. An interleaved image that is also in the
curated caption pool is always dropped: the pair data has it already.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from curation_assets.selection.decisions import DEDUP_RULE, decide_samples
from curation_assets.selection.filters import ResolvedRule
from curation_assets.selection.interleaved_dedup import (
    CAPTION_PREFIX,
    document_duplicate_groups,
    image_duplicate_groups,
)
from curation_assets.selection.interleaved_rules import images_left, rule_similarity
from curation_assets.selection.text_dedup import hash_column, text_duplicate_groups, text_duplicate_pairs

TEXT_RANK_BY = "language_score"
IMAGE_RANK_BY = "clip_similarity"
DOCUMENT_RANK_BY = "num_images_kept"
# A dedup table's rows: one per member of a duplicate group, at either level of a document.
MEMBER_SCHEMA = {
    "level": pl.String,  # image or document
    "member_id": pl.String,  # image_id or sample_id
    "shard_id": pl.String,
    "group_id": pl.String,
    "method": pl.String,
    "duplicate_of": pl.String,
}


def members(groups: pl.DataFrame, level: str, id_column: str) -> pl.DataFrame:
    """duplicate_groups' rows (with shard_id) in MEMBER_SCHEMA."""
    return groups.select(
        pl.lit(level).alias("level"), pl.col(id_column).alias("member_id"), *list(MEMBER_SCHEMA)[2:]
    ).cast(MEMBER_SCHEMA)


# --- text ------------------------------------------------------------------------------------------


def text_duplicates(samples: pl.DataFrame, dedup, embeddings: np.ndarray | None = None) -> pl.DataFrame:
    """Duplicate groups of text documents under the recipe's `text.dedup`, in MEMBER_SCHEMA.
    `samples`: sample_id, shard_id, the text hash columns, minhash, language_score; `embeddings`: the
    stored sentence embeddings when semantic dedup is on."""
    frame = samples if embeddings is None else samples.with_columns(pl.Series("text_embedding", embeddings))
    exact, minhash, semantic = (
        dedup.document_deduplicator,
        dedup.document_minhash_deduplicator,
        dedup.semantic_deduplicator,
    )
    pairs = text_duplicate_pairs(
        frame,
        exact=hash_column(exact.lowercase, exact.ignore_non_character) if exact else False,
        minhash_threshold=minhash.jaccard_threshold if minhash else None,
        semantic_epsilon=semantic.epsilon if semantic else None,
        semantic_clusters=semantic.num_clusters if semantic else 100,
    )
    if not pairs or not samples.height:
        return pl.DataFrame(schema=MEMBER_SCHEMA)
    return members(text_duplicate_groups(frame, pairs, keep_score=TEXT_RANK_BY), "document", "sample_id")


def decide_texts(samples: pl.DataFrame, rules: Sequence[ResolvedRule], duplicates: pl.DataFrame) -> pl.DataFrame:
    """Every text document kept or dropped (selection.decisions.DECISION_SCHEMA); `duplicates`: text_duplicates."""
    return decide_samples(samples, rules, _groups(duplicates, "document"), rank_by=TEXT_RANK_BY)


# --- interleaved -------------------------------------------------------------------------------------


def judged_images(images: pl.DataFrame, reassign_images: bool) -> pl.DataFrame:
    """The image index with the two columns the image rules read: `clip_similarity` (to the image's best
    or, with reassign_images, its assigned sentence) and `matched_text_index`."""
    matches = images.select(
        "image_id", "best_similarity", "best_text_index", "assigned_similarity", "assigned_text_index"
    )
    return images.join(rule_similarity(matches, reassign_images), on="image_id", how="left")


def interleaved_duplicates(
    documents: pl.DataFrame,
    images: pl.DataFrame,
    dedup,
    caption_images: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Image and document duplicate groups under the recipe's `interleaved.dedup`: level (image or
    document), member_id, shard_id, group_id, method, duplicate_of. `images`: judged_images (image_id,
    sample_id, shard_id, image_sha256, phash, clip_similarity); `documents`: sample_id, shard_id,
    minhash; `caption_images`: the curated caption pool's sample_id, image_sha256, phash."""
    parts = []
    if dedup.image_deduplicator is not None and images.height:
        against = caption_images if dedup.against_caption_pool else None
        found = image_duplicate_groups(images, dedup.image_deduplicator.max_distance, against)
        parts.append(members(found, "image", "image_id"))
    if dedup.document_minhash_deduplicator is not None and documents.height:
        threshold = dedup.document_minhash_deduplicator.jaccard_threshold
        found = document_duplicate_groups(documents.select("sample_id", "shard_id", "minhash"), threshold)
        parts.append(members(found, "document", "sample_id"))
    return pl.concat([pl.DataFrame(schema=MEMBER_SCHEMA), *parts], how="vertical_relaxed")


def _groups(duplicates: pl.DataFrame, level: str) -> pl.DataFrame:
    return duplicates.filter(pl.col("level") == level).select(
        pl.col("member_id").alias("sample_id"), "group_id", "method", "duplicate_of"
    )


def decide_interleaved(
    documents: pl.DataFrame,
    images: pl.DataFrame,
    image_rules: Sequence[ResolvedRule],
    document_rules: Sequence[ResolvedRule],
    duplicates: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(document decisions, image decisions).

    Images (`judged_images` rows) first: the image rules, then dedup. A group holding a caption pool
    image drops every interleaved copy; any other group keeps its member most similar to its sentence
    that passes every rule. Then documents, with what the images left (num_images_kept,
    image_drop_ratio): the document rules, then document dedup, which keeps the copy with most images
    left that passes every rule. Image decisions: image_id, sample_id, shard_id, image_index, kept,
    drop_rule, drop_value, duplicate_of, matched_text_index."""
    image_groups = _groups(duplicates, "image")
    with_caption = image_groups.filter(
        pl.col("group_id").str.starts_with(CAPTION_PREFIX) | pl.col("duplicate_of").str.starts_with(CAPTION_PREFIX)
    )
    # Images are decided by the same function as samples (rules, then the best passing member of a group).
    as_samples = images.rename({"sample_id": "document_id", "image_id": "sample_id"})
    verdicts = decide_samples(
        as_samples, image_rules, image_groups.join(with_caption, on="sample_id", how="anti"), rank_by=IMAGE_RANK_BY
    )
    copies = pl.col("kept") & pl.col("caption_copy").is_not_null()
    verdicts = verdicts.join(
        with_caption.select("sample_id", pl.col("duplicate_of").alias("caption_copy"), "method"),
        on="sample_id",
        how="left",
    ).with_columns(
        pl.when(copies).then(pl.lit(DEDUP_RULE)).otherwise(pl.col("drop_rule")).alias("drop_rule"),
        pl.when(copies)
        .then(pl.format("{} duplicate of {}", pl.col("method"), pl.col("caption_copy")))
        .otherwise(pl.col("drop_value"))
        .alias("drop_value"),
        pl.coalesce("caption_copy", "duplicate_of").alias("duplicate_of"),
        (pl.col("kept") & pl.col("caption_copy").is_null()).alias("kept"),
    )
    image_decisions = (
        as_samples.select(
            pl.col("sample_id").alias("image_id"),
            pl.col("document_id").alias("sample_id"),
            "image_index",
            "matched_text_index",
        )
        .join(
            verdicts.select(
                pl.col("sample_id").alias("image_id"), "shard_id", "kept", "drop_rule", "drop_value", "duplicate_of"
            ),
            on="image_id",
        )
        .select(
            "image_id",
            "sample_id",
            "shard_id",
            "image_index",
            "kept",
            "drop_rule",
            "drop_value",
            "duplicate_of",
            "matched_text_index",
        )
    )
    left = images_left(documents.select("sample_id", "num_images"), image_decisions)
    scored = documents.join(left, on="sample_id", how="left")
    document_decisions = decide_samples(scored, document_rules, _groups(duplicates, "document"), DOCUMENT_RANK_BY)
    return document_decisions, image_decisions
