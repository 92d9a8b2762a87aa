"""Per-shard score tables of text-only documents: statistics, MinHash signatures, embeddings."""

import polars as pl

from curation_assets.defs.shard_assets import ShardTable, ShardWork, TableOutput
from curation_assets.sources import SourceKind

TEXT = SourceKind.text


def _text_stats(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.text_stats import text_stats

    table = work.normalized
    return TableOutput(
        pl.concat([table.select("sample_id"), text_stats(table["text"].to_list())], how="horizontal"), "text_stats"
    )


def _text_minhash(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.hashes import caption_minhash

    table = work.normalized
    return TableOutput(
        table.select("sample_id").with_columns(pl.Series("minhash", caption_minhash(table["text"].to_list()))),
        "datasketch.MinHash",
    )


def _text_embedding(work: ShardWork) -> TableOutput:
    embedder = work.resources.text_embedding
    table = work.normalized
    vectors = embedder.model.embed(table["text"].to_list())
    return TableOutput(
        table.select("sample_id").with_columns(pl.Series("text_embedding", vectors)),
        embedder.identity,
        embedder.meaningful,
    )


TEXT_TABLES = [
    ShardTable(
        TEXT,
        "text_stats",
        "Word and character counts, special-character and repetition ratios of each document.",
        _text_stats,
    ),
    ShardTable(TEXT, "text_minhash", "MinHash signature of each document, for near-duplicate search.", _text_minhash),
    ShardTable(
        TEXT,
        "text_embedding",
        "Sentence embedding of each document (all-MiniLM-L6-v2 by default; long texts are truncated by the model).",
        _text_embedding,
        resources=frozenset({"text_embedding"}),
        recipe_sections=("models.text_embedding",),
        gpu=True,
    ),
]
