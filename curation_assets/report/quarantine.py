"""A sample of quarantined rows with their reasons: every reason shown before any shows twice."""

from __future__ import annotations

import polars as pl

from curation_assets.report.format import table

DETAIL_CHARS = 90


def quarantine_sample(quarantine: pl.DataFrame, limit: int = 12) -> pl.DataFrame:
    """Up to `limit` rows, taken round-robin over the reasons (most frequent reason first), so a rare
    reason is not crowded out by a common one. Deterministic: rows in shard and key order."""
    ranked = (
        quarantine.sort(["shard_id", "key"])
        .with_columns(
            pl.int_range(pl.len()).over("reason").alias("turn"),
            pl.len().over("reason").alias("reason_rows"),
        )
        .sort(["turn", "reason_rows", "reason"], descending=[False, True, False])
    )
    return ranked.head(limit).select("reason", "shard_id", "key", "stage", "detail")


def quarantine_examples(quarantine: pl.DataFrame, limit: int = 12) -> str:
    """Markdown: a table of sampled quarantined rows (reason, shard, key, stage, detail)."""
    if quarantine.is_empty():
        return "Nothing quarantined."
    sample = quarantine_sample(quarantine, limit)
    rows = [(reason, shard, key, stage, _cut(detail)) for reason, shard, key, stage, detail in sample.iter_rows()]
    note = f"{sample.height} of {quarantine.height:,} quarantined rows, every reason before any twice"
    return f"{note}\n\n" + table(["reason", "shard", "key", "stage", "detail"], rows)


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
