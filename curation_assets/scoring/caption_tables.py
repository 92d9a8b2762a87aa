"""How each per-shard score table of caption pairs is computed. Separate tables where costs or models
differ, so changing one model re-runs only its own table."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets import registry as tables
from curation_assets.scoring.embedding_scores import clip_similarity, embedding_matrix
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput


@computes(tables.CLIP_EMBEDDINGS)
def clip_embeddings_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import clip_embeddings

    clip = work.model("clip")
    frame = clip_embeddings(work.shard, work.normalized, clip, work.batch_settings("clip"), work.progress)
    return TableOutput(frame, clip.identity, not clip.random_init)


def _embedding_provenance(embeddings: pl.DataFrame) -> tuple[str, bool]:
    """Tables computed from stored embeddings inherit the embeddings' provenance."""
    if not embeddings.height:
        return "n/a", True
    return embeddings["produced_by"][0], bool(embeddings["scores_meaningful"][0])


@computes(tables.CLIP_SIMILARITY)
def clip_similarity_table(work: ShardWork) -> TableOutput:
    embeddings = work.read(tables.CLIP_EMBEDDINGS.name)
    similarity = pl.Series("clip_similarity", clip_similarity(embeddings), dtype=pl.Float32)
    return TableOutput(embeddings.select("sample_id").with_columns(similarity), *_embedding_provenance(embeddings))


@computes(tables.AESTHETICS)
def aesthetics_table(work: ShardWork) -> TableOutput:
    embeddings = work.read(tables.CLIP_EMBEDDINGS.name)
    head = work.model("aesthetics")
    images = embedding_matrix(embeddings, "image_embedding")
    scores = head.score(images) if embeddings.height else np.zeros(0, np.float32)
    frame = embeddings.select("sample_id").with_columns(pl.Series("aesthetics", scores, dtype=pl.Float32))
    _, clip_meaningful = _embedding_provenance(embeddings)
    return TableOutput(frame, head.identity, clip_meaningful and not head.random_init)


def _image_probability(name: str, column: str, scorer_name: str):
    """A table of one per-image probability from one image model."""

    def compute(work: ShardWork) -> TableOutput:
        from curation_assets.scoring import image_models

        model = work.model(name)
        table = work.normalized
        scorer = getattr(image_models, scorer_name)
        scores = scorer(work.shard, table, model, work.batch_settings(name), work.progress)
        frame = table.select("sample_id").with_columns(pl.Series(column, scores, dtype=pl.Float32))
        return TableOutput(frame, model.identity, not model.random_init)

    compute.__name__ = f"{name}_table"
    return compute


computes(tables.ITM)(_image_probability("itm", "itm_probability", "itm_probabilities"))
computes(tables.WATERMARK)(_image_probability("watermark", "watermark_probability", "watermark_probabilities"))
computes(tables.NSFW)(_image_probability("nsfw", "nsfw_probability", "nsfw_probabilities"))


@computes(tables.IMAGE_STATS)
def image_stats_table(work: ShardWork) -> TableOutput:
    frame = work.normalized.select(
        "sample_id",
        pl.col("image_width").alias("width"),
        pl.col("image_height").alias("height"),
        (pl.col("image_width") / pl.col("image_height")).cast(pl.Float32).alias("aspect_ratio"),
        pl.col("image_num_bytes").alias("num_bytes"),
        pl.col("image_format").alias("format"),
        pl.col("image_mode").alias("mode"),
    )
    return TableOutput(frame, "image header (ingest)")


@computes(tables.CAPTION_TEXT_STATS)
def text_stats_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.text_stats import TEXT_STATS_PRODUCER, text_stats

    table = work.normalized
    frame = pl.concat([table.select("sample_id"), text_stats(table["caption"].to_list())], how="horizontal")
    return TableOutput(frame, TEXT_STATS_PRODUCER)


@computes(tables.IMAGE_PHASH)
def image_phash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import BatchSettings, perceptual_hashes

    table = work.normalized
    # pHash decodes small (64 px) on the CPU: two decoding workers regardless of any model's settings.
    hashes = perceptual_hashes(work.shard, table, BatchSettings(batch_size=64, num_workers=2))
    frame = table.select("sample_id").with_columns(pl.Series("phash", hashes, dtype=pl.String))
    return TableOutput(frame, "imagehash.phash")


@computes(tables.CAPTION_MINHASH)
def caption_minhash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.hashes import MINHASH, text_minhash

    table = work.normalized
    frame = table.select("sample_id").with_columns(pl.Series("minhash", text_minhash(table["caption"].to_list())))
    return TableOutput(frame, MINHASH.produced_by)


@computes(tables.CAPTION_EMBEDDING)
def caption_embedding_table(work: ShardWork) -> TableOutput:
    embedder = work.model("text_embedding")
    table = work.normalized
    vectors = embedder.embed(table["caption"].to_list())
    frame = table.select("sample_id").with_columns(pl.Series("text_embedding", vectors))
    return TableOutput(frame, embedder.identity, not embedder.random_init)
