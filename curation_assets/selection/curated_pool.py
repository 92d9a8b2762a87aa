"""The curated caption pool: what survives selection, with its final caption."""

from __future__ import annotations

import polars as pl


def curated_pool(samples: pl.DataFrame, selected: pl.DataFrame) -> pl.DataFrame:
    """Every selected pair of the sample index, with its final caption and where that came from.

    `samples`: the sample index (final captions: a kept recaption already replaced the original and
    passed the filters as the new pair); `selected`: sample_id, selected."""
    chosen = selected.filter(pl.col("selected")).select("sample_id")
    return samples.join(chosen, on="sample_id", how="semi").sort("shard_id", "sample_id")
