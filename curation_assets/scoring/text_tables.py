"""How the per-shard tables computed from text are made: statistics, quality (language, stopwords),
exact-dedup hashes, MinHash signatures, sentence embeddings and perplexity, for captions, text-only
documents and the text of interleaved documents alike (one function each, bound to each kind's table)."""

from __future__ import annotations

import polars as pl

from curation_assets import registry as tables
from curation_assets.shard_work import ShardWork, computes
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableOutput


def texts(work: ShardWork) -> list[str | None]:
    """The text a kind's text scores read: the caption, the document, or an interleaved document's
    text elements one per line."""
    table = work.normalized
    if work.table.kind is SourceKind.interleaved:
        from curation_assets.scoring.interleaved import document_texts

        return document_texts(table)
    return table["caption" if work.table.kind is SourceKind.caption else "text"].to_list()


def _ids(work: ShardWork) -> pl.DataFrame:
    return work.normalized.select("sample_id")


def text_stats_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.text_stats import TEXT_STATS_PRODUCER, text_stats

    return TableOutput(pl.concat([_ids(work), text_stats(texts(work))], how="horizontal"), TEXT_STATS_PRODUCER)


def minhash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.hashes import MINHASH, text_minhash

    return TableOutput(_ids(work).with_columns(pl.Series("minhash", text_minhash(texts(work)))), MINHASH.produced_by)


def embedding_table(work: ShardWork) -> TableOutput:
    embedder = work.model("text_embedding")
    vectors = embedder.embed(texts(work))
    frame = _ids(work).with_columns(pl.Series("text_embedding", vectors))
    return TableOutput(frame, embedder.identity, not embedder.random_init)


def text_quality_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.language_id import IDENTITY
    from curation_assets.scoring.text_quality import text_quality

    return TableOutput(pl.concat([_ids(work), text_quality(texts(work))], how="horizontal"), IDENTITY)


@computes(tables.TEXT_HASH)
def text_hash_table(work: ShardWork) -> TableOutput:
    from curation_assets.selection.text_dedup import all_text_hashes

    return TableOutput(
        pl.concat([_ids(work), all_text_hashes(texts(work))], how="horizontal"), "md5 of normalised text"
    )


@computes(tables.TEXT_PERPLEXITY)
def perplexity_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.perplexity import perplexities

    model = work.model("perplexity")
    scores = pl.Series("perplexity", perplexities(texts(work), model), dtype=pl.Float32)
    return TableOutput(_ids(work).with_columns(scores), model.identity)


for spec in (tables.CAPTION_TEXT_STATS, tables.TEXT_STATS, tables.INTERLEAVED_TEXT_STATS):
    computes(spec)(text_stats_table)
for spec in (tables.CAPTION_MINHASH, tables.TEXT_MINHASH, tables.INTERLEAVED_MINHASH):
    computes(spec)(minhash_table)
for spec in (tables.CAPTION_EMBEDDING, tables.TEXT_EMBEDDING):
    computes(spec)(embedding_table)
for spec in (tables.TEXT_QUALITY, tables.INTERLEAVED_TEXT_QUALITY):
    computes(spec)(text_quality_table)
