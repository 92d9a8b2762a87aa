"""How each per-shard score table of text-only documents is computed."""

from __future__ import annotations

import polars as pl

from curation_assets import registry as tables
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput


@computes(tables.TEXT_STATS)
def text_stats_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.text_stats import TEXT_STATS_PRODUCER, text_stats

    table = work.normalized
    frame = pl.concat([table.select("sample_id"), text_stats(table["text"].to_list())], how="horizontal")
    return TableOutput(frame, TEXT_STATS_PRODUCER)


@computes(tables.TEXT_MINHASH)
def text_minhash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.hashes import MINHASH, text_minhash

    table = work.normalized
    frame = table.select("sample_id").with_columns(pl.Series("minhash", text_minhash(table["text"].to_list())))
    return TableOutput(frame, MINHASH.produced_by)


@computes(tables.TEXT_EMBEDDING)
def text_embedding_table(work: ShardWork) -> TableOutput:
    embedder = work.model("text_embedding")
    table = work.normalized
    vectors = embedder.embed(table["text"].to_list())
    frame = table.select("sample_id").with_columns(pl.Series("text_embedding", vectors))
    return TableOutput(frame, embedder.identity, not embedder.random_init)
