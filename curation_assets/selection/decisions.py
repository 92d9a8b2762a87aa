"""Keep or drop every sample: the recipe's rules in order, then dedup, which keeps the best member of
each duplicate group that passes every rule.

Why dedup comes last and picks among the survivors: choosing a group's representative before the
rules (by score alone) loses whole groups. Two copies `a` (CLIP 0.35, 200 words) and `b` (CLIP 0.30,
12 words) under `words_num_filter max_num 128`: `a` represents, fails the rule, and `b`, which passed
everything, is dropped as its duplicate; neither is kept. Here `b` is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from curation_assets.selection.filters import ResolvedRule, decide, rules_of

DECISION_SCHEMA = {
    "sample_id": pl.String,
    "shard_id": pl.String,
    "kept": pl.Boolean,
    "drop_rule": pl.String,  # the first failing rule in recipe order, or "dedup"
    "drop_value": pl.String,  # the value that failed it, or "<method> duplicate of <sample_id>"
    "duplicate_of": pl.String,  # the member kept in the sample's duplicate group, if any
}
DEDUP_RULE = "dedup"
# A caption duplicate group keeps its member with the highest CLIP similarity that passes every rule.
CAPTION_RANK_BY = "clip_similarity"


def filter_columns(steps: Sequence, rank_by: str = CAPTION_RANK_BY) -> list[str]:
    """The index columns deciding reads under these recipe filters: every rule's column and the rank."""
    return sorted({rule.column for rule in rules_of(steps)} | {rank_by})


def decide_samples(
    samples: pl.DataFrame, rules: Sequence[ResolvedRule], groups: pl.DataFrame | None, rank_by: str
) -> pl.DataFrame:
    """`samples`: sample_id, shard_id, `rank_by` and every column a rule reads; `groups`: sample_id,
    group_id, method (dedup), or None. Among a group's members that pass every rule, the one with
    the highest `rank_by` is kept (ties: smallest sample_id); the others are dropped as its duplicates.
    A group none of whose members passes is dropped whole, each member by its own first failing rule."""
    verdicts = decide(samples, rules).join(samples.select("sample_id", "shard_id", rank_by), on="sample_id")
    if groups is None or groups.is_empty():
        return verdicts.with_columns(pl.lit(None, pl.String).alias("duplicate_of")).select(list(DECISION_SCHEMA))
    members = groups.select("sample_id", "group_id", "method").join(verdicts, on="sample_id", how="inner")
    survivors = (
        members.filter(pl.col("kept"))
        .sort(["group_id", rank_by, "sample_id"], descending=[False, True, False], nulls_last=True)
        .group_by("group_id", maintain_order=True)
        .first()
        .select("group_id", pl.col("sample_id").alias("keeper"))
    )
    linked = members.join(survivors, on="group_id", how="left").select("sample_id", "method", "keeper")
    decided = verdicts.join(linked, on="sample_id", how="left")
    loses = pl.col("kept") & pl.col("keeper").is_not_null() & (pl.col("keeper") != pl.col("sample_id"))
    return decided.select(
        "sample_id",
        "shard_id",
        (pl.col("kept") & ~loses).alias("kept"),
        pl.when(loses).then(pl.lit(DEDUP_RULE)).otherwise(pl.col("drop_rule")).alias("drop_rule"),
        pl.when(loses)
        .then(pl.format("{} duplicate of {}", pl.col("method"), pl.col("keeper")))
        .otherwise(pl.col("drop_value"))
        .alias("drop_value"),
        pl.when(pl.col("keeper") != pl.col("sample_id")).then(pl.col("keeper")).alias("duplicate_of"),
    ).cast(DECISION_SCHEMA)
