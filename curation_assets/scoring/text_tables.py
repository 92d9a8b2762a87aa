"""How the per-shard tables computed from a text column are made: statistics, MinHash signatures and
sentence embeddings, for captions and for text-only documents alike (one function each, bound to
each kind's table and text column)."""

from __future__ import annotations

import polars as pl

from curation_assets import registry as tables
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput, TableSpec


def text_stats_of(column: str):
    def compute(work: ShardWork) -> TableOutput:
        from curation_assets.scoring.text_stats import TEXT_STATS_PRODUCER, text_stats

        table = work.normalized
        frame = pl.concat([table.select("sample_id"), text_stats(table[column].to_list())], how="horizontal")
        return TableOutput(frame, TEXT_STATS_PRODUCER)

    return compute


def minhash_of(column: str):
    def compute(work: ShardWork) -> TableOutput:
        from curation_assets.scoring.hashes import MINHASH, text_minhash

        table = work.normalized
        frame = table.select("sample_id").with_columns(pl.Series("minhash", text_minhash(table[column].to_list())))
        return TableOutput(frame, MINHASH.produced_by)

    return compute


def embedding_of(column: str):
    def compute(work: ShardWork) -> TableOutput:
        embedder = work.model("text_embedding")
        table = work.normalized
        vectors = embedder.embed(table[column].to_list())
        frame = table.select("sample_id").with_columns(pl.Series("text_embedding", vectors))
        return TableOutput(frame, embedder.identity, not embedder.random_init)

    return compute


BINDINGS: tuple[tuple[TableSpec, TableSpec, TableSpec, str], ...] = (
    (tables.CAPTION_TEXT_STATS, tables.CAPTION_MINHASH, tables.CAPTION_EMBEDDING, "caption"),
    (tables.TEXT_STATS, tables.TEXT_MINHASH, tables.TEXT_EMBEDDING, "text"),
)
for stats_table, minhash_table, embedding_table, text_column in BINDINGS:
    computes(stats_table)(text_stats_of(text_column))
    computes(minhash_table)(minhash_of(text_column))
    computes(embedding_table)(embedding_of(text_column))
